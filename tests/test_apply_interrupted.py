"""A change applied and not yet confirmed is not kept when the wait for the confirmation ends
any other way: Ctrl+C, SIGTERM or SIGHUP (the SSH session or serial line the change cut off)
restore the old files at once; a process killed without a word (SIGKILL, a power cut) leaves
its backup set "unconfirmed", and `edge-installer recover` (the boot unit, or by hand) puts the
old files back. Each case runs the real program in its own process with a box under a
temporary root whose stack commands are recorded, not run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from installer.planning import plan as planmod
from installer.render import NETPLAN_FILE, Target
from installer.writing.apply import apply_plan
from installer.writing.writer import BACKUP_DIR, revert_unconfirmed
from tests.test_apply import Recorder, live_system, old_box, tree

REPO = Path(__file__).resolve().parent.parent
PLAN_FILE = REPO / "examples/isolated.yaml"

# The real command line, on a box whose root is a temporary directory: System is made "live"
# with a runner that appends each command to a file instead of running it.
LIVE_CLI = textwrap.dedent("""
    import json, subprocess, sys
    from installer.box import system
    log = sys.argv[1]
    def runner(argv, **kwargs):
        with open(log, "a") as f:
            f.write(json.dumps(list(argv)) + "\\n")
        return subprocess.CompletedProcess(argv, 0, "", "")
    real = system.System
    system.System = lambda root, **kw: real(root, runner=runner, live_override=True)
    # No live re-check: the "box" is a temporary directory on this machine, whose network
    # must not be asked anything (the example plan names 8.8.8.8 and the vendors' hosts).
    import installer.writing.apply
    installer.writing.apply.recheck = lambda plan, timeout: None
    from installer.cli import main
    sys.exit(main(sys.argv[2:]))
""")


def manifests(root: Path) -> list[dict]:
    """The backup sets' manifests (a set being created has none yet: skipped)."""
    base = root / BACKUP_DIR.lstrip("/")
    found = []
    for d in sorted(base.iterdir()) if base.is_dir() else ():
        try:
            found.append(json.loads((d / "manifest.json").read_text()))
        except (OSError, ValueError):
            continue
    return found


