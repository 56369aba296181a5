"""The watchdog: the plan's live checks again on a schedule, after installation day.

An opt-in systemd timer (units, below) starts `edge-installer watchdog run` (run_once): one run at
a time (an exclusive lock in the state directory; a second run is skipped), under a deadline
(the checks' own, and a hard stop a little after it), the very checks `check --plan` runs and
nothing else. Each run is kept as JSON under the state directory (the last KEEP_RUNS runs,
each check's status carried with the time its current streak began) and logged to the journal
with structured fields over its native socket: one entry per check and one for the run.
`edge-installer status` (installer.commands.status) reads the kept runs: the last run, what
changed since the one before, and how long each failure has lasted.

One module rather than a package: its parts (units, journal, state, run) are small and used
together, and a package would also need its line in pyproject.toml's package list.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
import re
import shlex
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from installer.text import ascii_safe

# APPLIED_PLAN: where the wizard's Done step (or a zero-touch first boot) leaves the plan the
# box was set up with: the plan the watchdog checks unless told otherwise.
from installer.writing.writer import APPLIED_PLAN, PRIVATE_DIR_MODE, atomic_write, box_path, make_dirs  # noqa: F401

if TYPE_CHECKING:  # imported where used: the checks cost start-up time
    from installer.checks.runner import Report
    from installer.planning.plan import Plan

STATE_DIR = "/var/lib/edge-installer/watchdog"
UNIT = "edge-installer-watchdog"
UNIT_DIR = "/etc/systemd/system"
SERVICE_FILE = f"{UNIT_DIR}/{UNIT}.service"
TIMER_FILE = f"{UNIT_DIR}/{UNIT}.timer"
TIMER_LINK = f"{UNIT_DIR}/timers.target.wants/{UNIT}.timer"


# ---------------------------------------------------------------- the systemd units
#
# The watchdog's two systemd units, as text: a oneshot service that runs the checks once under
# a deadline, hardened so that it can read the box and open sockets but change nothing but its
# own state directory, and a timer that starts it after boot and then on a schedule.

MIN_EVERY_S = 60
MAX_EVERY_S = 86400
# Room on top of the checks' own deadline for Python to start (a zipapp's first start unpacks
# its dependencies) and for the run to store and log its results.
START_MARGIN_S = 60
_UNITS = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60, "minutes": 60,
          "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600, "d": 86400, "day": 86400, "days": 86400}
_SPAN = re.compile(r"\s*(\d+)\s*([a-z]*)\s*")


def parse_every(text: str) -> int:
    """--every's value in seconds ("15min", "1h", "90s", "900"); ValueError with the way to write it."""
    m = _SPAN.fullmatch(text.lower())
    if not m or m.group(2) not in ("", *_UNITS):
        raise ValueError(f"{text!r} is not a time span; write e.g. 15min, 1h or 900s")
    seconds = int(m.group(1)) * _UNITS.get(m.group(2), 1)
    if not MIN_EVERY_S <= seconds <= MAX_EVERY_S:
        raise ValueError(f"{text} is out of range; give 1min to 1d (one run a day)")
    return seconds


def span(seconds: int) -> str:
    """Seconds as systemd writes a time span: 15min, 1h, 90s."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def service_unit(program: list[str], env: dict[str, str], plan: str, timeout: float, deadline: float) -> str:
    """The .service: `watchdog run` once, killed by systemd should it outlive the deadline."""
    argv = [*program, "watchdog", "run", "--plan", plan, "--timeout", f"{timeout:g}", "--deadline", f"{deadline:g}"]
    # systemd reads % and $ in ExecStart= as specifiers and variables.
    exec_start = " ".join(shlex.quote(a) for a in argv).replace("%", "%%").replace("$", "$$")
    environment = "".join(f"Environment={shlex.quote(f'{k}={v}')}\n" for k, v in env.items())
    return f"""\
