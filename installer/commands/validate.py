"""`edge-installer validate PLAN`: exit 0, or 2 with one line per problem."""

from __future__ import annotations

import argparse

from installer.commands import load_valid_plan


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="check a plan file; one line per problem",
                       description="Check a plan file. Exit 0 when valid; otherwise print one line per "
                                   "problem (file: field: what would be valid) and exit 2.")
    p.add_argument("plan", metavar="PLAN", help="the plan file (YAML)")
    p.add_argument("--root", metavar="DIR", help="judge it for the box (or staged tree) under DIR "
                                                 "(default: this box)")
    from installer.commands.render import add_target_arguments

    add_target_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from installer.commands import check_root
    from installer.commands.render import detect_target
    from installer.planning.validate import default_context

    check_root(args.root)
    # Refused here too when this box lacks what the plan needs (a package), as render and
    # apply would refuse it.
    plan = load_valid_plan(args.plan, default_context(target=detect_target(Path(args.root or "/"), args)))
    print(f"{args.plan}: valid ({plan.topology} topology, {plan.renderer} renderer)")
    return 0
