"""The watchdog (issue 13, part 3) under a real systemd, on a booted Debian 12 box (tests/box):
`watchdog enable` installs and starts the timer, systemd runs the hardened service
(ProtectSystem=strict, its own state directory, ...), the checks run inside that sandbox and
reach the lab's cloud, every check lands in the box's journal with its structured fields, and
`status` shows the last run; a fault put on the lab's firewall between two runs shows as a
change, and the failing check says since when it fails. The state in effect is read back:
`systemctl`, `journalctl -o json`, `edge-installer status --json`.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.box import product as P
from tests.box.fixtures import boot_box, box_session, installed, pyz  # noqa: F401  (fixtures)

pytestmark = pytest.mark.box

UNIT = "edge-installer-watchdog"


def run_once(box) -> dict:
    """The service started once by systemd (as the timer starts it), then `status --json`."""
    box.exec(["systemctl", "start", f"{UNIT}.service"], timeout=240)  # oneshot: returns when it ends
    done = box.exec([P.BIN, "status", "--json"], timeout=60)
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def journal(box, since_cursor: str | None = None) -> list[dict]:
    """The watchdog's journal entries (JSON), after `since_cursor` when given."""
    argv = ["journalctl", "-o", "json", "--no-pager", f"_SYSTEMD_UNIT={UNIT}.service"]
    if since_cursor:
        argv += ["--after-cursor", since_cursor]
    out = box.exec(argv, timeout=60).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_the_watchdog_runs_under_systemd_and_logs_each_check_to_the_journal(installed):
    box = installed("networkd")
    plan = P.plan_for(box.lab, renderer="netplan", uplink="static", dns="custom", ntp="custom")
    P.put_plan(box, plan)
    done = P.apply(box, P.PLAN, "--no-confirm")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    t0 = time.monotonic()
    enabled = box.exec([P.BIN, "watchdog", "enable", "--plan", P.PLAN, "--every", "30min"], timeout=120)
    assert enabled.returncode == 0, f"{enabled.stdout}\n{enabled.stderr}"
    assert box.exec(["systemctl", "is-enabled", f"{UNIT}.timer"]).stdout.strip() == "enabled"
    assert box.exec(["systemctl", "is-active", f"{UNIT}.timer"]).stdout.strip() == "active"
    # systemd's own view of the service's sandbox: what the unit file promised is in effect.
    props = box.exec(["systemctl", "show", f"{UNIT}.service", "-p", "ProtectSystem", "-p", "Type"]).stdout
    assert "ProtectSystem=strict" in props and "Type=oneshot" in props, props

    first = run_once(box)
    last = first["last_run"]
    assert last is not None, first
    summary = last["summary"]
    print(f"\nfirst run under systemd: {last['verdict']} {summary}; failing/warning: "
          f"{[(c['id'], c['target'], c['diagnosis']) for c in first['failing'] + first['warning']]}")
    # The sandbox lets the checks do their work: the cloud answered, by name, through the lab.
    assert summary.get("pass", 0) > 10, last
    failing = {(c["id"], c["target"]) for c in first["failing"]}
    assert not [k for k in failing if k[0] in ("dns-resolve", "tcp-connect", "link-state")], first["failing"]
    entries = journal(box)
    per_check = [e for e in entries if "EDGE_CHECK_ID" in e]
    assert len(per_check) >= summary.get("pass", 0), len(per_check)
    sample = per_check[0]
    for field in ("EDGE_CHECK_STATUS", "EDGE_DIAGNOSIS", "EDGE_TARGET", "PRIORITY", "MESSAGE"):
        assert field in sample, sample
    cursor = entries[-1]["__CURSOR"]

    # A fault on the plant's firewall between two runs: HTTPS to the cloud refused.
    box.lab.block(443, action="reject")
    second = run_once(box)
    changed = [c for c in second["changes"] if c["id"] == "tcp-connect" and c["to"] == "fail"]
    assert changed, second["changes"]
    now_failing = [c for c in second["failing"] if c["id"] == "tcp-connect"]
    assert now_failing and all(c["runs"] == 1 for c in now_failing), second["failing"]
    logged = [e for e in journal(box, cursor) if e.get("EDGE_CHECK_ID") == "tcp-connect"
              and e.get("EDGE_CHECK_STATUS") == "fail"]
    assert logged and logged[0]["EDGE_DIAGNOSIS"] == "tcp-refused", logged[:1]
    text = box.exec([P.BIN, "status"], timeout=60).stdout
    assert "tcp-connect" in text and "pass -> fail" in text, text
    print(f"second run: {second['last_run']['verdict']}; changes: {len(second['changes'])}; "
          f"journal: {logged[0]['MESSAGE'][:120]!r}; {time.monotonic() - t0:.0f} s")

    off = box.exec([P.BIN, "watchdog", "disable"], timeout=120)
    assert off.returncode == 0, off.stderr
    assert box.exec(["systemctl", "is-enabled", f"{UNIT}.timer"]).stdout.strip() != "enabled"
