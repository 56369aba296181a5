"""The one place that writes configuration: atomically, with modes, with backups.

Everything lands under a root (``/`` on the box, a staging directory with ``--root``);
nothing outside it is touched, and a symlink inside the root cannot lead a write out of it.
Each write run is a transaction with a backup set under
``<root>/var/lib/edge-installer/backups/<stamp>/``: the bytes and modes of every file it
replaced or moved aside, and a manifest (the journal) saying what it does and how far it
got. A rollback restores the old state byte for byte; `recover()` finishes or discards a
run that was killed, so the box is left with the old files or the new ones, never a mix.
A file that cannot be put in place after the commit point (an immutable file, a directory
or a bind mount in its way) undoes the run: all the old files again, or, when even that is
blocked, one line naming the file and why, for `recover` to finish once it is fixed.

A manifest is data on disk: its paths are confined to the root (no `..`, no absolute path,
no symbolic link out, staged files only next to their targets), kept copies are never read
through a link, and reads are bounded and refuse FIFOs and devices. Directories are created
with explicit modes whatever the umask (0755, backups 0700). OS errors (a full disk) raise
WriteError naming the file and the error.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.planning.yamlfile import read_regular
from installer.render import RenderedFile
from installer.text import unicode_safe

# Where a box path lands under the root, and the error every write raises: in their own small
# module, so that what only needs a path (the wizard's draft, before its first frame) need not
# import this one.
from installer.writing.paths import WriteError as WriteError
from installer.writing.paths import box_path as box_path

if TYPE_CHECKING:
    from installer.planning.plan import Plan

BACKUP_DIR = "/var/lib/edge-installer/backups"
MANIFEST = "manifest.json"
# Directories are created with these modes whatever the umask: the configuration directories
# readable by all (the stacks run as other users too), the backup sets (old secrets) private.
DIR_MODE = 0o755
PRIVATE_DIR_MODE = 0o700
# Reads of files we replace or keep are bounded: configuration files are a few KB.
MAX_FILE_BYTES = 16_000_000
MAX_MANIFEST_BYTES = 4_000_000
ACTIONS = ("created", "replaced", "moved")


@dataclass
class WriteResult:
    """What a write run did, for the report shown to the technician."""

    root: Path
    written: list[str] = field(default_factory=list)     # created or replaced
    unchanged: list[str] = field(default_factory=list)   # already had these bytes and mode
    backed_up: list[str] = field(default_factory=list)   # replaced files whose old bytes were kept
    moved: list[tuple[str, str]] = field(default_factory=list)  # (original, where it went), paths on the box
    backup_dir: str | None = None                          # path on the box, None when nothing was kept


def sha256(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def os_problem(e: OSError, path: Path | str, doing: str = "writing") -> str:
    """One line for an OSError: the file and the error, e.g. `/etc/netplan/x.yaml: no space
    left on device writing it (free some space ...)`."""
    reason = (e.strerror or str(e)).lower() if not isinstance(e, WriteError) else str(e)
    hint = ""
    if e.errno == errno.ENOSPC:
        hint = " (free some space on that filesystem and run again)"
    elif e.errno in (errno.EROFS,):
        hint = " (the filesystem is mounted read-only)"
    elif e.errno in (errno.EPERM, errno.EACCES):
        hint = " (check its permissions and attributes, e.g. lsattr: an immutable file cannot be replaced)"
    return f"{unicode_safe(path)}: {reason} {doing} it{hint}"


def make_dirs(directory: Path, mode: int = DIR_MODE) -> None:
    """Create directory and its missing parents, each with exactly `mode` whatever the umask
    (directories that already exist keep theirs)."""
    missing = []
    probe = Path(directory)
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    if not probe.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(probe))
    for d in reversed(missing):
        try:
            os.mkdir(d, mode)
        except FileExistsError:
            if not d.is_dir():
                raise
            continue
        os.chmod(d, mode)  # mkdir's mode is masked by the umask; this one is not


def atomic_write(target: Path, content: bytes, mode: int, dir_mode: int = DIR_MODE) -> None:
    """Write bytes to target so that readers see the old file or the new one, never a mix.
    Missing directories are created with `dir_mode`. An OS error (a full disk, a read-only
    filesystem) raises WriteError naming the file and the error."""
    try:
        make_dirs(target.parent, dir_mode)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [target.parent, *target.parent.parents] if p.exists() and not p.is_dir()),
                       target.parent)
        raise WriteError(f"{blocker}: is a file where a directory must be; move it away first") from None
    except OSError as e:
        raise WriteError(os_problem(e, target.parent, "creating")) from None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise WriteError(os_problem(e, target)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # before any byte: a secret is never readable by others
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise WriteError(os_problem(e, target)) from None
        raise
    fsync_dir(target.parent)


def fsync_dir(directory: Path) -> None:
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


def _save_manifest(backup: Path, manifest: dict[str, Any]) -> None:
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
    actions: list[dict[str, Any]] = []
    targets = {f.path: box_path(root, f.path) for f in files}
    for f in files:
        t = targets[f.path]
        if t.is_symlink() or (t.exists() and not t.is_file()):
            raise WriteError(f"{f.path}: exists and is not a regular file; move it away first")
        if t.exists():
            old = _read_file(t)
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
                        "sha256": sha256(_read_file(src, follow_symlinks=True))})
    for action in actions:
        if action["action"] != "moved":
            action["staged"] = str(_temp_name(targets[action["path"]], stamp).relative_to(root))
    manifest = {"version": 2, "stamp": stamp, "state": "preparing", "actions": actions}
    _save_manifest(backup, manifest)
    hook("manifest")

    try:
        for action in actions:
            if action["action"] in ("replaced", "moved"):
                src = box_path(root, action["path"])
                keep = backup / "files" / action["path"].lstrip("/")
                atomic_write(keep, _read_file(src, follow_symlinks=True), action["mode"],
                             dir_mode=PRIVATE_DIR_MODE)
        hook("backup")
        contents = {f.path: f for f in files}
        for action in actions:
            if "staged" in action:
                f = contents[action["path"]]
                atomic_write(root / action["staged"], f.content, f.mode)
                hook(f"stage:{action['path']}")

        manifest["state"] = "committed"
        _save_manifest(backup, manifest)
    except OSError:
        _abandon(root, backup, manifest)  # before the commit point: the old files stay, no debris
        raise
    hook("commit")
    _complete_or_undo(root, backup_rel, backup, manifest, hook)

    for action in actions:
        kind = action["action"]
        if kind == "moved":
            result.moved.append((action["path"], f"{backup_rel}/files{action['path']}"))
        else:
            result.written.append(action["path"])
            if kind == "replaced":
                result.backed_up.append(action["path"])
    return result


def _read_file(path: Path, follow_symlinks: bool = False) -> bytes:
    """A file we replace or keep: regular (never a FIFO, device or, unless asked, a link), bounded."""
    return read_regular(path, MAX_FILE_BYTES, follow_symlinks=follow_symlinks)


def _load_manifest(backup: Path) -> dict[str, Any]:
    if backup.is_symlink() or not backup.is_dir():
        raise WriteError(f"{backup}: not a backup set directory (a symbolic link or a file); refused")
    manifest = json.loads(read_regular(backup / MANIFEST, MAX_MANIFEST_BYTES, follow_symlinks=False))
    if not isinstance(manifest, dict):
        raise ValueError("not a JSON object")
    return manifest


def _checked(root: Path, backup: Path, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's actions, each confined to root: its path a box path under root (no '..',
    no symbolic link out), its staged file next to it, its mode a mode. A manifest is data on
    disk that anyone who can write there could have crafted: anything else is refused, with
    WriteError naming the manifest and the field."""
    actions = manifest.get("actions")
    where = f"{backup}/{MANIFEST}"
    if not isinstance(actions, list):
        raise WriteError(f"{where}: 'actions' is not a list; this backup set is not usable (move it away)")
    for i, a in enumerate(actions):
        at = f"{where}: actions[{i}]"
        if not isinstance(a, dict) or a.get("action") not in ACTIONS or not isinstance(a.get("path"), str):
            raise WriteError(f"{at}: not an action edge-installer records (created, replaced or moved a path); "
                             "refused")
        try:
            target = box_path(root, a["path"])
        except WriteError:
            raise WriteError(f"{at}: the path {a['path']!r} leads outside {root}; refused") from None
        if a["action"] != "created":
            mode = a.get("mode")
            if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o7777:
                raise WriteError(f"{at}: 'mode' {mode!r} is not a file mode (0 to 0o7777); refused")
        if a["action"] == "moved" and "staged" not in a:
            continue
        staged = a.get("staged")
        ok = False
        if isinstance(staged, str) and not staged.startswith("/") and ".." not in Path(staged).parts:
            sp = root / staged
            ok = (sp.parent == target.parent and sp.name.startswith(f".{target.name}.edge-installer-")
                  and sp.name.endswith(".new"))
        if not ok:
            raise WriteError(f"{at}: the staged file {staged!r} is not next to {unicode_safe(a['path'])}; refused")
    return actions


