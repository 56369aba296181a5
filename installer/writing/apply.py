"""Safe apply: write, apply with the stack's own command, re-check, keep only when confirmed.

The `netplan try` idea, done so that it also works inside the wizard (netplan try reads its
confirmation from a terminal): the files are written as one transaction with backups, the
stack applies them, the link, DNS and one cloud check run again, and unless the technician
confirms within the timeout every backup is restored byte for byte and the old state is
applied again. Under a staged root nothing runs: the commands are shown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from installer.box.system import CommandResult, System
from installer.planning.plan import Plan
from installer.render import CONN_MACHINES, CONN_UPLINK, Target, render
from installer.render.dropins import (
    CHRONY_FILE,
    LEGACY_PROXY_FILE,
    NM_UNMANAGED_FILE,
    PROXY_ENV_FILE,
    PROXY_FILE,
    REGDOM_FILE,
    RESOLVED_FILE,
    SYSCTL_FILE,
    TIMESYNCD_FILE,
)
from installer.writing.existing import find_conflicts, move_aside_paths
from installer.writing.writer import (
    WriteResult,
    await_confirmation,
    confirm_set,
    recover,
    restore,
    revert_unconfirmed,
    write_files,
)

if TYPE_CHECKING:  # the checks are imported where they run: they cost start-up time
    from installer.checks.neighbours import Preflight
    from installer.checks.runner import Report

DEFAULT_CONFIRM_TIMEOUT_S = 120.0
# The dead man's switch fires this long after the confirmation should have come: the re-check
# and a slow stack command come on top of the timeout. Once the stack commands and the
# re-check are done it is set again, for the wait alone plus WAIT_MARGIN_S: a killed apply is
# then undone soon after the confirmation did not come.
REVERT_MARGIN_S = 120.0
WAIT_MARGIN_S = 20.0

# confirm(seconds, recheck_report) -> True to keep the new configuration.
Confirm = Callable[[float, "Report | None"], bool]  # None: the re-check could not run
Progress = Callable[[str], None]


@dataclass
class ApplyResult:
    """What apply did, for the technician and the tests."""

    written: WriteResult | None = None
    commands: list[CommandResult] = field(default_factory=list)
    recheck: Report | None = None          # the re-check's report
    confirmed: bool = False
    rolled_back: bool = False
    restored: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    refused: str | None = None             # why nothing was written (an address another device holds)
    country_before: str | None = None      # the WiFi regulatory country before apply set the plan's

    @property
    def ok(self) -> bool:
        """The new configuration is in place (or staged) and kept."""
        return self.confirmed and not self.rolled_back


# Every command apply may run (stack_commands picks from these, the host name aside) and, for a
# change undone later, every command that applies restored files again (reapply_commands).
# Commands recorded in a backup set are data on disk: only these are ever run from there.
NM_RESTART = ["systemctl", "try-reload-or-restart", "NetworkManager.service"]
NETPLAN_APPLY = ["netplan", "apply"]
NM_RELOAD = ["nmcli", "connection", "reload"]
NM_UP_MACHINES = ["nmcli", "connection", "up", CONN_MACHINES]
NM_UP_UPLINK = ["nmcli", "connection", "up", CONN_UPLINK]
SYSCTL_RELOAD = ["sysctl", "--system"]
RESOLVED_RESTART = ["systemctl", "restart", "systemd-resolved"]
TIMESYNCD_RESTART = ["systemctl", "restart", "systemd-timesyncd"]
CHRONY_RESTART = ["systemctl", "restart", "chrony"]
DAEMON_RELOAD = ["systemctl", "daemon-reload"]
DAEMON_REEXEC = ["systemctl", "daemon-reexec"]
HOSTNAME_FROM_FILE = ["hostname", "-F", "/etc/hostname"]
STACK_COMMANDS = (NM_RESTART, NETPLAN_APPLY, NM_RELOAD, NM_UP_MACHINES, NM_UP_UPLINK, SYSCTL_RELOAD,
                  RESOLVED_RESTART, TIMESYNCD_RESTART, CHRONY_RESTART, DAEMON_RELOAD, DAEMON_REEXEC)
REAPPLY_COMMANDS = tuple(c for c in STACK_COMMANDS if c[:3] != ["nmcli", "connection", "up"]) + (
    HOSTNAME_FROM_FILE,)


def stack_commands(plan: Plan, target: Target, written: list[str]) -> list[list[str]]:
    """The stack's own commands that make the written (or moved-aside) files take effect, in
    order, and only those of software the box runs (`target`)."""
    commands: list[list[str]] = []
    if NM_UNMANAGED_FILE in written:
        # First: NetworkManager, where it runs, lets go of networkd's ports before networkd
        # configures them (where it does not run, it reads the file when it starts).
        commands.append(list(NM_RESTART))
    if plan.renderer == "networkmanager":
        if target.netplan_installed is not False and any(p.startswith("/etc/netplan/") for p in written):
            # netplan files moved aside: networkd forgets the ports NetworkManager takes now.
            commands.append(list(NETPLAN_APPLY))
        commands.append(list(NM_RELOAD))
        if plan.machine_network is not None:
            commands.append(list(NM_UP_MACHINES))  # a bridge brings its ports up
        commands.append(list(NM_UP_UPLINK))
    else:
        commands.append(list(NETPLAN_APPLY))
    if SYSCTL_FILE in written:
        commands.append(list(SYSCTL_RELOAD))
    if RESOLVED_FILE in written and target.resolved:
        commands.append(list(RESOLVED_RESTART))
    if TIMESYNCD_FILE in written and target.time_daemon == "timesyncd":
        commands.append(list(TIMESYNCD_RESTART))
    if CHRONY_FILE in written and target.time_daemon == "chrony":
        commands.append(list(CHRONY_RESTART))
    if PROXY_FILE in written or PROXY_ENV_FILE in written:
        commands.append(list(DAEMON_RELOAD))  # services started from now on get the proxy
    if LEGACY_PROXY_FILE in written:
        commands.append(list(DAEMON_REEXEC))  # the manager drops the old DefaultEnvironment
    if "/etc/hostname" in written and plan.hostname:
        commands.append(["hostname", plan.hostname])
    return commands


# The stack's command returns before the links are up: networkd configures an address, a DHCP
# lease or a WiFi association a moment (on a slow box, seconds) later. The re-check first waits,
# bounded, until the links carry what the plan gives them; a link that never does (no carrier,
# no lease) is judged after this long, as it is.
RECHECK_SETTLE_S = 30.0


def recheck(plan: Plan, timeout: float, settle_s: float = RECHECK_SETTLE_S) -> Report:
    """The link checks, the DNS checks, the ARP probes of the static addresses and gateway
    (installer.checks.neighbours), the WiFi signal (installer.checks.wifi) and one cloud check,
    as after `netplan apply`, once the links have settled (at most settle_s)."""
    from installer.checks.planner import build_context, plan_checks, remediation
    from installer.checks.runner import run_checks

    ctx = build_context(plan, timeout=timeout)
    checks = plan_checks(plan, ctx)
    links = [c for c in checks if c.id == "link-state"]
    deadline = time.monotonic() + settle_s
    while links and time.monotonic() < deadline:
        settled = asyncio.run(run_checks(links, ctx))
        if all(r.status in ("pass", "warn") for r in settled.results):
            break
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    keep = [c for c in checks if c.id.startswith(("link-", "dns-", "address-", "gateway-", "wifi-"))]
    cloud = next((c for c in checks if c.id == "https-ping"), None) or next(
        (c for c in checks if c.id == "tcp-connect"), None)
    if cloud is not None:
        needed = {k for group in cloud.needs for k in group}
        keep += [c for c in checks if c.key in needed and c not in keep] + [cloud]
    return asyncio.run(run_checks(keep, ctx, remediation=remediation(plan, ctx.catalog)))


def apply_plan(plan: Plan, system: System, target: Target, *, confirm: Confirm,
               confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT_S, check_timeout: float = 3.0,
               rechecker: Callable[[Plan, float], Report] | None = None,
               progress: Progress = lambda line: None, force_address: bool = False,
               prober: Callable[..., Preflight] | None = None, how_to_change: str = "cli") -> ApplyResult:
    """Write, apply, re-check and confirm; roll back when not confirmed. Never half-applies.
    `rechecker` defaults to recheck() (looked up at each call).

    First, on a live box, every static address of the plan is probed on the wire (ARP, RFC
    5227: installer.checks.neighbours.preflight, or `prober`): when another device answers for
    one, nothing is written and `refused` says which address, port and MAC, unless
    `force_address` (then a WARNING line). A port that is down or without carrier cannot be
    probed: that is said, and the apply goes on (the address is not claimed free). Under a
    staged root nothing is probed."""
    rechecker = rechecker or recheck
    result = ApplyResult()
    if not check_addresses(plan, system, result, progress, force_address=force_address, prober=prober,
                           timeout=check_timeout, how_to_change=how_to_change):
        return result
    # A change an earlier run applied and nobody confirmed (its process was killed): undone
    # first, files and running state, before anything new is written.
    for line, ran in undo_unconfirmed(system):
        result.messages.append(f"recovered: {line}")
        result.commands += ran
    for line in recover(system.root):
        result.messages.append(f"recovered: {line}")
    files = render(plan, target)
    conflicts = find_conflicts(system.root, plan, files)
    result.written = write_files(system.root, files, move_aside_paths(conflicts))
    progress(f"wrote {len(result.written.written)} file(s), {len(result.written.unchanged)} unchanged")
    commands = stack_commands(plan, target, result.written.written + [m for m, _ in result.written.moved])
    # The backup set of a change awaiting its answer; None: nothing to confirm (staged, or no
    # file changed).
    pending = result.written.backup_dir if system.live else None
    armed: str | None = None  # the revert timer's unit
    if pending is not None:
        # From here until an answer, the backup set says "unconfirmed": should this process
        # die (SIGKILL, power cut), the next recover puts the old files back.
        await_confirmation(system.root, pending, commands)
        # Should this process be killed outright (SIGKILL, the OOM killer) and the box keep
        # running, systemd undoes the change on its own a little after the timeout.
        unit = revert_unit(pending)
        switch = arm_revert_timer(system, unit, confirm_timeout + REVERT_MARGIN_S)
        result.commands.append(switch)
        armed = unit if switch.ok else None
        if armed and switch.ran:
            progress(f"revert timer armed: should this program be killed, systemd restores the previous "
                     f"configuration in {int(confirm_timeout + REVERT_MARGIN_S + 0.999)} s")
        if not armed:
            result.messages.append(f"no revert timer ({switch.describe()}): if this process is killed, "
                                   "the change is undone at the next boot or `edge-installer recover`")
    try:
        set_country(plan, system, result, progress)
        for argv in commands:
            outcome = system.run(argv)
            result.commands.append(outcome)
            progress(outcome.describe())
            if not outcome.ok:
                result.messages.append(f"{' '.join(argv)} failed: rolling back")
                _rollback(plan, system, target, result, commands)
                _disarm(system, result, armed)
                return result
        if not system.live:
            # A staged tree: nothing was applied, so there is nothing to confirm or revert.
            result.confirmed = True
            result.messages.append(f"staged under {system.root}: nothing was applied; the commands are shown")
            return result
        if pending is None:
            result.confirmed = True
            result.messages.append("nothing changed on disk")
            return result
        progress("re-checking the link, DNS and the cloud")
        try:
            result.recheck = rechecker(plan, check_timeout)
        except Exception as e:  # a re-check that cannot run is reported; the technician still decides
            result.messages.append(f"the re-check could not run: {e}")
        if armed:
            armed = _rearm_for_the_wait(system, result, armed, confirm_timeout)
        asked = time.monotonic()
        try:
            keep = bool(confirm(confirm_timeout, result.recheck))
        except Exception:
            keep = False
        answered_early = time.monotonic() - asked < confirm_timeout - 0.5
    except BaseException:
        # Ctrl+C, or SIGHUP/SIGTERM turned into an exception (the SSH session or serial line
        # that carried the confirmation is gone): nobody can confirm any more, so the old
        # configuration comes back, as with `netplan try`.
        result.messages.append("interrupted before the change was confirmed: restoring the previous configuration")
        if pending is not None and not result.rolled_back:
            _rollback(plan, system, target, result, commands)
        _disarm(system, result, armed)
        raise
    if keep:
        try:
            confirm_set(system.root, pending)
        except (OSError, ValueError) as e:
            result.messages.append(f"WARNING: the confirmation could not be recorded ({e}); the next "
                                   f"`edge-installer recover` or reboot would undo this change: free "
                                   f"space under /var/lib/edge-installer and apply again")
        result.confirmed = True
        result.messages.append("confirmed: the new configuration is kept")
        _disarm(system, result, armed)
        return result
    if answered_early:  # refused (the technician, or --keep-if-healthy's re-check): not a timeout
        result.messages.append("not kept: restoring the previous configuration")
    else:
        result.messages.append(f"not confirmed within {confirm_timeout:g} s: restoring the previous configuration")
    _rollback(plan, system, target, result, commands)
    _disarm(system, result, armed)
    return result


def check_addresses(plan: Plan, system: System, result: ApplyResult, progress: Progress, *,
                    force_address: bool = False, prober: Callable[..., Preflight] | None = None,
                    timeout: float = 3.0, how_to_change: str = "cli") -> bool:
    """The ARP probes before apply: False (and `result.refused` set) when another device holds
    a planned address and the apply must not go on."""
    from installer.checks import neighbours

    if not system.live:
        result.messages.append(f"addresses not probed: staged under {system.root} (no live box to ask the wire)")
        return True
    prober = prober or neighbours.preflight
    try:
        found = prober(plan, timeout=timeout)
    except Exception as e:  # a probe that cannot run must not stop the apply, nor claim anything
        result.messages.append(f"addresses not probed: {type(e).__name__}: {e}")
        return True
    for line in found.lines:
        progress(line)
    if found.ok:
        return True
    lines = [neighbours.conflict_line(p, probe, how_to_change) for p, probe in found.conflicts]
    if force_address:
        for line in lines:
            result.messages.append(f"WARNING (--force-address): {line.split('; choose')[0]}: applied anyway; "
                                   "the two devices will cut each other off until one changes its address")
        return True
    result.refused = lines[0]
    result.messages += [f"refused: {line}" for line in lines] + ["nothing was written"]
    return False


IW_REG = ["iw", "reg"]
COUNTRY_WAIT_S = 5.0  # for the kernel to take a new country (it loads regulatory.db then)


def regulatory_country(output: str) -> str | None:
    """The kernel's global regulatory country in `iw reg get`'s output ("global" then
    "country DE: DFS-ETSI"), or None."""
    import re

    m = re.search(r"^global\s*\ncountry (\w\w):", output, re.M) or re.search(r"^country (\w\w):", output, re.M)
    return m.group(1) if m else None


def set_country(plan: Plan, system: System, result: ApplyResult, progress: Progress,
                wait: float | None = None) -> None:
    """The plan's WiFi regulatory country in effect now (`iw reg set`), on every stack: the
    modprobe drop-in (installer.render.dropins) acts only when cfg80211 loads, at the next boot,
    and NetworkManager has no setting for it. Never fails the apply: a box without iw, without a
    radio or without wireless-regdb is told so in a message, and the drop-in sets the country at
    the next boot. The previous country is kept for a rollback (_rollback sets it again)."""
    import time

    w = plan.wifi
    if w is None or not w.country or plan.topology not in ("wifi", "wireless-bridge"):
        return
    later = f"it takes effect at the next boot ({REGDOM_FILE})"
    if system.live:
        before = system.run(IW_REG + ["get"])
        if before.returncode == 127:
            result.messages.append(f"WiFi country {w.country} not set now: iw is not installed (Debian package "
                                   f"iw); {later}")
            return
        result.country_before = regulatory_country(before.output) if before.ok else None
    done = system.run(IW_REG + ["set", w.country])
    result.commands.append(done)
    progress(done.describe())
    if not done.ran:
        return
    if not done.ok:
        tail = (done.output.strip().splitlines() or ["no output"])[-1]
        result.messages.append(f"WiFi country {w.country} not set now (iw reg set: {tail}; a box without a WiFi "
                               f"radio has no use for it); {later}")
        return
    # The kernel takes the request in the background (and loads wireless-regdb's database then).
    deadline = time.monotonic() + (COUNTRY_WAIT_S if wait is None else wait)
    while True:
        now = regulatory_country(system.run(IW_REG + ["get"]).output)
        if now == w.country:
            progress(f"WiFi country {w.country} in effect (iw reg get)")
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.25)
    result.messages.append(f"WiFi country {w.country} not in effect: the kernel kept country {now or 'unknown'} "
                           f"(is the Debian package wireless-regdb installed? it provides /lib/firmware/"
                           f"regulatory.db); {later}")


def _disarm(system: System, result: ApplyResult, armed: str | None) -> None:
    """The change was answered (kept or undone here): the revert timer has nothing left to do."""
    if armed:
        result.commands.append(system.run(["systemctl", "stop", f"{armed}.timer"]))


def _rearm_for_the_wait(system: System, result: ApplyResult, armed: str, confirm_timeout: float) -> str:
    """The change is in effect and only the answer is awaited: a second timer for the wait
    plus a short margin replaces the first (armed first, so there is always one)."""
    unit = armed + "-wait"
    switch = arm_revert_timer(system, unit, confirm_timeout + WAIT_MARGIN_S)
    result.commands.append(switch)
    if not switch.ok:
        return armed
    result.commands.append(system.run(["systemctl", "stop", f"{armed}.timer"]))
    return unit


def revert_unit(backup_rel: str) -> str:
    """The transient systemd unit that undoes one backup set's change if nobody confirms it."""
    return "edge-installer-revert-" + backup_rel.rstrip("/").rsplit("/", 1)[-1]


