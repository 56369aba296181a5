"""edge-installer as one file: the zipapp's __main__ (packaging/build-zipapp puts it there).

The archive holds a complete site-packages (edge-installer and every dependency) under
`site-packages/` and a manifest saying which Python built it. Python cannot load a C extension
(netifaces, cryptography, PyYAML's loader) from inside a zip, and the wizard reads its
stylesheets by path, so the payload is unpacked once into a cache directory and run from
there, as shiv does; later runs find it unpacked and start at once.

Where it unpacks, the first that works of:
  $EDGE_INSTALLER_CACHE                       when set: only there
  /var/cache/edge-installer/<build>           as root
  $XDG_CACHE_HOME or ~/.cache/edge-installer  as another user
  /run/edge-installer/<build>                 as root, when /var is read-only (RAM: ~45 MB)
  $TMPDIR/edge-installer-<uid>/<build>
A directory is skipped when it cannot be written, is mounted noexec (Debian mounts /run
noexec: a C extension cannot be loaded from there), or is not owned by us alone (someone else
could plant code in it); every directory above it must be owned by root or us and not
writable by others unless sticky (/tmp). An unpacked copy is trusted only after these checks
and only if it, its site-packages and its marker are ours alone: a complete-looking copy
planted by someone else in a shared temporary directory is never run. Unpacking goes into a
temporary directory renamed into place when complete, so a run killed half way leaves nothing
that a later run would trust.

Only the standard library is used here: this runs before the payload is on sys.path.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
import time
import zipfile

MANIFEST = "edge-installer-build.json"
PAYLOAD = "site-packages/"
COMPLETE = ".complete"


class StartError(Exception):
    """The zipapp cannot start here; the message says why and what to do."""


def python_mismatch(manifest: dict, implementation: str | None = None, version: tuple | None = None,
                    machine: str | None = None, libc: str | None = None) -> str:
    """Why this interpreter cannot run the payload (compiled for one Python and machine), or ''."""
    implementation = implementation or sys.implementation.name
    version = tuple(version or sys.version_info[:2])
    machine = machine or os.uname().machine
    have = f"{implementation} {version[0]}.{version[1]} on {machine}"
    want = f"{manifest['implementation']} {manifest['python']} on {manifest['machine']}"
    if (implementation, f"{version[0]}.{version[1]}", machine) != (
            manifest["implementation"], manifest["python"], manifest["machine"]):
        return (f"this file was built for {want}, and this is {have}: run it with the box's "
                f"python{manifest['python']}, or build one for this Python with packaging/build-zipapp")
    need = manifest.get("glibc_min")
    if need:
        if libc is None:
            try:
                libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
            except (ValueError, OSError):
                libc = ""
        name, _, number = libc.partition(" ")
        if name != "glibc" or _version(number) < _version(need):
            return (f"this file needs glibc {need} or newer (Debian 12 has 2.36), and this system has "
                    f"{libc or 'no glibc'}")
    return ""


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split("."))
    except ValueError:
        return (0,)


def candidates(build_id: str, env: dict | None = None, euid: int | None = None) -> list[str]:
    """The directories to unpack into, best first (see the module's docstring)."""
    env = os.environ if env is None else env
    euid = os.geteuid() if euid is None else euid
    if env.get("EDGE_INSTALLER_CACHE"):
        return [os.path.join(env["EDGE_INSTALLER_CACHE"], build_id)]
    found = []
    if euid == 0:
        found.append(f"/var/cache/edge-installer/{build_id}")
    else:
        home = env.get("HOME") or os.path.expanduser("~")
        cache = env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
        found.append(os.path.join(cache, "edge-installer", build_id))
    if euid == 0:
        found.append(f"/run/edge-installer/{build_id}")
    elif env.get("XDG_RUNTIME_DIR"):
        found.append(os.path.join(env["XDG_RUNTIME_DIR"], "edge-installer", build_id))
    tmp = env.get("TMPDIR") or "/tmp"
    found.append(os.path.join(tmp, f"edge-installer-{euid}", build_id))
    return found


def _own_directory(path: str, private: bool) -> None:
    """Create path (and its parents) and make sure nobody else can write to it."""
    os.makedirs(path, mode=0o700 if private else 0o755, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise OSError(f"{path} is not a directory")
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise OSError(f"{path} is writable by others or not owned by us")
    if os.statvfs(path).f_flag & getattr(os, "ST_NOEXEC", 8):
        raise OSError(f"{path} is on a filesystem mounted noexec")
    if not os.access(path, os.W_OK):
        raise OSError(f"{path} is not writable")


def _sane_parents(path: str) -> None:
    """Every directory above path is owned by root or us, and nobody else can replace what is
    in it (not writable by group or others, unless sticky like /tmp)."""
    probe = os.path.dirname(os.path.abspath(path))
    while True:
        try:
            st = os.stat(probe)
        except FileNotFoundError:  # created below, by us
            probe, parent = os.path.dirname(probe), probe
            if parent == probe:
                return
            continue
        if st.st_uid not in (0, os.geteuid()):
            raise OSError(f"{probe} is owned by another user (uid {st.st_uid})")
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            raise OSError(f"{probe} is writable by others")
        parent = os.path.dirname(probe)
        if parent == probe:
            return
        probe = parent


def _trusted_unpacked(target: str) -> None:
    """An existing unpacked copy is ours alone: a directory (not a link) owned by us, that
    nobody else can write, with its marker and site-packages alike. Raises OSError if not."""
    for path in (target, os.path.join(target, "site-packages"), os.path.join(target, COMPLETE)):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            raise OSError(f"{path} is a symbolic link; refusing to run code from it")
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise OSError(f"{path} is writable by others or not owned by us (uid {st.st_uid}); "
                          f"refusing to run code from it: remove it")


def unpack(archive: str, target: str, build_id: str) -> str:
    """The site-packages directory of the payload, unpacked under target (once)."""
    site = os.path.join(target, "site-packages")
    base = os.path.dirname(target)
    # Ownership first: a copy someone else planted (in a shared /tmp) is never trusted as complete.
    _sane_parents(base)
    # The per-user directory in a shared temporary directory is private; the others hold no secret.
    _own_directory(base, private=os.path.basename(base).startswith("edge-installer-"))
    _trusted_unpacked(target)
    if _complete(target, build_id):
        return site
    _remove_stale(base, build_id)
    work = tempfile.mkdtemp(prefix=f".{build_id}.", dir=base)
    try:
        os.chmod(work, 0o755)
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                name = info.filename
                if not name.startswith(PAYLOAD) or name.endswith("/"):
                    continue
                parts = name[len(PAYLOAD):].split("/")
                if any(p in ("", ".", "..") for p in parts):
                    raise StartError(f"{archive}: a bad member name {name!r}; the file is damaged")
                dest = os.path.join(work, "site-packages", *parts)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with z.open(info) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                mode = (info.external_attr >> 16) & 0o777
                os.chmod(dest, mode or 0o644)
        with open(os.path.join(work, COMPLETE), "w") as f:
            f.write(build_id + "\n")
        os.sync()  # a power cut after the rename must not leave truncated files behind it
        try:
            os.rename(work, target)
        except OSError:
            if not _complete(target, build_id):  # another run won the race: use its copy
                raise
            _trusted_unpacked(target)
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return site


def _complete(target: str, build_id: str) -> bool:
    try:
        with open(os.path.join(target, COMPLETE)) as f:
            return f.read().strip() == build_id
    except OSError:
        return False


def _remove_stale(base: str, build_id: str) -> None:
    # Leftovers of a run killed while unpacking this build (an hour is far beyond any unpack).
    for name in os.listdir(base):
        if name.startswith(f".{build_id}."):
            path = os.path.join(base, name)
            try:
                if time.time() - os.lstat(path).st_mtime > 3600:
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                pass


def prepare(archive: str) -> str:
    """Check the interpreter, unpack the payload, and put it first on sys.path; returns it."""
    try:
        with zipfile.ZipFile(archive) as z:
            manifest = json.loads(z.read(MANIFEST))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise StartError(f"{archive}: not a complete edge-installer zipapp ({e}); copy it again") from None
    why = python_mismatch(manifest)
    if why:
        raise StartError(why)
    tried = []
    for target in candidates(manifest["build_id"]):
        try:
            site = unpack(archive, target, manifest["build_id"])
            break
        except OSError as e:
            tried.append(f"{target}: {e.strerror or e}")
    else:
        raise StartError("no directory to unpack into (" + "; ".join(tried) + "); set EDGE_INSTALLER_CACHE "
                         "to a writable directory on a filesystem that allows running programs")
    # Ours first: nothing from a site-packages or dist-packages the interpreter may have.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.abspath(archive):
        sys.path[0] = site
    else:
        sys.path.insert(0, site)
    return site


def main() -> int:
    """Start edge-installer from the archive this file is in."""
    archive = os.path.dirname(os.path.abspath(__file__))
    try:
        prepare(archive)
    except StartError as e:
        print(f"edge-installer: {e}", file=sys.stderr)
        return 2
    import installer
    from installer.cli import main as cli_main

    installer.ARCHIVE = archive  # how systemd starts this edge-installer again (installer.writing.apply)

    sys.argv[0] = "edge-installer"
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
