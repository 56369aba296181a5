#!/usr/bin/env python3
"""Benchmark of the live checks, in the network lab (needs root): prints its figures.

    sudo .venv/bin/python bench/checks.py [--timeout S] [--runs N]

1. The full MachineMetrics profile with 3 endpoints blackholed (3 of the 4 NATS addresses:
   their SYNs are dropped): wall time, the per-check timeout and their ratio (target <= 1.2).
2. The same checks run one by one (target: at least 5x slower than concurrent), twice:
   with our prerequisites (a check after a failed one is skipped) and with every check
   trying on its own, as `iotedge check`'s checks do.
3. The healthy lab's wall time (target < 0.5 s).
4. One run per fault class the checks diagnose (issue 10): its wall time against the run's
   deadline (every run must end within it), the findings it gave, and the new probes' cost.

Figures are medians of --runs runs, measured inside the lab's edge namespace around the
runner only (the interpreter's start-up is not the checks' time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Runs inside the edge namespace: plan the checks, run them concurrently or one by one.
PROBE = r"""
import asyncio, json, sys, time
sys.path.insert(0, {repo!r})
from installer.planning import plan as planmod
from installer.checks.planner import build_context, plan_checks, remediation
from installer.checks.runner import run_checks
from installer.checks.base import Outcome

plan = planmod.load({plan!r})
ctx = build_context(plan, timeout={timeout})
checks = plan_checks(plan, ctx)

async def one_by_one(independent):
    # The serial way: each check waits for the previous one to finish. `independent`: every
    # check tries on its own, as iotedge check's do (no skipping after a failed prerequisite).
    done = {{}}
    for c in checks:
        for group in c.needs:
            if not independent and not any(k in done and done[k].status in ("pass", "warn") for k in group):
                break
        else:
            t0 = time.monotonic()
            try:
                o = await asyncio.wait_for(c.run(ctx, {{**done}}), ctx.timeout * 2 + 0.5)
            except Exception as e:
                o = Outcome("fail", "x", str(e))
            from installer.checks.base import Result
            done[c.key] = Result(c.id, c.kind, c.target, o.status, o.diagnosis, o.evidence, "",
                                 time.monotonic() - t0, c.profile, c.key, o.facts)
            continue
        from installer.checks.base import Result
        done[c.key] = Result(c.id, c.kind, c.target, "skip", "prerequisite-failed", "", "", 0.0, c.profile, c.key)
    return done

mode = {mode!r}
t0 = time.monotonic()
if mode == "concurrent":
    report = asyncio.run(run_checks(checks, ctx, remediation=remediation(plan, ctx.catalog)))
    summary = report.summary
else:
    done = asyncio.run(one_by_one(mode == "independent"))
    summary = {{s: sum(1 for r in done.values() if r.status == s) for s in ("pass", "warn", "fail", "skip")}}
findings = []
if mode == "concurrent":
    from installer.checks.findings import group
    from installer.checks.runner import default_deadline
    findings = [f.cause for f in group(report.results)[0]]
print(json.dumps({{"wall": time.monotonic() - t0, "checks": len(checks), "summary": summary,
                  "findings": findings, "deadline": default_deadline({timeout}) if mode == "concurrent" else None}}))
