"""edge-installer on a booted box, installed as the README says ("Installing on a box"), and
what tests read back from the box: the state in effect, not the bytes on disk.

    pyz = zipapp()                         # dist/edge-installer.pyz, built once per session
    install(box, pyz)                      # /usr/local/bin/edge-installer + the boot unit
    box.write_file("/root/plan.yaml", yaml.safe_dump(plan_for(box.lab, ...)))
    state(box)                             # addresses, routes, resolvers, NTP, host name
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from installer.vendors.profiles import load_catalog
from tests.lab import topology as T

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "packaging" / "systemd"
BIN = "/usr/local/bin/edge-installer"
PLAN = "/root/plan.yaml"
CA = "/root/lab-ca.pem"
# Files the network configuration lives in: compared byte for byte before and after a revert.
CONFIG_PATHS = ("/etc/netplan", "/etc/NetworkManager", "/etc/systemd", "/etc/chrony", "/etc/sysctl.d",
                "/etc/hostname", "/etc/edge-installer", "/etc/resolv.conf")

_built: dict[str, Path] = {}


def zipapp() -> Path:
    """dist/edge-installer.pyz, built (or found up to date) by packaging/build-zipapp, once."""
    if "pyz" not in _built:
        done = subprocess.run([sys.executable, str(REPO / "packaging" / "build-zipapp")],
                              capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"packaging/build-zipapp failed:\n{done.stdout}\n{done.stderr}")
        _built["pyz"] = (REPO / "dist" / "edge-installer.pyz").resolve()
    return _built["pyz"]


def install(box, pyz: Path, *, zerotouch: bool = False, timeout: float = 120) -> None:
    """The single file as /usr/local/bin/edge-installer and the boot-time recover unit, enabled;
    the lab's public CA for the plans' tls.extra_ca_file. Nothing else: the box's own python3.
    zerotouch: also the opt-in first-boot unit from a setup medium (README, "Zero-touch")."""
    units = ["edge-installer-recover.service"] + (["edge-installer-zerotouch.service"] if zerotouch else [])
    box.write_file(BIN, pyz.read_bytes(), 0o755)
    for unit in units:
        box.write_file(f"/etc/systemd/system/{unit}", (UNITS / unit).read_bytes(), 0o644)
    box.write_file(CA, box.lab.public_ca_file.read_bytes(), 0o644)
    box.sh(f"systemctl daemon-reload; systemctl enable --quiet {' '.join(units)}; "
           f"{BIN} --help >/dev/null", timeout=timeout)  # unpacks once, as root, into /var/cache


def vendor_name() -> str:
    """A vendor host the lab's DNS answers with its cloud (the MachineMetrics API)."""
    records = T.dns_records(load_catalog())
    return next(n for n, a in records.items() if a == T.CLOUD and "machinemetrics" in n and "gov" not in n)


def plan_for(lab, *, renderer: str = "netplan", uplink: str = "static", dns: str = "custom",
             ntp: str = "custom", hostname: str = "edge-01", **changes: Any) -> dict[str, Any]:
    """A plan for a box on `lab`: the isolated topology, the lab's plant machines."""
    up: dict[str, Any] = {"interface": T.UPLINK_IF, "ipv4": uplink}
    if uplink == "static":
        up.update(address=f"{T.EDGE_UPLINK}/{T.PREFIX}", gateway=T.GATEWAY)
    data = lab.plan(renderer=renderer, uplink=up, hostname=hostname,
                    dns={"mode": dns, "servers": [T.DNS] if dns == "custom" else []},
                    ntp={"mode": ntp, "servers": [T.NTP] if ntp == "custom" else []},
                    tls={"extra_ca_file": CA}, **changes)
    return data


def put_plan(box, plan: dict[str, Any], path: str = PLAN) -> str:
    box.write_file(path, yaml.safe_dump(plan, sort_keys=False), 0o600)
    return path