def _kept(root: Path, backup: Path, path: str) -> Path | None:
    """The kept copy of a box path in a backup set, or None; never one reached through a link."""
    keep = backup / "files" / path.lstrip("/")
    if not os.path.lexists(keep):
        return None
    real_files = os.path.realpath(backup / "files")
    real = os.path.realpath(keep.parent)
    if real != real_files and not real.startswith(real_files + "/"):
        raise WriteError(f"{keep}: leads outside its backup set (through a symbolic link); refused")
    return keep


def _abandon(root: Path, backup: Path, manifest: dict[str, Any]) -> None:
    """Discard a run stopped by an error before its commit point (a full disk): its staged
    files go (freeing what they took), the old files were never touched. Best effort: what
    cannot be removed now, `recover()` removes later."""
    for action in manifest["actions"]:
        if "staged" in action:
            try:
                (root / action["staged"]).unlink()
            except OSError:
                pass
    manifest["state"] = "abandoned"
    try:
        _save_manifest(backup, manifest)
    except OSError:
        manifest["state"] = "preparing"


def _new_backup_set(root: Path, base: str) -> tuple[str, str, Path]:
    backups = box_path(root, BACKUP_DIR)
    try:
        make_dirs(backups.parent, DIR_MODE)
        make_dirs(backups, PRIVATE_DIR_MODE)
    except OSError as e:
        raise WriteError(os_problem(e, backups, "creating")) from None
    for n in range(1000):  # two runs in the same second keep separate sets
        stamp = base if n == 0 else f"{base}.{n}"
        backup_rel = f"{BACKUP_DIR}/{stamp}"
        backup = box_path(root, backup_rel)
        try:
            backup.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue
        except OSError as e:
            raise WriteError(os_problem(e, backup, "creating")) from None
        os.chmod(backup, PRIVATE_DIR_MODE)
        return stamp, backup_rel, backup
    raise WriteError(f"{BACKUP_DIR}: cannot create a new backup set")


