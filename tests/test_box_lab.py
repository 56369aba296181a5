"""The real-box lab, proven on each variant: real Debian 12 VMs with systemd as PID 1, their
ports named and wired as on a vendor's box, on the network lab and nowhere else.

Each variant boots cold once per session and is restored from its "booted" snapshot for every
test (tests.box.fixtures), so the whole module costs about three boots.
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import time

import pytest

from tests.box.fixtures import boot_box, box, box_session  # noqa: F401  (fixtures, used by name)
from tests.box.net import DHCP_RANGE, MACHINE_TAP, UPLINK_TAP
from tests.lab import topology as T

pytestmark = pytest.mark.box

VARIANTS = ["networkd", "nm", "stock"]
# This machine's own interfaces before any box was booted (collection runs first).
HOST_LINKS = set(os.listdir("/sys/class/net"))

CONNECT = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
print(s.getpeername()[0])
"""


def active(box, unit: str) -> str:
    return box.exec(["systemctl", "is-active", unit]).stdout.strip()


def installed(box, package: str) -> bool:
    out = box.exec(["dpkg-query", "-W", "-f=${Status}", package]).stdout
    return out.endswith("installed") and "not-installed" not in out


@pytest.mark.parametrize("box", VARIANTS, indirect=True)
def test_systemd_is_pid_1_and_ports_are_named_as_on_the_box(box):
    assert box.exec(["ps", "-p", "1", "-o", "comm="]).stdout.strip() == "systemd"
    assert box.exec(["hostname"]).stdout.strip() == "edge-box"
    links = {}
    for line in box.exec(["ip", "-o", "link"], check=True).stdout.splitlines():
        m = re.match(r"\d+: ([^:@]+).*link/ether ([0-9a-f:]+)", line)
        if m:
            links[m.group(1)] = m.group(2)
    assert links == {nic.name: nic.mac for nic in box.nics}
    assert set(links) == {"eno1", "enp2s0"}


@pytest.mark.parametrize("box", VARIANTS, indirect=True)
def test_variant_is_the_stack_it_claims(box):
    variant = box.image.variant
    netplan = box.exec(["sh", "-c", "command -v netplan"]).returncode == 0
    if variant == "networkd":
        assert [active(box, u) for u in ("systemd-networkd", "systemd-resolved", "systemd-timesyncd")] == ["active"] * 3
        assert not installed(box, "network-manager") and active(box, "NetworkManager") != "active"
        assert netplan
        assert "renderer: networkd" in box.read_file("/etc/netplan/01-box.yaml").decode()
        assert box.exec(["readlink", "/etc/resolv.conf"]).stdout.strip().endswith("stub-resolv.conf")
    elif variant == "nm":
        assert active(box, "NetworkManager") == "active" and active(box, "systemd-resolved") == "active"
        assert active(box, "systemd-timesyncd") == "active" and netplan
        assert "renderer: NetworkManager" in box.read_file("/etc/netplan/01-network-manager-all.yaml").decode()
    else:
        assert active(box, "NetworkManager") == "active" and active(box, "chrony") == "active"
        assert not netplan
        assert not installed(box, "systemd-resolved") and not installed(box, "systemd-timesyncd")
        assert box.exec(["test", "-L", "/etc/resolv.conf"]).returncode != 0
        # NetworkManager's own automatic profile carries the uplink, and wrote resolv.conf.
        profiles = box.exec(["nmcli", "-t", "-f", "NAME,DEVICE", "connection", "show", "--active"]).stdout
        assert "Wired connection" in profiles and "enp2s0" in profiles
        assert f"nameserver {T.DNS}" in box.read_file("/etc/resolv.conf").decode()


