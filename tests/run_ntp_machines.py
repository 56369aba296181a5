"""Run one NTP, machine or bandwidth check from a plan file and print its Outcome as JSON.

The lab tests run this inside the edge namespace (`lab.edge([...])`), so the check sees the
edge's network exactly as the installer would:

    python tests/run_ntp_machines.py --plan P ntp [--server IP]
    python tests/run_ntp_machines.py --plan P machine-port --address A
    python tests/run_ntp_machines.py --plan P mtconnect-probe --address A
    python tests/run_ntp_machines.py --plan P bandwidth
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from installer.checks import bandwidth, machines, ntp
from installer.checks.base import Context
from installer.planning import plan as planmod
from installer.vendors.profiles import load_catalog


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--plan", required=True)
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("check", choices=("ntp", "machine-port", "mtconnect-probe", "bandwidth"))
    p.add_argument("--server")
    p.add_argument("--address")
    args = p.parse_args(argv)

    plan = planmod.load(args.plan)
    catalog = load_catalog()
    ctx = Context(plan=plan, catalog=catalog, timeout=args.timeout)
    if args.check == "ntp":
        server = args.server or plan.ntp.servers[0]
        coro = ntp.ntp_server(ctx, {}, server=server, resolve_key=None)
    elif args.check == "bandwidth":
        coro = bandwidth.bandwidth_estimate(ctx, {})
    else:
        machine = next(m for m in plan.machines if m.address == args.address)
        fn = machines.machine_port if args.check == "machine-port" else machines.mtconnect_probe
        coro = fn(ctx, {}, machine=machine, controller=catalog.controllers[machine.controller])
    outcome = asyncio.run(coro)
    print(json.dumps({"status": outcome.status, "diagnosis": outcome.diagnosis, "evidence": outcome.evidence,
                      "remediation": outcome.remediation,
                      "facts": {k: _jsonable(v) for k, v in outcome.facts.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