# edge-installer watchdog: the live checks of the plan again (`edge-installer watchdog run`),
# started by {UNIT}.timer. Written by `edge-installer watchdog enable`; removed by
# `edge-installer watchdog disable`. One run at a time (a lock in the state directory), under a
# deadline; each check's result goes to the journal (journalctl -t edge-installer-watchdog) and
# to {STATE_DIR}/runs/; `edge-installer status` shows the last run and what changed.

[Unit]
Description=edge-installer watchdog: check that this box still reaches its cloud
After=network-online.target time-sync.target

[Service]
Type=oneshot
ExecStart={exec_start}
{environment}# The checks stop at their own deadline; this is the hard stop on top of it.
TimeoutStartSec={int(deadline) + START_MARGIN_S}
# A background job: it yields the CPU and the disk to the box's real work.
Nice=10
CPUSchedulingPolicy=batch
IOSchedulingClass=idle
MemoryMax=256M
TasksMax=64
# It reads the box and opens sockets; it writes only its state (and the zipapp's cache).
StateDirectory=edge-installer/watchdog
StateDirectoryMode=0700
CacheDirectory=edge-installer
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
NoNewPrivileges=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
# Sockets the checks use: IP, netlink (links, WiFi), packets (ARP probes), unix (the journal).
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET
"""


def timer_unit(every_s: int) -> str:
    """The .timer: a first run soon after boot (at once when enabled on a running box), then
    every `every_s` seconds after the last run started, spread a little so that a fleet
    booted together does not check all at once."""
    spread = max(1, min(every_s // 10, 300))
    return f"""\
# edge-installer watchdog: starts {UNIT}.service after boot and then every {span(every_s)}.
# Written by `edge-installer watchdog enable --every {span(every_s)}`.
# (No Persistent=: it applies to OnCalendar= only; after a power cut OnBootSec= starts a run soon.)

[Unit]
Description=edge-installer watchdog: check the network every {span(every_s)}

[Timer]
OnBootSec=5min
OnUnitActiveSec={span(every_s)}
RandomizedDelaySec={span(spread)}
AccuracySec=1s

[Install]
WantedBy=timers.target
"""


# ---------------------------------------------------------------- the journal
#
# Structured entries to the systemd journal over its native socket (the protocol sd_journal_send
# speaks: https://systemd.io/JOURNAL_NATIVE_PROTOCOL/), with the standard library only.
#
# One datagram per entry; each field `NAME=value` and a newline, or, for a value holding a
# newline, `NAME`, a newline, its length (64-bit little endian), the value and a newline.
# Field names are upper-case letters, digits and underscores, not starting with an underscore
# (those are the journal's own).

JOURNAL_SOCKET = "/run/systemd/journal/socket"
IDENTIFIER = "edge-installer-watchdog"
# The journal's priorities (syslog's): what `journalctl -p` filters on.
PRIORITY = {"fail": 3, "error": 3, "overran": 3, "warn": 4, "pass": 6, "skip": 6}
MAX_VALUE = 4000  # a field's value is cut here: one entry stays far below a datagram's limit
_NAME = re.compile(r"[A-Z0-9][A-Z0-9_]{0,63}")


def journal_encode(fields: Mapping[str, object]) -> bytes:
    """One entry in the native protocol's format."""
    out = bytearray()
    for name, value in fields.items():
        if not _NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a journal field name")
        data = str(value)[:MAX_VALUE].encode("utf-8", "backslashreplace")
        if b"\n" in data:
            out += name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += name.encode() + b"=" + data + b"\n"
    return bytes(out)


def journal_send(entries: Iterable[Mapping[str, object]], path: str = JOURNAL_SOCKET) -> str | None:
    """Send every entry (SYSLOG_IDENTIFIER added); None when the journal took them, else why
    not, in words (no journal on this box, or it refused), after which nothing more is tried."""
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    except OSError as e:
        return f"no unix socket: {e.strerror}"
    try:
        for entry in entries:
            try:
                sock.sendto(journal_encode({"SYSLOG_IDENTIFIER": IDENTIFIER, **entry}), path)
            except (FileNotFoundError, ConnectionRefusedError):
                return f"no journal on this box ({path} is not there or nobody listens)"
            except OSError as e:
                return f"the journal refused an entry ({path}: {e.strerror or e})"
    finally:
        sock.close()
    return None