@pytest.mark.parametrize("box", VARIANTS, indirect=True)
def test_uplink_gets_dhcp_and_reaches_the_cloud(box):
    address = box.wait_ipv4("enp2s0", timeout=60)
    first, last = (ipaddress.ip_address(a) for a in DHCP_RANGE)
    assert first <= ipaddress.ip_interface(address).ip <= last
    assert box.exec(["python3", "-c", CONNECT, T.CLOUD, "443", "10"], timeout=30).stdout.strip() == T.CLOUD
    # A public address the profiles name is translated in the cloud, as it was for the edge.
    assert box.exec(["python3", "-c", CONNECT, "8.8.8.8", "53", "10"], timeout=30).returncode == 0


def test_vendor_names_resolve_through_the_lab_dns(boot_box):
    box = boot_box("networkd")
    box.wait_ipv4("enp2s0")
    out = box.exec(["python3", "-c", "import socket; print(socket.gethostbyname('api.machinemetrics.com'))"],
                   timeout=30)
    assert out.stdout.strip() == T.CLOUD, out.stderr


def test_machine_port_is_on_the_plant(boot_box):
    box = boot_box("networkd")
    box.exec(["ip", "addr", "add", f"{T.EDGE_MACHINE}/{T.PREFIX}", "dev", "eno1"], check=True)
    box.exec(["ip", "link", "set", "eno1", "up"], check=True)
    machine = T.MACHINES[3]
    deadline = time.monotonic() + 20
    while True:  # carrier and the bridge port take a moment
        result = box.exec(["python3", "-c", CONNECT, machine.address, str(machine.port), "3"], timeout=30)
        if result.returncode == 0 or time.monotonic() > deadline:
            break
    assert result.stdout.strip() == machine.address, result.stderr


def test_nothing_outside_the_lab_is_reachable(boot_box):
    box = boot_box("networkd")
    box.wait_ipv4("enp2s0")
    assert box.exec(["ping", "-c", "1", "-W", "2", "192.0.2.1"], timeout=20).returncode != 0
    result = box.exec(["python3", "-c", CONNECT, "192.0.2.1", "80", "3"], timeout=20)
    assert result.returncode != 0 and ("timed out" in result.stderr or "unreachable" in result.stderr)
    # The VM's taps and bridges exist only in the lab's edge namespace.
    assert set(os.listdir("/sys/class/net")) - HOST_LINKS == set()
    edge_links = subprocess.run(["ip", "-n", box.lab.edge_ns, "-o", "link"], capture_output=True,
                                text=True, check=True).stdout
    assert UPLINK_TAP in edge_links and MACHINE_TAP in edge_links


def test_serial_console_login(boot_box):
    box = boot_box("networkd")
    console = box.serial(0)
    assert b"Linux version" in box.console_log.read_bytes()  # the kernel's own messages
    console.mark()
    console.write(b"\r")
    console.read_until(b"edge-box login: ", timeout=30)
    console.write(b"root\r")
    console.read_until(re.compile(rb"root@edge-box:~# "), timeout=30)
    console.write(b"echo serial-$((6*7))\r")
    assert b"serial-42" in console.read_until(b"serial-42\r\n", timeout=30)
    assert all(b < 0x80 for b in console.received[-200:])  # what the shell echoed: plain ASCII


def test_wifi_radios_can_be_simulated(boot_box):
    box = boot_box("networkd")
    box.exec(["modprobe", "mac80211_hwsim", "radios=2"], check=True, timeout=60)
    assert {"wlan0", "wlan1"} <= {os.path.basename(p) for p in box.sh("ls /sys/class/net").split()}


def test_snapshot_restore_discards_later_changes(boot_box):
    box = boot_box("networkd")
    box.write_file("/root/after-snapshot", b"written after the snapshot\n", mode=0o600)
    assert box.read_file("/root/after-snapshot") == b"written after the snapshot\n"
    assert box.exec(["stat", "-c", "%a", "/root/after-snapshot"]).stdout.strip() == "600"
    box = boot_box("networkd")
    assert box.exec(["test", "-e", "/root/after-snapshot"]).returncode == 1
    # The guest clock was set to now, not left at the snapshot's time.
    guest = float(box.exec(["date", "+%s.%N"]).stdout)
    assert abs(guest - time.time()) < 5
