"""Killing a write (or a rollback) at any step leaves the old files or the new ones after
recovery, never a mix: each step boundary is interrupted with SIGKILL in a real process."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from installer.planning import plan as planmod
from installer.render import Target, render
from installer.writing.existing import find_conflicts, move_aside_paths
from installer.writing.writer import recover, restore, write_files

REPO = Path(__file__).resolve().parent.parent
OLD_NETPLAN = b"network:\n  version: 2\n  ethernets:\n    eth0: {dhcp4: true}\n"

SCRIPT = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from installer.planning import plan as planmod
from installer.writing.existing import find_conflicts, move_aside_paths
from installer.render import Target, render
from installer.writing.writer import restore, write_files
root, kill_at, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
def hook(step):
    if step == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
plan = planmod.load({plan!r})
files = render(plan, Target(cloud_init=True))
if mode == "write":
    write_files(root, files, move_aside_paths(find_conflicts(root, plan, files)), hook=hook)
else:
    restore(root, sys.argv[4], hook=hook)
"""


def effective(root: Path) -> dict[str, tuple[bytes, int]]:
    """What the box's stacks would read: every file outside the backup area, staged files excluded."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_file() and not rel.startswith("var/lib/edge-installer") and not p.name.endswith(".new"):
            out[rel] = (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
    return out


def old_tree(root: Path) -> None:
    (root / "etc/netplan").mkdir(parents=True)
    (root / "etc/netplan/50-cloud-init.yaml").write_bytes(OLD_NETPLAN)
    (root / "etc/netplan/50-cloud-init.yaml").chmod(0o600)
    (root / "etc/systemd/resolved.conf.d").mkdir(parents=True)
    (root / "etc/systemd/resolved.conf.d/60-edge-installer.conf").write_text("[Resolve]\nDNS=10.0.0.1\n")
    (root / "etc/cloud").mkdir(parents=True)
    (root / "etc/cloud/cloud.cfg").write_text("# cloud-init\n")


def steps(tmp_path: Path, plan_path: Path, mode: str = "write", backup: str | None = None) -> list[str]:
    root = tmp_path / "probe"
    old_tree(root)
    seen: list[str] = []
    plan = planmod.load(plan_path)
    files = render(plan, Target(cloud_init=True))
    result = write_files(root, files, move_aside_paths(find_conflicts(root, plan, files)), hook=seen.append)
    if mode == "restore":
        seen = []
        restore(root, result.backup_dir, hook=seen.append)
    return seen


def run(root: Path, plan_path: Path, kill_at: str, mode: str, *extra: str) -> int:
    script = SCRIPT.format(repo=str(REPO), plan=str(plan_path))
    return subprocess.run([sys.executable, "-c", script, str(root), kill_at, mode, *extra], timeout=60).returncode


@pytest.fixture(scope="module")
def plan_path():
    return REPO / "examples" / "isolated-proxy.yaml"


def new_expected(tmp_path: Path, plan_path: Path) -> dict:
    root = tmp_path / "reference"
    old_tree(root)
    plan = planmod.load(plan_path)
    files = render(plan, Target(cloud_init=True))
    write_files(root, files, move_aside_paths(find_conflicts(root, plan, files)))
    return effective(root)


def test_there_are_steps_to_interrupt(tmp_path, plan_path):
    names = steps(tmp_path, plan_path)
    assert names[0] == "manifest" and "commit" in names and names[-1].startswith("rename:")
    assert len(names) >= 10


def test_kill_at_every_write_step_leaves_old_or_new(tmp_path, plan_path):
    new = new_expected(tmp_path, plan_path)
    reference_old = tmp_path / "old"
    old_tree(reference_old)
    old = effective(reference_old)
    assert old != new
    names = steps(tmp_path, plan_path)
    outcomes = []
    for i, step in enumerate(names):
        root = tmp_path / f"kill{i}"
        old_tree(root)
        assert run(root, plan_path, step, "write") == -signal.SIGKILL, step
        recover(root)
        got = effective(root)
        assert got in (old, new), f"killed at {step}: a mix of old and new files"
        before_commit = names.index(step) < names.index("commit")
        assert got == (old if before_commit else new), step
        assert not list(root.rglob("*.new")), f"killed at {step}: staged files left behind"
        outcomes.append(step)
    assert outcomes == names


def test_kill_at_every_rollback_step_leaves_new_or_old(tmp_path, plan_path):
    reference_old = tmp_path / "old"
    old_tree(reference_old)
    old = effective(reference_old)
    names = steps(tmp_path, plan_path, mode="restore")
    assert names
    for i, step in enumerate(names):
        root = tmp_path / f"rb{i}"
        old_tree(root)
        plan = planmod.load(plan_path)
        files = render(plan, Target(cloud_init=True))
        result = write_files(root, files, move_aside_paths(find_conflicts(root, plan, files)))
        assert run(root, plan_path, step, "restore", result.backup_dir) == -signal.SIGKILL, step
        recover(root)  # an interrupted rollback is finished: back to the old files
        assert effective(root) == old, step
        manifest = json.loads((root / result.backup_dir.lstrip("/") / "manifest.json").read_text())
        assert manifest["state"] == "restored"
