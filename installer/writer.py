"""The one place that writes configuration: atomically, with modes, with backups.

Everything lands under a root (``/`` on the box, a staging directory with ``--root``);
nothing outside it is touched, and a symlink inside the root cannot lead a write out of it.
Each write run keeps a backup set under ``<root>/var/lib/edge-installer/backups/<stamp>/``:
the bytes and modes of every file it replaced or moved aside, and a manifest saying what it
did, so that a rollback can restore the old state byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from installer.render import RenderedFile

BACKUP_DIR = "/var/lib/edge-installer/backups"
MANIFEST = "manifest.json"


class WriteError(Exception):
    """A write that could not be done; the message names the file and the reason."""


@dataclass
class WriteResult:
    """What a write run did, for the report shown to the technician."""

    root: Path
    written: list[str] = field(default_factory=list)     # created or replaced
    unchanged: list[str] = field(default_factory=list)   # already had these bytes and mode
    backed_up: list[str] = field(default_factory=list)   # replaced files whose old bytes were kept
    moved: list[tuple[str, str]] = field(default_factory=list)  # (original, where it went), paths on the box
    backup_dir: str | None = None                          # path on the box, None when nothing was kept


def box_path(root: Path, path: str) -> Path:
    """Where a path of the box lands under root; refuses paths that would leave root."""
    if not path.startswith("/"):
        raise WriteError(f"{path}: not an absolute path")
    parts = Path(path).parts[1:]
    if any(p in ("..", "") for p in parts):
        raise WriteError(f"{path}: '..' is not allowed in a path")
    target = root.joinpath(*parts)
    _check_inside(root, target.parent)
    return target


def _check_inside(root: Path, directory: Path) -> None:
    # Resolve the deepest existing ancestor: a symlinked directory must not point outside root.
    real_root = os.path.realpath(root)
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    real = os.path.realpath(probe)
    if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
        raise WriteError(f"{directory}: leads outside {root} (through a symbolic link); refusing to write there")


def sha256(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def atomic_write(target: Path, content: bytes, mode: int) -> None:
    """Write bytes to target so that readers see the old file or the new one, never a mix."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # before any byte: a secret is never readable by others
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}"


def write_files(root: Path, files: Iterable[RenderedFile], move_aside: Iterable[str] = (),
                stamp: str | None = None) -> WriteResult:
    """Write files under root and move conflicting ones aside, keeping backups of both.

    `move_aside` lists paths on the box (e.g. /etc/netplan/50-cloud-init.yaml) to take out
    of the stack's way; they go into the backup set, kept, not deleted.
    """
    root = Path(root)
    if not root.is_dir():
        raise WriteError(f"{root}: not a directory; create it first or give another --root")
    files = list(files)
    result = WriteResult(root=root)
    plan_actions: list[dict] = []
    targets = {f.path: box_path(root, f.path) for f in files}
    for f in files:
        t = targets[f.path]
        if t.is_symlink() or (t.exists() and not t.is_file()):
            raise WriteError(f"{f.path}: exists and is not a regular file; move it away first")
        if t.exists():
            old = t.read_bytes()
            if old == f.content and stat.S_IMODE(t.stat().st_mode) == f.mode:
                result.unchanged.append(f.path)
                continue
            plan_actions.append({"path": f.path, "action": "replaced", "mode": stat.S_IMODE(t.stat().st_mode),
                                 "sha256": sha256(old)})
        else:
            plan_actions.append({"path": f.path, "action": "created"})
    moves = [p for p in move_aside if box_path(root, p).is_file()]
    if not plan_actions and not moves:
        return result

    base = stamp or _stamp()
    box_path(root, BACKUP_DIR).mkdir(parents=True, exist_ok=True, mode=0o700)
    for n in range(1000):  # two runs in the same second keep separate sets
        stamp = base if n == 0 else f"{base}.{n}"
        backup_rel = f"{BACKUP_DIR}/{stamp}"
        backup = box_path(root, backup_rel)
        try:
            backup.mkdir(mode=0o700)
            break
        except FileExistsError:
            continue
    else:
        raise WriteError(f"{BACKUP_DIR}: cannot create a new backup set")
    result.backup_dir = backup_rel
    for p in moves:
        src = box_path(root, p)
        plan_actions.append({"path": p, "action": "moved", "mode": stat.S_IMODE(src.stat().st_mode),
                             "sha256": sha256(src.read_bytes())})
    manifest = {"version": 1, "stamp": stamp, "state": "writing", "actions": plan_actions}
    # The manifest comes first: whatever happens next, a rollback knows what to undo.
    atomic_write(backup / MANIFEST, json.dumps(manifest, indent=1).encode(), 0o600)

    for action in plan_actions:
        if action["action"] == "replaced":
            src = targets[action["path"]]
            keep = backup / "files" / action["path"].lstrip("/")
            keep.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(keep, src.read_bytes(), action["mode"])
            result.backed_up.append(action["path"])
    for p in moves:
        src = box_path(root, p)
        keep = backup / "files" / p.lstrip("/")
        keep.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(keep, src.read_bytes(), stat.S_IMODE(src.stat().st_mode))
        src.unlink()
        _fsync_dir(src.parent)
        result.moved.append((p, f"{backup_rel}/files{p}"))
    for f in files:
        if f.path in result.unchanged:
            continue
        atomic_write(targets[f.path], f.content, f.mode)
        result.written.append(f.path)
    manifest["state"] = "written"
    atomic_write(backup / MANIFEST, json.dumps(manifest, indent=1).encode(), 0o600)
    return result


def restore(root: Path, backup_rel: str) -> list[str]:
    """Undo one write run: put back replaced and moved files byte for byte, remove created ones."""
    root = Path(root)
    backup = box_path(root, backup_rel)
    try:
        manifest = json.loads((backup / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise WriteError(f"{backup_rel}/{MANIFEST}: cannot be read ({e}); nothing restored") from None
    restored = []
    for action in reversed(manifest["actions"]):
        target = box_path(root, action["path"])
        if action["action"] == "created":
            if target.exists():
                target.unlink()
                restored.append(action["path"])
            continue
        keep = backup / "files" / action["path"].lstrip("/")
        if not keep.exists():
            continue  # the run stopped before keeping it: the original was never touched
        atomic_write(target, keep.read_bytes(), action["mode"])
        restored.append(action["path"])
    manifest["state"] = "restored"
    atomic_write(backup / MANIFEST, json.dumps(manifest, indent=1).encode(), 0o600)
    return restored

