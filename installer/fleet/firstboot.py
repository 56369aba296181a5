"""Zero-touch first boot: a box sets itself up from a setup medium, with nobody at it.

The medium is a filesystem labelled EDGE-SETUP (a USB stick) or a folder `edge-setup/` on the
boot partition (/boot/firmware, /boot/efi, /boot). It holds one signed bundle (`*.bundle`) and
`devices.csv`, the devices list `bundle fleet` reads: a header of field paths, one row per box,
each cell a `--set HEADER=CELL` on the bundle's plan. The box is told apart by its MAC: the
row whose `ports.NAME.mac` cell is one of this box's permanent MACs is the box's own.

Then, as `edge-installer apply BUNDLE --set ... --keep-if-healthy` would (the same functions:
commands.apply.load_source, installer.writing.apply.apply_plan, commands.apply.keep_if_healthy): the
bundle must be signed by a key in /etc/edge-installer/trusted-keys, the row's values are applied
to the plan and validated, the addresses probed, the files written and applied, and the change
is kept only when the re-check failed nothing; otherwise every file is restored. The checks then
run as `check --json` runs them, and the report (JSON and text, named by host and time) is
written back to the medium, atomically, and kept under /var/lib/edge-installer/firstboot/.
The short result goes to tty1 and ttyS0. A stamp (/var/lib/edge-installer/firstboot.done)
records the bundle and devices list applied: the next boot with the same ones does nothing.

Every failure is one line, on the consoles and in the report; never a traceback. The rows'
values are never shown: a row may hold a secret (a WiFi passphrase column).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.text import ascii_safe
from installer.writing.writer import APPLIED_PLAN

if TYPE_CHECKING:
    from installer.planning.plan import Plan

LABEL = "EDGE-SETUP"
FOLDER = "edge-setup"
BOOT_DIRS = ("/boot/firmware", "/boot/efi", "/boot")
BY_LABEL = Path("/dev/disk/by-label")
DEVICES_FILE = "devices.csv"
BUNDLE_SUFFIX = ".bundle"
REPORTS_DIR = "reports"                    # on the medium
MOUNT_POINT = "/run/edge-installer/setup-medium"
STATE_DIR = "/var/lib/edge-installer"
STAMP = f"{STATE_DIR}/firstboot.done"
LOCAL_REPORTS = f"{STATE_DIR}/firstboot"
PLAN_FILE = APPLIED_PLAN                   # the wizard's "this box is set up" (installer.writing.writer)
CONSOLES = ("/dev/tty1", "/dev/ttyS0")
MAX_STAMP_BYTES = 64 << 10
COMMAND_TIMEOUT_S = 30.0
_MAC_COLUMN = re.compile(r"^ports\.[^.]+\.mac$")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class FirstbootError(Exception):
    """A first boot that cannot go on: one line saying what is wrong and what to do."""

    def __init__(self, line: str, code: int = 2):
        self.line = line
        self.code = code
        super().__init__(line)


@dataclass(frozen=True)
class Medium:
    """Where the setup files are: a block device to mount (kind "device") or a folder."""

    kind: str   # "device" | "folder"
    path: Path

    def describe(self) -> str:
        return f"{self.path} (labelled {LABEL})" if self.kind == "device" else f"the folder {self.path}"


@dataclass(frozen=True)
class Row:
    """The devices list's row for this box: its line, the MAC that matched, its --set items."""

    line: int
    mac: str
    sets: tuple[str, ...]
    hostname: str


