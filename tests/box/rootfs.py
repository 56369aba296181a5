"""What goes into a box's root file system: the package lists and the configuration of the
common base and of each variant, applied to a directory on this machine.

Every chroot command runs inside `unshare --mount` with /proc, /sys and /dev mounted in that
private mount namespace, so nothing stays mounted when the command ends (even when it is
killed), and a policy-rc.d keeps package scripts from starting services here. The chroot shares
this machine's network only to fetch Debian packages from the mirror (base stage); variants
install from the package cache, offline.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import Sequence

SUITE = "bookworm"
MIRROR = os.environ.get("EDGE_INSTALLER_BOX_MIRROR", "http://deb.debian.org/debian")
HOSTNAME = "edge-box"

# Debootstrap cannot resolve virtual packages: libpam-systemd provides the logind polkitd
# needs (network-manager pulls polkitd). Every package any variant wants is fetched here, so
# a variant only purges (or installs from the cache): the base is downloaded once.
BASE_PACKAGES = (
    "systemd-sysv", "libpam-systemd", "linux-image-amd64", "initramfs-tools", "iproute2",
    "python3", "udev", "dbus", "kmod", "iputils-ping", "procps", "qemu-guest-agent",
    "hostapd", "wpasupplicant", "iw", "util-linux-extra",  # hwclock, for guest-set-time
    "wireless-regdb",  # /lib/firmware/regulatory.db: without it `iw reg set DE` leaves "country 00"
    "ethtool",  # `ethtool -p` (identify) on the box's NICs, as the interfaces step runs it
    "openssh-server",  # the fleet rollout: Ansible reaches the boxes over SSH inside the lab
    "netplan.io", "network-manager", "modemmanager", "systemd-resolved", "systemd-timesyncd",
)
# Fetched into the package cache during the base stage, installed by the variants that want
# them (they conflict with something in the base).
EXTRA_DEBS = ("chrony",)

# What each variant changes on a copy of the base: packages purged, then installed (from the
# cache), then `configure_<variant>` below.
VARIANTS = {
    "networkd": {"purge": ("network-manager", "modemmanager"), "install": ()},
    "nm": {"purge": (), "install": ()},
    "stock": {"purge": ("netplan.io", "systemd-resolved", "systemd-timesyncd", "modemmanager"),
              "install": ("chrony",)},
}

# Only what a virtio machine needs to mount its root: keeps the initrd ~6 MB instead of ~36.
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "virtio_console", "ext4", "crc32c_generic")
# Timers that would only burn the guest's CPU (and try to reach the internet it cannot reach).
MASKED_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer",
                "e2scrub_reap.service", "fstrim.timer", "man-db.timer", "dpkg-db-backup.timer")

_POLICY = "#!/bin/sh\n# edge-installer box build: no service starts in the chroot\nexit 101\n"


class BuildError(Exception):
    """A step of the image build failed: which command, and the tail of what it printed."""


def run(argv: Sequence[str], timeout: float = 1800, log: Path | None = None,
        env: dict | None = None) -> str:
    """Run a build command; its output goes to `log` (appended); raise BuildError on failure."""
    full_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
                "DEBIAN_FRONTEND": "noninteractive", **(env or {})}
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              env=full_env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BuildError(f"{shlex.join(argv)}: not done within {timeout} s") from None
    output = proc.stdout + proc.stderr
    if log is not None:
        with open(log, "a") as f:
            f.write(f"$ {shlex.join(argv)}\n{output}\n")
    if proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-25:])
        raise BuildError(f"{shlex.join(argv)}: exit {proc.returncode}:\n{tail}")
    return output


def chroot(root: Path, script: str, log: Path, debs: Path | None = None, timeout: float = 900,
           network: bool = False) -> str:
    """Run a shell script in the chroot `root`, with /proc, /sys, /dev (and the package cache
    `debs` as /var/cache/apt/archives, this machine's resolv.conf when `network` is wanted, to
    fetch from the Debian mirror) mounted in a private mount namespace."""
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text(_POLICY)
    policy.chmod(0o755)
    r = shlex.quote(str(root))
    mounts = [f"mount -t proc proc {r}/proc", f"mount -t sysfs sys {r}/sys",
              f"mount --rbind /dev {r}/dev"]
    if debs is not None:
        mounts.append(f"mount --bind {shlex.quote(str(debs))} {r}/var/cache/apt/archives")
    if network:
        resolv = root / "etc/resolv.conf"
        if resolv.is_symlink() or not resolv.exists():
            resolv.unlink(missing_ok=True)
            resolv.write_text("")  # a mount point; each variant writes its own resolv.conf later
        mounts.append(f"mount --bind /etc/resolv.conf {r}/etc/resolv.conf")
    outer = " && ".join(mounts) + f" && exec chroot {r} /bin/sh -ec {shlex.quote(script)}"
    try:
        return run(["unshare", "--mount", "--propagation", "private", "sh", "-ec", outer],
                   timeout=timeout, log=log)
    finally:
        policy.unlink(missing_ok=True)


def debootstrap(root: Path, debs: Path, log: Path) -> None:
    """A minimal Debian with systemd and every package of every variant (no ifupdown: the
    boxes are configured by netplan or NetworkManager)."""
    run(["debootstrap", "--variant=minbase", "--exclude=ifupdown", f"--cache-dir={debs}",
         "--include=" + ",".join(BASE_PACKAGES), SUITE, str(root), MIRROR], log=log)


def configure_base(root: Path, debs: Path, log: Path) -> None:
    """What every variant shares: name, root login, fstab, masked timers, a small initramfs,
    and the extra packages fetched into the cache (the only network use after debootstrap)."""
    (root / "etc/hostname").write_text(HOSTNAME + "\n")
    (root / "etc/hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{HOSTNAME}\n"
                                    "::1\tlocalhost ip6-localhost ip6-loopback\n")
    # pass 0: the root is mounted rw from the kernel command line, no fsck at boot.
    (root / "etc/fstab").write_text("/dev/vda / ext4 rw,errors=remount-ro 0 0\n")
    conf = root / "etc/initramfs-tools/initramfs.conf"
    conf.write_text("".join("MODULES=list\n" if ln.startswith("MODULES=") else ln + "\n"
                            for ln in conf.read_text().splitlines()))
    (root / "etc/initramfs-tools/modules").write_text("\n".join(INITRAMFS_MODULES) + "\n")
    chroot(root, f"""
        passwd -d root
        systemctl mask {' '.join(MASKED_UNITS)}
        apt-get install -y -q --download-only --no-install-recommends {' '.join(EXTRA_DEBS)}
        update-initramfs -u -k all
        """, log, debs=debs, network=True)


def configure_variant(root: Path, variant: str, debs: Path, log: Path) -> None:
    """Turn a copy of the base into `variant`: packages purged and installed (from the package
    cache; fetched from the mirror only when the cache lost them), then its network setup."""
    spec = VARIANTS[variant]
    script = ["apt-get -y -q -o APT::Get::AutomaticRemove=true purge "
              + " ".join(spec["purge"])] if spec["purge"] else []
    if spec["install"]:
        script.append("apt-get -y -q --no-install-recommends install " + " ".join(spec["install"]))
    # No `apt-get clean`: the archives directory is the shared package cache.
    chroot(root, "\n".join(script) or "true", log, debs=debs, network=bool(spec["install"]))
    globals()[f"_configure_{variant}"](root, log)


def _resolv_stub(root: Path) -> None:
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.symlink_to("../run/systemd/resolve/stub-resolv.conf")


def _netplan(root: Path, name: str, text: str) -> None:
    d = root / "etc/netplan"
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("*.yaml"):
        old.unlink()
    (d / name).write_text(text)
    (d / name).chmod(0o600)  # netplan warns about (and vendors fix) world-readable files


def _configure_networkd(root: Path, log: Path) -> None:
    """The Ubuntu-like box: netplan rendering for systemd-networkd, DHCP on the uplink only."""
    _netplan(root, "01-box.yaml", "network:\n  version: 2\n  renderer: networkd\n  ethernets:\n"
                                  "    enp2s0:\n      dhcp4: true\n")
    _resolv_stub(root)
    chroot(root, "systemctl enable systemd-networkd systemd-resolved systemd-timesyncd", log)


def _configure_nm(root: Path, log: Path) -> None:
    """netplan hands everything to NetworkManager (as Ubuntu desktop images do)."""
    _netplan(root, "01-network-manager-all.yaml", "network:\n  version: 2\n  renderer: NetworkManager\n")
    _resolv_stub(root)
    chroot(root, "systemctl enable NetworkManager systemd-resolved systemd-timesyncd", log)


def _configure_stock(root: Path, log: Path) -> None:
    """Stock Debian: NetworkManager with its automatic "Wired connection" per device, and
    writing /etc/resolv.conf itself (a plain file, not a symlink: rc-manager=auto writes it)."""
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.write_text("")
    chroot(root, "systemctl enable NetworkManager chrony", log)