def commands_run(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def start_apply(root: Path, log: Path) -> subprocess.Popen:
    """`edge-installer apply` waiting for a confirmation that never comes (stdin stays open)."""
    return subprocess.Popen([sys.executable, "-c", LIVE_CLI, str(log), "apply", str(PLAN_FILE),
                             "--root", str(root), "--confirm-timeout", "60"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def live_cli(log: Path, *args: str) -> subprocess.CompletedProcess:
    """The real command line, run to its end on the recorded box."""
    return subprocess.run([sys.executable, "-c", LIVE_CLI, str(log), *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def old_box_at(tmp_path: Path) -> tuple[Path, Path, dict]:
    """(the box's root with its old configuration, the command log, the tree as it is)."""
    root = tmp_path / "box"
    root.mkdir()
    old_box(root)
    return root, tmp_path / "commands.log", tree(root)


def kill_while_waiting(root: Path, log: Path) -> None:
    """`edge-installer apply`, SIGKILLed while it waits for its confirmation."""
    proc = start_apply(root, log)
    try:
        wait_for_the_answer(root, log, proc)
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def wait_unconfirmed(root: Path, proc: subprocess.Popen, seconds: float = 20.0) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = [m for m in manifests(root) if m.get("state") == "unconfirmed"]
        if found:
            return found[0]
        if proc.poll() is not None:
            raise AssertionError(f"apply ended before waiting: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("apply never waited for a confirmation")


def wait_for_the_answer(root: Path, log: Path, proc: subprocess.Popen, seconds: float = 20.0) -> list[list[str]]:
    """The commands logged once `apply` waits for nothing but the answer: the revert timer
    armed, the stack's commands run, the timer for the wait armed and the first one stopped.
    The backup set says "unconfirmed" before the first of them: a kill at that moment would
    leave nothing logged to compare."""
    wait_unconfirmed(root, proc, seconds)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ran = commands_run(log)
        if ran and ran[-1] == ["systemctl", "stop", ran[0][2].removeprefix("--unit=") + ".timer"]:
            return ran
        if proc.poll() is not None:
            raise AssertionError(f"apply ended before waiting: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"apply never got to wait for the answer: {commands_run(log)}")


def test_an_interrupt_while_waiting_restores_the_old_files_then_goes_on(tmp_path):
    old_box(tmp_path)
    before = tree(tmp_path)
    recorder = Recorder()

    def ctrl_c(seconds, report):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        apply_plan(planmod.load(PLAN_FILE), live_system(tmp_path, recorder), Target(), confirm=ctrl_c,
                   rechecker=lambda plan, t: None)
    assert tree(tmp_path) == before
    assert recorder.calls.count(["netplan", "apply"]) == 2  # the change, then the old state again
    assert [m["state"] for m in manifests(tmp_path)] == ["restored"]


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_cli_apply_signalled_while_waiting_restores_the_old_configuration(tmp_path, sig):
    root, log, before = old_box_at(tmp_path)
    proc = start_apply(root, log)
    waiting = wait_unconfirmed(root, proc)
    assert waiting["awaiting"]["pid"] == proc.pid and ["netplan", "apply"] in waiting["awaiting"]["commands"]
    # The marker is set just before the timer is armed: signalled once it waits for the answer
    # (signalled during the stack's commands, the first timer would be the one to stop).
    wait_for_the_answer(root, log, proc)
    assert (root / NETPLAN_FILE.lstrip("/")).exists()  # the change is in place while it waits
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig, (out, err)
    assert "Traceback" not in err
    assert f"{sig.name}: not confirmed; the previous configuration was restored" in out
    assert ("revert timer armed: should this program be killed, systemd restores the previous configuration"
            " in 180 s") in out
    assert tree(root) == before
    assert commands_run(log).count(["netplan", "apply"]) == 2
    assert [m["state"] for m in manifests(root)] == ["restored"]
    # The revert timer armed before the change (re-armed for the wait) is stopped once it is undone.
    unit = commands_run(log)[0][2].removeprefix("--unit=")
    assert commands_run(log)[-1] == ["systemctl", "stop", f"{unit}-wait.timer"]


def test_a_killed_apply_is_undone_by_recover_and_not_while_it_still_waits(tmp_path):
    root, log, before = old_box_at(tmp_path)
    proc = start_apply(root, log)
    try:
        planned = wait_unconfirmed(root, proc)["awaiting"]["commands"]
        # Killed only once it waits for the answer (the set says "unconfirmed" before its
        # first command: killed then, nothing would be logged to compare).
        ran = wait_for_the_answer(root, log, proc)
        # Its process still waits for the answer: a second run must not undo its change.
        assert revert_unconfirmed(root) == []
        assert [m["state"] for m in manifests(root)] == ["unconfirmed"]
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    assert tree(root) != before  # SIGKILL: nothing could run; the new files stayed
    assert commands_run(log) == ran
    # First the dead man's switch (on a real box systemd would run this very recover 60 + 120 s
    # later), then the stack's commands, then the switch for the wait alone (60 + 20 s), which
    # replaces the first.
    assert ran[0][0] == "systemd-run" and "--on-active=180s" in ran[0]
    assert ran[0][-3:] == ["recover", "--root", str(root)]
    unit = ran[0][2].removeprefix("--unit=")
    assert ["netplan", "apply"] in planned and ran[1:-2] == planned
    assert ran[-2][:3] == ["systemd-run", "--quiet", f"--unit={unit}-wait"] and "--on-active=80s" in ran[-2]
    assert ran[-2][-3:] == ["recover", "--root", str(root)]
    assert ran[-1] == ["systemctl", "stop", f"{unit}.timer"]
    # `edge-installer recover` (the boot unit runs it with --boot) puts the old files back.
    r = live_cli(log, "recover", "--root", str(root))
    assert r.returncode == 0, r.stderr
    assert "applied but never confirmed (its process ended): the previous files are back" in r.stdout
    assert tree(root) == before
    # On a running box it applies them again (the boot unit's --boot does not: no network yet).
    # netplan apply, sysctl, resolved... again, and the old host name read back from its file.
    assert ["hostname", "edge-01"] in planned
    assert commands_run(log)[len(ran):] == [["hostname", "-F", "/etc/hostname"] if c[0] == "hostname" else c
                                            for c in planned]
    assert "recovered: ran: netplan apply" in r.stdout
    assert [m["state"] for m in manifests(root)] == ["restored"]
    r = subprocess.run([sys.executable, "-m", "installer", "recover", "--root", str(root), "--boot"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and r.stdout.strip() == "nothing to recover"


def test_recover_at_boot_puts_files_back_and_runs_nothing(tmp_path):
    root, log, before = old_box_at(tmp_path)
    kill_while_waiting(root, log)
    ran = len(commands_run(log))
    r = live_cli(log, "recover", "--root", str(root), "--boot")
    assert r.returncode == 0, r.stderr
    assert "never confirmed" in r.stdout and tree(root) == before
    assert len(commands_run(log)) == ran  # --boot: files only


def test_a_new_apply_first_undoes_a_change_nobody_confirmed(tmp_path):
    root, log, _ = old_box_at(tmp_path)
    kill_while_waiting(root, log)
    recorder = Recorder()
    result = apply_plan(planmod.load(PLAN_FILE), live_system(root, recorder), Target(),
                        confirm=lambda s, r: True, rechecker=lambda plan, t: None)
    assert result.ok
    assert any("never confirmed" in m for m in result.messages)
    # The old state applied again, then the new change applied and confirmed.
    assert recorder.calls.count(["netplan", "apply"]) == 2
    assert sorted(m["state"] for m in manifests(root)) == ["confirmed", "restored"]


def test_a_reused_pid_does_not_keep_a_dead_apply_waiting(tmp_path):
    """The process that waits is known by its pid and its start time: another process that got
    the same pid later does not keep the change from being undone."""
    from installer.render import render
    from installer.writing.writer import await_confirmation, write_files

    root, _, before = old_box_at(tmp_path)
    written = write_files(root, render(planmod.load(PLAN_FILE), Target()))
    await_confirmation(root, written.backup_dir, [["netplan", "apply"]])
    assert revert_unconfirmed(root) == []  # this very process waits: left alone
    manifest_file = root / written.backup_dir.lstrip("/") / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    assert manifest["awaiting"]["pid"] == os.getpid() and manifest["awaiting"]["started"]
    manifest["awaiting"]["started"] = str(int(manifest["awaiting"]["started"]) - 1)  # same pid, earlier process
    manifest_file.write_text(json.dumps(manifest))
    (line, commands), = revert_unconfirmed(root)
    assert "never confirmed" in line and commands == [["netplan", "apply"]]
    assert tree(root) == before


def test_recover_refuses_a_root_that_is_not_a_directory_in_one_line(tmp_path):
    (tmp_path / "file").write_text("x\n")
    for root, words in ((tmp_path / "file", "exists and is not a directory; give a directory"),
                        (tmp_path / "nope", "not a directory; create it first")):
        r = subprocess.run([sys.executable, "-m", "installer", "recover", "--root", str(root)],
                           capture_output=True, text=True, cwd=REPO)
        assert r.returncode == 2 and r.stderr.strip().startswith(f"--root {root}: {words}"), r.stderr
