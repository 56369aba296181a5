"""`edge-installer status [--json] [--root DIR]`: what the watchdog found.

The last run and its verdict, what changed since the run before, and how long each failing
check has failed. Exit 0, 1 or 2 as the last run's checks (as `check`), 3 when there is no run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from installer.commands import check_root
from installer.fleet import watchdog as w
from installer.text import ascii_safe
from installer.writing.writer import box_path

NEVER_RAN = 3  # status's exit code when there is no run to show (0, 1, 2: the last run's, as check's)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="the watchdog's last run, what changed, how long failures last",
                       description="Show the watchdog's last run (edge-installer watchdog), what changed "
                                   "since the run before, and for each check still failing since when and "
                                   "for how long. Exit 0 all pass, 1 warnings only, 2 any failure, 3 no run.")
    p.add_argument("--json", action="store_true", help="print the machine-readable status")
    p.add_argument("--root", metavar="DIR", help="read the box's state under DIR instead of /")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_root(args.root)
    v = view(Path(args.root) if args.root else Path("/"), time.time())
    if args.json:
        json.dump(v, sys.stdout, indent=2)
        print()
    else:
        print("\n".join(text(v)))
    return NEVER_RAN if v["last_run"] is None else int(v["last_run"]["exit_code"])


def view(root: Path, now: float) -> dict[str, Any]:
    """The status as a JSON-ready dict: is the watchdog on, the last run, what changed since the
    run before, and every check failing or warning, since when and for how long (as of the last
    run with results). Read from the kept runs and the unit files, never from the network."""
    root = Path(root)
    timer = box_path(root, w.TIMER_FILE)
    every = None
    try:
        m = re.search(r"^OnUnitActiveSec=(\S+)", timer.read_text(encoding="utf-8", errors="replace"), re.M)
        every = m.group(1) if m else None
    except OSError:
        pass
    runs = w.load_runs(root)
    installed = timer.is_file() and box_path(root, w.SERVICE_FILE).is_file()
    out: dict[str, Any] = {"version": 1, "watchdog": {"installed": installed,
                                                      "enabled": os.path.lexists(box_path(root, w.TIMER_LINK)),
                                                      "every": every},
                           "state_dir": str(box_path(root, w.STATE_DIR)), "runs_kept": len(runs), "now": now,
                           "last_run": None, "previous_run": None, "changes": [], "failing": [], "warning": []}
    if not runs:
        return out
    last = runs[-1]
    out["last_run"] = {k: last.get(k) for k in ("run", "started", "finished", "verdict", "exit_code", "summary",
                                                "plan", "message", "deadline_hit")}
    checked = w.last_with_checks(runs)
    if checked is None:
        return out
    out["checked_run"] = checked["run"]
    before = next((r for r in runs if r["run"] == checked.get("previous")), None)
    if checked.get("previous"):
        out["previous_run"] = {"run": checked["previous"], "started": before and before["started"],
                               "verdict": before and before["verdict"]}
    out["changes"] = checked["changes"]
    for c in checked["checks"]:
        if c["status"] in ("fail", "warn"):
            out["failing" if c["status"] == "fail" else "warning"].append(
                {k: c[k] for k in ("key", "id", "target", "diagnosis", "evidence", "since", "runs")}
                | {"for_s": round(checked["started"] - c["since"], 3)})
    return out


def text(v: Mapping[str, Any]) -> list[str]:
    """The status for a person, every line printable on any terminal."""
    unit = v["watchdog"]
    if unit["enabled"]:
        on = f"enabled, every {unit['every']}" if unit["every"] else "enabled"
    elif unit["installed"]:
        on = "installed but not enabled (edge-installer watchdog enable turns it on)"
    else:
        on = "not enabled (edge-installer watchdog enable turns it on)"
    lines = [f"Watchdog: {on}"]
    last = v["last_run"]
    if last is None:
        lines.append(f"It never ran here: no runs under {v['state_dir']}.")
        return [ascii_safe(line, 2000) for line in lines]
    ago = w.duration(v["now"] - last["started"])
    if last["verdict"] in w.VERDICTS:
        counts = ", ".join(f"{last['summary'].get(s, 0)} {s}" for s in ("pass", "warn", "fail", "skip"))
        lines.append(f"Last run: {w.when(last['started'])} ({ago} ago): {last['verdict'].upper()}: {counts}")
        if last.get("deadline_hit"):
            lines.append(f"  {last['deadline_hit']} check(s) unfinished at the run's deadline")
    else:
        lines.append(f"Last run: {w.when(last['started'])} ({ago} ago): {last['verdict'].upper()}: "
                     f"{last.get('message') or ''}")
        if "checked_run" in v:
            lines.append(f"The last run with results ({v['checked_run']}) is shown below.")
    lines.append(f"  plan: {last['plan']}")
    if "checked_run" not in v:
        return [ascii_safe(line, 2000) for line in lines]
    previous = v["previous_run"]
    if previous is None:
        lines.append("Changed since the run before: nothing to compare (the first run)")
    elif not v["changes"]:
        lines.append(f"Changed since the run before ({_at(previous)}): nothing")
    else:
        lines.append(f"Changed since the run before ({_at(previous)}):")
        lines += [f"  - {w.describe_change(c)}" for c in v["changes"]]
    for key, title in (("failing", "Failing"), ("warning", "Warnings")):
        if v[key]:
            lines.append(f"{title}:")
            for c in v[key]:
                lines.append(f"  - {c['id']} {c['target']}: {c['diagnosis']} for {w.duration(c['for_s'])} "
                             f"(since the run of {w.when(c['since'])}, {c['runs']} run"
                             f"{'s' if c['runs'] != 1 else ''} in a row)")
                if c["evidence"]:
                    lines.append(f"      {c['evidence']}")
    return [ascii_safe(line, 2000) for line in lines]


def _at(previous: Mapping[str, Any]) -> str:
    return w.when(previous["started"]) if previous.get("started") else f"run {previous['run']}, no longer kept"