# ---------------------------------------------------------------- the kept runs
#
# The watchdog's memory: one JSON file per run under <root>/var/lib/edge-installer/watchdog/runs/,
# the last KEEP_RUNS of them, and what `edge-installer status` makes of them.
#
# Every check in a run carries `since` (when the run that began its current status streak
# started) and `runs` (how many runs in a row it has had that status): how long a failure has
# lasted is known from the last run alone, however many older runs were pruned. Each run also
# keeps its `changes` against the run before it that has results (a run that could not check
# anything, e.g. a plan gone, is shown, but the streaks go on across it).

KEEP_RUNS = 100          # a day and more at one run every 15 minutes
MAX_RECORD_BYTES = 4_000_000
VERDICTS = ("pass", "warn", "fail")  # and "error" (nothing could be checked), "overran" (the deadline)
_EXIT = {"pass": 0, "warn": 1, "fail": 2}


def runs_dir(root: Path) -> Path:
    """Where the runs are kept, under root."""
    return box_path(Path(root), f"{STATE_DIR}/runs")


def lock_path(root: Path) -> Path:
    """The file one run at a time locks."""
    return box_path(Path(root), f"{STATE_DIR}/run.lock")


def stamp(when: float) -> str:
    """A run's id: its start in UTC, sortable (20261207T031500.123456Z)."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(when)) + f".{int(when % 1 * 1e6):06d}Z"


def load_runs(root: Path) -> list[dict[str, Any]]:
    """The kept runs, oldest first; a file that cannot be read as a run is left out."""
    directory = runs_dir(root)
    runs = []
    try:
        names = sorted(p.name for p in directory.iterdir() if p.name.endswith(".json"))
    except FileNotFoundError:
        return []
    for name in names:
        try:
            path = directory / name
            if path.stat().st_size > MAX_RECORD_BYTES:
                continue
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("version") == 1 and isinstance(record.get("checks"), list):
            runs.append(record)
    return runs


def last_with_checks(runs: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The latest run that checked something."""
    return next((r for r in reversed(list(runs)) if r.get("verdict") in VERDICTS), None)


def run_record(report: Report, previous: dict[str, Any] | None, *, started: float, finished: float, plan: str,
               mask: Callable[[str], str]) -> dict[str, Any]:
    """A run with results: every check's result (masked), its streak, and the changes since `previous`."""
    before = {c["key"]: c for c in (previous or {}).get("checks", [])}
    checks = []
    for r in report.results:
        old = before.get(mask(r.key))
        same = old if old is not None and old.get("status") == r.status else None  # its streak goes on
        checks.append({"key": mask(r.key), "id": r.id, "kind": r.kind, "target": mask(r.target), "status": r.status,
                       "diagnosis": r.diagnosis, "evidence": mask(r.evidence), "remediation": mask(r.remediation),
                       "profile": r.profile, "duration_s": round(r.duration_s, 3),
                       "since": same["since"] if same is not None else started,
                       "runs": same["runs"] + 1 if same is not None else 1})
    verdict = "fail" if report.summary["fail"] else "warn" if report.summary["warn"] else "pass"
    return {"version": 1, "run": stamp(started), "started": started, "finished": finished, "plan": plan,
            "verdict": verdict, "exit_code": _EXIT[verdict], "summary": dict(report.summary),
            "deadline_hit": sum(1 for r in report.results if r.diagnosis == "deadline"),
            "checks": checks, "previous": previous["run"] if previous else None,
            "changes": changes(previous, checks, started)}


def no_results(verdict: str, message: str, *, started: float, finished: float, plan: str) -> dict[str, Any]:
    """A run that checked nothing: `error` (e.g. the plan is gone) or `overran` (its deadline)."""
    return {"version": 1, "run": stamp(started), "started": started, "finished": finished, "plan": plan,
            "verdict": verdict, "exit_code": 2, "message": message, "summary": {}, "checks": [],
            "previous": None, "changes": []}