def self_command() -> tuple[list[str], dict[str, str]]:
    """How systemd can start this very edge-installer again: (argv, environment)."""
    import os
    import sys

    import installer

    archive = getattr(installer, "ARCHIVE", None)  # set by the zipapp's __main__
    if archive:
        return [sys.executable, archive], {}
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(script) == "edge-installer" and os.access(script, os.X_OK):
        return [script], {}
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(installer.__file__)))
    return [sys.executable, "-m", "installer"], {"PYTHONPATH": package_parent}


def arm_revert_timer(system: System, unit: str, seconds: float) -> CommandResult:
    """The dead man's switch: a transient systemd timer that runs `edge-installer recover`
    (undo what was never confirmed, apply the old files again) after `seconds`, stopped as
    soon as the change is answered one way or the other."""
    argv, env = self_command()
    return system.run(["systemd-run", "--quiet", f"--unit={unit}",
                       f"--on-active={int(seconds + 0.999)}s", "--timer-property=AccuracySec=1s",
                       *[f"--setenv={k}={v}" for k, v in env.items()],
                       *argv, "recover", "--root", str(system.root)])


def undo_unconfirmed(system: System, reapply: bool = True) -> list[tuple[str, list[CommandResult]]]:
    """Put back the files of every change applied and never confirmed whose process is gone
    and, with `reapply` (a running box; not at boot, before the network starts), apply them
    again. Per change: what was done, in words, and the commands run."""
    done = []
    for line, commands in revert_unconfirmed(system.root):
        again = reapply_commands(commands)
        known = [argv for argv in again if argv in REAPPLY_COMMANDS]
        if len(known) != len(again):
            line += (f"; {len(again) - len(known)} command(s) recorded in its backup set are not ones "
                     "edge-installer runs and were refused")
        done.append((line, [system.run(argv) for argv in known] if reapply else []))
    return done


def reapply_commands(commands: list[list[str]]) -> list[list[str]]:
    """The commands that apply restored files again: the same ones, but no `nmcli connection
    up` of the profiles that are gone (reload drops them; the old ones autoconnect), and the
    host name read back from the restored /etc/hostname, not set to the new one again."""
    again = []
    for argv in commands:
        if argv[:3] == ["nmcli", "connection", "up"]:
            continue
        again.append(list(HOSTNAME_FROM_FILE) if argv[:1] == ["hostname"] else argv)
    return again


def _rollback(plan: Plan, system: System, target: Target, result: ApplyResult, commands: list[list[str]]) -> None:
    if result.written is None or result.written.backup_dir is None:
        return
    result.restored = restore(system.root, result.written.backup_dir)
    result.rolled_back = True
    if result.country_before and plan.wifi is not None and result.country_before != plan.wifi.country:
        result.commands.append(system.run(IW_REG + ["set", result.country_before]))  # as set_country found it
    # The old state is applied with the same commands reading the restored files: netplan
    # apply, or nmcli's reload, which drops the profiles we created and brings back the old
    # ones (they autoconnect); the drop-ins' services re-read theirs.
    for argv in reapply_commands(commands):
        result.commands.append(system.run(argv))

