"""Run the ARP probes and the apply's address check inside a lab namespace; print JSON.

    ip netns exec eil1-edge python -m tests.lab.arprun '{"do": "probe", "address": "198.51.100.21",
                                                        "interface": "eno1"}'

"probe": one installer.checks.neighbours.arp_probe (method "raw", "arping" or "auto"; "window" in
seconds; "claim": the address is about to be taken, so another device's probe is a conflict).
"apply": installer.writing.apply.apply_plan on a plan file, into a staging root that counts as a
live box (so the probes run, on this namespace's ports) with the stack's commands recorded
instead of run: what matters here is whether anything is written when another device holds a
planned address.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from pathlib import Path


def _probe(spec: dict) -> dict:
    from installer.checks import neighbours

    own = neighbours.box_macs()
    probe = asyncio.run(neighbours.arp_probe(spec["address"], spec["interface"], window_s=spec.get("window", 1),
                                             own_macs=own, method=spec.get("method", "auto"),
                                             claim=bool(spec.get("claim"))))
    return dataclasses.asdict(probe)


def _apply(spec: dict) -> dict:
    from installer.box.system import System
    from installer.planning import plan as planmod
    from installer.render import Target
    from installer.writing.apply import apply_plan

    ran: list[list[str]] = []

    def recorder(argv, **kwargs):
        ran.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, "", "")

    root = Path(spec["root"])
    plan = planmod.load(Path(spec["plan"]))
    lines: list[str] = []
    result = apply_plan(plan, System(root, runner=recorder, live_override=True), Target(),
                        confirm=lambda seconds, report: True, rechecker=lambda plan, timeout: None,
                        progress=lines.append, force_address=bool(spec.get("force")), check_timeout=1.0)
    written = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    return {"refused": result.refused, "messages": result.messages, "progress": lines, "written": written,
            "commands": ran}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    out = {"probe": _probe, "apply": _apply}[spec["do"]](spec)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
