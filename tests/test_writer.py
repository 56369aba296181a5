"""Writing under a root: atomic, with modes, backups, moved-aside conflicts, nothing outside."""

from __future__ import annotations

import dataclasses
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from installer.planning import plan as planmod
from installer.render import NETPLAN_FILE, RenderedFile, Target, render
from installer.writing.existing import find_conflicts, move_aside_paths
from installer.writing.writer import WriteError, restore, write_files

REPO = Path(__file__).resolve().parent.parent
CLOUD_INIT_NETPLAN = b"network:\n    version: 2\n    ethernets:\n        eth0:\n            dhcp4: true\n"


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every regular file under root: content and mode."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
    return out


@pytest.fixture
def isolated():
    return planmod.load(REPO / "examples" / "isolated.yaml")


def test_writes_every_file_with_its_mode(tmp_path, isolated):
    files = render(isolated, Target())
    result = write_files(tmp_path, files)
    assert sorted(result.written) == sorted(f.path for f in files)
    for f in files:
        p = tmp_path / f.path.lstrip("/")
        assert p.read_bytes() == f.content
        assert stat.S_IMODE(p.stat().st_mode) == f.mode
    assert stat.S_IMODE((tmp_path / NETPLAN_FILE.lstrip("/")).stat().st_mode) == 0o600
    assert not list(tmp_path.rglob("*.tmp")), "temporary files left behind"
    assert result.backup_dir is not None  # created files are recorded so a rollback can remove them


def test_same_plan_twice_changes_nothing(tmp_path, isolated):
    files = render(isolated, Target())
    write_files(tmp_path, files)
    before = tree(tmp_path)
    result = write_files(tmp_path, files)
    assert result.written == [] and result.backup_dir is None
    assert sorted(result.unchanged) == sorted(f.path for f in files)
    assert tree(tmp_path) == before


def test_replaced_files_are_backed_up_and_restored_byte_for_byte(tmp_path, isolated):
    write_files(tmp_path, render(isolated, Target()))
    before = tree(tmp_path)
    changed = dataclasses.replace(isolated, machine_network=planmod.MachineNetwork(("eno1",), "192.168.77.2/24"),
                                  machines=(), hostname=None)
    result = write_files(tmp_path, render(changed, Target()))
    assert NETPLAN_FILE in result.backed_up
    kept = tmp_path / result.backup_dir.lstrip("/") / "files" / NETPLAN_FILE.lstrip("/")
    assert kept.read_bytes() == before[NETPLAN_FILE.lstrip("/")][0]
    manifest = json.loads((tmp_path / result.backup_dir.lstrip("/") / "manifest.json").read_text())
    assert manifest["state"] == "written"
    restore(tmp_path, result.backup_dir)
    after = {k: v for k, v in tree(tmp_path).items() if not k.startswith("var/lib/edge-installer")}
    assert after == {k: v for k, v in before.items() if not k.startswith("var/lib/edge-installer")}


def test_conflicting_netplan_file_is_moved_aside_and_kept(tmp_path, isolated):
    (tmp_path / "etc/netplan").mkdir(parents=True)
    ci = tmp_path / "etc/netplan/50-cloud-init.yaml"
    ci.write_bytes(CLOUD_INIT_NETPLAN)
    ci.chmod(0o600)
    files = render(isolated, Target(cloud_init=True))
    conflicts = find_conflicts(tmp_path, isolated, files)
    assert [c.path for c in conflicts] == ["/etc/netplan/50-cloud-init.yaml"]
    assert "eth0" in conflicts[0].reason and "cloud-init" in conflicts[0].reason
    result = write_files(tmp_path, files, move_aside_paths(conflicts))
    assert not ci.exists()
    (orig, kept), = result.moved
    assert orig == "/etc/netplan/50-cloud-init.yaml"
    assert (tmp_path / kept.lstrip("/")).read_bytes() == CLOUD_INIT_NETPLAN
    assert any(f.path.startswith("/etc/cloud/cloud.cfg.d/") for f in files)
    restore(tmp_path, result.backup_dir)
    assert ci.read_bytes() == CLOUD_INIT_NETPLAN and stat.S_IMODE(ci.stat().st_mode) == 0o600
    assert not (tmp_path / NETPLAN_FILE.lstrip("/")).exists()


def test_networkmanager_profiles_for_our_interfaces_conflict(tmp_path, isolated):
    d = tmp_path / "etc/NetworkManager/system-connections"
    d.mkdir(parents=True)
    (d / "Wired connection 1.nmconnection").write_text("[connection]\nid=Wired connection 1\ntype=ethernet\n")
    (d / "uplink.nmconnection").write_text("[connection]\nid=x\ntype=ethernet\ninterface-name=enp2s0\n")
    (d / "other.nmconnection").write_text("[connection]\nid=y\ntype=ethernet\ninterface-name=eno9\n")
    (d / "edge-machines-port-eno2.nmconnection").write_text("[connection]\nid=z\ntype=ethernet\n")
    paths = [c.path for c in find_conflicts(tmp_path, isolated, render(isolated, Target()))]
    assert sorted(p.rsplit("/", 1)[1] for p in paths) == [
        "Wired connection 1.nmconnection", "edge-machines-port-eno2.nmconnection", "uplink.nmconnection"]