def changes(previous: dict[str, Any] | None, checks: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
    """What differs from the run before: a check that failed, warned or recovered (with how long
    the trouble lasted), one whose diagnosis changed, one new or gone. Empty for a first run."""
    if previous is None:
        return []
    before = {c["key"]: c for c in previous.get("checks", [])}
    found: list[dict[str, Any]] = []
    for c in checks:
        old = before.pop(c["key"], None)
        entry = {"key": c["key"], "id": c["id"], "target": c["target"], "from": old and old["status"],
                 "to": c["status"], "from_diagnosis": old and old["diagnosis"], "to_diagnosis": c["diagnosis"]}
        if old is None:
            found.append({**entry, "change": "new"})
        elif old["status"] != c["status"]:
            kind = ("recovered" if c["status"] == "pass" and old["status"] in ("fail", "warn")
                    else "failed" if c["status"] == "fail" else "warned" if c["status"] == "warn" else "status")
            if old["status"] in ("fail", "warn"):
                entry["lasted_s"] = round(now - old["since"], 3)
            found.append({**entry, "change": kind})
        elif old["diagnosis"] != c["diagnosis"]:
            found.append({**entry, "change": "diagnosis"})
    for old in before.values():
        found.append({"key": old["key"], "id": old["id"], "target": old["target"], "from": old["status"],
                      "to": None, "from_diagnosis": old["diagnosis"], "to_diagnosis": None, "change": "gone"})
    return found


def save_run(root: Path, run: dict[str, Any], keep: int = KEEP_RUNS) -> Path:
    """Store a run (atomically, mode 0600) and prune the oldest beyond `keep`; its path."""
    directory = runs_dir(root)
    target = directory / f"{run['run']}.json"
    atomic_write(target, json.dumps(run, indent=1).encode(), 0o600, PRIVATE_DIR_MODE)
    kept = sorted(p for p in directory.iterdir() if p.name.endswith(".json"))
    for old in kept[:max(0, len(kept) - keep)]:
        try:
            old.unlink()
        except FileNotFoundError:
            pass
    return target


def describe_change(c: Mapping[str, Any]) -> str:
    """A change in words: `tcp-connect api.example.com:443: pass -> fail (tcp-timeout)`."""
    what = f"{c['id']} {c['target']}".rstrip()
    kind = c["change"]
    if kind == "new":
        return f"{what}: new check, {c['to']} ({c['to_diagnosis']})"
    if kind == "gone":
        return f"{what}: no longer checked (was {c['from']})"
    if kind == "diagnosis":
        return f"{what}: still {c['to']}, now {c['to_diagnosis']} (was {c['from_diagnosis']})"
    if kind == "recovered":
        return (f"{what}: recovered, {c['from']} -> pass (was {c['from_diagnosis']} "
                f"for {duration(c.get('lasted_s', 0))})")
    return f"{what}: {c['from']} -> {c['to']} ({c['to_diagnosis']})"


def duration(seconds: float) -> str:
    """A duration as a person says it: 40 s, 15 min, 2 h 5 min, 3 d 4 h."""
    s = int(max(0, seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h" + (f" {s % 3600 // 60} min" if s % 3600 >= 60 else "")
    return f"{s // 86400} d" + (f" {s % 86400 // 3600} h" if s % 86400 >= 3600 else "")


def when(epoch: float) -> str:
    """A time in UTC, as the reports write it."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


# ---------------------------------------------------------------- one run
#
# One watchdog run: the plan's live checks, exactly as `check --plan` plans and runs them,
# one run at a time (an exclusive lock in the state directory; a second run is skipped), under a
# deadline (the checks' own, and a hard stop a little after it), kept in the state directory and
# logged to the journal: one entry per check and one for the run.

# The hard stop comes this long after the checks' deadline (their follow-up probes and the
# cancellation of what is unfinished take a moment).
BACKSTOP_S = 10.0
# Stable ids of the two kinds of entries (journalctl MESSAGE_ID=...).
CHECK_MESSAGE_ID = "d00288eaebeb42e8bbca98567fa85cc0"
RUN_MESSAGE_ID = "5f71e818aa4b4620b973e106ce138533"

# checker(plan, timeout, deadline) -> installer.checks.runner.Report
Checker = Callable[["Plan", float, float], "Report"]


class CheckProblem(Exception):
    """Nothing could be checked: the plan is gone or invalid, its CA file missing, or the runner
    itself did not give results. The run is kept as an `error` saying why."""


@dataclass
class RunResult:
    """What a run did."""

    record: dict[str, Any] | None = None  # None: skipped
    saved: Path | None = None
    journal_problem: str | None = None   # why nothing went to the journal, or None
    skipped_by: str | None = None        # the pid holding the lock when this run was skipped

    @property
    def exit_code(self) -> int:
        """0 skipped or all pass, 1 warnings only, 2 any failure or nothing checked."""
        return 0 if self.record is None else int(self.record["exit_code"])


class _Overran(BaseException):
    pass


def live_checks(plan: Plan, timeout: float, deadline: float) -> Report:
    """The checks `edge-installer check --plan` runs on an applied plan, and their report."""
    from installer.checks.planner import build_context, plan_checks, remediation
    from installer.checks.runner import run_checks

    if plan.tls.extra_ca_file and not Path(plan.tls.extra_ca_file).is_file():
        raise CheckProblem(f"tls.extra_ca_file: {plan.tls.extra_ca_file} does not exist on this box")
    ctx = build_context(plan, timeout=timeout)
    try:
        ctx.trust()
    except (OSError, ValueError) as e:
        raise CheckProblem(f"tls.extra_ca_file: {plan.tls.extra_ca_file} is not a PEM file of CA certificates "
                           f"({e})") from None
    # Not asyncio.run: it waits for the worker threads of checks cut at the deadline (a blocking
    # NTP request holds one for its whole timeout); loop.close() leaves them to end on their own.
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(run_checks(plan_checks(plan, ctx, expect_applied=True), ctx,
                                                  deadline=deadline, remediation=remediation(plan, ctx.catalog)))
    except asyncio.CancelledError:
        # The runner lets a cancellation out when its deadline cuts a check that others wait on:
        # said as it is rather than as a traceback in the journal.
        raise CheckProblem(f"the checks gave no results: their deadline of {deadline:g} s cut a check that "
                           "others waited on, and the runner was cancelled (a defect in edge-installer's "
                           "runner; a longer --deadline avoids it)") from None
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def load_plan(path: str) -> Plan:
    """The validated plan at `path`, or CheckProblem."""
    from installer.commands import UsageError, load_valid_plan

    if not Path(path).is_file():
        raise CheckProblem(f"{path}: no such file; the watchdog checks the plan the box was set up with "
                           "(edge-installer watchdog enable --plan PLAN)")
    try:
        return load_valid_plan(path)
    except UsageError as e:
        raise CheckProblem("; ".join(e.lines)) from None


def run_once(root: Path, plan_path: str, *, timeout: float, deadline: float, checker: Checker | None = None,
             keep: int = KEEP_RUNS, backstop_s: float = BACKSTOP_S, hard_exit: bool = False,
             journal_socket: str = JOURNAL_SOCKET, clock: Callable[[], float] = time.time) -> RunResult:
    """Run the checks once, store and log the run. A run already in progress makes this one a
    skip. Should the checks still be running deadline + backstop_s after the start, the run is
    recorded and logged as `overran`, and then, with hard_exit (the command line), the process
    ends at once (a thread stuck in a system call cannot hold it); without, this returns."""
    from installer.planning.redact import masker

    result = RunResult()
    lock = _lock(root)
    if isinstance(lock, str):
        result.skipped_by = lock
        return result
    started = clock()
    previous = last_with_checks(load_runs(root))
    finished = {"done": False}

    def finish(run: dict[str, Any]) -> None:
        if finished["done"]:
            return
        finished["done"] = True
        result.record = run
        result.saved = save_run(root, run, keep)
        result.journal_problem = journal_send(entries(run), journal_socket)

    def overran(signum: int, frame: FrameType | None) -> None:
        finish(no_results("overran", f"the run did not end within its deadline of {deadline:g} s "
                                     f"(+{backstop_s:g} s); it was stopped", started=started, finished=clock(),
                          plan=plan_path))
        if hard_exit:
            os.write(2, f"watchdog: overran its deadline of {deadline:g} s; stopped (kept in {result.saved})\n"
                        .encode(errors="replace"))
            os._exit(2)
        raise _Overran()

    armed = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGALRM, overran) if armed else None
    try:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, deadline + backstop_s)
        try:
            plan = load_plan(plan_path)
            report, problem = (checker or live_checks)(plan, timeout, deadline), None
        except CheckProblem as e:
            problem = e
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)  # from here on only the saving and logging
        if problem is not None:
            finish(no_results("error", str(problem), started=started, finished=clock(), plan=plan_path))
        else:
            finish(run_record(report, previous, started=started, finished=clock(), plan=plan_path,
                              mask=masker(plan.secrets())))
    except _Overran:
        pass
    finally:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, before)
        os.close(lock)
    return result


def _lock(root: Path) -> int | str:
    """The run lock's descriptor (held until closed), or the pid of the run holding it."""
    path = lock_path(root)
    make_dirs(path.parent, PRIVATE_DIR_MODE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            os.close(fd)
            raise
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        return holder
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def entries(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The journal entries of a run: one per check, then the run's own (already masked)."""
    out = []
    for c in run["checks"]:
        message = f"{c['id']} {c['target']}: {c['status'].upper()} ({c['diagnosis']})"
        if c["status"] in ("fail", "warn"):
            message += f", since {when(c['since'])} ({c['runs']} run{'s' if c['runs'] != 1 else ''})"
        entry = {"MESSAGE": ascii_safe(message, 1000), "PRIORITY": PRIORITY.get(c["status"], 6),
                 "MESSAGE_ID": CHECK_MESSAGE_ID, "EDGE_RUN": run["run"], "EDGE_CHECK_ID": c["id"],
                 "EDGE_TARGET": ascii_safe(c["target"], 500), "EDGE_CHECK_STATUS": c["status"],
                 "EDGE_DIAGNOSIS": c["diagnosis"], "EDGE_EVIDENCE": ascii_safe(c["evidence"], 2000),
                 "EDGE_SINCE": when(c["since"]), "EDGE_STREAK_RUNS": c["runs"]}
        if c.get("profile"):
            entry["EDGE_PROFILE"] = c["profile"]
        change = next((ch["change"] for ch in run["changes"] if ch["key"] == c["key"]), None)
        if change:
            entry["EDGE_CHANGE"] = change
        out.append(entry)
    out.append({"MESSAGE": ascii_safe(summary_line(run), 3000), "PRIORITY": PRIORITY.get(run["verdict"], 3),
                "MESSAGE_ID": RUN_MESSAGE_ID, "EDGE_RUN": run["run"], "EDGE_VERDICT": run["verdict"],
                "EDGE_PLAN": ascii_safe(run["plan"], 500), "EDGE_CHANGES": len(run["changes"]),
                "EDGE_DURATION_S": f"{run['finished'] - run['started']:.3f}",
                **{f"EDGE_{k.upper()}": v for k, v in run["summary"].items()}})
    return out


def summary_line(run: dict[str, Any]) -> str:
    """The run in one line: its verdict, counts and changes."""
    if run["verdict"] not in VERDICTS:
        return f"watchdog run: {run['verdict'].upper()}: {run.get('message', '')}"
    counts = ", ".join(f"{run['summary'].get(s, 0)} {s}" for s in ("pass", "warn", "fail", "skip"))
    line = f"watchdog run: {run['verdict'].upper()}: {counts}"
    if run["previous"] is None:
        return line + "; first run"
    if not run["changes"]:
        return line + "; nothing changed since the run before"
    shown = "; ".join(describe_change(c) for c in run["changes"][:5])
    more = f"; and {len(run['changes']) - 5} more" if len(run["changes"]) > 5 else ""
    return line + f"; {len(run['changes'])} changed since the run before: {shown}{more}"
