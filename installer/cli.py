"""The command line: `edge-installer VERB ...`; with no verb, the wizard.

No traceback reaches a user: bad input exits 2 with one line per problem, a failed write
exits 1 naming the file, and an unexpected error says so in one line (set
EDGE_INSTALLER_DEBUG=1 to see the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from installer.commands import UsageError
from installer.commands import apply as apply_cmd
from installer.commands import bundle as bundle_cmd
from installer.commands import check as check_cmd
from installer.commands import confirm as confirm_cmd
from installer.commands import firewall as firewall_cmd
from installer.commands import firstboot as firstboot_cmd
from installer.commands import interfaces as interfaces_cmd
from installer.commands import recover as recover_cmd
from installer.commands import render as render_cmd
from installer.commands import status as status_cmd
from installer.commands import validate as validate_cmd
from installer.commands import watchdog as watchdog_cmd
from installer.commands import wifi as wifi_cmd

VERBS = (validate_cmd, render_cmd, check_cmd, firewall_cmd, apply_cmd, confirm_cmd, interfaces_cmd, bundle_cmd,
         recover_cmd, wifi_cmd, watchdog_cmd, status_cmd, firstboot_cmd)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's own errors exit 2 too, without usage noise
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every verb."""
    parser = _Parser(prog="edge-installer",
                     description="Set up an edge box's network, check that the plant's network reaches "
                                 "its cloud, and write netplan or NetworkManager configuration.")
    parser.add_argument("--root", dest="wizard_root", metavar="DIR",
                        help="the wizard writes under DIR instead of / (staging, demos)")
    parser.add_argument("--plan", dest="wizard_plan", metavar="FILE", help="start the wizard from this plan")
    parser.add_argument("--resume", action="store_true", help="continue the saved draft where it stopped")
    parser.add_argument("--passphrase-file", dest="wizard_passphrase_file", metavar="FILE",
                        help="with --plan BUNDLE: the bundle's passphrase (first line of FILE)")
    parser.add_argument("--trust-key", dest="wizard_trust_keys", action="append", default=[], metavar="KEY.pub",
                        help="with --plan BUNDLE (or a bundle loaded at the welcome step): also trust the "
                             "public key(s) in this file (repeatable)")
    parser.add_argument("--allow-unsigned", dest="wizard_allow_unsigned", action="store_true",
                        help="use a bundle that is unsigned or signed by an untrusted key (a warning stays on "
                             "every step)")
    parser.add_argument("--plain", action=argparse.BooleanOptionalAction, default=None,
                        help="plain ASCII display for the Linux console and serial lines (default: detected)")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for verb in VERBS:
        verb.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `edge-installer` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "run", None):
            return _wizard(args)
        run: Callable[[argparse.Namespace], int] = args.run  # each verb's add_parser sets its run()
        return run(args)
    except UsageError as e:
        for line in e.lines:
            print(line, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edge-installer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as e:  # the last line of defence: one line, never a traceback
        from installer.writing.writer import WriteError

        if isinstance(e, WriteError):
            print(f"edge-installer: cannot write {e}", file=sys.stderr)
            return 1
        if isinstance(e, OSError) and e.filename:
            print(f"edge-installer: {e.filename}: {e.strerror}", file=sys.stderr)
            return 1
        if isinstance(e, OSError) and not os.environ.get("EDGE_INSTALLER_DEBUG"):
            # A full disk or a failing device is not a bug: say what the system said.
            print(f"edge-installer: {(e.strerror or str(e)).lower()}", file=sys.stderr)
            return 1
        if os.environ.get("EDGE_INSTALLER_DEBUG"):
            raise
        print(f"edge-installer: internal error: {type(e).__name__}: {e} "
              "(run again with EDGE_INSTALLER_DEBUG=1 for details)", file=sys.stderr)
        return 70


def _wizard(args: argparse.Namespace) -> int:
    # Textual is imported only here: every other verb runs without it.
    from screens.run import WizardStartError, run_wizard

    try:
        return run_wizard(args.wizard_root, args.wizard_plan, args.resume, args.plain,
                          args.wizard_passphrase_file, args.wizard_trust_keys, args.wizard_allow_unsigned)
    except WizardStartError as e:
        raise UsageError(f"edge-installer: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