"""


def measure(lab, plan: Path, timeout: float, mode: str, runs: int) -> tuple[float, dict]:
    walls, last = [], {}
    for _ in range(runs):
        code = PROBE.format(repo=str(REPO), plan=str(plan), timeout=timeout, mode=mode)
        proc = lab.edge([sys.executable, "-c", code], timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"probe failed: {proc.stderr}")
        last = json.loads(proc.stdout)
        walls.append(last["wall"])
    return statistics.median(walls), last


def main() -> int:
    from tests.lab import Lab

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=3.0, help="per-check timeout (default 3 s)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median; default 3)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eibench-"))
    faults = [
        ("DNS sinkhole (0.0.0.0 for one name)", lambda lab: lab.dns_filter("api.machinemetrics.com")),
        ("truncated DNS answer, TCP 53 dropped", lambda lab: (lab.dns_large_answer("api.machinemetrics.com"),
                                                             lab.block(53, proto="tcp", action="drop"))),
        ("first DNS query lost", lambda lab: lab.dns_drop(first=1)),
        ("path-MTU black hole", lambda lab: lab.mtu_blackhole()),
        ("captive portal", lambda lab: lab.captive_portal()),
        ("TLS inspection (DPI)", lambda lab: lab.intercept_tls()),
        ("NATS cut after CONNECT", lambda lab: lab.nats_cut_after_connect()),
        ("OpenVPN reset by a VPN-blocking rule", lambda lab: lab.block_openvpn()),
        ("poor link (150 ms, 30% loss)", lambda lab: lab.poor_link(delay_ms=150, loss_pct=30)),
    ]
    fault_rows = []
    with Lab("eibench", work) as lab:
        plan = lab.write_plan(work / "plan.yaml", profiles=["machinemetrics"])
        healthy, _ = measure(lab, plan, args.timeout, "concurrent", args.runs)
        all_plan = lab.write_plan(work / "all.yaml", profiles=["machinemetrics", "izuma-device-management",
                                                                 "siemens-industrial-edge"])
        healthy_all, ha = measure(lab, all_plan, args.timeout, "concurrent", args.runs)
        proxy_plan = lab.write_plan(work / "proxy.yaml", profiles=["machinemetrics"], proxy=lab.proxy_settings())
        for name, apply in faults:
            lab.reset()
            apply(lab)
            wall, f = measure(lab, plan, args.timeout, "concurrent", 1)
            fault_rows.append((name, wall, f))
        lab.reset()
        lab.proxy_connect_ports((443,))
        wall, f = measure(lab, proxy_plan, args.timeout, "concurrent", 1)
        fault_rows.append(("proxy tunnels to 443 only", wall, f))
        lab.reset()
        for address in ("54.218.103.126", "52.24.16.63", "52.34.161.223"):
            lab.block(7422, action="drop", address=address)
        blackholed, b = measure(lab, plan, args.timeout, "concurrent", args.runs)
        serial, s = measure(lab, plan, args.timeout, "serial", 1)
        independent, i = measure(lab, plan, args.timeout, "independent", 1)
    ratio = blackholed / args.timeout
    rows = [
        ("checks planned (MachineMetrics profile + 5 machines)", f"{b['checks']}", ""),
        ("healthy lab, wall time", f"{healthy:.3f} s", "target < 0.5 s" + (" OK" if healthy < 0.5 else " MISSED")),
        (f"healthy lab, all three profiles ({ha['checks']} checks)", f"{healthy_all:.3f} s",
         "target < 0.5 s" + (" OK" if healthy_all < 0.5 else " MISSED")),
        ("3 endpoints blackholed, wall time", f"{blackholed:.3f} s", f"summary {b['summary']}"),
        ("per-check timeout", f"{args.timeout:.3f} s", ""),
        ("wall / timeout", f"{ratio:.2f}", "target <= 1.2" + (" OK" if ratio <= 1.2 else " MISSED")),
        ("same checks one by one, same prerequisites, wall", f"{serial:.3f} s", f"summary {s['summary']}"),
        ("  ratio to concurrent", f"{serial / blackholed:.1f}x",
         "target >= 5x" + (" OK" if serial / blackholed >= 5 else " MISSED (bounded by 3 blackholed endpoints)")),
        ("same checks one by one, each on its own (iotedge-like)", f"{independent:.3f} s",
         f"summary {i['summary']}"),
        ("  ratio to concurrent", f"{independent / blackholed:.1f}x",
         "target >= 5x" + (" OK" if independent / blackholed >= 5 else " MISSED")),
    ]
    for name, wall, f in fault_rows:
        within = wall <= f["deadline"]
        rows.append((f"fault: {name}", f"{wall:.3f} s",
                     f"deadline {f['deadline']:g} s {'OK' if within else 'MISSED'}; findings: "
                     + (", ".join(f["findings"]) or "none")))
    width = max(len(r[0]) for r in rows)
    print(f"edge-installer check benchmark (lab, median of {args.runs} runs)")
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>10}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
