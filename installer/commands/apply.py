"""`edge-installer apply PLAN|BUNDLE [--root DIR] [--set KEY=VALUE ...] [--confirm-timeout S]
[--no-confirm | --await-confirm | --keep-if-healthy] [--force-address]`: probe the plan's static
addresses on the wire (refused, exit 1, when another device holds one), write, apply, re-check,
and keep the change only when confirmed in time: at the terminal, by `edge-installer confirm`
from another session (which also answers a terminal that waits), or, headless, by the re-check.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from installer.commands import UsageError, check_root, format_errors, seconds_type

if TYPE_CHECKING:
    from installer.checks.runner import Report
    from installer.fleet.bundle import LoadedBundle
    from installer.planning.plan import Plan
    from installer.planning.validate import Context
    from installer.writing.apply import Confirm


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("apply", help="write and apply a plan (or bundle); revert unless confirmed in time",
                       description="Write the plan's files (atomically, with backups), apply them with the "
                                   "stack's own command, re-check link, DNS and the cloud, and keep the change "
                                   "only when confirmed in time; otherwise restore every file and re-apply. "
                                   "With --root DIR nothing outside DIR is touched and no command runs.")
    p.add_argument("source", metavar="PLAN|BUNDLE", help="a plan file or a bundle")
    p.add_argument("--root", metavar="DIR", help="stage under DIR instead of applying to this box")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="change one field first, e.g. machine_network.address=192.168.50.3/24 (repeatable); "
                        "a secret (wifi.passphrase, proxy.password, cellular.password) is never given here: "
                        "--set KEY alone asks for it at the terminal")
    p.add_argument("--set-file", dest="set_files", action="append", default=[], metavar="KEY=FILE",
                   help="set a secret field from the first line of FILE, e.g. proxy.password=/root/proxy.pw")
    p.add_argument("--passphrase-file", metavar="FILE", help="the bundle's passphrase (first line of FILE)")
    p.add_argument("--confirm-timeout", type=confirm_seconds, default=120.0, metavar="S",
                   help=f"seconds to confirm before reverting (default 120; {MIN_CONFIRM_S:g} to {MAX_CONFIRM_S:g})")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--no-confirm", action="store_true", help="keep the change without asking (headless)")
    how.add_argument("--await-confirm", action="store_true",
                     help="headless: keep the change only when `edge-installer confirm` is run (from another "
                          "session, e.g. a controller that reached the box over its new path) within "
                          "--confirm-timeout; no terminal is asked")
    how.add_argument("--keep-if-healthy", action="store_true",
                     help="headless: keep the change only when the re-check after it finds no failure (link, "
                          "addresses, DNS, the cloud; a weak WiFi signal is a warning); otherwise restore it")
    p.add_argument("--force-address", action="store_true",
                   help="apply even when another device answers ARP for a planned static address (e.g. a "
                        "router doing proxy ARP, or the old box about to be removed); a WARNING is printed")
    from installer.commands.bundle import add_trust_arguments
    from installer.commands.render import add_target_arguments

    add_target_arguments(p)
    add_trust_arguments(p, root=False)  # a bundle's signer must be trusted under --root (or --trust-key)
    p.set_defaults(run=run)


# Long enough to walk to the machine and back; short enough that a box cut off by a bad
# change comes back the same day. inf and nan are not waits.
MIN_CONFIRM_S = 0.0
MAX_CONFIRM_S = 86400.0


# --confirm-timeout's value: a finite number of seconds within these bounds.
confirm_seconds = seconds_type(MIN_CONFIRM_S, MAX_CONFIRM_S, " (a day), e.g. 120")


def secret_sets(sets: list[str], set_files: list[str]) -> tuple[list[str], list[str]]:
    """(the --set items to apply, the secrets as KEY=VALUE items): a secret comes from
    --set-file KEY=FILE or, for --set KEY alone, from a prompt at the terminal; a secret
    given as --set KEY=VALUE is refused with the way to give it."""
    from installer.planning.setfield import SetError, read_secret_file, secret_key, secret_refusals

    refused = secret_refusals(sets)
    if refused:
        raise UsageError([f"--set {e}" for e in refused])
    plain: list[str] = []
    secrets: list[str] = []
    for item in sets:
        if "=" not in item and secret_key(item):
            key = item.strip()
            secrets.append(f"{key}={_ask_secret(key, f'give it with --set-file {key}=FILE')}")
        else:
            plain.append(item)
    for item in set_files:
        key, sep, file = item.partition("=")
        key = key.strip()
        if not sep or not key or not file:
            raise UsageError(f"--set-file {item}: give KEY=FILE, e.g. proxy.password=/root/proxy.pw")
        if not secret_key(key):
            raise UsageError(f"--set-file {key}: is not a secret field; use --set {key}=VALUE")
        try:
            secrets.append(f"{key}={read_secret_file(key, file)}")
        except SetError as e:
            raise UsageError(str(e)) from None
    return plain, secrets


def _ask_secret(what: str, other_way: str) -> str:
    """A secret typed at the terminal (not echoed); a clear line when there is no terminal."""
    import getpass

    if not sys.stdin.isatty():
        raise UsageError(f"{what}: no terminal to ask on; {other_way}")
    try:
        value = getpass.getpass(f"{what} (not shown): ")
    except (EOFError, KeyboardInterrupt):
        value = ""
    if not value:
        raise UsageError(f"{what}: nothing was typed; nothing was changed")
    return value


def _needs_passphrase(loaded: LoadedBundle, sets: list[str]) -> bool:
    """A bundle whose encrypted secrets were not unlocked, and not all given another way."""
    given = {item.partition("=")[0].strip() for item in sets}
    return (loaded.manifest.get("secrets", {}).get("state") == "encrypted" and not loaded.secrets_present
            and not set(loaded.missing_secrets) <= given)


def load_source(path: str, passphrase_file: str | None, sets: list[str], ctx: Context | None = None, *,
                root: str | None = None, trust_keys: list[str] | tuple[str, ...] = (),
                allow_unsigned: bool = False) -> Plan:
    """A validated plan from a plan file or a bundle, with --set applied (secrets among `sets`
    are already read: see secret_sets). A bundle must be signed by a key trusted under root
    (or in trust_keys), unless allow_unsigned (see commands.bundle.check_trust)."""
    from installer.planning import plan as planmod
    from installer.planning.validate import validate

    raw = Path(path)
    if not raw.is_file():
        raise UsageError(f"{path}: no such file (a plan or a bundle)")
    from installer.fleet.bundle import is_bundle

    if is_bundle(raw):
        from installer.commands.bundle import read_passphrase
        from installer.fleet.bundle import BundleError, load_bundle

        try:
            loaded = load_bundle(raw, read_passphrase(passphrase_file) if passphrase_file else None)
        except BundleError as e:
            raise UsageError(f"{path}: {e}") from None
        from installer.commands.bundle import check_trust

        check_trust(loaded, path, root, list(trust_keys), allow_unsigned)  # before asking for a passphrase
        if passphrase_file is None and _needs_passphrase(loaded, sets):
            passphrase = (_ask_secret("the bundle's passphrase", "give --passphrase-file FILE")
                          if sys.stdin.isatty() else None)
            if passphrase is None:
                raise UsageError(f"{path}: its secrets are encrypted; give --passphrase-file FILE, or run "
                                 "at a terminal to be asked for the bundle's passphrase")
            try:
                loaded = load_bundle(raw, passphrase)
            except BundleError as e:
                raise UsageError(f"{path}: {e}") from None
        plan = loaded.plan
    else:
        try:
            plan = planmod.load(raw)
        except planmod.PlanError as e:
            raise UsageError(str(e).splitlines()) from None
    if sets:
        from installer.planning.setfield import SetError, apply_sets

        try:
            plan = apply_sets(plan, sets)
        except SetError as e:
            raise UsageError([f"--set {line}" for line in str(e).splitlines()]) from None
    errors = validate(plan, ctx)
    if errors:
        raise UsageError(format_errors(path, errors))
    return plan


def _recheck_report(report: object) -> Report | None:
    """The re-check's Report, which apply_plan hands to confirm() as an `object`; None when the
    re-check did not run."""
    if report is None:
        return None
    from installer.checks.runner import Report

    if not isinstance(report, Report):
        raise TypeError(f"not a re-check report: {type(report).__name__}")
    return report


def _show(report: object) -> None:
    """The re-check's lines and its verdict, as the technician or a controller's log reads them."""
    recheck = _recheck_report(report)
    if recheck is not None:
        from installer.checks.report import line, text_summary

        for r in recheck.results:
            print(line(r))
        print(text_summary(recheck).lstrip("\n"))  # the verdict, then one entry per cause


def _confirmed_remotely(root: Path) -> bool:
    """`edge-installer confirm` was run for the change this process waits on."""
    from installer.writing.writer import confirmation_requested

    return confirmation_requested(root, os.getpid())


def await_confirm(root: Path) -> Confirm:
    """The confirmation by `edge-installer confirm` from another session, polled until the timeout."""
    def confirm(seconds: float, report: object) -> bool:
        _show(report)
        print(f"Waiting up to {seconds:g} s for `edge-installer confirm` (from another session); otherwise "
              "the previous configuration is restored.", flush=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if _confirmed_remotely(root):
                print("Confirmed by `edge-installer confirm`.", flush=True)
                return True
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        print("No confirmation.", flush=True)
        return False
    return confirm


# A weak WiFi signal works, only worse: it never undoes a change by itself.
HEALTH_WARNS_ONLY = ("wifi-signal",)


def keep_if_healthy(seconds: float, report: object) -> bool:
    """Headless: keep the change when the re-check ran and no check failed (see HEALTH_WARNS_ONLY)."""
    recheck = _recheck_report(report)
    _show(recheck)
    if recheck is None:
        print("The re-check did not run: the change is not kept.", flush=True)
        return False
    failed = [r for r in recheck.results if r.status == "fail" and r.id not in HEALTH_WARNS_ONLY]
    if failed:
        print("The re-check failed (" + ", ".join(f"{r.id} {r.target}" for r in failed[:5])
              + (", ..." if len(failed) > 5 else "") + "): the change is not kept.", flush=True)
        return False
    print("The re-check passed: the change is kept.", flush=True)
    return True


def terminal_confirm(seconds: float, report: object, root: Path = Path("/")) -> bool:
    """Ask on the terminal; revert when nobody answers 'yes' in time (or runs `edge-installer
    confirm` from another session)."""
    _show(report)
    if not sys.stdin.isatty():
        print(f"No terminal to confirm on: reverting in {seconds:g} s unless `edge-installer confirm` is run "
              "(headless: --await-confirm, --keep-if-healthy or --no-confirm).", flush=True)
    deadline = time.monotonic() + seconds
    print(f"Keep this network configuration? Type yes and Enter within {seconds:g} s, or it is reverted: ",
          end="", flush=True)
    stdin_open = True
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            print("\nNo confirmation.")
            return False
        if _confirmed_remotely(root):
            print("\nConfirmed by `edge-installer confirm`.")
            return True
        if not stdin_open:  # end of input: only `edge-installer confirm` can answer now
            time.sleep(min(left, 0.2))
            continue
        ready, _, _ = select.select([sys.stdin], [], [], min(left, 0.2))
        if ready:
            answer = sys.stdin.readline()
            if not answer:
                stdin_open = False
                continue
            return answer.strip().lower() in ("y", "yes")


def run(args: argparse.Namespace) -> int:
    from installer.box.system import System
    from installer.commands.render import describe_target, detect_target
    from installer.planning.validate import default_context
    from installer.writing.apply import apply_plan

    root = Path(args.root) if args.root else Path("/")
    check_root(args.root)
    target = detect_target(root, args)
    sets, secrets = secret_sets(args.sets, args.set_files)
    plan = load_source(args.source, args.passphrase_file, sets + secrets, default_context(target=target),
                       root=args.root, trust_keys=args.trust_keys, allow_unsigned=args.allow_unsigned)
    system = System(root)
    print(f"{args.source}: {plan.topology} topology, for {describe_target(plan, target)}")
    confirm: Confirm
    if args.no_confirm:
        confirm = lambda seconds, report: True  # noqa: E731
    elif args.await_confirm:
        confirm = await_confirm(root)
    elif args.keep_if_healthy:
        confirm = keep_if_healthy
    else:
        confirm = lambda seconds, report: terminal_confirm(seconds, report, root)  # noqa: E731
    try:
        with _signals_interrupt():
            result = apply_plan(plan, system, target, confirm=confirm, confirm_timeout=args.confirm_timeout,
                                progress=_say, force_address=args.force_address)
    except Interrupted as e:
        # apply_plan has restored the previous configuration before this arrives here.
        _say(f"\n{e.name}: not confirmed; the previous configuration was restored")
        return 128 + e.signum
    for message in result.messages:
        _say(message)
    if result.refused:
        return 1  # another device holds a planned address: nothing was written
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
def _signals_interrupt() -> Iterator[None]:
    """SIGHUP, SIGTERM and SIGINT raise Interrupted (once: while the old configuration is put
    back, further signals are ignored, so the rollback is not cut short)."""
    watched = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)

    def handler(signum: int, frame: FrameType | None) -> None:
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
