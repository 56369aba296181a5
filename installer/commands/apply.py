"""`edge-installer apply PLAN|BUNDLE [--root DIR] [--set KEY=VALUE ...] [--confirm-timeout S]
[--no-confirm]`: write, apply, re-check, and keep the change only when confirmed in time."""

from __future__ import annotations

import argparse
import contextlib
import select
import signal
import sys
import time
from pathlib import Path

from installer.commands import UsageError, check_root, format_errors


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("apply", help="write and apply a plan (or bundle); revert unless confirmed in time",
                       description="Write the plan's files (atomically, with backups), apply them with the "
                                   "stack's own command, re-check link, DNS and the cloud, and keep the change "
                                   "only when confirmed in time; otherwise restore every file and re-apply. "
                                   "With --root DIR nothing outside DIR is touched and no command runs.")
    p.add_argument("source", metavar="PLAN|BUNDLE", help="a plan file or a bundle")
    p.add_argument("--root", metavar="DIR", help="stage under DIR instead of applying to this box")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="change one field first, e.g. machine_network.address=192.168.50.3/24 (repeatable)")
    p.add_argument("--passphrase-file", metavar="FILE", help="the bundle's passphrase (first line of FILE)")
    p.add_argument("--confirm-timeout", type=float, default=120.0, metavar="S",
                   help="seconds to confirm before reverting (default 120)")
    p.add_argument("--no-confirm", action="store_true", help="keep the change without asking (headless)")
    from installer.commands.render import add_target_arguments

    add_target_arguments(p)
    p.set_defaults(run=run)


def load_source(path: str, passphrase_file: str | None, sets: list[str], ctx=None):
    """A validated plan from a plan file or a bundle, with --set applied."""
    from installer import plan as planmod
    from installer.validate import validate

    raw = Path(path)
    if not raw.is_file():
        raise UsageError(f"{path}: no such file (a plan or a bundle)")
    from installer.bundle import is_bundle

    if is_bundle(raw):
        from installer.bundle import BundleError, load_bundle
        from installer.commands.bundle import read_passphrase

        try:
            loaded = load_bundle(raw, read_passphrase(passphrase_file) if passphrase_file else None)
        except BundleError as e:
            raise UsageError(f"{path}: {e}") from None
        plan = loaded.plan
    else:
        try:
            plan = planmod.load(raw)
        except planmod.PlanError as e:
            raise UsageError(str(e).splitlines()) from None
    if sets:
        from installer.setfield import SetError, apply_sets

        try:
            plan = apply_sets(plan, sets)
        except SetError as e:
            raise UsageError([f"--set {line}" for line in str(e).splitlines()]) from None
    errors = validate(plan, ctx)
    if errors:
        raise UsageError(format_errors(path, errors))
    return plan


def terminal_confirm(seconds: float, report) -> bool:
    """Ask on the terminal; revert when nobody answers 'yes' in time."""
    if report is not None:
        from installer.checks.report import line, text_summary

        for r in report.results:
            print(line(r))
        print(text_summary(report).lstrip("\n"))  # the verdict, then one entry per cause
    if not sys.stdin.isatty():
        print(f"No terminal to confirm on: reverting in {seconds:g} s (use --no-confirm to keep the change "
              "without asking).", flush=True)
    deadline = time.monotonic() + seconds
    print(f"Keep this network configuration? Type yes and Enter within {seconds:g} s, or it is reverted: ",
          end="", flush=True)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            print("\nNo confirmation.")
            return False
        ready, _, _ = select.select([sys.stdin], [], [], min(left, 1.0))
        if ready:
            answer = sys.stdin.readline()
            if not answer:  # end of input: nobody will confirm
                time.sleep(max(0.0, deadline - time.monotonic()))
                print("\nNo confirmation.")
                return False
            return answer.strip().lower() in ("y", "yes")


def run(args: argparse.Namespace) -> int:
    from installer.apply import apply_plan
    from installer.commands.render import describe_target, detect_target
    from installer.validate import default_context
    from installer.system import System

    root = Path(args.root) if args.root else Path("/")
    check_root(args.root)
    target = detect_target(root, args)
    plan = load_source(args.source, args.passphrase_file, args.sets, default_context(target=target))
    system = System(root)
    print(f"{args.source}: {plan.topology} topology, for {describe_target(plan, target)}")
    confirm = (lambda seconds, report: True) if args.no_confirm else terminal_confirm
    try:
        with _signals_interrupt():
            result = apply_plan(plan, system, target, confirm=confirm, confirm_timeout=args.confirm_timeout,
                                progress=_say)
    except Interrupted as e:
        # apply_plan has restored the previous configuration before this arrives here.
        _say(f"\n{e.name}: not confirmed; the previous configuration was restored")
        return 128 + e.signum
    for message in result.messages:
        _say(message)
    if result.rolled_back:
        _say("Restored: " + (", ".join(result.restored) or "nothing needed restoring"))
        return 1
    return 0


class Interrupted(KeyboardInterrupt):
    """A signal ended the wait: SIGHUP (the terminal or SSH session is gone), SIGTERM, SIGINT."""

    def __init__(self, signum: int):
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(self.name)


@contextlib.contextmanager
def _signals_interrupt():
    """SIGHUP, SIGTERM and SIGINT raise Interrupted (once: while the old configuration is put
    back, further signals are ignored, so the rollback is not cut short)."""
    watched = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)

    def handler(signum, frame):
        for s in watched:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    before = {s: signal.signal(s, handler) for s in watched}
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def _say(line: str) -> None:
    """Print, unless the terminal is gone (after SIGHUP): the work goes on regardless."""
    try:
        print(line, flush=True)
    except OSError:
        pass
