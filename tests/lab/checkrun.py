"""Running `edge-installer check --json` inside the lab's edge namespace, as the lab tests do,
and reading its document.

    rc, doc, wall = check(healthy_lab, tmp_path, "--timeout", "1", profiles=["machinemetrics"])
    assert one(doc, "tls-verify", "api.machinemetrics.com:443")["diagnosis"] == "tls-intercepted"
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "installer"]


def check(lab, tmp_path, *extra: str, timeout_s: float = 60, **plan_changes: Any) -> tuple[int, dict, float]:
    """The real command in the edge namespace on lab.plan(**plan_changes): (exit code, JSON
    document, wall time). It must print its document and never a traceback."""
    plan = lab.write_plan(Path(tmp_path) / "plan.yaml", **plan_changes)
    t0 = time.monotonic()
    proc = lab.edge([*CLI, "check", "--plan", str(plan), "--json", *extra], timeout=timeout_s,
                    env={"PYTHONPATH": str(REPO)})
    wall = time.monotonic() - t0
    assert proc.stdout.strip(), f"no JSON on stdout; stderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), wall


def results(doc: dict, check_id: str, target: str | None = None) -> list[dict]:
    """The document's checks with this id (and target)."""
    return [c for c in doc["checks"] if c["id"] == check_id and (target is None or c["target"] == target)]


def one(doc: dict, check_id: str, target: str | None = None) -> dict:
    """The one check with this id and target."""
    found = results(doc, check_id, target)
    assert len(found) == 1, (check_id, target, [(c["id"], c["target"]) for c in doc["checks"]])
    return found[0]


def problems(doc: dict) -> list[tuple[str, str, str]]:
    """(id, target, diagnosis) of every check that did not pass."""
    return [(c["id"], c["target"], c["diagnosis"]) for c in doc["checks"] if c["status"] != "pass"]
