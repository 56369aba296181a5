"""`edge-installer watchdog enable|disable|run`: the plan's live checks again on a schedule.

enable writes edge-installer-watchdog.service and .timer under <root>/etc/systemd/system
(atomically) and, on the box itself, enables the timer; disable stops it and removes them;
run is what the service runs: the checks once, kept under /var/lib/edge-installer/watchdog and
logged to the journal. `edge-installer status` shows the result.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from installer.commands import UsageError, check_root, check_seconds
from installer.fleet import watchdog as wd
from installer.fleet.watchdog import SERVICE_FILE, STATE_DIR, TIMER_FILE, UNIT
from installer.writing.writer import APPLIED_PLAN


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("watchdog", help="re-run the checks on a schedule (a systemd timer), log them to the journal",
                       description="An opt-in systemd timer that runs the plan's live checks again on a "
                                   "schedule, one run at a time and under a deadline, and logs each check "
                                   "to the journal with structured fields (EDGE_CHECK_ID, EDGE_CHECK_STATUS, "
                                   "EDGE_DIAGNOSIS, ...). `edge-installer status` shows the last run.")
    verbs = p.add_subparsers(dest="watchdog_verb", metavar="enable|disable|run", required=True,
                             parser_class=type(p))
    enable = verbs.add_parser("enable", help="install and start the timer",
                              description="Write the watchdog's service and timer under ROOT/etc/systemd/system "
                                          "and, on this box (no --root), enable and start the timer: the first "
                                          "run comes at once, then one every --every.")
    enable.add_argument("--plan", default=APPLIED_PLAN, metavar="PLAN",
                        help=f"the plan to check, a path on the box (default {APPLIED_PLAN}, where the wizard "
                             "leaves the plan the box was set up with)")
    enable.add_argument("--every", default="15min", metavar="SPAN",
                        help="time between runs, 1min to 1d: 15min, 1h, 900s (default 15min)")
    _check_options(enable)
    enable.add_argument("--root", metavar="DIR", help="write the units under DIR instead of this box (nothing runs)")
    enable.add_argument("--program", metavar="PATH",
                        help="the edge-installer the service runs (default: this one, e.g. "
                             "/usr/local/bin/edge-installer)")
    enable.set_defaults(run=run_enable)
    disable = verbs.add_parser("disable", help="stop the timer and remove its units (the kept runs stay)")
    disable.add_argument("--root", metavar="DIR", help="remove the units under DIR instead of this box")
    disable.set_defaults(run=run_disable)
    once = verbs.add_parser("run", help="run the checks once, keep and log the result (what the timer starts)",
                            description="Run the plan's live checks once, as `check --plan` does, keep the "
                                        f"result under {STATE_DIR} and log it to the journal. A run already "
                                        "in progress makes this one a skip (exit 0). Exit 0 all pass, 1 "
                                        "warnings only, 2 any failure or nothing could be checked.")
    once.add_argument("--plan", default=APPLIED_PLAN, metavar="PLAN", help=f"the plan (default {APPLIED_PLAN})")
    _check_options(once)
    once.add_argument("--root", metavar="DIR", help="keep the runs under DIR instead of / (tests, staging)")
    once.set_defaults(run=run_once)


def _check_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=check_seconds, default=3.0, metavar="S", help="per-check timeout (default 3)")
    p.add_argument("--deadline", type=check_seconds, metavar="S",
                   help="the whole run's deadline (default: 4 x timeout + 2, as for check)")


def _deadline(args: argparse.Namespace) -> float:
    from installer.checks.runner import default_deadline

    return args.deadline if args.deadline is not None else default_deadline(args.timeout)


def _root(args: argparse.Namespace) -> Path:
    check_root(args.root)
    return Path(args.root) if args.root else Path("/")


def run_enable(args: argparse.Namespace) -> int:
    from installer.box.system import System
    from installer.commands import load_valid_plan
    from installer.writing.apply import self_command
    from installer.writing.writer import atomic_write, box_path

    root = _root(args)
    try:
        every = wd.parse_every(args.every)
    except ValueError as e:
        raise UsageError(f"--every: {e}") from None
    plan = args.plan
    if not plan.startswith("/"):
        if args.root:
            raise UsageError(f"--plan {plan}: give the plan's absolute path on the box (with --root)")
        plan = os.path.abspath(plan)
    where = box_path(root, plan)
    if not where.is_file():
        raise UsageError(f"--plan {plan}: no such file{' under ' + str(root) if args.root else ''}; the wizard "
                         f"leaves the box's plan at {APPLIED_PLAN} when it finishes, or give --plan PLAN")
    load_valid_plan(str(where))  # a plan that cannot be checked is refused now, not at every run
    if args.program:
        if not args.program.startswith("/"):
            raise UsageError(f"--program {args.program}: give an absolute path, e.g. /usr/local/bin/edge-installer")
        program: list[str] = [args.program]
        env: dict[str, str] = {}
    else:
        program, env = self_command()
    deadline = _deadline(args)
    for path, text in ((SERVICE_FILE, wd.service_unit(program, env, plan, args.timeout, deadline)),
                       (TIMER_FILE, wd.timer_unit(every))):
        atomic_write(box_path(root, path), text.encode(), 0o644)
        print(f"wrote {box_path(root, path)}")
    system = System(root)
    failed = False
    for argv in (["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", f"{UNIT}.timer"]):
        done = system.run(argv)
        print(done.describe())
        failed = failed or not done.ok
    if failed:
        print(f"edge-installer: watchdog: the timer is not running; the units stay under {root / 'etc/systemd/system'}",
              file=sys.stderr)
        return 1
    if system.live:
        print(f"Watchdog on: a first run now, then every {wd.span(every)} (deadline {deadline:g} s). "
              "See `edge-installer status`, or journalctl -t edge-installer-watchdog.")
    else:
        print(f"Staged under {root}: nothing was enabled; on the box the timer runs every {wd.span(every)}.")
    return 0


def run_disable(args: argparse.Namespace) -> int:
    from installer.box.system import System
    from installer.writing.writer import box_path

    root = _root(args)
    # The wants link too: `systemctl enable` makes it on the box (and `systemctl --root` on a stage).
    present = [p for p in (wd.TIMER_LINK, TIMER_FILE, SERVICE_FILE) if os.path.lexists(box_path(root, p))]
    if not present:
        print("watchdog: not enabled; nothing to do")
        return 0
    system = System(root)
    stopped = system.run(["systemctl", "disable", "--now", f"{UNIT}.timer"])
    print(stopped.describe())
    for path in present:
        # `systemctl disable` has removed the wants link already on a running box.
        if os.path.lexists(box_path(root, path)):
            box_path(root, path).unlink()
            print(f"removed {box_path(root, path)}")
    print(system.run(["systemctl", "daemon-reload"]).describe())
    print(f"Watchdog off. Its runs stay under {box_path(root, STATE_DIR)} (`edge-installer status` still reads them).")
    return 0 if stopped.ok else 1


def run_once(args: argparse.Namespace) -> int:
    from installer.text import ascii_safe

    root = _root(args)
    plan = args.plan if args.plan.startswith("/") else os.path.abspath(args.plan)
    result = wd.run_once(root, plan, timeout=args.timeout, deadline=_deadline(args), hard_exit=True)
    if result.record is None:
        print(f"watchdog: skipped: another run is in progress (pid {result.skipped_by})")
        return 0
    print(ascii_safe(wd.summary_line(result.record), 4000))
    if result.journal_problem:
        print(f"watchdog: not logged to the journal: {result.journal_problem}; the run is kept in {result.saved}",
              file=sys.stderr)
    return _ended(result.exit_code)


def _ended(code: int) -> int:
    """The run is stored and logged: a worker thread of a check cut at the deadline (stuck in a
    blocking call until its own timeout) must not keep the process, and the unit, running."""
    import threading

    if threading.active_count() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
