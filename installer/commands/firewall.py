"""`edge-installer firewall-request --plan PLAN --format md|csv`: the rules for the IT team."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from installer.commands import load_valid_plan

if TYPE_CHECKING:
    from installer.planning.plan import Plan
    from installer.vendors.profilemodel import Catalog


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("firewall-request", help="the firewall rules the plant must allow, as Markdown or CSV",
                       description="Print every rule the plan's profiles need: destination, stated or resolved "
                                   "IPs, port, protocol, direction, purpose, source document.")
    p.add_argument("--plan", required=True, metavar="PLAN", help="the plan file (YAML)")
    p.add_argument("--format", choices=("md", "csv"), default="md", help="md (default) or csv")
    p.add_argument("--resolve", action="store_true",
                   help="also list the addresses each name resolves to now (asks the plan's resolvers)")
    p.add_argument("--timeout", type=float, default=3.0, metavar="S", help="per-query timeout with --resolve")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from installer.box.identity import identify
    from installer.vendors import firewall
    from installer.vendors.profiles import load_catalog

    plan = load_valid_plan(args.plan)
    catalog = load_catalog()
    resolved = _resolve(plan, catalog, args.timeout) if args.resolve else None
    rows = firewall.rules(plan, catalog, resolved)
    print(firewall.to_csv(rows) if args.format == "csv" else firewall.to_markdown(rows, plan, identify(plan)), end="")
    return 0


def _resolve(plan: Plan, catalog: Catalog, timeout: float) -> dict[str, tuple[str, ...] | str]:
    """Names -> addresses through the plan's resolvers, all at once, bounded by the timeout; a
    name that gave none maps to the reason (its DNS diagnosis), which the request marks."""
    import asyncio

    from installer.checks import dns
    from installer.checks.planner import build_context
    from installer.planning.fields import is_ip

    ctx = build_context(plan, catalog, timeout=timeout)
    names = sorted({host for pid in plan.profiles for ep in catalog.profiles[pid].endpoints
                    if (host := ep.target(plan.profile_params.get(pid, {}))) and not ep.wildcard
                    and not is_ip(host)})

    async def all_names() -> dict[str, tuple[str, ...] | str]:
        outcomes = await asyncio.gather(*(dns.dns_resolve(ctx, {}, host=n) for n in names), return_exceptions=True)
        found: dict[str, tuple[str, ...] | str] = {}
        for n, o in zip(names, outcomes, strict=True):
            if isinstance(o, BaseException):
                found[n] = "the lookup failed"
            elif o.status in ("pass", "warn") and o.facts.get("addresses"):
                found[n] = tuple(o.facts["addresses"])
            else:
                found[n] = o.diagnosis
        return found

    return asyncio.run(all_names())
