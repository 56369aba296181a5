"""Which network stack a box (or a staged tree) has: netplan and its version,
NetworkManager and systemd-networkd (installed, running), cloud-init.

Only reads: the package database, /run and /proc. Under a root other than "/" nothing is
running by definition, so only files under that root are read. Never raises.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import EllipsisType
from typing import TypedDict

# netplan is on disk but no package database knows its version: renderers take the
# conservative (0.106) branch for anything that depends on it.
NETPLAN_VERSION_UNKNOWN: tuple[int, ...] = (0,)

# subprocess.run, or a test's stand-in: called as run(argv, capture_output=True, text=True, ...).
Run = Callable[..., "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class Stack:
    """Which network configuration software is on the box, and which one is running."""

    netplan_version: tuple[int, ...] | None  # e.g. (0, 106); None when netplan is absent
    networkmanager_installed: bool
    networkmanager_running: bool
    networkd_running: bool
    cloud_init_installed: bool
    # What else the box runs, for rendering what it needs and refusing what it cannot run.
    # None: not known (a staged tree without a package database, or not looked at).
    live: bool = False                  # the running box itself (root "/")
    booted: bool = False                # ... and systemd is PID 1 there (sd_booted())
    packages_known: bool = False        # a package database was read
    resolved: bool | None = None        # systemd-resolved in use
    time_daemon: str | None = None      # "chrony" | "timesyncd" | "none"
    wpa_supplicant: bool | None = None  # package wpasupplicant
    modemmanager: bool | None = None    # package modemmanager
    ifupdown: bool | None = None        # package ifupdown

    @property
    def facts_apply(self) -> bool:
        """What this Stack says about packages describes an edge box: a staged tree with a
        package database, or the running box booted with systemd (a container or a build
        machine running edge-installer is not the box its plans are for)."""
        return self.packages_known and (self.booted or not self.live)

    @property
    def in_charge(self) -> str:
        """The daemon that owns the links now: "networkmanager", "networkd" or "unknown".

        When both run, NetworkManager wins: it manages every device it is not told to leave
        alone, and WiFi and modems need it anyway.
        """
        if self.networkmanager_running:
            return "networkmanager"
        if self.networkd_running:
            return "networkd"
        return "unknown"

    def describe(self) -> str:
        """One ASCII line for a technician, e.g. "NetworkManager in charge; netplan 0.106"."""
        parts = []
        if self.in_charge == "networkmanager":
            parts.append("NetworkManager in charge"
                         + (" (systemd-networkd also running)" if self.networkd_running else ""))
        elif self.in_charge == "networkd":
            parts.append("systemd-networkd in charge"
                         + ("; NetworkManager installed, not running"
                            if self.networkmanager_installed else ""))
        else:
            parts.append("no network daemon seen running"
                         + (" (NetworkManager installed)" if self.networkmanager_installed else ""))
        if self.netplan_version is None:
            parts.append("no netplan")
        elif self.netplan_version == NETPLAN_VERSION_UNKNOWN:
            parts.append("netplan (version unknown)")
        else:
            parts.append("netplan " + _dotted(self.netplan_version))
        if self.resolved is not None:
            parts.append("systemd-resolved" if self.resolved else "no systemd-resolved")
        if self.time_daemon is not None:
            parts.append({"none": "no time service"}.get(self.time_daemon, self.time_daemon))
        if self.cloud_init_installed:
            parts.append("cloud-init installed (may rewrite network config at boot)")
        return "; ".join(parts)


def detect_stack(root: Path = Path("/"), run: Run = subprocess.run) -> Stack:
    """Which network stack the box (or the staged tree at `root`) has. Never raises.

    netplan's version comes from dpkg-query on the live box, else from the dpkg or opkg
    status file under root, else NETPLAN_VERSION_UNKNOWN when only the binary is there.
    Running daemons are looked for only when root is "/": a staged tree runs nothing.
    NetworkManager runs when /run/NetworkManager exists and its process is alive (pid file
    or process table); systemd-networkd when its process is alive (/run/systemd/netif alone
    proves nothing: systemd-tmpfiles creates it whether networkd runs or not).
    cloud-init is installed when root/etc/cloud/cloud.cfg exists.
    """
    root = Path(root)
    try:
        live = root.resolve() == Path("/")
    except OSError:
        live = False
    try:
        packages = _installed_packages(root)
    except Exception:
        packages = None
    try:
        netplan = _netplan_version(root, live, run, packages or {})
    except Exception:  # unknown stays unknown: discovery must not stop the wizard
        netplan = None
    try:
        nm_installed = (
            _version_of(packages, ("network-manager", "networkmanager", "NetworkManager")) is not None
            or any((root / d / "NetworkManager").is_file() for d in ("usr/sbin", "usr/bin", "sbin"))
        )
    except Exception:
        nm_installed = False
    try:
        cloud_init = (root / "etc/cloud/cloud.cfg").is_file()
    except OSError:
        cloud_init = False
    nm_running = networkd_running = False
    booted = False
    commands: set[str] = set()
    if live:
        try:
            names = _process_names(Path("/proc"))
            nm_running, networkd_running = _daemons_running(Path("/"), names)
            commands = names or set()
        except Exception:
            pass
        booted = (root / "run/systemd/system").is_dir()  # sd_booted()
    try:
        extra = _services(root, commands if booted else set(), packages)
    except Exception:
        extra = _Services()
    return Stack(
        netplan_version=netplan,
        networkmanager_installed=nm_installed,
        networkmanager_running=nm_running,
        networkd_running=networkd_running,
        cloud_init_installed=cloud_init,
        live=live,
        booted=booted,
        **extra,
    )


_BIN_DIRS = ("usr/sbin", "usr/bin", "sbin", "bin")
_LIB_DIRS = ("usr/lib/systemd", "lib/systemd")


class _Services(TypedDict, total=False):
    """Stack's fields about what else the box runs (see _services); absent: not known."""

    packages_known: bool
    resolved: bool | None
    time_daemon: str | None
    wpa_supplicant: bool | None
    modemmanager: bool | None
    ifupdown: bool | None