def apply(box, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`edge-installer apply ARGS` in the guest, stdin closed; its result."""
    return box.exec(["sh", "-c", f"exec {BIN} apply {' '.join(map(shlex.quote, args))} </dev/null"],
                    timeout=timeout)


APPLY_PID = "/run/edge-installer-test-apply.pid"


def start_apply(box, *args: str, log: str = "/root/apply.log") -> None:
    """`edge-installer apply ARGS` left running in the guest (its own session), output to log,
    its pid in APPLY_PID."""
    box.sh(f"rm -f {log} {APPLY_PID}; setsid -f sh -c 'echo $$ >{APPLY_PID}; exec {BIN} apply "
           f"{' '.join(map(shlex.quote, args))} </dev/null >{log} 2>&1'")


def wait_for(box, path: str, text: str, timeout: float = 240) -> str:
    """The guest file's text once it contains `text`."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = box.exec(["cat", path]).stdout
        if text in seen:
            return seen
        time.sleep(1)
    raise AssertionError(f"{path} never said {text!r} in {timeout:g} s:\n{seen}")


def config_files(box) -> dict[str, str]:
    """path -> sha256 (or '-> target' for a symlink) of every file of CONFIG_PATHS."""
    out = box.sh("for p in " + " ".join(CONFIG_PATHS) + "; do [ -e \"$p\" ] || [ -L \"$p\" ] || continue; "
                 "find \"$p\" -type f -exec sha256sum {} +; find \"$p\" -type l -printf '%l  %p\\n'; done")
    found = {}
    for line in out.splitlines():
        digest, _, path = line.partition("  ")
        found[path] = digest
    return found


def state(box) -> dict[str, Any]:
    """What is in effect on the box: addresses, default routes, resolvers, NTP servers, host name."""
    addrs = json.loads(box.exec(["ip", "-j", "-4", "addr", "show"], check=True).stdout)
    routes = json.loads(box.exec(["ip", "-j", "-4", "route", "show", "default"], check=True).stdout)
    resolved = box.exec(["systemctl", "is-active", "--quiet", "systemd-resolved"]).returncode == 0
    if resolved:
        dns_text = box.exec(["resolvectl", "dns"]).stdout
    else:
        dns_text = box.exec(["cat", "/etc/resolv.conf"]).stdout
    if box.exec(["systemctl", "is-active", "--quiet", "chrony"]).returncode == 0:
        ntp = box.exec(["chronyc", "-n", "sources"]).stdout
    else:
        ntp = box.exec(["timedatectl", "show-timesync", "-p", "SystemNTPServers", "-p", "LinkNTPServers",
                        "-p", "ServerName"]).stdout
    return {
        "addresses": {a["ifname"]: sorted(f"{i['local']}/{i['prefixlen']}" for i in a.get("addr_info", []))
                      for a in addrs if a["ifname"] != "lo"},
        "default_routes": sorted((r.get("gateway", ""), r.get("dev", "")) for r in routes),
        "dns": dns_text,
        "ntp": ntp,
        "hostname": box.exec(["hostname"]).stdout.strip(),
    }


def reaches(box, host: str, port: int, timeout: float = 5) -> str:
    """'ok' when the box opens TCP to host:port (a name goes through the box's own resolver),
    else the error."""
    code = ("import socket,sys\n"
            "try:\n"
            f"    socket.create_connection(({host!r}, {port}), timeout={timeout}).close(); print('ok')\n"
            "except Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    return box.exec(["python3", "-c", code], timeout=timeout * 3 + 10).stdout.strip()


def wait_until(predicate, timeout: float, what: str, every: float = 2.0):
    """predicate()'s first truthy value within timeout, else AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:g} s (last: {last!r})")


def timestamp(box, unit: str, prop: str = "ActiveEnterTimestampMonotonic") -> int:
    """A unit's timestamp property, in the box's monotonic microseconds (0: never)."""
    out = box.exec(["systemctl", "show", "-p", prop, "--value", unit]).stdout.strip()
    return int(out or 0)
