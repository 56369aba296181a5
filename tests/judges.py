"""The real tools as judges of rendered files: netplan's generator and libnm's keyfile reader.

    from tests.judges import netplan_generate, nm_verify, require_tools

    require_tools()                       # skip (outside CI) or fail (CI set) without the tools
    ok, stderr = netplan_generate(root)   # netplan generate --root-dir root
    results = nm_verify([path, ...])      # {path: NmResult(error, warnings, settings)}
    assert results[path].ok, results[path]
    assert results[path].settings["ipv4.never-default"] is True

libnm runs in Debian's /usr/bin/python3 (python3-gi), which the project's venv cannot import,
so `nm_verify` judges every file in one subprocess of `tests/nm_verify.py`.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SYSTEM_PYTHON = "/usr/bin/python3"
HELPER = Path(__file__).with_name("nm_verify.py")
_SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
TIMEOUT_S = 60


def _netplan() -> str | None:
    return shutil.which("netplan", path=_SBIN_PATH)


@functools.lru_cache(maxsize=1)
def have_tools() -> str | None:
    """None when netplan and /usr/bin/python3 with libnm (gi NM 1.0) are here, else the reason."""
    if _netplan() is None:
        return "netplan not found (Debian package netplan.io)"
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} not found (Debian package python3)"
    probe = "import gi; gi.require_version('NM', '1.0'); from gi.repository import NM"
    try:
        proc = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{SYSTEM_PYTHON} cannot run: {e}"
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return f"{SYSTEM_PYTHON} cannot import libnm (Debian packages python3-gi, gir1.2-nm-1.0): {last[0]}"
    return None


def require_tools() -> None:
    """Skip the calling test without the tools, loudly; as root or in CI (env CI set), fail."""
    import pytest

    reason = have_tools()
    if reason is None:
        return
    if os.environ.get("CI") or os.geteuid() == 0:
        # As root the test command installs them: missing tools are then a failure, never a skip.
        pytest.fail(f"the real tools are required here: {reason}", pytrace=False)
    pytest.skip(reason)


# `netplan generate --root-dir R` is, outside a snap, exactly `exec <generator> --root-dir R`
# (netplan's cli/commands/generate.py); calling the generator directly is the same judge
# without netplan's 0.25 s Python start-up, which matters across hundreds of plans.
_GENERATORS = ("/usr/libexec/netplan/generate", "/usr/lib/netplan/generate")


def netplan_generate(root: Path) -> tuple[bool, str]:
    """Run `netplan generate --root-dir ROOT`: (accepted with no warning, stderr).

    Accepted with no warning means exit status 0 and nothing at all on stderr. Everything
    netplan writes stays under ROOT (ROOT/run/systemd/network, ROOT/run/NetworkManager/...).
    """
    generator = next((g for g in _GENERATORS if os.access(g, os.X_OK)), None)
    netplan = _netplan()
    if generator:
        argv = [generator, "--root-dir", str(root)]
    elif netplan:
        argv = [netplan, "generate", "--root-dir", str(root)]
    else:
        return False, "netplan not found (Debian package netplan.io)"
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    return proc.returncode == 0 and proc.stderr == "", proc.stderr


def judge_trees(roots: Iterable[Path]) -> list[str]:
    """Judge rendered trees as the box would: netplan generates from /etc/netplan, libnm reads
    our keyfiles as written and netplan's as the daemon loads them. Returns the failures."""
    failures: list[str] = []
    ours: list[Path] = []
    netplans: list[Path] = []
    for root in roots:
        if (root / "etc/netplan").is_dir():
            ok, stderr = netplan_generate(root)
            if not ok:
                failures.append(f"{root}: netplan generate: {stderr.strip()}")
            netplans += sorted(root.glob("run/NetworkManager/system-connections/*.nmconnection"))
        ours += sorted(root.glob("etc/NetworkManager/system-connections/*.nmconnection"))
    for paths, daemon in ((ours, False), (netplans, True)):
        if paths:
            for path, result in nm_verify(paths, add_uuid=daemon, normalize_first=daemon).items():
                if not result.ok:
                    failures.append(f"{path}: libnm: {result.error or ''} {'; '.join(result.warnings)}")
    return failures


