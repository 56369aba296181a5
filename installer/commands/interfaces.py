"""`edge-installer interfaces [--json]`: what the box has, and which stack is in charge."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("interfaces", help="list network interfaces and the network stack",
                       description="List the box's interfaces (kind, MAC, carrier, addresses) and say "
                                   "which network stack is in charge.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from installer.box.discover import discover, format_table

    inventory = discover()
    if args.json:
        print(json.dumps(inventory.to_json(), indent=2))
    else:
        print(format_table(inventory))
    return 0
