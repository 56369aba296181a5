"""The one place that writes configuration: atomically, with modes, with backups.

Everything lands under a root (``/`` on the box, a staging directory with ``--root``);
nothing outside it is touched, and a symlink inside the root cannot lead a write out of it.
Each write run is a transaction with a backup set under
``<root>/var/lib/edge-installer/backups/<stamp>/``: the bytes and modes of every file it
replaced or moved aside, and a manifest (the journal) saying what it does and how far it
got. A rollback restores the old state byte for byte; `recover()` finishes or discards a
run that was killed, so the box is left with the old files or the new ones, never a mix.
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
from typing import Callable, Iterable

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
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [target.parent, *target.parent.parents] if p.exists() and not p.is_dir()),
                       target.parent)
        raise WriteError(f"{blocker}: is a file where a directory must be; move it away first") from None
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


Hook = Callable[[str], None]


def _noop(step: str) -> None:
    pass


def _temp_name(target: Path, stamp: str) -> Path:
    # A dot-name ending in .new: netplan reads only *.yaml, NetworkManager skips dot-files,
    # systemd and sysctl read only *.conf: no stack ever reads a half-committed file.
    return target.parent / f".{target.name}.edge-installer-{stamp}.new"


def _save_manifest(backup: Path, manifest: dict) -> None:
    atomic_write(backup / MANIFEST, json.dumps(manifest, indent=1).encode(), 0o600)


def write_files(root: Path, files: Iterable[RenderedFile], move_aside: Iterable[str] = (),
                stamp: str | None = None, hook: Hook = _noop) -> WriteResult:
    """Write files under root and move conflicting ones aside, as one transaction.

    Every new file is first staged next to its target and every replaced or moved file is
    kept in the backup set; then the manifest is marked committed (the commit point); then
    the staged files are renamed into place. Killed before the commit point, the old files
    are untouched; after it, `recover()` (run before anything reads the configuration)
    completes the renames. So the box ends up with the old files or the new ones, never a
    mix. `move_aside` lists paths on the box to take out of the stack's way (kept in the
    backup set). `hook(step)` is called at each step boundary (tests interrupt there).
    """
    root = Path(root)
    if not root.is_dir():
        raise WriteError(f"{root}: not a directory; create it first or give another --root")
    recover(root)
    files = list(files)
    result = WriteResult(root=root)
    actions: list[dict] = []
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
            actions.append({"path": f.path, "action": "replaced", "mode": stat.S_IMODE(t.stat().st_mode),
                            "sha256": sha256(old)})
        else:
            actions.append({"path": f.path, "action": "created"})
    moves = [p for p in move_aside if box_path(root, p).is_file() and p not in targets]
    if not actions and not moves:
        return result

    stamp, backup_rel, backup = _new_backup_set(root, stamp or _stamp())
    result.backup_dir = backup_rel
    for p in moves:
        src = box_path(root, p)
        actions.append({"path": p, "action": "moved", "mode": stat.S_IMODE(src.stat().st_mode),
                        "sha256": sha256(src.read_bytes())})
    for action in actions:
        if action["action"] != "moved":
            action["staged"] = str(_temp_name(targets[action["path"]], stamp).relative_to(root))
    manifest = {"version": 2, "stamp": stamp, "state": "preparing", "actions": actions}
    _save_manifest(backup, manifest)
    hook("manifest")

    for action in actions:
        if action["action"] in ("replaced", "moved"):
            src = box_path(root, action["path"])
            keep = backup / "files" / action["path"].lstrip("/")
            keep.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(keep, src.read_bytes(), action["mode"])
    hook("backup")
    contents = {f.path: f for f in files}
    for action in actions:
        if "staged" in action:
            f = contents[action["path"]]
            atomic_write(root / action["staged"], f.content, f.mode)
            hook(f"stage:{action['path']}")

    manifest["state"] = "committed"
    _save_manifest(backup, manifest)
    hook("commit")
    _complete(root, backup, manifest, hook)

    for action in actions:
        kind = action["action"]
        if kind == "moved":
            result.moved.append((action["path"], f"{backup_rel}/files{action['path']}"))
        else:
            result.written.append(action["path"])
            if kind == "replaced":
                result.backed_up.append(action["path"])
    return result


def _new_backup_set(root: Path, base: str) -> tuple[str, str, Path]:
    box_path(root, BACKUP_DIR).mkdir(parents=True, exist_ok=True, mode=0o700)
    for n in range(1000):  # two runs in the same second keep separate sets
        stamp = base if n == 0 else f"{base}.{n}"
        backup_rel = f"{BACKUP_DIR}/{stamp}"
        backup = box_path(root, backup_rel)
        try:
            backup.mkdir(mode=0o700)
            return stamp, backup_rel, backup
        except FileExistsError:
            continue
    raise WriteError(f"{BACKUP_DIR}: cannot create a new backup set")


def _complete(root: Path, backup: Path, manifest: dict, hook: Hook = _noop) -> None:
    """Roll a committed transaction forward; safe to repeat after an interruption."""
    for action in manifest["actions"]:
        target = box_path(root, action["path"])
        if action["action"] == "moved":
            if target.exists():
                target.unlink()
                _fsync_dir(target.parent)
        else:
            staged = root / action["staged"]
            if staged.exists():
                os.replace(staged, target)
                _fsync_dir(target.parent)
        hook(f"rename:{action['path']}")
    manifest["state"] = "written"
    _save_manifest(backup, manifest)


def _manifests(root: Path) -> list[tuple[Path, dict]]:
    base = box_path(root, BACKUP_DIR)
    found = []
    if not base.is_dir():
        return found
    for d in sorted(base.iterdir()):
        try:
            found.append((d, json.loads((d / MANIFEST).read_text())))
        except (OSError, ValueError):
            continue
    return found


# --- applied, not yet confirmed ---------------------------------------------------------------
# Between applying a change and its confirmation the backup set says "unconfirmed", with the
# process that waits for the confirmation and the commands that applied it. Should that
# process end without an answer (SIGKILL, a power cut, a reboot by a technician who lost the
# box), the change is not kept: `revert_unconfirmed()` (at boot, before the network starts,
# or the next run) puts the previous files back, as `netplan try` would have.

def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def _process_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _waiting(awaiting: dict) -> bool:
    """The process that waits for this confirmation is still running (this boot, alive, and
    the same process: a pid reused by another one since has a different start time)."""
    pid = awaiting.get("pid")
    if not isinstance(pid, int) or awaiting.get("boot_id") != _boot_id() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = _process_stat(pid)
    if stat is None:
        return True  # no /proc to tell: alive is all that is known
    # A zombie (killed, not yet reaped by its parent) no longer waits for anything.
    started = awaiting.get("started")
    return stat[0] != "Z" and (started is None or (len(stat) > 19 and stat[19] == str(started)))


def _set_state(root: Path, backup_rel: str, state: str, awaiting: dict | None = None) -> None:
    """Mark a backup set's manifest with a new state (and who awaits its confirmation)."""
    backup = box_path(Path(root), backup_rel)
    manifest = json.loads((backup / MANIFEST).read_text())
    manifest["state"] = state
    manifest.pop("awaiting", None)
    if awaiting is not None:
        manifest["awaiting"] = awaiting
    _save_manifest(backup, manifest)


