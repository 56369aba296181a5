"""What a box runs decides what is rendered for it, and what it cannot run is refused before
anything is written (validate, render, apply), naming the package to install.

The boxes here are staged trees with a dpkg status file, as detect_stack reads them under
--root; tests/test_box_apply.py proves the same on booted virtual machines.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from installer.box.stack import Stack, detect_stack
from installer.planning import plan as planmod
from installer.render import Target, render, target_for, unmet_needs
from installer.render.dropins import (
    CHRONY_FILE,
    NM_UNMANAGED_FILE,
    PROXY_ENV_FILE,
    PROXY_FILE,
    RESOLV_CONF_FILE,
    RESOLVED_FILE,
    TIMESYNCD_FILE,
)

REPO = Path(__file__).resolve().parent.parent


def status(*packages: str) -> str:
    """A dpkg status file holding these packages, installed."""
    return "\n".join(f"Package: {p}\nStatus: install ok installed\n"
                     f"Version: {'0.106-2' if p == 'netplan.io' else '1.0'}\n"
                     for p in packages)


def box(tmp_path: Path, *packages: str, files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "box"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(status(*packages))
    for rel, text in (files or {}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


UBUNTU_LIKE = ("netplan.io", "systemd-resolved", "systemd-timesyncd", "wpasupplicant")
STOCK_DEBIAN = ("network-manager", "chrony", "wpasupplicant")


def plan(name: str, **changes) -> planmod.Plan:
    p = planmod.load(REPO / "examples" / f"{name}.yaml")
    return dataclasses.replace(p, **changes) if changes else p


def test_detects_what_a_staged_box_runs(tmp_path):
    s = detect_stack(box(tmp_path, *STOCK_DEBIAN))
    assert (s.resolved, s.time_daemon, s.wpa_supplicant, s.modemmanager, s.networkmanager_installed) == (
        False, "chrony", True, False, True)
    t = target_for(s)
    assert (t.resolved, t.time_daemon, t.netplan_installed, t.networkmanager_installed) == \
        (False, "chrony", False, True)


def test_resolved_of_older_releases_counts_when_enabled(tmp_path):
    # Debian 11 / Ubuntu 20.04 ship resolved inside the systemd package: enabled or not matters.
    files = {"lib/systemd/systemd-resolved": ""}
    assert detect_stack(box(tmp_path, "systemd", files=files)).resolved is False
    files["etc/systemd/system/multi-user.target.wants/.keep"] = ""
    root = box(tmp_path / "2", "systemd", files=files)
    (root / "etc/systemd/system/multi-user.target.wants/systemd-resolved.service").symlink_to(
        "/lib/systemd/system/systemd-resolved.service")
    assert detect_stack(root).resolved is True


def test_a_machine_that_is_not_a_booted_box_refuses_nothing():
    # A build machine or a container (systemd not PID 1): its packages say nothing of the box.
    s = Stack(None, False, False, False, False, live=True, booted=False, packages_known=True, resolved=False,
              time_daemon="none", wpa_supplicant=False, modemmanager=False)
    t = target_for(s)
    assert t == Target() and unmet_needs(plan("wifi"), t) == []
    assert target_for(Stack(None, False, False, False, False)) == Target()  # an empty staged tree


@pytest.mark.parametrize("example,target,field,package", [
    ("cellular", Target(networkmanager_installed=False), "topology", "network-manager"),
    ("cellular", Target(networkmanager_installed=True, modemmanager=False), "topology", "modemmanager"),
    ("wifi", Target(wpa_supplicant=False), "wifi", "wpasupplicant"),
    ("isolated", Target(netplan_installed=False), "renderer", "netplan.io"),
    ("isolated", Target(time_daemon="none"), "ntp.mode", "systemd-timesyncd or chrony"),
])
def test_what_the_box_lacks_is_named(example, target, field, package):
    found = dict(unmet_needs(plan(example), target))
    assert field in found and package in found[field], found


def test_wpa3_on_netplan_0_106_needs_networkmanager():
    p = plan("wifi", wifi=dataclasses.replace(plan("wifi").wifi, security="wpa3-sae"))
    assert "wifi.security" in dict(unmet_needs(p, Target(netplan_version=(0, 106), networkmanager_installed=False)))
    assert unmet_needs(p, Target(netplan_version=(0, 107), networkmanager_installed=False)) == []
    assert unmet_needs(p, Target(netplan_version=(0, 106), networkmanager_installed=True)) == []


def test_dhcp_dns_without_resolved_needs_networkmanager_or_resolved():
    p = plan("isolated", dns=planmod.Dns(mode="dhcp"))
    networkd_only = Target(resolved=False, networkmanager_installed=False)
    assert "dns.mode" in dict(unmet_needs(p, networkd_only))
    assert unmet_needs(p, Target(resolved=False, networkmanager=True, networkmanager_installed=True)) == []


def paths(p, t):
    return {f.path: f for f in render(p, t)}


def test_rendered_for_the_software_the_box_runs():
    p = plan("isolated")
    ubuntu = paths(p, Target())
    assert RESOLVED_FILE in ubuntu and TIMESYNCD_FILE in ubuntu and CHRONY_FILE not in ubuntu
    stock = paths(p, Target(networkmanager=True, resolved=False, time_daemon="chrony", networkmanager_installed=True))
    assert RESOLVED_FILE not in stock and RESOLV_CONF_FILE not in stock  # NetworkManager writes resolv.conf
    assert TIMESYNCD_FILE not in stock and "pool 0.pool.ntp.org iburst" in stock[CHRONY_FILE].text
    bare = paths(p, Target(resolved=False))
    assert bare[RESOLV_CONF_FILE].text.count("nameserver ") == 2 and "8.8.8.8" in bare[RESOLV_CONF_FILE].text
    assert NM_UNMANAGED_FILE not in ubuntu
    kept_off = paths(p, Target(networkmanager_installed=True))[NM_UNMANAGED_FILE].text
    assert "unmanaged-devices=interface-name:eno1;interface-name:enp2s0" in kept_off


def test_proxy_password_only_in_a_root_only_file_without_specifiers():
    files = paths(plan("isolated-proxy"), Target())
    env, dropin = files[PROXY_ENV_FILE], files[PROXY_FILE]
    assert env.mode == 0o600 and env.secret and dropin.mode == 0o644 and not dropin.secret
    assert "EnvironmentFile=-/etc/edge-installer/proxy.env" in dropin.text
    p = plan("isolated-proxy")
    assert p.proxy.password and p.proxy.password not in dropin.text
    # A character systemd would treat specially inside the file is escaped, not dropped.
    from installer.render.dropins import _env_value

    assert _env_value('a"b\\c$d`e%f') == '"a\\"b\\\\c\\$d\\`e%f"'


def test_validate_and_render_refuse_for_the_box_under_root(tmp_path):
    root = box(tmp_path, *UBUNTU_LIKE[:-1])  # no wpasupplicant
    for verb in (["validate"], ["render"], ["apply", "--no-confirm"]):
        r = subprocess.run([sys.executable, "-m", "installer", *verb, str(REPO / "examples/wifi.yaml"),
                            "--root", str(root)], capture_output=True, text=True, cwd=REPO)
        assert r.returncode == 2, (verb, r.stdout, r.stderr)
        assert "wifi: WiFi needs wpa_supplicant" in r.stderr and "wpasupplicant" in r.stderr, r.stderr
        assert not (root / "etc").exists(), "nothing may be written for a plan the box cannot run"
    r = subprocess.run([sys.executable, "-m", "installer", "validate", str(REPO / "examples/isolated.yaml"),
                        "--root", str(root)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