def _complete(root: Path, backup: Path, manifest: dict[str, Any], hook: Hook = _noop) -> None:
    """Roll a committed transaction forward; safe to repeat after an interruption. A file
    that cannot be put in place raises WriteError naming it and why."""
    for action in _checked(root, backup, manifest):
        target = box_path(root, action["path"])
        try:
            if action["action"] == "moved":
                if os.path.lexists(target):
                    target.unlink()
                    fsync_dir(target.parent)
            else:
                staged = root / action["staged"]
                if os.path.lexists(staged):
                    if not stat.S_ISREG(os.lstat(staged).st_mode):
                        raise WriteError(f"{unicode_safe(action['staged'])}: the staged file is not a regular file "
                                         "(a symbolic link?); refused")
                    os.replace(staged, target)
                    fsync_dir(target.parent)
        except WriteError:
            raise
        except OSError as e:
            raise WriteError(f"{unicode_safe(action['path'])}: cannot be put in place "
                             f"({(e.strerror or str(e)).lower()})") from None
        hook(f"rename:{action['path']}")
    manifest["state"] = "written"
    _save_manifest(backup, manifest)


def _complete_or_undo(root: Path, backup_rel: str, backup: Path, manifest: dict[str, Any],
                      hook: Hook = _noop) -> None:
    """After the commit point: all the new files, or (one cannot be put in place) all the old
    ones back. Raises WriteError naming the file that blocks, and whether the old files are back."""
    try:
        _complete(root, backup, manifest, hook)
        return
    except WriteError as e:
        first = str(e)
    try:
        restore(root, backup_rel)
    except OSError as e:
        raise WriteError(f"{first}; the previous files could not be put back either ({e}): fix that and run "
                         "`edge-installer recover`") from None
    raise WriteError(f"{first}: the previous files were put back, nothing was changed") from None