def _services(root: Path, running: set[str], packages: dict[str, str] | None) -> _Services:
    """resolved, the time daemon, wpa_supplicant, ModemManager and ifupdown: from the
    processes running (a booted box), the packages installed (None: no package database),
    and the files under root."""
    known = packages is not None

    def package(*names: str) -> bool:
        return _version_of(packages, names) is not None

    def binary(name: str, dirs: tuple[str, ...] = _BIN_DIRS) -> bool:
        return any((root / d / name).is_file() for d in dirs)

    def enabled(unit: str) -> bool:
        wants = root / "etc/systemd/system"
        try:
            return any((d / unit).is_symlink() for d in wants.glob("*.wants"))
        except OSError:
            return False

    def fact(present: bool) -> bool | None:
        return True if present else (False if known else None)

    # The kernel cuts comm to 15 characters: "systemd-resolve", "systemd-timesyn".
    resolved = fact("systemd-resolve" in running or package("systemd-resolved")
                    or (binary("systemd-resolved", _LIB_DIRS)
                        and (enabled("systemd-resolved.service")
                             or (root / "etc/systemd/system/dbus-org.freedesktop.resolve1.service").is_symlink())))
    if "chronyd" in running:
        time_daemon: str | None = "chrony"
    elif "systemd-timesyn" in running:
        time_daemon = "timesyncd"
    elif package("chrony") or binary("chronyd"):
        time_daemon = "chrony"
    elif package("systemd-timesyncd") or binary("systemd-timesyncd", _LIB_DIRS):
        time_daemon = "timesyncd"
    else:
        time_daemon = "none" if known else None
    return {
        "packages_known": known,
        "resolved": resolved,
        "time_daemon": time_daemon,
        "wpa_supplicant": fact(package("wpasupplicant", "wpa-supplicant") or binary("wpa_supplicant")),
        "modemmanager": fact(package("modemmanager") or binary("ModemManager")),
        "ifupdown": fact(package("ifupdown", "ifupdown2", "ifupdown-ng") or binary("ifup")),
    }


def _netplan_version(root: Path, live: bool, run: Run, packages: dict[str, str]) -> tuple[int, ...] | None:
    if live:
        try:
            done = run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}${Version}", "netplan.io"],
                       capture_output=True, text=True, timeout=10, check=False)
            abbrev, _, version = (done.stdout or "").partition(" ")
            if done.returncode == 0 and abbrev.startswith(("ii", "hi")) and version.strip():
                return _parse_version(version.strip())
        except Exception:
            pass  # no dpkg, or a hung one: the status files and the binary still tell
    listed = _version_of(packages, ("netplan.io", "netplan"))
    if listed:
        return _parse_version(listed)
    if any((root / d / "netplan").is_file() for d in ("usr/sbin", "usr/bin", "sbin")):
        return NETPLAN_VERSION_UNKNOWN
    return None