@dataclass(frozen=True)
class NmResult:
    """What libnm made of one keyfile.

    `error`: None when `NM.keyfile_read()`, `verify()` and `verify_secrets()` all passed,
    else libnm's message. `warnings`: what the keyfile reader warned about (values it could
    not interpret and dropped) plus keys libnm does not know and silently ignores (e.g.
    `controller=` on NetworkManager 1.42). `settings`: every property of every setting
    present, as libnm read it after `normalize()` (what the daemon would use), keyed
    "group.property" with the keyfile's group names (`connection.id`, `ipv4.addresses`,
    `wifi.ssid`, `wifi-security.psk`, `gsm.apn`, `bridge.stp`, ...). Values are plain:
    str/int/bool/None, lists (`ipv4.addresses` as ["192.168.50.2/24"], `ipv4.dns` as
    ["8.8.8.8"]), bytes for byte arrays (`wifi.ssid`), ints for enums and flags.
    """

    error: str | None
    warnings: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Accepted, verified, and nothing dropped or ignored on the way."""
        return self.error is None and not self.warnings


def nm_verify(paths: Iterable[Path | str], add_uuid: bool = False,
              normalize_first: bool = False) -> dict[Path, NmResult]:
    """Judge keyfiles with libnm, all in one subprocess: {Path(path): NmResult}.

    `add_uuid` gives a keyfile without `connection.uuid` one first, as NetworkManager does
    when it loads one (netplan's keyfiles carry none). `normalize_first` judges a file as the
    daemon loads it: normalize, then verify (for netplan's keyfiles; ours must verify as
    written, without normalization). Relative file references in a keyfile
    (certificates) resolve against the keyfile's own directory.
    """
    paths = [Path(p) for p in paths]
    request = {"paths": [str(p.resolve()) for p in paths], "add_uuid": add_uuid,
               "normalize_first": normalize_first}
    proc = subprocess.run([SYSTEM_PYTHON, str(HELPER)], input=json.dumps(request), capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"{HELPER.name} failed (exit {proc.returncode}):\n{proc.stderr}")
    raw = json.loads(proc.stdout)
    return {p: _result(raw[key]) for p, key in zip(paths, request["paths"], strict=True)}


def _result(raw: dict[str, Any]) -> NmResult:
    settings = {k: _unplain(v) for k, v in raw["settings"].items()}
    return NmResult(error=raw["error"], warnings=tuple(raw["warnings"]), settings=settings)


def _unplain(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"bytes"}:
        return bytes.fromhex(value["bytes"])
    if isinstance(value, list):
        return [_unplain(v) for v in value]
    return value


def systemd_verify_root(tmp_path: Path, commands: Iterable[str] = ()) -> Path:
    """A root for `systemd-analyze verify --root` (systemd_analyze): the system's units, the
    given commands copied in, and the installer where README installs it (verify checks that
    every command a unit runs exists and is executable). Units go in ROOT/etc/systemd/system."""
    root = tmp_path / "root"
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for d in ("usr/bin", "usr/sbin", "usr/local/bin", "etc/systemd/system"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for link, target in (("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")):
        (root / link).symlink_to(target)
    for command in commands:
        shutil.copy(shutil.which(command, path="/usr/bin:/bin"), root / "usr/bin" / command)
    (root / "usr/local/bin/edge-installer").write_text("#!/bin/sh\n")
    os.chmod(root / "usr/local/bin/edge-installer", 0o755)
    return root


def systemd_analyze(root: Path, *names: str) -> subprocess.CompletedProcess:
    """systemd's own judgement of units ROOT/etc/systemd/system/NAME (`systemd-analyze verify`)."""
    return subprocess.run(["systemd-analyze", "verify", f"--root={root}", "--man=no", "--generators=no",
                           *(str(root / "etc/systemd/system" / n) for n in names)],
                          capture_output=True, text=True, timeout=120)