def _manifests(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    base = box_path(root, BACKUP_DIR)
    found: list[tuple[Path, dict[str, Any]]] = []
    if base.is_symlink() or not base.is_dir():
        return found
    for d in sorted(base.iterdir()):
        try:
            found.append((d, _load_manifest(d)))
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


def _waiting(awaiting: dict[str, Any]) -> bool:
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


def _set_state(root: Path, backup_rel: str, state: str, awaiting: dict[str, Any] | None = None) -> None:
    """Mark a backup set's manifest with a new state (and who awaits its confirmation)."""
    backup = box_path(Path(root), backup_rel)
    manifest = _load_manifest(backup)
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


# `edge-installer confirm`, from another session (a controller that reached the box over its
# new path), asks the waiting process to keep the change by creating this file in its backup
# set; only that process records the answer (confirm_set), so a confirmation never races it.
CONFIRM_REQUEST = "confirm-request"


def awaiting_confirmation(root: Path, pid: int | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """The backup sets of changes applied and waiting for a confirmation whose process still
    runs (only `pid`'s when given): (the set's directory, its manifest)."""
    return [(backup, m) for backup, m in _manifests(Path(root))
            if m.get("state") == "unconfirmed" and _waiting(m.get("awaiting") or {})
            and (pid is None or (m.get("awaiting") or {}).get("pid") == pid)]


def request_confirmation(backup: Path) -> None:
    """Ask the process that waits on this backup set to keep its change (see CONFIRM_REQUEST)."""
    fd = os.open(backup / CONFIRM_REQUEST, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"{time.time():.3f}\n".encode())
    finally:
        os.close(fd)


def confirmation_requested(root: Path, pid: int) -> bool:
    """Someone ran `edge-installer confirm` for a change this process (`pid`) waits on."""
    return any((backup / CONFIRM_REQUEST).is_file() for backup, _ in awaiting_confirmation(root, pid))


def backup_state(backup: Path) -> str | None:
    """The state a backup set's manifest records ("unconfirmed", "confirmed", ...), None if unreadable."""
    try:
        return _load_manifest(backup).get("state")
    except (OSError, ValueError, WriteError):
        return None


# The plan a box was set up with (the wizard's Done step, a zero-touch first boot): 0600, it
# holds the secrets the files need. The setup units stand down once it exists; `check --plan`
# and the watchdog read it.
APPLIED_PLAN = "/var/lib/edge-installer/plan.yaml"


def save_applied_plan(root: Path, plan: Plan, how: str = "") -> Path:
    """Write `plan` to APPLIED_PLAN under root, atomically, mode 0600; the path written.
    `how`: how the box was set up, for the file's first line (e.g. "zero-touch first boot")."""
    from installer.planning import plan as planmod

    target = box_path(Path(root), APPLIED_PLAN)
    header = (f"# edge-installer: the plan this box was set up with{f' ({how})' if how else ''}. Check it "
              f"again with\n# edge-installer check --plan {APPLIED_PLAN}\n")
    atomic_write(target, (header + planmod.dumps(plan)).encode("utf-8"), 0o600)
    return target


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
    complete committed writes (or, when a file cannot be put in place, put the old ones back),
    finish an interrupted restore, put back the files of a change applied and never confirmed.
    Returns what it did, in words. A backup set that cannot be finished, or whose manifest
    points outside root, raises WriteError (one line: the set, the file and why) once every
    other set is done."""
    root = Path(root)
    done = [line for line, _ in revert_unconfirmed(root)]
    problems = []
    for backup, manifest in _manifests(root):
        state = manifest.get("state")
        try:
            if state == "preparing":
                for action in _checked(root, backup, manifest):
                    if "staged" in action:
                        staged = root / action["staged"]
                        if os.path.lexists(staged):
                            staged.unlink()
                manifest["state"] = "abandoned"
                _save_manifest(backup, manifest)
                done.append(f"{backup.name}: interrupted before its commit point; the old files were kept")
            elif state == "committed":
                try:
                    _complete_or_undo(root, f"{BACKUP_DIR}/{backup.name}", backup, manifest)
                except WriteError as e:
                    if "the previous files were put back" not in str(e):
                        raise
                    done.append(f"{backup.name}: interrupted after its commit point; {e}")
                else:
                    done.append(f"{backup.name}: interrupted after its commit point; the new files were completed")
            elif state == "restoring":
                restore(root, f"{BACKUP_DIR}/{backup.name}")
                done.append(f"{backup.name}: an interrupted rollback was completed")
        except OSError as e:
            problems.append(f"backup set {backup.name} cannot be recovered: {e}")
    if problems:
        raise WriteError("; ".join(problems))
    return done


def restore(root: Path, backup_rel: str, hook: Hook = _noop) -> list[str]:
    """Undo one write run: put back replaced and moved files byte for byte, remove created
    ones. Idempotent: an interrupted restore is finished by `recover()`. A file whose staged
    copy is still there was never replaced (the run stopped, or its rename failed): it is
    left as it is, so an undo never needs the rename that failed."""
    root = Path(root)
    backup = box_path(root, backup_rel)
    try:
        manifest = _load_manifest(backup)
    except (OSError, ValueError) as e:
        raise WriteError(f"{backup_rel}/{MANIFEST}: cannot be read ({e}); nothing restored") from None
    actions = _checked(root, backup, manifest)
    manifest["state"] = "restoring"
    _save_manifest(backup, manifest)
    restored = []
    for action in reversed(actions):
        target = box_path(root, action["path"])
        staged = root / action["staged"] if "staged" in action else None
        # The staged copy still there: the file was never replaced. None: no such copy.
        pending = staged if staged is not None and os.path.lexists(staged) else None
        try:
            if pending is not None:
                pending.unlink()
            if action["action"] == "created":
                if pending is None and (target.is_symlink() or target.is_file()):
                    target.unlink()
                    fsync_dir(target.parent)
                    restored.append(action["path"])
                hook(f"restore:{action['path']}")
                continue
        except OSError as e:
            raise WriteError(f"{unicode_safe(action['path'])}: cannot be removed "
                             f"({(e.strerror or str(e)).lower()})") from None
        if pending is not None:
            continue  # never replaced: the old file is still in place
        keep = _kept(root, backup, action["path"])
        if keep is None:
            continue  # the run stopped before keeping it: the original was never touched
        try:
            old = read_regular(keep, MAX_FILE_BYTES, follow_symlinks=False)
        except OSError as e:
            raise WriteError(f"{e}; nothing more restored") from None
        atomic_write(target, old, action["mode"])
        restored.append(action["path"])
        hook(f"restore:{action['path']}")
    manifest["state"] = "restored"
    _save_manifest(backup, manifest)
    return restored
