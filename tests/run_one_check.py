"""Run one TLS/HTTPS/NATS/CoAP check from a plan file and print its outcome as JSON.

For the lab tests: they run this inside the lab's edge namespace, so the check sees the
lab's DNS, routes, firewall and proxy. It builds the Context and Dest as the planner does
(the plan's proxy unless no_proxy covers the host, the plan's extra CA file), resolves the
host with the plan's custom DNS servers unless --address is given, and prints one object
with the fields of a `check --json` entry.

    python tests/run_one_check.py --plan P --check tls-verify --host api.machinemetrics.com --port 443
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from installer.checks.base import Context, Outcome
from installer.checks.coap import coap_tls_issuer
from installer.checks.https import https_ping
from installer.checks.nats import nats_info
from installer.checks.net import Dest, bypasses_proxy, proxy_from_plan
from installer.checks.tls import tls_verify
from installer.planning import plan as plan_mod
from installer.vendors.profiles import load_catalog

CHECKS = {"tls-verify": tls_verify, "https-ping": https_ping, "nats-info": nats_info,
          "coap-tls-issuer": coap_tls_issuer}
SERVICE = {"nats-info": "nats", "coap-tls-issuer": "coap"}


def resolve(host: str, plan, timeout: float) -> tuple[str, ...]:
    """A records for host: from the plan's custom DNS servers, else the system resolver."""
    if plan.dns.mode == "custom" and plan.dns.servers:
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = list(plan.dns.servers)
        resolver.lifetime = timeout
        try:
            return tuple(r.address for r in resolver.resolve(host, "A"))
        except Exception as e:  # the dns check's business; say it and stop
            raise SystemExit(f"cannot resolve {host}: {type(e).__name__}: {e}") from e
    return tuple(sorted({ai[4][0] for ai in socket.getaddrinfo(host, None, socket.AF_INET)}))


def find_endpoint(profile, check: str, host: str | None, port: int, params):
    """The profile's endpoint for host:port, else the first of its service on that port."""
    tcp = [e for e in profile.endpoints if e.protocol == "tcp" and e.checks]
    for e in tcp:
        if host is not None and e.target(params) == host and e.port == port:
            return e
    for e in sorted(tcp, key=lambda e: e.port != port):
        if SERVICE.get(check, "https") == e.service:
            return e
    raise SystemExit(f"profile {profile.id} has no checked {SERVICE.get(check, 'https')} endpoint")


def main(argv: list[str] | None = None) -> int:
    """Run the check; print the JSON entry; exit 0 whatever the verdict (1 on bad arguments)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", required=True)
    ap.add_argument("--check", required=True, choices=sorted(CHECKS))
    ap.add_argument("--host")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--address", action="append", default=[])
    ap.add_argument("--path", default="/ping")
    ap.add_argument("--profile")
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args(argv)

    plan = plan_mod.load(args.plan)
    catalog = load_catalog()
    profile = catalog.profiles[args.profile or plan.profiles[0]]
    endpoint = find_endpoint(profile, args.check, args.host, args.port,
                             plan.profile_params.get(profile.id, {}))
    name = args.host or args.address[0]
    proxy = proxy_from_plan(plan) if plan.proxy and not bypasses_proxy(plan, name) else None
    addresses = tuple(args.address) or (() if proxy else resolve(args.host, plan, args.timeout))
    dest = Dest(args.host, args.port, addresses, proxy=proxy)
    ctx = Context(plan, catalog, timeout=args.timeout, proxy=proxy, extra_ca_file=plan.tls.extra_ca_file)
    fn = CHECKS[args.check]
    if args.check == "https-ping":
        fn = functools.partial(fn, path=args.path)
    fn = functools.partial(fn, dest=dest, endpoint=endpoint, profile=profile)

    async def bounded() -> Outcome:
        return await asyncio.wait_for(fn(ctx, {}), args.timeout * 2 + 0.5)

    try:
        out = asyncio.run(bounded())
    except TimeoutError:
        out = Outcome("fail", "timeout", f"no verdict within {args.timeout * 2 + 0.5:g} s")
    except Exception as e:
        out = Outcome("fail", "check-error", f"{type(e).__name__}: {e}")
    remediation = out.remediation
    if remediation is None and out.status in ("warn", "fail"):
        remediation = profile.remediation_for(out.diagnosis, endpoint)
    facts = {k: str(v) for k, v in out.facts.items() if k in ("issuer", "issuer_dn", "not_after", "status")}
    print(json.dumps({"id": args.check, "target": dest.label, "status": out.status, "diagnosis": out.diagnosis,
                      "evidence": out.evidence, "remediation": remediation or "", "profile": profile.id,
                      "facts": facts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
