"""The wizard's write step applies like `edge-installer apply`: under a staged root the
commands are shown; on the box the change is kept only when K is pressed before the
countdown ends, otherwise every file comes back byte for byte."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from installer.box.system import System
from tests.test_screens_finish import SIZE, example, focus, make_app, place, text_of, until

OLD = b"network:\n  version: 2\n  ethernets:\n    eth0: {dhcp4: true}\n"


def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in sorted(root.rglob("*")) if p.is_file() and not str(p.relative_to(root)).startswith("var/")}


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, argv, **kwargs):
        self.calls.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, "", "")


def live_app(root: Path, recorder: Recorder, timeout: float):
    place(root, "/etc/netplan/50-cloud-init.yaml", OLD, 0o600)
    app = make_app(root, example("isolated"), "write")
    app.context.extras.update(system=System(root, runner=recorder, live_override=True),
                              rechecker=lambda plan, t: None, confirm_timeout=timeout)
    return app


async def tick_and_write(pilot) -> None:
    """'Yes, write these files now' ticked, then W: the write (and on the box, apply) starts."""
    await focus(pilot, "confirm")
    await pilot.press("space", "w")


async def test_staged_root_shows_the_commands(tmp_path):
    app = make_app(tmp_path, example("isolated"), "write")
    async with app.run_test(size=SIZE) as pilot:
        await tick_and_write(pilot)
        await until(pilot, lambda: app.screen.result is not None)
        assert "would run: netplan apply" in text_of(app, "#result")


async def test_pressing_k_in_time_keeps_the_change(tmp_path):
    recorder = Recorder()
    app = live_app(tmp_path, recorder, timeout=20)
    async with app.run_test(size=SIZE) as pilot:
        await tick_and_write(pilot)
        await until(pilot, lambda: "Press K to KEEP" in text_of(app, "#step-errors"))
        assert "reverted in" in text_of(app, "#step-errors")
        await pilot.press("k")
        await until(pilot, lambda: app.screen.result is not None)
        assert "confirmed" in text_of(app, "#result")
    assert ["netplan", "apply"] in recorder.calls
    assert not (tmp_path / "etc/netplan/50-cloud-init.yaml").exists()


async def test_confirm_from_another_session_keeps_the_change(tmp_path):
    """A colleague who reached the box over SSH runs `edge-installer confirm`: the wizard takes
    it as K."""
    recorder = Recorder()
    app = live_app(tmp_path, recorder, timeout=30)
    async with app.run_test(size=SIZE) as pilot:
        await tick_and_write(pilot)
        await until(pilot, lambda: "Press K to KEEP" in text_of(app, "#step-errors"))
        done = subprocess.run([sys.executable, "-m", "installer", "confirm", "--root", str(tmp_path), "--wait", "0"],
                              capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        assert "Traceback" not in done.stderr
        await until(pilot, lambda: app.screen.result is not None, seconds=15)
        assert "confirmed" in text_of(app, "#result")
    assert recorder.calls.count(["netplan", "apply"]) == 1
    assert not (tmp_path / "etc/netplan/50-cloud-init.yaml").exists()


async def test_no_answer_reverts_byte_for_byte(tmp_path):
    recorder = Recorder()
    app = live_app(tmp_path, recorder, timeout=1)
    before = tree(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await tick_and_write(pilot)
        await until(pilot, lambda: "Reverted" in text_of(app, "#result"), seconds=15)
        await pilot.press("ctrl+n")
        assert app.step_id == "write"  # nothing kept: Next refuses
    assert tree(tmp_path) == before
    assert recorder.calls.count(["netplan", "apply"]) == 2


async def test_leaving_the_wizard_while_the_change_waits_for_k_reverts_it(tmp_path):
    """Ctrl+Q (and Ctrl+C, SIGTERM, SIGHUP, which end in the same place) during the countdown
    is a no: the wizard puts the old configuration back before it ends."""
    recorder = Recorder()
    app = live_app(tmp_path, recorder, timeout=60)
    before = tree(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await tick_and_write(pilot)
        await until(pilot, lambda: "Press K to KEEP" in text_of(app, "#step-errors"))
        assert tree(tmp_path) != before  # applied, waiting
        await pilot.press("ctrl+q")
    assert tree(tmp_path) == before
    assert recorder.calls.count(["netplan", "apply"]) == 2
