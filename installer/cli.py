"""The command line: `edge-installer VERB ...`; with no verb, the wizard.

No traceback reaches a user: bad input exits 2 with one line per problem, a failed write
exits 1 naming the file, and an unexpected error says so in one line (set
EDGE_INSTALLER_DEBUG=1 to see the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import NoReturn

from installer.commands import UsageError

# Each verb and the module under installer.commands that adds its parser and runs it. A module
# is imported only when its verb is used (the wizard, with no verb, imports none of them; --help
# and a word that is no verb import them all, so argparse lists them).
VERBS: dict[str, str] = {
    "validate": "validate", "render": "render", "check": "check", "firewall-request": "firewall", "apply": "apply",
    "confirm": "confirm", "interfaces": "interfaces", "bundle": "bundle", "recover": "recover", "wifi": "wifi",
    "watchdog": "watchdog", "status": "status", "firstboot": "firstboot"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's own errors exit 2 too, without usage noise
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser(verbs: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser with every verb, or with `verbs` only."""
    return _add_verbs(_top_parser(), verbs)


def _top_parser() -> argparse.ArgumentParser:
    """The parser of the wizard's own options, before any verb is added."""
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
    return parser


def _add_verbs(parser: argparse.ArgumentParser, verbs: Iterable[str] | None) -> argparse.ArgumentParser:
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for verb in VERBS if verbs is None else verbs:
        importlib.import_module(f"installer.commands.{VERBS[verb]}").add_parser(sub)
    return parser


def _verbs_needed(argv: Sequence[str], top: argparse.ArgumentParser) -> list[str] | None:
    """The verbs whose parsers `argv` needs: [] for the wizard, [VERB] for a verb, None (all of
    them) for --help or a word that is no verb. Any doubt gives None: all, as before. `top`'s
    options that take a value tell which word after them is that value, not a verb."""
    takes_value = {o for a in top._actions if a.nargs != 0 for o in a.option_strings}
    words = iter(argv)
    for word in words:
        if word in ("-h", "--help", "--"):
            return None
        if word.startswith("-"):
            if word in takes_value:
                next(words, None)
            continue
        return [word] if word in VERBS else None
    return []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `edge-installer` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _top_parser()
    parser = _add_verbs(parser, _verbs_needed(argv, parser))
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
