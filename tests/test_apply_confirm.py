"""Headless confirmation of an applied change (the fleet's and the first boot's way): `apply
--await-confirm` keeps the change only when `edge-installer confirm` is run from another
session in time (a controller that reached the box again over its new path), which also
answers an apply that waits at a terminal; `apply --keep-if-healthy` keeps it only when the
re-check after it failed nothing (a weak WiFi signal is only a warning). Each case runs the
real program in its own process, on a box under a temporary root whose stack commands are
recorded, not run (tests/test_apply_interrupted.py); the re-check's verdict is given to the
process, since the temporary box has no network of its own to ask."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.lab.fixtures import lab  # noqa: F401  (the network lab, needs root)
from tests.test_apply import tree
from tests.test_apply_interrupted import (
    LIVE_CLI,
    PLAN_FILE,
    REPO,
    commands_run,
    manifests,
    old_box_at,
    wait_for_the_answer,
)

# LIVE_CLI, with the re-check answering what EDGE_TEST_RECHECK says: "none" (it could not run)
# or a list of "id:status" results.
RECHECK_CLI = LIVE_CLI.replace("installer.writing.apply.recheck = lambda plan, timeout: None", textwrap.dedent("""\
    def recheck(plan, timeout):
        import os
        from installer.checks.base import Result
        from installer.checks.runner import Report
        given = os.environ["EDGE_TEST_RECHECK"]
        if given == "none":
            raise RuntimeError("no route to run it")
        results = [Result(i, "link", "enp2s0", s, "ok" if s == "pass" else "x", f"{i} {s}", "", 0.0, None)
                   for i, s in (item.split(":") for item in given.split(","))]
        return Report(results, 0.1)
    installer.writing.apply.recheck = recheck
    """))
assert RECHECK_CLI != LIVE_CLI


def start(root: Path, log: Path, *flags: str, recheck: str = "link-state:pass", timeout: str = "30",
          ) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RECHECK_CLI, str(log), "apply", str(PLAN_FILE), "--root", str(root),
                             "--confirm-timeout", timeout, *flags],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), "EDGE_TEST_RECHECK": recheck})


def confirm(root: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "installer", "confirm", "--root", str(root), *flags],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def test_await_confirm_keeps_the_change_once_confirm_is_run(tmp_path):
    root, log, before = old_box_at(tmp_path)
    proc = start(root, log, "--await-confirm")
    try:
        wait_for_the_answer(root, log, proc)
        time.sleep(0.5)  # it waits: nothing is kept yet
        assert [m["state"] for m in manifests(root)] == ["unconfirmed"]
        r = confirm(root)
    finally:
        out, err = proc.communicate(timeout=30)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.startswith("confirmed: the change of ") and f"process {proc.pid}" in r.stdout
    assert proc.returncode == 0, (out, err)
    assert "Waiting up to 30 s for `edge-installer confirm`" in out
    assert "Confirmed by `edge-installer confirm`." in out and "confirmed: the new configuration is kept" in err + out
    assert "Traceback" not in err
    assert tree(root) != before
    assert [m["state"] for m in manifests(root)] == ["confirmed"]
    assert commands_run(log).count(["netplan", "apply"]) == 1  # applied once, never restored
    # Nothing waits any more: a second confirm says so, in one line.
    again = confirm(root)
    assert again.returncode == 1 and again.stderr.count("\n") == 1
    assert "no applied change waits for a confirmation" in again.stderr


def test_await_confirm_without_a_confirmation_restores_the_old_configuration(tmp_path):
    root, log, before = old_box_at(tmp_path)
    proc = start(root, log, "--await-confirm", timeout="2")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    assert "No confirmation." in out and "not confirmed within 2 s: restoring the previous configuration" in out + err
    assert tree(root) == before
    assert [m["state"] for m in manifests(root)] == ["restored"]
    assert commands_run(log).count(["netplan", "apply"]) == 2


def test_confirm_answers_an_apply_waiting_at_its_terminal(tmp_path):
    """The technician's apply asks at its terminal (stdin open, nobody types); the controller's
    `edge-installer confirm`, run from another session, answers it too."""
    root, log, _ = old_box_at(tmp_path)
    proc = start(root, log)
    try:
        wait_for_the_answer(root, log, proc)
        r = confirm(root)
    finally:
        out, err = proc.communicate(timeout=30)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert proc.returncode == 0, (out, err)
    assert "Keep this network configuration?" in out and "Confirmed by `edge-installer confirm`." in out
    assert [m["state"] for m in manifests(root)] == ["confirmed"]


@pytest.mark.parametrize("recheck,kept", [
    ("link-state:pass,dns-resolve:pass,https-ping:pass", True),
    ("link-state:pass,wifi-signal:fail,https-ping:warn", True),  # weak, but through
    ("link-state:pass,dns-resolve:fail,https-ping:fail", False),
    ("none", False),  # a re-check that did not run proves nothing
])
def test_keep_if_healthy_keeps_only_what_the_recheck_passed(tmp_path, recheck, kept):
    root, log, before = old_box_at(tmp_path)
    proc = start(root, log, "--keep-if-healthy", recheck=recheck)
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
    if kept:
        assert proc.returncode == 0, (out, err)
        assert "The re-check passed: the change is kept." in out
        assert [m["state"] for m in manifests(root)] == ["confirmed"]
        assert tree(root) != before
    else:
        assert proc.returncode == 1, (out, err)
        why = "The re-check did not run" if recheck == "none" else "The re-check failed (dns-resolve enp2s0, https-ping"
        assert why in out, out
        # Refused at once, not a timeout: the message says which.
        assert "not kept: restoring the previous configuration" in out + err and "not confirmed within" not in out + err
        assert [m["state"] for m in manifests(root)] == ["restored"]
        assert tree(root) == before


def test_headless_ways_are_one_at_a_time(tmp_path):
    root, log, _ = old_box_at(tmp_path)
    r = subprocess.run([sys.executable, "-m", "installer", "apply", str(PLAN_FILE), "--root", str(root),
                        "--no-confirm", "--keep-if-healthy"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "not allowed with argument" in r.stderr and "Traceback" not in r.stderr


# ----------------------------------------------------------------------------- the re-check waits
RECHECK = textwrap.dedent("""
    import json, sys, time
    from installer.planning import plan as planmod
    from installer.writing.apply import recheck
    plan = planmod.load(sys.argv[1])
    t0 = time.monotonic()
    report = recheck(plan, 1.0, settle_s=float(sys.argv[2]))
    print(json.dumps({"s": time.monotonic() - t0, "links": {r.target: r.status for r in report.results
                                                             if r.id == "link-state"}}))
""")


@pytest.mark.parametrize("settle", [0.0, 20.0])
def test_the_recheck_waits_for_a_link_that_comes_up_late(lab, tmp_path, settle):
    """Right after `netplan apply` the uplink is not up yet (here: its cable comes back 3 s
    later, in the network lab): the re-check waits for it, bounded, instead of calling a good
    change broken, which --keep-if-healthy would undo. Without the wait (settle 0) it is judged
    down."""
    import threading

    from tests.lab import topology as T

    lab.reset()
    plan = lab.write_plan(tmp_path / "plan.yaml", profiles=[])
    lab.unplug(T.UPLINK_IF)
    back = threading.Timer(3.0, lab.reset)
    back.start()
    try:
        done = lab.edge([sys.executable, "-c", RECHECK, str(plan), str(settle)], timeout=120,
                        env={"PYTHONPATH": str(REPO)})
    finally:
        back.join()
        lab.reset()
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    print(f"\nsettle {settle:g} s: {seen}")
    if settle:
        assert seen["links"][T.UPLINK_IF] == "pass" and 2.5 < seen["s"] < 60, seen
    else:
        assert seen["links"][T.UPLINK_IF] == "fail", seen
