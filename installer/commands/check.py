"""`edge-installer check --plan PLAN [--json] [--timeout S]`: the live checks.

Exit 0 when every check passes, 1 with warnings only, 2 with any failure (or a bad plan).
Without --json, each result is printed as it arrives, then what must change: one finding per
cause (installer.checks.findings). --json prints the SPEC's document plus `findings`, each check's
`finding` and the `box` it ran on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from installer.commands import UsageError, check_seconds, load_valid_plan

if TYPE_CHECKING:
    from installer.checks.base import Result


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help="run the live checks of a plan against this box's network",
                       description="Check that this box reaches everything the plan's profiles need: "
                                   "links, DNS, NTP, TCP, TLS (interception), HTTPS, NATS, machines. "
                                   "Exit 0 all pass, 1 warnings only, 2 any failure.")
    p.add_argument("--plan", required=True, metavar="PLAN", help="the plan file (YAML)")
    p.add_argument("--json", action="store_true", help="print the machine-readable result (stable schema)")
    p.add_argument("--timeout", type=check_seconds, default=3.0, metavar="S", help="per-check timeout (default 3)")
    p.add_argument("--deadline", type=check_seconds, metavar="S",
                   help="overall deadline (default: 4 x timeout + 2, room for DNS, TCP, TLS, HTTPS in a row "
                        "and the follow-up probes)")
    p.add_argument("--report", metavar="FILE", help="also write the Markdown report for the IT team to FILE")
    p.add_argument("--before-apply", action="store_true",
                   help="the plan is not applied yet: a missing planned address is a warning, not a failure")
    p.set_defaults(run=run)



def run(args: argparse.Namespace) -> int:
    from installer.box.identity import identify
    from installer.checks import findings
    from installer.checks import report as reports
    from installer.checks.planner import build_context, plan_checks, remediation
    from installer.checks.runner import run_checks_sync
    from installer.writing.writer import atomic_write

    plan = load_valid_plan(args.plan)
    if plan.tls.extra_ca_file and not Path(plan.tls.extra_ca_file).is_file():
        raise UsageError(f"{args.plan}: tls.extra_ca_file: {plan.tls.extra_ca_file} does not exist on this box")
    ctx = build_context(plan, timeout=args.timeout)
    try:
        ctx.trust()
    except (OSError, ValueError) as e:
        raise UsageError(f"{args.plan}: tls.extra_ca_file: {plan.tls.extra_ca_file} is not a PEM file of CA "
                         f"certificates ({e})") from None
    checks = plan_checks(plan, ctx, expect_applied=not args.before_apply)

    def progress(result: Result, done: int, total: int) -> None:
        print(reports.line(result), flush=True)

    result = run_checks_sync(checks, ctx, deadline=args.deadline, progress=None if args.json else progress,
                             remediation=remediation(plan, ctx.catalog))
    box = identify(plan)
    if args.json:
        json.dump(findings.document(result, box=box.to_json()), sys.stdout, indent=2)
        print()
    else:
        print(reports.text_summary(result))
    if args.report:
        atomic_write(Path(args.report), reports.markdown(result, plan, box=box).encode(), 0o644)
        if not args.json:
            print(f"\nReport for the IT team: {args.report}")
    return result.exit_code
