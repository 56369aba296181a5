"""Disk images of real Debian 12 boxes, built once and cached: `build_image(variant)`.

A build from nothing takes minutes (debootstrap unpacks ~700 MB), so every stage is cached
under /var/cache/edge-installer-box (EDGE_INSTALLER_BOX_CACHE overrides), keyed by a hash of
what makes it: the package lists and the source of the build code. The common base rootfs is
kept as a zstd tarball; a variant is a copy of it changed offline (purges, installs from the
package cache), then written with `mkfs.ext4 -d` (no loop mount) and converted to a qcow2 base
that VMs only ever use through overlays of their own. Builds take a lock, so parallel test
workers build each thing once.
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.box import rootfs
from tests.box.rootfs import BuildError

DEFAULT_CACHE = Path("/var/cache/edge-installer-box")
CACHE_ENV = "EDGE_INSTALLER_BOX_CACHE"
VARIANTS = tuple(rootfs.VARIANTS)
# Room to spare on the root file system: tests install and write things in the guest.
HEADROOM_MB = 1536
TOOLS = {"debootstrap": "debootstrap", "qemu-img": "qemu-utils", "mkfs.ext4": "e2fsprogs",
         "zstd": "zstd", "unshare": "util-linux", "qemu-system-x86_64": "qemu-system-x86"}


@dataclass(frozen=True)
class ImageSet:
    """A built variant: direct-boot kernel and initrd, and the qcow2 base disk (never written)."""

    variant: str
    kernel: Path
    initrd: Path
    disk: Path
    key: str

    @property
    def meta(self) -> dict:
        """What the build recorded (times, versions), from meta.json beside the disk."""
        return _read_json(self.disk.parent / "meta.json")


def cache_path(override: Path | str | None = None) -> Path:
    """The cache directory: `override`, else $EDGE_INSTALLER_BOX_CACHE, else the default."""
    return Path(override or os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def missing_tools() -> list[str]:
    """The build and run tools not on this machine, as 'tool (Debian package)'."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [f"{t} (Debian package {p})" for t, p in TOOLS.items() if shutil.which(t, path=path) is None]