def test_profiles_and_stanzas_for_a_bound_ports_kernel_name_conflict(tmp_path):
    """A plan that calls its ports lan0/wan0 and binds them by MAC: the box's own profile for the
    NIC under its kernel name (enp3s0) is found too, and so is ifupdown's stanza for it."""
    plan = planmod.load(REPO / "examples" / "isolated.yaml")
    plan = dataclasses.replace(
        plan, machine_network=dataclasses.replace(plan.machine_network, interfaces=("lan0",)),
        uplink=dataclasses.replace(plan.uplink, interface="wan0"),
        ports=(planmod.Port("lan0", mac="52:54:00:12:34:56"), planmod.Port("wan0", mac="52:54:00:12:34:57")))
    sysfs = tmp_path / "sys-class-net"  # the box's interfaces, as the kernel shows them
    for index, (name, mac) in enumerate([("enp3s0", "52:54:00:12:34:56"), ("enp4s0", "52:54:00:12:34:57"),
                                         ("enp5s0", "52:54:00:00:00:99")], start=2):
        (sysfs / name).mkdir(parents=True)
        (sysfs / name / "address").write_text(mac + "\n")
        (sysfs / name / "ifindex").write_text(f"{index}\n")
    root = tmp_path / "root"
    d = root / "etc/NetworkManager/system-connections"
    d.mkdir(parents=True)
    (d / "lan.nmconnection").write_text("[connection]\nid=lan\ntype=ethernet\ninterface-name=enp3s0\n")
    (d / "spare.nmconnection").write_text("[connection]\nid=spare\ntype=ethernet\ninterface-name=enp5s0\n")
    (root / "etc/network").mkdir(parents=True)
    (root / "etc/network/interfaces").write_text("auto lo\niface lo inet loopback\n\nallow-hotplug enp4s0\n"
                                                 "iface enp4s0 inet dhcp\n")
    files = render(plan, Target())
    found = {c.path: c for c in find_conflicts(root, plan, files, sys_class_net=sysfs)}
    assert sorted(found) == ["/etc/NetworkManager/system-connections/lan.nmconnection", "/etc/network/interfaces"]
    assert "enp4s0" in found["/etc/network/interfaces"].reason
    # Written to another tree, the running kernel's interfaces are not the box's: plan names only.
    assert find_conflicts(root, plan, files) == []


def test_ifupdown_is_reported_not_moved(tmp_path, isolated):
    (tmp_path / "etc/network").mkdir(parents=True)
    (tmp_path / "etc/network/interfaces").write_text("auto lo\niface lo inet loopback\n\nallow-hotplug enp2s0\n"
                                                     "iface enp2s0 inet dhcp\n")
    (c,) = find_conflicts(tmp_path, isolated, render(isolated, Target()))
    assert c.action == "report" and "enp2s0" in c.reason
    assert move_aside_paths([c]) == []


def test_symlink_cannot_lead_a_write_outside_root(tmp_path, isolated):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "etc").mkdir(parents=True)
    outside.mkdir()
    (root / "etc/netplan").symlink_to(outside)
    with pytest.raises(WriteError, match="outside"):
        write_files(root, render(isolated, Target()))
    assert list(outside.iterdir()) == []


def test_paths_with_dotdot_are_refused(tmp_path):
    evil = RenderedFile("/etc/../../escape", b"x", 0o644, "test")
    with pytest.raises(WriteError, match=r"\.\."):
        write_files(tmp_path, [evil])


def test_cli_render_writes_only_under_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    sentinel = tmp_path / "sentinel"
    sentinel.write_text("untouched")
    r = subprocess.run([sys.executable, "-m", "installer", "render", str(REPO / "examples/isolated-proxy.yaml"),
                        "--root", str(root), "--no-cloud-init"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root", "sentinel"]
    written = tree(root)
    # The proxy with its password: in a root-only file that a drop-in for every service reads.
    assert written["etc/edge-installer/proxy.env"][1] == 0o600
    assert written["etc/systemd/system/service.d/60-edge-installer-proxy.conf"][1] == 0o644
    assert b"%40" not in written["etc/systemd/system/service.d/60-edge-installer-proxy.conf"][0]
    assert "0600  /etc/NetworkManager/system-connections/edge-uplink.nmconnection" in r.stdout


def test_cli_render_without_root_masks_secrets(tmp_path):
    r = subprocess.run([sys.executable, "-m", "installer", "render", str(REPO / "examples/isolated-proxy.yaml")],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "p@ss" not in r.stdout and "p%40ss" not in r.stdout
    assert "********" in r.stdout and "Nothing written" in r.stdout
    assert list(tmp_path.iterdir()) == []


def test_cli_render_bad_root_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "installer", "render", str(REPO / "examples/isolated.yaml"),
                        "--root", str(tmp_path / "nope")], capture_output=True, text=True)
    assert r.returncode == 2 and "not a directory; create it first" in r.stderr and "Traceback" not in r.stderr
    # A file given as the root: no advice to create what exists.
    (tmp_path / "file").write_text("x\n")
    r = subprocess.run([sys.executable, "-m", "installer", "render", str(REPO / "examples/isolated.yaml"),
                        "--root", str(tmp_path / "file")], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == f"--root {tmp_path / 'file'}: exists and is not a directory; give a directory"


def test_cli_render_into_an_impossible_root_is_one_line(tmp_path):
    # /etc under the root is a regular file: even root cannot create /etc/netplan in it.
    root = tmp_path / "root"
    root.mkdir()
    (root / "etc").write_text("not a directory\n")
    r = subprocess.run([sys.executable, "-m", "installer", "render", str(REPO / "examples/isolated.yaml"),
                        "--root", str(root)], capture_output=True, text=True)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "is a file where a directory must be" in r.stderr and f"{root}/etc" in r.stderr