@dataclass
class Outcome:
    """What a first boot did, for the consoles and the report."""

    outcome: str = "failed"          # kept | reverted | refused | staged | failed | done-before | no-medium
    error: str | None = None
    medium: str | None = None
    bundle_sha256: str | None = None
    devices_sha256: str | None = None
    macs: list[str] = field(default_factory=list)
    row: Row | None = None
    messages: list[str] = field(default_factory=list)
    recheck: list[str] = field(default_factory=list)   # the re-check's failures and warnings
    checks: dict[str, Any] | None = None  # check --json's document
    checks_text: str = ""
    report_paths: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    exit_code: int = 2

    def to_json(self) -> dict[str, Any]:
        return {
            "edge_installer_firstboot": 1,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "outcome": self.outcome,
            "error": self.error,
            "medium": self.medium,
            "bundle_sha256": self.bundle_sha256,
            "devices_sha256": self.devices_sha256,
            "box_macs": self.macs,
            "row": None if self.row is None else {"line": self.row.line, "mac": self.row.mac,
                                                  "hostname": self.row.hostname},
            "apply": self.messages,
            "recheck": self.recheck,
            "checks": self.checks,
        }


# ---------------------------------------------------------------------------------------
# The medium.

def _probe_label(device: Path) -> str | None:
    """The filesystem label blkid reads from the device (or image file) itself; None if none."""
    if shutil.which("blkid") is None:
        return None
    try:
        out = subprocess.run(["blkid", "-p", "-o", "value", "-s", "LABEL", str(device)], check=False,
                             capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def _blkid_devices(label: str) -> list[Path]:
    """Devices the system's blkid knows with this label (the box's own devices only)."""
    if shutil.which("blkid") is None:
        return []
    try:
        out = subprocess.run(["blkid", "-o", "device", "-t", f"LABEL={label}"], check=False, capture_output=True,
                             text=True, timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [Path(line.strip()) for line in out.stdout.splitlines() if line.strip()]


def find_medium(root: Path, *, label: str = LABEL, device: str | None = None,
                boot_dirs: Sequence[str] = BOOT_DIRS, by_label: Path | None = None,
                ask_blkid: bool | None = None) -> Medium | None:
    """The setup medium: `device` when given; else the one filesystem labelled `label` (udev's
    /dev/disk/by-label, then blkid; each candidate's label read from the device itself); else the
    first boot folder holding `edge-setup/`. None when there is none. Two labelled devices:
    FirstbootError (which one is meant cannot be told)."""
    live = Path(root).resolve() == Path("/")
    if device:
        path = Path(device)
        if not path.exists():
            raise FirstbootError(f"--device {device}: does not exist")
        return Medium("device", path)
    by_label = BY_LABEL if by_label is None else by_label
    candidates: list[Path] = []
    link = by_label / label
    if os.path.lexists(link):
        candidates.append(Path(os.path.realpath(link)))
    if live if ask_blkid is None else ask_blkid:
        candidates += [d for d in _blkid_devices(label) if Path(os.path.realpath(d)) not in candidates]
    found = []
    for c in candidates:
        if c.exists() and _probe_label(c) == label and c not in found:
            found.append(c)
    if len(found) > 1:
        raise FirstbootError(f"{len(found)} filesystems are labelled {label} ({', '.join(map(str, found))}): "
                             "keep one setup medium in the box")
    if found:
        return Medium("device", found[0])
    for d in boot_dirs:
        folder = Path(root) / d.lstrip("/") / FOLDER
        if folder.is_dir() and not folder.is_symlink():
            return Medium("folder", folder)
    return None


@contextmanager
def opened(medium: Medium, root: Path) -> Iterator[Path]:
    """The medium's files as a folder: a device is mounted read-write, nosuid, nodev, noexec
    under /run (on the box itself only) and unmounted afterwards."""
    if medium.kind == "folder":
        yield medium.path
        return
    if Path(root).resolve() != Path("/"):
        raise FirstbootError(f"{medium.path}: a device is mounted only on the box itself; under --root "
                             f"put the files in a folder {FOLDER}/ of a boot directory")
    mount_point = Path(MOUNT_POINT)
    mount_point.mkdir(parents=True, exist_ok=True, mode=0o700)
    done = _run(["mount", "-o", "rw,nosuid,nodev,noexec", str(medium.path), str(mount_point)])
    if done.returncode != 0:
        # A write-protected stick: mount it read-only (the report then stays on the box).
        ro = _run(["mount", "-o", "ro,nosuid,nodev,noexec", str(medium.path), str(mount_point)])
        if ro.returncode != 0:
            raise FirstbootError(f"{medium.path}: cannot be mounted ({_one_line(done.stderr or ro.stderr)})", 1)
    try:
        yield mount_point
    finally:
        _run(["sync"])
        _run(["umount", str(mount_point)])


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, check=False, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        return subprocess.CompletedProcess(argv, 127, "", str(e))


def _one_line(text: str) -> str:
    return ascii_safe(" ".join(text.split()) or "no reason given", 160)


def setup_files(folder: Path) -> tuple[Path, Path]:
    """(the bundle, devices.csv) in the medium's folder; FirstbootError when either is missing
    or the bundle is not the only one."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as e:
        raise FirstbootError(f"{folder}: cannot be read ({(e.strerror or str(e)).lower()})", 1) from None
    bundles = [n for n in names if n.lower().endswith(BUNDLE_SUFFIX) and not n.startswith(".")]
    devices = [n for n in names if n.lower() == DEVICES_FILE]
    if not bundles:
        raise FirstbootError(f"the setup medium holds no bundle (*{BUNDLE_SUFFIX}); put the signed bundle from "
                             "`edge-installer bundle export --sign-key` there")
    if len(bundles) > 1:
        raise FirstbootError(f"the setup medium holds {len(bundles)} bundles "
                             f"({', '.join(ascii_safe(b, 80) for b in bundles)}); keep one")
    if not devices:
        raise FirstbootError(f"the setup medium holds no {DEVICES_FILE}; put the devices list there (as for "
                             "`bundle fleet`, with a ports.NAME.mac column)")
    return folder / bundles[0], folder / devices[0]


# ---------------------------------------------------------------------------------------
# The devices list: this box's row.

def normal_mac(text: str) -> str:
    """A MAC as the plan writes it (lower case, colons); the text unchanged when it is not one."""
    t = text.strip().lower().replace("-", ":")
    return t if re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", t) else text.strip()


def box_macs(root: Path) -> list[str]:
    """This box's permanent MACs (installer.box.ports: ethtool's permanent address, else the
    current one), every interface but the loopback."""
    from installer.box import ports

    sys_class_net = Path(root) / "sys/class/net" if Path(root).resolve() != Path("/") else ports.SYS_CLASS_NET
    return sorted({f.mac for f in ports.inventory(sys_class_net) if f.mac})


def find_row(text: str, macs: Sequence[str], source: str = DEVICES_FILE) -> tuple[Row, str]:
    """The one row whose ports.NAME.mac cell is one of `macs`, and the devices list reduced to
    its header and that row (at the row's own line, for read_devices' messages).
    FirstbootError when the list has no MAC column, no row or two rows for this box."""
    first = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first and "," not in first else ","  # as installer.fleet.build reads it
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise FirstbootError(f"{source}: is empty; the first line names the fields, e.g. "
                             "hostname,ports.eno1.mac,uplink.address") from None
    except csv.Error as e:
        raise FirstbootError(f"{source} line 1: {e}") from None
    columns = [i for i, h in enumerate(header) if _MAC_COLUMN.match(h)]
    if not columns:
        raise FirstbootError(f"{source}: has no MAC column; name one ports.NAME.mac (e.g. ports.eno1.mac) so "
                             "each box finds its own row")
    wanted = {m.lower() for m in macs}
    hits: list[tuple[int, str, list[str]]] = []
    try:
        for row in reader:
            for i in columns:
                if i < len(row) and normal_mac(row[i]).lower() in wanted:
                    hits.append((reader.line_num, normal_mac(row[i]).lower(), row))
                    break
    except csv.Error as e:
        raise FirstbootError(f"{source} line {reader.line_num}: {e}") from None
    if not hits:
        raise FirstbootError(f"{source}: no row for this box (its MACs: {', '.join(macs) or 'none found'}); "
                             f"add a line with one of them in {', '.join(header[i] for i in columns)}")
    if len(hits) > 1:
        lines = ", ".join(str(h[0]) for h in hits)
        raise FirstbootError(f"{source}: lines {lines} all name this box (MAC {hits[0][1]}); keep one")
    line, mac, row = hits[0]
    out = io.StringIO()
    w = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    w.writerow(header)
    out.write("\n" * max(0, line - 2))  # blank lines: read_devices skips them, its line numbers stay true
    w.writerow(row)
    hostname = row[header.index("hostname")].strip() if "hostname" in header and len(row) == len(header) else ""
    return Row(line, mac, (), hostname), out.getvalue()


# ---------------------------------------------------------------------------------------
# The run.

@dataclass
class Options:
    root: Path = Path("/")
    device: str | None = None
    label: str = LABEL
    boot_dirs: Sequence[str] = BOOT_DIRS
    by_label: Path | None = None
    wait_s: float = 0.0
    check_timeout: float = 3.0
    trust_keys: Sequence[str] = ()
    force: bool = False                        # run even when the stamp says these files were applied


def run(opts: Options) -> Outcome:
    """One first boot; never raises for a problem of the medium, the files or the box."""
    out = Outcome()
    root = Path(opts.root)
    try:
        out.macs = box_macs(root)
        medium = _wait_for_medium(opts)
        if medium is None:
            out.outcome, out.exit_code = "no-medium", 0
            out.error = (f"no setup medium (a filesystem labelled {opts.label}, or a folder {FOLDER}/ in "
                         f"{', '.join(opts.boot_dirs)}): nothing to do")
            return out
        out.medium = medium.describe()
        with opened(medium, root) as folder:
            try:
                _from_folder(opts, folder, out)
            except FirstbootError as e:
                out.error, out.exit_code = e.line, e.code
            _write_reports(opts, folder, out)
    except FirstbootError as e:
        out.error, out.exit_code = e.line, e.code
        if out.outcome not in ("kept", "reverted", "refused", "staged"):
            out.outcome = "failed"
        _write_reports(opts, None, out)
    except Exception as e:  # the consoles and the report still say what happened, in one line
        if os.environ.get("EDGE_INSTALLER_DEBUG"):
            raise
        from installer.writing.writer import WriteError

        why = f"cannot write {e}" if isinstance(e, WriteError) else (
            f"{e.filename}: {e.strerror}" if isinstance(e, OSError) and e.filename else
            f"internal error: {type(e).__name__}: {e} (run again with EDGE_INSTALLER_DEBUG=1 for details)")
        out.error, out.exit_code = why, 1 if isinstance(e, OSError) else 70
        if out.outcome not in ("kept", "reverted", "refused", "staged"):
            out.outcome = "failed"
        _write_reports(opts, None, out)
    return out


def _wait_for_medium(opts: Options) -> Medium | None:
    deadline = time.monotonic() + opts.wait_s
    while True:
        medium = find_medium(opts.root, label=opts.label, device=opts.device, boot_dirs=opts.boot_dirs,
                             by_label=opts.by_label)
        if medium is not None or time.monotonic() >= deadline:
            return medium
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def _from_folder(opts: Options, folder: Path, out: Outcome) -> None:
    from installer.fleet.build import MAX_CSV_BYTES
    from installer.fleet.bundle import MAX_FILE_BYTES
    from installer.planning.yamlfile import SmallFileError, read_small

    bundle_path, devices_path = setup_files(folder)
    try:
        bundle_bytes = read_small(bundle_path, MAX_FILE_BYTES, bundle_path.name, "a bundle is smaller")
        devices_bytes = read_small(devices_path, MAX_CSV_BYTES, devices_path.name, "split the fleet into several media")
    except SmallFileError as e:
        raise FirstbootError(str(e)) from None
    out.bundle_sha256 = hashlib.sha256(bundle_bytes).hexdigest()
    out.devices_sha256 = hashlib.sha256(devices_bytes).hexdigest()
    stamp = read_stamp(opts.root)
    if (not opts.force and stamp.get("bundle_sha256") == out.bundle_sha256
            and stamp.get("devices_sha256") == out.devices_sha256):
        out.outcome, out.exit_code = "done-before", 0
        out.error = (f"this bundle and devices list were applied on {stamp.get('date', 'an earlier boot')} "
                     f"({stamp.get('outcome', '?')}): nothing to do; put a newer bundle on the medium to set up again")
        return
    try:
        text = devices_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FirstbootError(f"{DEVICES_FILE}: is not UTF-8 text (byte {e.start}); save it as CSV UTF-8") from None
    _apply(opts, bundle_bytes, text, out)


def _apply(opts: Options, bundle_bytes: bytes, text: str, out: Outcome) -> None:
    """Check the bundle's signature, find this box's row, apply as `apply --keep-if-healthy`."""
    import argparse

    from installer.box.system import System
    from installer.commands import UsageError
    from installer.commands.apply import (
        Interrupted,
        _signals_interrupt,
        keep_if_healthy,
        load_source,
    )
    from installer.commands.bundle import check_trust
    from installer.commands.render import detect_target
    from installer.fleet.build import FleetError, read_devices
    from installer.fleet.bundle import BundleError, loads_bundle
    from installer.planning.validate import default_context
    from installer.writing.apply import apply_plan

    root = Path(opts.root)
    staged = root.resolve() != Path("/")
    root_arg = None if not staged else str(root)
    with _private_copy(bundle_bytes) as bundle_file:
        # Trust first: nothing of an untrusted bundle is used, its devices list included.
        try:
            loaded = loads_bundle(bundle_bytes, None)
            check_trust(loaded, "the bundle", root_arg, list(opts.trust_keys), False)
        except BundleError as e:
            raise FirstbootError(f"the bundle: refused: {e}") from None
        except UsageError as e:
            # firstboot has no --allow-unsigned: an untrusted bundle is never used headless.
            raise FirstbootError(" ".join(e.lines).split("; or give --allow-unsigned")[0]) from None
        row, reduced = find_row(text, out.macs)
        target = detect_target(root, argparse.Namespace())  # no command line: no overrides
        ctx = default_context(target=target)
        try:
            device = read_devices(reduced, loaded.plan, missing_secrets=loaded.missing_secrets,
                                  source=DEVICES_FILE, ctx=ctx)[0]
        except FleetError as e:
            raise FirstbootError("; ".join(e.lines)) from None
        out.row = row = Row(row.line, row.mac, device.sets, device.hostname)
        try:
            plan = load_source(str(bundle_file), None, list(device.sets), ctx, root=root_arg,
                               trust_keys=list(opts.trust_keys))
        except UsageError as e:
            raise FirstbootError(" ".join(e.lines)) from None
    say(f"{ascii_safe(row.hostname, 80)}: line {row.line} of {DEVICES_FILE} (MAC {row.mac}); applying, kept only "
        "when the re-check fails nothing")
    system = System(root)
    try:
        with _signals_interrupt():  # systemd's SIGTERM: apply_plan restores the old files first
            result = apply_plan(plan, system, target, confirm=keep_if_healthy, progress=say,
                                check_timeout=opts.check_timeout)
    except Interrupted as e:
        out.outcome, out.exit_code = "reverted", 128 + e.signum
        raise FirstbootError(f"{e.name}: stopped before the change was kept; the previous configuration "
                             "was restored", 128 + e.signum) from None
    out.messages = list(result.messages)
    for m in result.messages:
        say(m)
    failed = []
    if result.recheck is not None:  # why a change was not kept, as the re-check saw it
        from installer.checks.report import line as result_line

        out.recheck = [result_line(r) for r in result.recheck.results if r.status in ("fail", "warn")]
        failed = [f"{r.id} {r.target}: {r.evidence}" for r in result.recheck.results if r.status == "fail"]
    if result.refused:
        out.outcome, out.exit_code = "refused", 1
        out.error = f"nothing was applied: {result.refused}"
    elif result.rolled_back:
        out.outcome, out.exit_code = "reverted", 1
        why = f" ({ascii_safe(failed[0], 80)}{', ...' if len(failed) > 1 else ''})" if failed else ""
        out.error = f"the re-check failed{why}: the previous configuration was restored"
    elif not system.live:
        out.outcome, out.exit_code = "staged", 0
    else:
        out.outcome, out.exit_code = "kept", 0
    if out.outcome == "kept":
        _save_plan(root, plan)
    write_stamp(root, out)
    if system.live:
        _run_checks(plan, opts, out, expect_applied=out.outcome == "kept")


@contextmanager
def _private_copy(data: bytes) -> Iterator[Path]:
    """The bundle's bytes in a 0600 file of our own: what apply reads is what was checked,
    whatever the medium does meanwhile."""
    fd, name = tempfile.mkstemp(prefix="edge-setup-", suffix=BUNDLE_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield Path(name)
    finally:
        os.unlink(name)


def _run_checks(plan: Plan, opts: Options, out: Outcome, *, expect_applied: bool) -> None:
    """The live checks, as `check --json` runs them."""
    from installer.box.identity import identify
    from installer.checks import findings
    from installer.checks import report as reports
    from installer.checks.planner import build_context, plan_checks, remediation
    from installer.checks.runner import run_checks_sync

    if plan.tls.extra_ca_file and not Path(plan.tls.extra_ca_file).is_file():
        out.messages.append(f"checks not run: tls.extra_ca_file {plan.tls.extra_ca_file} does not exist on this box")
        return
    ctx = build_context(plan, timeout=opts.check_timeout)
    try:
        ctx.trust()
    except (OSError, ValueError) as e:
        out.messages.append(f"checks not run: tls.extra_ca_file {plan.tls.extra_ca_file} is not a PEM file ({e})")
        return
    say("running the checks")
    result = run_checks_sync(plan_checks(plan, ctx, expect_applied=expect_applied), ctx,
                             remediation=remediation(plan, ctx.catalog))
    out.checks = findings.document(result, box=identify(plan).to_json())
    out.checks_text = "\n".join(reports.line(r) for r in result.results) + "\n" + reports.text_summary(result)


def _save_plan(root: Path, plan: Plan) -> None:
    """The plan the box was set up with, where the wizard's Done step saves it (mode 0600): the
    setup wizard units then stand down at boot, and `check --plan` finds it."""
    from installer.writing.writer import WriteError, save_applied_plan

    try:
        save_applied_plan(root, plan, "zero-touch first boot")
    except WriteError as e:
        say(f"WARNING: the plan was not saved: {e}")


# ---------------------------------------------------------------------------------------
# Stamp, reports, consoles.

def read_stamp(root: Path) -> dict[str, Any]:
    from installer.planning.yamlfile import read_regular
    from installer.writing.writer import box_path

    try:
        data = json.loads(read_regular(box_path(Path(root), STAMP), MAX_STAMP_BYTES).decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_stamp(root: Path, out: Outcome) -> None:
    from installer.writing.writer import WriteError, atomic_write, box_path

    data = {"bundle_sha256": out.bundle_sha256, "devices_sha256": out.devices_sha256, "outcome": out.outcome,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(out.started))}
    try:
        atomic_write(box_path(Path(root), STAMP), (json.dumps(data, indent=2) + "\n").encode(), 0o644)
    except WriteError as e:
        say(f"WARNING: {e}: the next boot runs the first boot again")


def report_text(out: Outcome) -> str:
    """The text report: the short result, then every check and what must change."""
    lines = summary_lines(out)
    lines += [f"medium: {out.medium or 'none'}", f"bundle sha256: {out.bundle_sha256 or '-'}",
              f"devices.csv sha256: {out.devices_sha256 or '-'}", f"this box's MACs: {', '.join(out.macs) or 'none'}"]
    if out.messages:
        lines += ["", "apply:"] + [f"  {m}" for m in out.messages]
    if out.recheck:
        lines += ["", "re-check after applying (failures and warnings):"] + [f"  {m}" for m in out.recheck]
    if out.checks_text:
        lines += ["", "checks:", out.checks_text]
    return "\n".join(_ascii(line) for line in lines) + "\n"


def summary_lines(out: Outcome) -> list[str]:
    """The few lines the consoles show: the box, the row used, what happened, the checks' counts
    and their top causes; or the one line saying what is wrong."""
    who = ascii_safe(out.row.hostname, 80) if out.row else (out.macs[0] if out.macs else "this box")
    lines = [f"edge-installer first boot: {who}: {out.outcome.upper()}"]
    if out.row:
        lines.append(f"  row: {DEVICES_FILE} line {out.row.line} (MAC {out.row.mac})")
    if out.error:
        lines.append(f"  {out.error}")
    if out.checks:
        s = out.checks.get("summary", {})
        lines.append(f"  checks: {s.get('pass', 0)} pass, {s.get('warn', 0)} warn, {s.get('fail', 0)} fail, "
                     f"{s.get('skip', 0)} skipped")
        for f in (out.checks.get("findings") or [])[:3]:
            lines.append(f"  {str(f.get('status', '')).upper()}: {f.get('title', '')}")
    if out.report_paths:
        lines.append(f"  report: {out.report_paths[0]}")
    return [_ascii(line) for line in lines]


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def report_name(out: Outcome) -> str:
    who = out.row.hostname if out.row and out.row.hostname else (out.macs[0] if out.macs else "box")
    who = _SAFE_NAME.sub("_", who.replace(":", "-"))[:64] or "box"
    return f"{who}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(out.started))}"


def _write_reports(opts: Options, folder: Path | None, out: Outcome) -> None:
    """The report (JSON and text) on the box, under /var/lib/edge-installer/firstboot/, and on
    the medium under reports/; a medium that cannot take it is said, the box's copy kept."""
    from installer.writing.writer import WriteError, atomic_write, box_path

    if out.outcome in ("no-medium", "done-before"):
        return
    name = report_name(out)
    if folder is not None:
        target = folder / REPORTS_DIR
        try:
            _write_on_medium(target, name, out)
            out.report_paths.append(f"{REPORTS_DIR}/{name}.txt on the setup medium")
        except OSError as e:
            why = "read-only" if e.errno == 30 else "full" if e.errno == 28 else (e.strerror or str(e)).lower()
            out.messages.append(f"the report could not be written to the setup medium ({why}); it is kept "
                                f"under {LOCAL_REPORTS}")
    local = box_path(Path(opts.root), LOCAL_REPORTS)
    try:
        atomic_write(local / f"{name}.json", (json.dumps(out.to_json(), indent=2) + "\n").encode(), 0o600)
        atomic_write(local / f"{name}.txt", report_text(out).encode(), 0o600)
        out.report_paths.append(f"{LOCAL_REPORTS}/{name}.txt")
    except WriteError as e:
        out.messages.append(f"the report could not be kept on the box: {e}")


def _write_on_medium(target: Path, name: str, out: Outcome) -> None:
    """Both files, each written whole under a temporary name and renamed (FAT has no modes)."""
    target.mkdir(exist_ok=True)
    for suffix, data in ((".json", (json.dumps(out.to_json(), indent=2) + "\n").encode()),
                         (".txt", None)):
        if data is None:  # the text last: it names where the reports went
            data = report_text(out).encode()
        tmp = target / f".{name}{suffix}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target / f"{name}{suffix}")
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    dfd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def say(line: str) -> None:
    """A progress line for the journal (stdout)."""
    try:
        print(line, flush=True)
    except OSError:
        pass


def show(out: Outcome, consoles: Sequence[str]) -> list[str]:
    """The short result on stdout and on each console (ttys that cannot be opened are passed
    over); the consoles written to."""
    text = "\n".join(summary_lines(out)) + "\n"
    say(text.rstrip("\n"))
    shown = []
    for path in consoles:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue
        try:
            data = ("\r\n" + text.replace("\n", "\r\n")).encode("ascii", "replace")
            if os.isatty(fd):
                os.write(fd, data)
            else:
                os.write(fd, text.encode("ascii", "replace"))
            shown.append(path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return shown


def default_consoles(root: Path) -> tuple[str, ...]:
    return CONSOLES if Path(root).resolve() == Path("/") else ()
