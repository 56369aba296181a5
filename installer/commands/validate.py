"""`edge-installer validate PLAN`: exit 0, or 2 with one line per problem."""

from __future__ import annotations

import argparse

from installer.commands import load_valid_plan


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a plan file; one line per problem",
                       description="Check a plan file. Exit 0 when valid; otherwise print one line per "
                                   "problem (file: field: what would be valid) and exit 2.")
    p.add_argument("plan", metavar="PLAN", help="the plan file (YAML)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    plan = load_valid_plan(args.plan)
    print(f"{args.plan}: valid ({plan.topology} topology, {plan.renderer} renderer)")
    return 0
