"""Bandwidth: what the listed machines will need, from seed 000's per-machine figures.

No packet is sent: a short speed test says little about a plant's link over a month, and on
a cellular uplink it would spend the data the estimate is meant to protect. The figures are
the seed's ("Bandwidth Requirements"): upload (Edge to cloud) ~1 kbps per standard machine,
~5 kbps per FANUC FOCAS machine; download (cloud to the users' browsers) ~250 bps per machine
for dashboards, ~2 kbps per machine for workcenter views. The per-controller upload class
lives in assets/machine-protocols.yaml, so the catalogue, not this code, holds the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from installer.checks.base import Context, Outcome, Result
from installer.planning.plan import Plan
from installer.vendors.profiles import Catalog

DAYS_PER_MONTH = 30
SECONDS_PER_MONTH = DAYS_PER_MONTH * 24 * 3600
MB = 1_000_000  # data plans count decimal megabytes
SEED = "000_d0122341ad91427d.txt#Bandwidth Requirements"
_SEED_WORDS = "MachineMetrics' Network Requirements, \"Bandwidth Requirements\""
_CELLULAR_WORDS = ("MachineMetrics' Network Requirements, \"Option 5: Cellular Network\", Limitations & Risks: "
                   "\"Potential data caps and overage charges\"")


def monthly_mb(kbps: float) -> float:
    """Megabytes (10^6 bytes) moved in 30 days at a steady `kbps` (10^3 bits per second)."""
    return kbps * 1000 / 8 * SECONDS_PER_MONTH / MB


def estimate(plan: Plan, catalog: Catalog) -> dict[str, Any]:
    """The expected bandwidth of the plan's machines, from the catalogue's per-machine figures.

    Returns plain data (for the wizard's cellular step, the report and the JSON):
    ``machines`` (count), ``by_controller`` (rows of controller, label, count, kbps_each, kbps),
    ``unknown`` (machines whose controller the catalogue lacks; not counted), ``upload_kbps``,
    ``monthly_upload_mb`` (30 days, decimal MB), ``download_kbps`` ({dashboard, workcenter_view}
    for all machines), ``data_cap_mb`` and ``over_cap`` (cellular plans with a cap, else None),
    ``seed``. Upload is what crosses the Edge's uplink; download is the users' browsers
    reading the cloud, which does not pass through the Edge.
    """
    rows: dict[str, dict[str, Any]] = {}
    unknown: list[str] = []
    for m in plan.machines:
        c = catalog.controllers.get(m.controller or "")
        if c is None:
            unknown.append(m.name or m.address or "(unnamed)")
            continue
        row = rows.setdefault(c.id, {"controller": c.id, "label": c.label, "count": 0,
                                     "kbps_each": c.upload_kbps, "kbps": 0.0})
        row["count"] += 1
        row["kbps"] += c.upload_kbps
    upload = sum(r["kbps"] for r in rows.values())
    counted = sum(r["count"] for r in rows.values())
    low, high = catalog.download.range_kbps(counted)
    cap = plan.cellular.data_cap_mb if plan.topology == "cellular" and plan.cellular else None
    monthly = monthly_mb(upload)
    return {
        "machines": len(plan.machines),
        "by_controller": sorted(rows.values(), key=lambda r: (-r["kbps_each"], r["controller"])),
        "unknown": unknown,
        "upload_kbps": upload,
        "monthly_upload_mb": monthly,
        "days": DAYS_PER_MONTH,
        "download_kbps": {"dashboard": low, "workcenter_view": high},
        "data_cap_mb": cap,
        "over_cap": None if cap is None else monthly > cap,
        "seed": SEED,
    }


async def bandwidth_estimate(ctx: Context, prereqs: Mapping[str, Result]) -> Outcome:
    """Judge the estimate: warn `data-cap-exceeded` when a cellular plan's monthly cap is below
    the expected upload volume, otherwise pass with the figures as evidence."""
    e = estimate(ctx.plan, ctx.catalog)
    words = describe(e)
    if e["over_cap"]:
        return Outcome("warn", "data-cap-exceeded",
                       f"{words} This exceeds the cellular plan's cap of {e['data_cap_mb']:,} MB a month.",
                       {"estimate": e}, remediation=(
                           f"The machines are expected to upload about {e['monthly_upload_mb']:,.0f} MB a month, "
                           f"more than the cellular plan's {e['data_cap_mb']:,} MB ({_CELLULAR_WORDS}). Choose a "
                           "data plan with a larger cap, with a margin: the estimate leaves out software updates, "
                           "remote diagnostics and protocol overhead. Or connect fewer machines through this "
                           "Edge, or use a wired or WiFi uplink, which MachineMetrics prefers to cellular."))
    if ctx.plan.topology == "cellular":
        if e["data_cap_mb"] is None:
            words += (" No data cap is given (cellular.data_cap_mb): compare the monthly volume with the "
                      "cellular plan.")
        else:
            words += f" Within the cellular plan's cap of {e['data_cap_mb']:,} MB a month."
    return Outcome("pass", "ok", words, {"estimate": e})


def describe(e: Mapping[str, Any]) -> str:
    """The estimate in one paragraph, saying that it is an estimate and where the figures come from."""
    if not e["machines"]:
        return f"No machines are listed, so there is no upload to estimate ({_SEED_WORDS})."
    parts = ", ".join(f"{r['count']} x {r['label']} at ~{_num(r['kbps_each'])} kbps" for r in e["by_controller"])
    unknown = (f" Not counted (controller type unknown): {', '.join(e['unknown'])}." if e["unknown"] else "")
    dl = e["download_kbps"]
    return (f"Estimate from the per-machine figures of {_SEED_WORDS} (not a measurement): "
            f"{e['machines']} machine{'s' if e['machines'] != 1 else ''} ({parts or 'none counted'}) upload "
            f"~{_num(e['upload_kbps'])} kbps, about {e['monthly_upload_mb']:,.0f} MB per {e['days']} days. "
            f"Browsers viewing them download ~{_num(dl['dashboard'])} kbps (dashboards) to "
            f"~{_num(dl['workcenter_view'])} kbps (workcenter views).{unknown}")


def _num(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.2f}".rstrip("0")