def _parse_version(text: str) -> tuple[int, ...]:
    """(0, 106) from "0.106-2+deb12u1", (1, 0) from "1.0-2ubuntu1", epochs dropped."""
    upstream = text.split(":", 1)[-1]
    match = re.match(r"\d+(?:\.\d+)*", upstream)
    if not match:
        return NETPLAN_VERSION_UNKNOWN
    return tuple(int(p) for p in match.group(0).split("."))


# States in which a package's files are on disk (dpkg(1) "Package states").
_PRESENT = frozenset({"installed", "unpacked", "half-configured", "triggers-awaited",
                      "triggers-pending"})


_BLANK_LINE = re.compile(r"\n[ \t]*\n")  # between a status file's stanzas


# Every package detect_stack asks about: the status file is read once, for all of them.
_PACKAGES = ("netplan.io", "netplan", "network-manager", "networkmanager", "NetworkManager", "systemd-resolved",
             "chrony", "systemd-timesyncd", "wpasupplicant", "wpa-supplicant", "modemmanager", "ifupdown",
             "ifupdown2", "ifupdown-ng")
_STATUS_FILES = ("var/lib/dpkg/status", "var/lib/opkg/status", "usr/lib/opkg/status")


def _installed_packages(root: Path, names: tuple[str, ...] = _PACKAGES) -> dict[str, str] | None:
    """name -> version of those of `names` whose files are on disk, from root's dpkg or opkg
    status file (the first that has one wins); None when root has no package database."""
    # A box's status file holds hundreds of packages: read only the stanzas of these (the
    # wizard's start-up waits for this). dpkg and opkg begin a stanza with Package.
    wanted = re.compile(r"^Package:[ \t]*(?:{})[ \t]*$".format("|".join(map(re.escape, names))), re.M)
    found: dict[str, str] = {}
    known = False
    for status in _STATUS_FILES:
        try:
            text = (root / status).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        known = True
        for match in wanted.finditer(text):
            after = _BLANK_LINE.search(text, match.end())
            stanza = text[match.start():after.start() if after else len(text)]
            fields = dict(re.findall(r"^([\w-]+):[ \t]*(.*)$", stanza, flags=re.M))
            state = (fields.get("Status", "").split() or [""])[-1]
            name = fields.get("Package", "")
            if name in names and state in _PRESENT and fields.get("Version"):
                found.setdefault(name, fields["Version"].strip())
    return found if known else None


def _version_of(packages: dict[str, str] | None, names: tuple[str, ...]) -> str | None:
    """The version of the first of `names` installed."""
    return next((packages[n] for n in names if packages and n in packages), None)


def _daemons_running(base: Path, commands: set[str] | EllipsisType | None = ...) -> tuple[bool, bool]:
    """(NetworkManager running, systemd-networkd running) from base/run and the names of the
    processes in base/proc (given when already read; None: no process table to look at)."""
    if commands is ...:
        commands = _process_names(base / "proc")
    nm_run = base / "run/NetworkManager"
    pid = read_int(nm_run / "NetworkManager.pid")
    pid_alive = pid is not None and read_value(base / "proc" / str(pid) / "comm") == "NetworkManager"
    if commands is None:
        # No process table to look at (hidepid): fall back on what the daemons leave in /run.
        return (nm_run.is_dir() and pid is not None,
                (base / "run/systemd/netif/state").is_file())
    nm = nm_run.is_dir() and (pid_alive or "NetworkManager" in commands)
    # The kernel cuts comm to 15 characters: systemd-networkd shows as "systemd-network".
    networkd = "systemd-network" in commands
    return nm, networkd


def _process_names(proc: Path) -> set[str] | None:
    try:
        pids = [e.name for e in os.scandir(proc) if e.name.isdigit()]
    except OSError:
        return None
    names = {name for pid in pids if (name := read_value(proc / pid / "comm")) is not None}
    return names or None


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(str(x) for x in version)


def read_value(path: Path) -> str | None:
    """A sysfs/procfs/run file's stripped text, or None when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:  # absent, EINVAL (carrier of a down link), or a vanished link
        return None


def read_int(path: Path) -> int | None:
    """A file's integer value (decimal or 0x hex), or None."""
    text = read_value(path)
    try:
        return int(text, 0) if text else None  # flags is "0x1003"
    except ValueError:
        return None
