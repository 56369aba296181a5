#!/usr/bin/env python3
"""How long `bundle fleet` takes and how much memory it holds, by the number of boxes (issue 13:
5,000 boxes took 181 s; target under 20 s, memory flat in the number of boxes), and the Ansible
rollout's wall time on the real-box lab's VMs (--ansible). Prints its figures.

    .venv/bin/python bench/fleet.py                    # 500, 2,000 and 5,000 boxes
    .venv/bin/python bench/fleet.py --ansible          # the rollout of 3 VMs (root, qemu; ~10 min)
    .venv/bin/python bench/fleet.py --sizes 100 1000 --keep DIR
    .venv/bin/python bench/fleet.py --source OTHER     # the installer package of OTHER (an older checkout)

The bundle is the richest kind a fleet carries: a WiFi box behind an authenticating proxy (two
secrets, encrypted with a passphrase), a static uplink, signed with an Ed25519 key the run
trusts; devices.csv gives each box its host name and addresses. Each size runs the real command
(`python -m installer bundle fleet ...`) in a fresh process, twice: into an empty --out, then
again into the same --out (a rerun checks every box folder against its record, then replaces
it). From 64 boxes on, the command builds boxes in worker processes (installer.fleet.build.default_jobs:
one per CPU, at most 4). Figures per run: wall time (the interpreter's start-up included: what a
user waits), the time per box, the CPU time used (user + system, the workers' included: what
other work on the machine changes least), and the peak RSS (the kernel's ru_maxrss: the largest
of the command's processes; each worker is a fork of the command, its pages shared until written).
A benchmark reports; it exits 0 whatever the figures (non-zero only when the command itself fails).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from installer.fleet import bundle as B  # noqa: E402
from installer.fleet import keys as K  # noqa: E402
from installer.planning.setfield import apply_sets  # noqa: E402
from tests.hostile_bundles import PASSPHRASE, SCRYPT_N, base_plan  # noqa: E402


def devices_csv(boxes: int) -> str:
    """hostname, machine network and uplink per box (uplinks in one /16: up to 65,000 boxes)."""
    rows = ["hostname,machine_network.address,uplink.address,uplink.gateway"]
    for n in range(boxes):
        rows.append(f"edge-{n + 1:05d},192.168.50.2/24,10.20.{(n + 16) // 250}.{(n + 16) % 250 + 2}/16,10.20.0.1")
    return "\n".join(rows) + "\n"


def setup(work: Path) -> list[str]:
    """The bundle, its key and passphrase under work; the command's arguments but --devices/--out."""
    plan = apply_sets(base_plan(), ["uplink.address=10.20.0.15/16"])
    key = work / "fleet-key"
    K.generate_signing_key(key)
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    sign_key = load_pem_private_key(key.read_bytes(), None)
    bundle = work / "bundle.tar.gz"
    bundle.write_bytes(B.build_bundle(plan, PASSPHRASE, scrypt_n=SCRYPT_N, sign_key=sign_key))
    (work / "pass").write_text(PASSPHRASE + "\n")
    return [sys.executable, "-m", "installer", "bundle", "fleet", str(bundle), "--passphrase-file", str(work / "pass"),
            "--trust-key", str(key) + ".pub"]


def run(argv: list[str], source: Path) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds (user + system), peak RSS in KiB) of one run of argv in its own
    process (workers included), with the installer package of `source`."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    with tempfile.TemporaryFile() as errors:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=source, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's resources, its reaped workers' included
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            errors.seek(0)
            detail = errors.read().decode(errors="replace").strip()
            raise SystemExit(f"bundle fleet failed ({proc.returncode}): {detail}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def ansible_rollout() -> int:
    """The rollouts of tests/test_box_ansible.py (3 VMs over SSH from a controller namespace in the
    lab: all boxes at once, then one box per batch stopping at the cut-off one); their wall times
    are the lines the tests print."""
    print(f"Ansible rollout on the real-box lab; {os.cpu_count()} CPU(s), load average "
          f"{os.getloadavg()[0]:.1f} at the start", flush=True)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:xdist", "-p", "no:cacheprovider",
                           "tests/test_box_ansible.py"], cwd=REPO, capture_output=True, text=True, timeout=3600)
    figures = [ln for ln in done.stdout.splitlines() if "rollout" in ln and "wall time" in ln]
    print("\n".join(figures) if figures else done.stdout[-3000:] + done.stderr[-2000:])
    if done.returncode != 0:
        print(f"the rollout tests failed (exit {done.returncode}):\n{done.stdout[-3000:]}", file=sys.stderr)
    return 0 if done.returncode == 0 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2_000, 5_000])
    parser.add_argument("--keep", metavar="DIR", help="work here and keep the outputs (default: a temporary directory)")
    parser.add_argument("--source", metavar="DIR", type=Path, default=REPO,
                        help="run the installer package found in DIR (default: this checkout)")
    parser.add_argument("--ansible", action="store_true",
                        help="instead: the Ansible rollout's wall time on the real-box lab's VMs (root, qemu; "
                             "runs tests/test_box_ansible.py, about 10 minutes)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                        help="more arguments for bundle fleet (the rest of the line)")
    args = parser.parse_args()
    if args.ansible:
        return ansible_rollout()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        base = setup(work)
        print(f"bundle fleet from {args.source.resolve()}, a signed WiFi+proxy bundle with secrets; "
              f"{os.cpu_count()} CPU(s), load average "
              f"{os.getloadavg()[0]:.1f} at the start (other work on the machine slows the wall time)")
        print(f"{'boxes':>6} {'run':>6} {'wall':>8} {'per box':>9} {'CPU':>8} {'peak RSS':>9}")
        for n in args.sizes:
            csv_file, out = work / f"devices-{n}.csv", work / f"out-{n}"
            csv_file.write_text(devices_csv(n))
            shutil.rmtree(out, ignore_errors=True)
            argv = base + ["--devices", str(csv_file), "--out", str(out)] + args.extra
            for label in ("first", "rerun"):
                wall, cpu, rss = run(argv, args.source.resolve())
                print(f"{n:>6} {label:>6} {wall:>7.2f}s {wall / n * 1000:>7.2f}ms {cpu:>7.2f}s {rss / 1024:>7.1f}MB",
                      flush=True)
            if not args.keep:
                shutil.rmtree(out)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