def base_key() -> str:
    """Changes whenever the base rootfs would: suite, mirror, packages, the base's build code."""
    parts = [rootfs.SUITE, rootfs.MIRROR, *rootfs.BASE_PACKAGES, "|", *rootfs.EXTRA_DEBS, "|",
             *rootfs.INITRAMFS_MODULES, *rootfs.MASKED_UNITS,
             inspect.getsource(rootfs.debootstrap), inspect.getsource(rootfs.configure_base),
             inspect.getsource(rootfs.chroot)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def variant_key(variant: str) -> str:
    """Changes whenever the variant's image would: its base, and all of the build code."""
    parts = [base_key(), variant, inspect.getsource(rootfs), inspect.getsource(_make_disk)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def build_image(variant: str, cache_dir: Path | str | None = None) -> ImageSet:
    """The images of `variant` ("networkd", "nm" or "stock"), built unless cached."""
    if variant not in rootfs.VARIANTS:
        raise BuildError(f"unknown box variant {variant!r}: one of {', '.join(VARIANTS)}")
    cache = _cache_root(cache_dir)
    key = variant_key(variant)
    out = cache / f"{variant}-{key}"
    with _locked(cache / f"{variant}.lock"):
        if not (out / "meta.json").exists():
            _build_variant(variant, key, cache, out)
    return ImageSet(variant, out / "vmlinuz", out / "initrd.img", out / "disk.qcow2", key)


def last_cold_build(cache_dir: Path | str | None = None) -> dict:
    """Timings of the last base build from nothing recorded in the cache (empty if none)."""
    return _read_json(cache_path(cache_dir) / "cold-build.json")


def _cache_root(override: Path | str | None) -> Path:
    cache = cache_path(override)
    (cache / "debs").mkdir(parents=True, exist_ok=True)
    (cache / "logs").mkdir(exist_ok=True)
    return cache


def _base_tarball(cache: Path) -> Path:
    """The base rootfs as a zstd tarball, debootstrapped and configured unless cached."""
    key = base_key()
    tarball = cache / f"base-{key}.tar.zst"
    with _locked(cache / "base.lock"):
        if tarball.exists():
            return tarball
        missing = missing_tools()
        if missing:
            raise BuildError("cannot build box images, missing: " + "; ".join(missing))
        log = cache / "logs" / f"base-{key}.log"
        log.write_text("")
        start = time.monotonic()
        with tempfile.TemporaryDirectory(dir=cache, prefix="base-") as tmp:
            root = Path(tmp) / "rootfs"
            rootfs.debootstrap(root, cache / "debs", log)
            t_debootstrap = time.monotonic() - start
            rootfs.configure_base(root, cache / "debs", log)
            part = tarball.with_suffix(".part")
            rootfs.run(["tar", "--zstd", "--numeric-owner", "--xattrs", "--xattrs-include=*",
                        "-C", str(root), "-cf", str(part), "."], log=log)
            part.rename(tarball)
        timings = {"key": key, "debootstrap_s": round(t_debootstrap, 1),
                   "base_s": round(time.monotonic() - start, 1), "finished": time.time()}
        (cache / f"base-{key}.json").write_text(json.dumps(timings, indent=1))
        for old in cache.glob("base-*.tar.zst"):
            if old != tarball:
                old.unlink()
                old.with_name(old.name.replace(".tar.zst", ".json")).unlink(missing_ok=True)
        return tarball


def _build_variant(variant: str, key: str, cache: Path, out: Path) -> None:
    start = time.monotonic()
    had_base = (cache / f"base-{base_key()}.tar.zst").exists()
    tarball = _base_tarball(cache)
    t_base = time.monotonic() - start
    log = cache / "logs" / f"{variant}-{key}.log"
    log.write_text("")
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=f"{variant}-") as tmp:
        tmp_path = Path(tmp)
        root = tmp_path / "rootfs"
        root.mkdir()
        rootfs.run(["tar", "--zstd", "--numeric-owner", "--xattrs", "--xattrs-include=*",
                    "-C", str(root), "-xf", str(tarball)], log=log)
        rootfs.configure_variant(root, variant, cache / "debs", log)
        stage = tmp_path / "out"
        stage.mkdir()
        _make_disk(root, stage, log)
        meta = {"variant": variant, "key": key, "base_key": base_key(),
                "base_built_here": not had_base, "base_s": round(t_base, 1),
                "total_s": round(time.monotonic() - start, 1), "finished": time.time(),
                "packages": _versions(root)}
        (stage / "meta.json").write_text(json.dumps(meta, indent=1))
        stage.rename(out)
    if not had_base:
        (cache / "cold-build.json").write_text(json.dumps(
            {**_read_json(cache / f"base-{base_key()}.json"), "first_variant": variant,
             "first_variant_total_s": meta["total_s"]}, indent=1))
    for old in cache.glob(f"{variant}-*"):
        if old.is_dir() and old != out and not _in_use(old):
            shutil.rmtree(old, ignore_errors=True)


def _in_use(directory: Path) -> bool:
    """Some process (a VM of another test session, through its overlay's backing file) has
    a file of `directory` open: an older image must outlive the sessions that boot it."""
    prefix = str(directory) + "/"
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                if os.readlink(fd).startswith(prefix):
                    return True
        except OSError:
            continue
    return False


def _make_disk(root: Path, out: Path, log: Path) -> None:
    """Kernel and initrd out of /boot, the rootfs as an ext4 file system (mkfs.ext4 -d copies
    owners, modes and xattrs such as ping's capability) converted to qcow2."""
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise BuildError(f"no kernel in {root}/boot")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    shutil.copy2(kernels[-1], out / "vmlinuz")
    shutil.copy2(root / "boot" / f"initrd.img-{version}", out / "initrd.img")
    used_mb = int(rootfs.run(["du", "-sxm", str(root)]).split()[0])
    raw = out / "disk.raw"
    with open(raw, "wb") as f:
        f.truncate((used_mb * 12 // 10 + HEADROOM_MB) * 1024 * 1024)
    rootfs.run(["mkfs.ext4", "-q", "-F", "-L", "edge-root", "-d", str(root), str(raw)], log=log)
    rootfs.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(out / "disk.qcow2")], log=log)
    raw.unlink()


def _versions(root: Path) -> dict[str, str]:
    status = (root / "var/lib/dpkg/status").read_text()
    wanted = {"systemd", "network-manager", "netplan.io", "linux-image-amd64", "chrony",
              "systemd-resolved", "python3", "hostapd", "wpasupplicant"}
    found, name = {}, None
    for line in status.splitlines():
        if line.startswith("Package: "):
            name = line[9:]
        elif line.startswith("Version: ") and name in wanted:
            found[name] = line[9:]
    return found


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