def await_confirmation(root: Path, backup_rel: str, commands: list[list[str]]) -> None:
    """Mark a written set as applied but not confirmed, by this process, with these commands."""
    stat = _process_stat(os.getpid())
    _set_state(root, backup_rel, "unconfirmed", {
        "pid": os.getpid(), "boot_id": _boot_id(), "since": time.time(),
        "started": stat[19] if stat and len(stat) > 19 else None, "commands": [list(c) for c in commands]})


def confirm_set(root: Path, backup_rel: str) -> None:
    """The technician kept the change: the set is an ordinary written one again."""
    _set_state(root, backup_rel, "confirmed")


def revert_unconfirmed(root: Path) -> list[tuple[str, list[list[str]]]]:
    """Put back the files of every change applied and never confirmed whose process is gone.
    Returns, per set, what was done in words and the commands that applied the change (run
    them again to apply the restored files on a running box; at boot there is no need)."""
    done = []
    for backup, manifest in _manifests(Path(root)):
        awaiting = manifest.get("awaiting") or {}
        if manifest.get("state") != "unconfirmed" or _waiting(awaiting):
            continue
        restored = restore(Path(root), f"{BACKUP_DIR}/{backup.name}")
        commands = [c for c in awaiting.get("commands", []) if isinstance(c, list)]
        done.append((f"{backup.name}: applied but never confirmed (its process ended): the previous "
                     f"files are back ({', '.join(restored) or 'nothing to restore'})", commands))
    return done


def recover(root: Path) -> list[str]:
    """Finish what an interrupted run left: discard uncommitted staging (the old files stay),
    complete committed writes, finish an interrupted restore, put back the files of a change
    applied and never confirmed. Returns what it did, in words."""
    done = [line for line, _ in revert_unconfirmed(Path(root))]
    for backup, manifest in _manifests(Path(root)):
        state = manifest.get("state")
        if state == "preparing":
            for action in manifest.get("actions", []):
                if "staged" in action:
                    staged = Path(root) / action["staged"]
                    if staged.exists():
                        staged.unlink()
            manifest["state"] = "abandoned"
            _save_manifest(backup, manifest)
            done.append(f"{backup.name}: interrupted before its commit point; the old files were kept")
        elif state == "committed":
            _complete(Path(root), backup, manifest)
            done.append(f"{backup.name}: interrupted after its commit point; the new files were completed")
        elif state == "restoring":
            restore(Path(root), f"{BACKUP_DIR}/{backup.name}")
            done.append(f"{backup.name}: an interrupted rollback was completed")
    return done


def restore(root: Path, backup_rel: str, hook: Hook = _noop) -> list[str]:
    """Undo one write run: put back replaced and moved files byte for byte, remove created
    ones. Idempotent: an interrupted restore is finished by `recover()`."""
    root = Path(root)
    backup = box_path(root, backup_rel)
    try:
        manifest = json.loads((backup / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise WriteError(f"{backup_rel}/{MANIFEST}: cannot be read ({e}); nothing restored") from None
    if manifest.get("state") == "committed":
        _complete(root, backup, manifest)  # finish first, so the undo below is complete
    manifest["state"] = "restoring"
    _save_manifest(backup, manifest)
    restored = []
    for action in reversed(manifest["actions"]):
        target = box_path(root, action["path"])
        staged = root / action["staged"] if "staged" in action else None
        if staged is not None and staged.exists():
            staged.unlink()
        if action["action"] == "created":
            if target.exists():
                target.unlink()
                _fsync_dir(target.parent)
                restored.append(action["path"])
            hook(f"restore:{action['path']}")
            continue
        keep = backup / "files" / action["path"].lstrip("/")
        if not keep.exists():
            continue  # the run stopped before keeping it: the original was never touched
        atomic_write(target, keep.read_bytes(), action["mode"])
        restored.append(action["path"])
        hook(f"restore:{action['path']}")
    manifest["state"] = "restored"
    _save_manifest(backup, manifest)
    return restored
