"""Discovery: classification on sysfs trees laid out as the kernel lays them out, the real
thing inside a network namespace of our own, and stack detection on staged roots."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from installer.box import discover as d
from installer.box import stack as stackmod
from installer.box.discover import Interface, Inventory, Stack

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------ a kernel-shaped sysfs


class FakeSysfs:
    """A /sys tree: devices/<path>/net/<name> with class/net/<name> pointing at it.

    As in the kernel, a physical link's `device` is a relative symlink to its parent device,
    whose `driver` points into bus/<bus>/drivers/; a virtual link lives under
    devices/virtual/net/ and has no `device` at all.
    """

    def __init__(self, base: Path):
        self.base = base
        self.class_net = base / "class/net"
        self.class_net.mkdir(parents=True)

    def link(self, target: Path, link: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(target, link.parent))

    def device(self, path: str, driver: str | None = None, bus: str = "pci") -> Path:
        dev = self.base / "devices" / path
        dev.mkdir(parents=True, exist_ok=True)
        if driver:
            self.link(self.base / "bus" / bus / "drivers" / driver, dev / "driver")
        return dev

    def netdev(self, name: str, device: str | None = None, *, driver: str | None = None,
               bus: str = "pci", type: int = 1, flags: str = "0x1003", addr_len: int = 6,
               address: str = "3c:ec:ef:00:00:01", carrier: str | None = "1",
               operstate: str = "up", ifindex: int = 2, devtype: str | None = None,
               wireless: bool = False, phy80211: bool = False) -> Path:
        if device is None:
            node = self.base / "devices/virtual/net" / name
            node.mkdir(parents=True)
        else:
            dev = self.device(device, driver, bus)
            node = dev / "net" / name
            node.mkdir(parents=True)
            self.link(dev, node / "device")
        uevent = f"INTERFACE={name}\nIFINDEX={ifindex}\n" + (f"DEVTYPE={devtype}\n" if devtype else "")
        files = {"type": type, "flags": flags, "addr_len": addr_len, "address": address,
                 "operstate": operstate, "ifindex": ifindex, "uevent": uevent}
        if carrier is not None:  # the kernel's EINVAL for a down link reads as "no file" here
            files["carrier"] = carrier
        for key, value in files.items():
            (node / key).write_text(f"{value}\n" if key != "uevent" else value)
        if wireless:
            (node / "wireless").mkdir()
        if phy80211:
            self.link(node.parent.parent / "ieee80211/phy0", node / "phy80211")
        (self.class_net / name).symlink_to(os.path.relpath(node, self.class_net))
        return node


@pytest.fixture
def sysfs(tmp_path) -> FakeSysfs:
    return FakeSysfs(tmp_path / "sys")


def build_box(fs: FakeSysfs) -> None:
    """An edge box with every kind of link discovery must tell apart."""
    fs.netdev("lo", type=772, flags="0x9", address="00:00:00:00:00:00", operstate="unknown",
              ifindex=1)
    fs.netdev("eno1", "pci0000:00/0000:00:1f.6", driver="e1000e", ifindex=2)
    fs.netdev("enp2s0", "pci0000:00/0000:00:1c.0/0000:02:00.0", driver="igb", ifindex=3,
              address="3C:EC:EF:00:00:02", carrier="0", operstate="down")
    # iwlwifi as cfg80211 shows it: phy80211 link, wireless/ group and DEVTYPE=wlan.
    fs.netdev("wlp3s0", "pci0000:00/0000:00:1c.1/0000:03:00.0", driver="iwlwifi", ifindex=4,
              devtype="wlan", wireless=True, phy80211=True, carrier=None, operstate="down")
    # A Sierra/Quectel QMI modem on USB: usbnet with FLAG_WWAN says DEVTYPE=wwan.
    fs.netdev("wwan0", "pci0000:00/0000:00:14.0/usb1/1-4/1-4:1.8", driver="qmi_wwan",
              bus="usb", devtype="wwan", ifindex=5, type=65534, addr_len=0, address="",
              operstate="unknown")
    fs.netdev("enx001122334455", "pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0", driver="r8152",
              bus="usb", ifindex=6, address="00:11:22:33:44:55")
    fs.netdev("veth1a2b3c4", ifindex=7, address="aa:bb:cc:dd:ee:01")
    fs.netdev("docker0", ifindex=8, devtype="bridge", address="02:42:ac:11:00:01",
              carrier="0", operstate="down")
    fs.netdev("tun0", ifindex=9, type=65534, flags="0x1091", addr_len=0, address="",
              operstate="unknown")
    # The bonding driver drops a plain file among the links.
    (fs.class_net / "bonding_masters").write_text("\n")


# ------------------------------------------------------------ classification


def test_classify_a_box_laid_out_like_the_kernel(sysfs):
    build_box(sysfs)
    kinds = {name: d.classify(name, sysfs.class_net)
             for name in ("lo", "eno1", "enp2s0", "wlp3s0", "wwan0", "enx001122334455",
                          "veth1a2b3c4", "docker0", "tun0")}
    assert kinds == {
        "lo": "loopback", "eno1": "wired", "enp2s0": "wired", "wlp3s0": "wireless",
        "wwan0": "cellular", "enx001122334455": "wired", "veth1a2b3c4": "virtual",
        "docker0": "virtual", "tun0": "virtual",
    }


@pytest.mark.parametrize("marks", [
    {"phy80211": True},
    {"wireless": True},
    {"devtype": "wlan"},  # rndis_wlan and other usbnet drivers with FLAG_WLAN
])
def test_any_one_wireless_mark_is_enough(sysfs, marks):
    sysfs.netdev("wlan0", "pci0000:00/0000:00:1c.1/0000:03:00.0", driver="ath9k", **marks)
    assert d.classify("wlan0", sysfs.class_net) == "wireless"


def test_simulated_radio_is_wireless_though_its_device_is_virtual(sysfs):
    # mac80211_hwsim's radios hang under devices/virtual, yet the link is a real cfg80211 one.
    sysfs.netdev("wlan0", "virtual/mac80211_hwsim/hwsim0", phy80211=True, wireless=True,
                 devtype="wlan")
    assert d.classify("wlan0", sysfs.class_net) == "wireless"


def test_wwan_driver_without_devtype_is_cellular(sysfs):
    # Out-of-tree GobiNet / qmi_wwan_q set no DEVTYPE.
    sysfs.netdev("usb0", "pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.4", driver="GobiNet", bus="usb")
    assert d.classify("usb0", sysfs.class_net) == "cellular"


def test_wwan_framework_netdev_is_cellular(sysfs):
    # PCIe modems (mhi, iosm, t7xx): the netdev's parent is a wwan class device, no driver.
    sysfs.netdev("wwan0", "pci0000:00/0000:00:1c.2/0000:04:00.0/wwan/wwan0", devtype="wwan",
                 type=65534, addr_len=0, address="")
    assert d.classify("wwan0", sysfs.class_net) == "cellular"
    assert d.discover(sysfs.class_net, root=sysfs.base).get("wwan0").driver is None


@pytest.mark.parametrize("sibling_driver, kind", [
    ("option", "cellular"),     # AT/diag serial ports of the same modem
    ("qcserial", "cellular"),
    ("cdc_acm", "wired"),       # a USB gadget or PLC with an ECM port and a console
    (None, "wired"),
])
def test_cdc_ether_is_cellular_only_behind_a_modem(sysfs, sibling_driver, kind):
    usb = "pci0000:00/0000:00:14.0/usb1/1-2"
    sysfs.netdev("usb0", f"{usb}/1-2:1.0", driver="cdc_ether", bus="usb")
    sysfs.device(f"{usb}/1-2:1.2", sibling_driver, bus="usb")
    assert d.classify("usb0", sysfs.class_net) == kind


def test_cdc_ether_next_to_a_cdc_wdm_control_port_is_cellular(sysfs):
    usb = "pci0000:00/0000:00:14.0/usb1/1-2"
    sysfs.netdev("usb0", f"{usb}/1-2:1.1", driver="cdc_ncm", bus="usb")
    (sysfs.device(f"{usb}/1-2:1.0") / "usbmisc/cdc-wdm0").mkdir(parents=True)
    assert d.classify("usb0", sysfs.class_net) == "cellular"


def test_absent_interface_falls_back_on_its_name(sysfs):
    assert d.classify("wlan7", sysfs.class_net) == "wireless"
    assert d.classify("eno1", sysfs.class_net) == "wired"


@pytest.mark.parametrize("name, kind", [
    ("wlan0", "wireless"), ("wlp3s0", "wireless"), ("wwan0", "cellular"),
    ("wwp0s20f0u3i12", "cellular"), ("cdc-wdm0", "cellular"), ("ttyUSB2", "cellular"),
    ("ttyACM0", "cellular"), ("lo", "loopback"), ("eno1", "wired"), ("enp2s0", "wired"),
    ("eth0", "wired"), ("br0", "wired"),
])
def test_kind_from_name(name, kind):
    assert d.kind_from_name(name) == kind


# ------------------------------------------------------------ discover on a fixture


def fake_netifaces(addresses: dict, gateways: dict) -> SimpleNamespace:
    def ifaddresses(name):
        if name not in addresses:
            raise ValueError("You must specify a valid interface name.")
        return addresses[name]
    return SimpleNamespace(AF_LINK=17, AF_INET=2, AF_INET6=10, ifaddresses=ifaddresses,
                           interfaces=lambda: list(addresses), gateways=lambda: gateways)


def test_discover_reads_sysfs_and_formats_netifaces_addresses(sysfs, monkeypatch, tmp_path):
    build_box(sysfs)
    monkeypatch.setattr(d, "netifaces", fake_netifaces(
        {
            "lo": {2: [{"addr": "127.0.0.1", "netmask": "255.0.0.0", "peer": "127.0.0.1"}],
                   10: [{"addr": "::1", "netmask": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"}]},
            "eno1": {17: [{"addr": "3c:ec:ef:00:00:01"}],
                     2: [{"addr": "192.168.50.2", "netmask": "255.255.255.0"}],
                     10: [{"addr": "fe80::3eec:efff:fe00:1%eno1",
                           "netmask": "ffff:ffff:ffff:ffff::/64"}]},
            # a point-to-point link without a netmask, and an IPv6 mask in full form
            "wwan0": {2: [{"addr": "10.64.1.2", "peer": "10.64.1.1"}],
                      10: [{"addr": "2001:db8:5::2", "netmask": "ffff:ffff:ffff:ffff::"}]},
        },
        {"default": {2: ("10.64.1.1", "wwan0")},
         2: [("10.64.1.1", "wwan0", True), ("192.168.50.1", "eno1", False)],
         10: [("fe80::1%eno1", "eno1", True)]},
    ))
    inv = d.discover(sysfs.class_net, root=tmp_path / "staged")
    assert [i.name for i in inv.interfaces] == [
        "lo", "eno1", "enp2s0", "wlp3s0", "wwan0", "enx001122334455", "veth1a2b3c4",
        "docker0", "tun0"]  # kernel order; bonding_masters is no link
    assert inv.get("lo") == Interface("lo", "loopback", None, True, "unknown",
                                      ("127.0.0.1/8", "::1/128"), None)
    assert inv.get("eno1") == Interface("eno1", "wired", "3c:ec:ef:00:00:01", True, "up",
                                        ("192.168.50.2/24", "fe80::3eec:efff:fe00:1/64"),
                                        "e1000e")
    assert inv.get("enp2s0").mac == "3c:ec:ef:00:00:02"  # lower-cased
    assert inv.get("enp2s0").carrier is False
    assert inv.get("wlp3s0").carrier is None and inv.get("wlp3s0").driver == "iwlwifi"
    assert inv.get("wwan0").addresses == ("10.64.1.2/32", "2001:db8:5::2/64")
    assert inv.get("wwan0").mac is None and inv.get("tun0").mac is None
    assert inv.get("nope") is None
    assert inv.default_gateways == (("10.64.1.1", "wwan0"), ("fe80::1", "eno1"))
    assert inv.stack == Stack(None, False, False, False, False)


# ------------------------------------------------------------ the real kernel, in a netns

NS_PROBE = """
import json, sys
from pathlib import Path
from installer.box.discover import discover, format_table
inv = discover(root=Path(sys.argv[1]))
print(json.dumps({"inventory": inv.to_json(), "table": format_table(inv)}))
"""


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip("NOT ROOT: the namespace discovery test (veth, dummy, real sysfs and "
                    "netifaces) needs root to create a network namespace. It did NOT run.")
    if shutil.which("ip") is None:
        pytest.fail("iproute2's `ip` is missing: install the iproute2 package")
    name = f"ei-disc-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        # Deleting the namespace takes every link made inside it along.
        subprocess.run(["ip", "netns", "del", name], check=False)


def ip(ns: str, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", "-n", ns, *args], capture_output=True, text=True)
    assert done.returncode == 0, f"ip -n {ns} {' '.join(args)}: {done.stderr}"
    return done


def add_parentless_link(ns: str, name: str) -> None:
    """A dummy link; an ifb where the kernel lacks dummy (CONFIG_DUMMY unset, as on our VMs).

    Both are virtual links with a MAC and no parent device: for discovery they are the same.
    """
    done = subprocess.run(["ip", "-n", ns, "link", "add", name, "type", "dummy"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        assert "Unknown device type" in done.stderr, done.stderr
        ip(ns, "link", "add", name, "type", "ifb")


@pytest.mark.lab
def test_discover_inside_a_network_namespace(netns, tmp_path):
    # Every link is created inside the namespace: nothing touches the host's eth0.
    ip(netns, "link", "set", "lo", "up")
    ip(netns, "link", "add", "veth-a", "address", "02:00:00:C6:33:0A", "type", "veth",
       "peer", "name", "veth-b")
    ip(netns, "addr", "add", "198.51.100.10/24", "dev", "veth-a")
    ip(netns, "-6", "addr", "add", "2001:db8:100::10/64", "dev", "veth-a", "nodad")
    ip(netns, "link", "set", "veth-a", "up")
    ip(netns, "link", "set", "veth-b", "up")
    ip(netns, "route", "add", "default", "via", "198.51.100.1", "dev", "veth-a")
    ip(netns, "link", "add", "veth-c", "type", "veth", "peer", "name", "veth-d")
    ip(netns, "link", "set", "veth-c", "up")  # its peer stays down: no carrier
    add_parentless_link(netns, "dum0")
    ip(netns, "addr", "add", "198.51.100.77/32", "dev", "dum0")  # dum0 stays down
    add_parentless_link(netns, "dum1")
    ip(netns, "link", "set", "dum1", "up")
    ip(netns, "tuntap", "add", "dev", "tun0", "mode", "tun")  # no link-layer address at all

    done = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", NS_PROBE, str(tmp_path / "staged")],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    inv = Inventory.from_json(result["inventory"])

    names = {i.name for i in inv.interfaces}
    assert {"lo", "veth-a", "veth-b", "veth-c", "veth-d", "dum0", "dum1", "tun0"} <= names
    assert "eth0" not in names  # the host's links are not in our namespace
    # Anything else here is a fallback tunnel (tunl0, sit0...) the kernel adds to new namespaces.
    assert all(i.kind == "virtual" for i in inv.interfaces if i.name != "lo")

    lo = inv.get("lo")
    assert (lo.kind, lo.mac, lo.carrier) == ("loopback", None, True)
    assert {"127.0.0.1/8", "::1/128"} <= set(lo.addresses)

    a = inv.get("veth-a")
    assert a.mac == "02:00:00:c6:33:0a"
    assert a.carrier is True and a.operstate == "up"
    assert a.addresses[0] == "198.51.100.10/24"
    assert "2001:db8:100::10/64" in a.addresses
    assert all("/" in x and "%" not in x for x in a.addresses)
    assert a.driver is None  # veth has no parent device, hence no device/driver
    assert inv.get("veth-b").carrier is True

    assert inv.get("veth-c").carrier is False  # up, but its peer is down
    assert inv.get("veth-d").carrier is None and inv.get("veth-d").operstate == "down"
    dum0 = inv.get("dum0")
    assert dum0.carrier is None and dum0.addresses == ("198.51.100.77/32",)
    assert dum0.mac is not None and dum0.driver is None
    assert inv.get("dum1").carrier is True
    assert inv.get("tun0").mac is None

    assert inv.default_gateways == (("198.51.100.1", "veth-a"),)
    assert inv.stack.in_charge == "unknown"  # a staged root runs nothing

    table = result["table"]
    table.encode("ascii")
    assert all(len(line) <= 80 for line in table.splitlines())
    assert "198.51.100.10/24" in table
    assert "Default gateway: 198.51.100.1 via veth-a" in table


# ------------------------------------------------------------ stack detection


def must_not_run(*args, **kwargs):
    raise AssertionError(f"a staged root must not run anything: {args}")


DPKG_STATUS = """\
Package: libnetplan0
Status: install ok installed
Version: 0.106-2+deb12u1

Package: netplan.io
Status: install ok installed
Priority: optional
Depends: libc6 (>= 2.34), iproute2,
 python3-yaml
Version: 0.106-2+deb12u1

Package: network-manager
Status: install ok installed
Version: 1.42.4-1

Package: ifupdown
Status: deinstall ok config-files
Version: 0.8.41
"""


def stage(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_empty_staged_root_knows_nothing(tmp_path):
    stack = stackmod.detect_stack(tmp_path, run=must_not_run)
    assert stack == Stack(None, False, False, False, False)
    assert stack.in_charge == "unknown"


@pytest.mark.parametrize("cloud_init", [True, False])
def test_staged_debian_root(tmp_path, cloud_init):
    files = {
        "var/lib/dpkg/status": DPKG_STATUS,
        # A staged tree may carry a daemon's leftovers, and even a live pid: still not running.
        "run/NetworkManager/NetworkManager.pid": f"{os.getpid()}\n",
        "run/systemd/netif/state": "OPER_STATE=routable\n",
        "proc/1/comm": "systemd-network\n",
    }
    if cloud_init:
        files["etc/cloud/cloud.cfg"] = "datasource_list: [NoCloud]\n"
    stack = stackmod.detect_stack(stage(tmp_path, files), run=must_not_run)
    assert stack == Stack((0, 106), True, False, False, cloud_init, packages_known=True, resolved=False,
                          time_daemon="none", wpa_supplicant=False, modemmanager=False, ifupdown=False)
    assert stack.facts_apply  # a staged tree with a package database describes its box
    assert stack.in_charge == "unknown"
    assert ("cloud-init installed" in stack.describe()) is cloud_init


@pytest.mark.parametrize("status, expected", [
    ("Package: netplan.io\nStatus: install ok installed\nVersion: 1:1.0-2ubuntu1\n", (1, 0)),
    ("Package: netplan.io\nStatus: install ok installed\nVersion: 0.107.1-3\n", (0, 107, 1)),
    ("Package: netplan.io\nStatus: deinstall ok config-files\nVersion: 0.106-2\n", None),
])
def test_netplan_version_from_dpkg_status(tmp_path, status, expected):
    stage(tmp_path, {"var/lib/dpkg/status": status})
    assert stackmod.detect_stack(tmp_path, run=must_not_run).netplan_version == expected


def test_netplan_from_opkg_and_from_a_bare_binary(tmp_path):
    yocto = stage(tmp_path / "yocto", {
        "var/lib/opkg/status": "Package: netplan\nVersion: 0.106-r0\nStatus: install user installed\n",
        "usr/sbin/NetworkManager": ""})
    stack = stackmod.detect_stack(yocto, run=must_not_run)
    assert (stack.netplan_version, stack.networkmanager_installed, stack.in_charge) == ((0, 106), True, "unknown")
    assert stack.packages_known and stack.time_daemon == "none" and stack.wpa_supplicant is False
    bare = stage(tmp_path / "bare", {"usr/sbin/netplan": ""})
    stack = stackmod.detect_stack(bare, run=must_not_run)
    assert stack.netplan_version == stackmod.NETPLAN_VERSION_UNKNOWN
    assert "netplan (version unknown)" in stack.describe()


def test_live_root_asks_dpkg_query():
    calls = []

    def run(argv, **kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, stdout="ii 0.107.1-3", stderr="")

    assert stackmod.detect_stack(Path("/"), run=run).netplan_version == (0, 107, 1)
    assert calls and calls[0][0] == "dpkg-query"


@pytest.mark.parametrize("error", [FileNotFoundError("dpkg-query"),
                                   subprocess.TimeoutExpired("dpkg-query", 10),
                                   RuntimeError("anything at all")])
def test_live_root_never_raises(error):
    def run(argv, **kwargs):
        raise error

    stack = stackmod.detect_stack(Path("/"), run=run)
    assert isinstance(stack, Stack)
    assert stack.in_charge in ("networkmanager", "networkd", "unknown")


def test_daemons_from_process_table_not_from_leftover_directories(tmp_path):
    # systemd-tmpfiles creates /run/systemd/netif whether networkd runs or not.
    stage(tmp_path, {"run/systemd/netif/links/.keep": "", "proc/1/comm": "systemd\n",
                     "run/NetworkManager/NetworkManager.pid": "456\n"})
    assert stackmod._daemons_running(tmp_path) == (False, False)  # stale pid file, no process
    stage(tmp_path, {"proc/123/comm": "systemd-network\n"})  # comm is cut to 15 characters
    assert stackmod._daemons_running(tmp_path) == (False, True)
    stage(tmp_path, {"proc/456/comm": "NetworkManager\n"})
    assert stackmod._daemons_running(tmp_path) == (True, True)


def test_networkmanager_process_without_its_run_directory_is_not_in_charge(tmp_path):
    stage(tmp_path, {"proc/77/comm": "NetworkManager\n"})
    assert stackmod._daemons_running(tmp_path) == (False, False)


@pytest.mark.parametrize("stack, in_charge, phrase", [
    (Stack((0, 106), True, True, False, False), "networkmanager", "NetworkManager in charge"),
    (Stack((0, 106), True, True, True, False), "networkmanager", "systemd-networkd also running"),
    (Stack((1, 0), False, False, True, True), "networkd", "systemd-networkd in charge"),
    (Stack(None, True, False, False, False), "unknown", "no network daemon seen running"),
])
def test_in_charge_and_describe(stack, in_charge, phrase):
    assert stack.in_charge == in_charge
    text = stack.describe()
    assert phrase in text
    text.encode("ascii")


# ------------------------------------------------------------ output


def sample_inventory() -> Inventory:
    return Inventory(
        interfaces=(
            Interface("lo", "loopback", None, True, "unknown", ("127.0.0.1/8", "::1/128"), None),
            Interface("enp2s0", "wired", "3c:ec:ef:00:00:02", True, "up",
                      ("10.20.0.15/24", "2001:db8:1234:5678:9abc:def0:1234:5678/64"), "igb"),
            Interface("br-0123456789ab", "virtual", "02:42:ac:11:00:01", False, "down", (), None),
            Interface("wlp3s0", "wireless", "dc:a6:32:00:00:01", None, "down", (), "iwlwifi"),
            Interface("ev\x1b[2Jil\u00e9", "wired", None, None, None, ("192.0.2.9/24",), None),
        ),
        default_gateways=(("10.20.0.1", "enp2s0"), ("fe80::1", "enp2s0")),
        stack=Stack((0, 106), True, True, False, True),
    )


def test_format_table_is_ascii_and_fits_80_columns():
    table = d.format_table(sample_inventory())
    table.encode("ascii")
    lines = table.splitlines()
    assert all(len(line) <= 80 for line in lines), table
    assert lines[0].split() == ["NAME", "KIND", "MAC", "CARRIER", "ADDRESSES"]
    assert "\x1b" not in table and "ev\\x1b[2Jil\\xc3\\xa9" in table
    for address in ("127.0.0.1/8", "::1/128", "10.20.0.15/24",
                    "2001:db8:1234:5678:9abc:def0:1234:5678/64"):
        assert any(line.strip() == address or line.endswith(" " + address) for line in lines)
    wlan = next(line for line in lines if line.startswith("wlp3s0"))
    assert wlan.split()[3] == "down"
    assert "Default gateway: 10.20.0.1 via enp2s0, fe80::1 via enp2s0" in table
    assert "Network stack: NetworkManager in charge; netplan 0.106" in table


def test_json_shape_is_stable_and_round_trips():
    inv = sample_inventory()
    data = json.loads(json.dumps(inv.to_json()))
    assert set(data) == {"version", "interfaces", "default_gateways", "stack"}
    assert data["version"] == 1
    assert data["interfaces"][1] == {
        "name": "enp2s0", "kind": "wired", "mac": "3c:ec:ef:00:00:02", "carrier": True,
        "operstate": "up", "addresses": ["10.20.0.15/24",
                                         "2001:db8:1234:5678:9abc:def0:1234:5678/64"],
        "driver": "igb"}
    assert data["default_gateways"][0] == {"gateway": "10.20.0.1", "interface": "enp2s0"}
    assert data["stack"] == {
        "netplan_version": "0.106", "networkmanager_installed": True,
        "networkmanager_running": True, "networkd_running": False,
        "cloud_init_installed": True, "in_charge": "networkmanager",
        "description": inv.stack.describe(), "resolved": None, "time_daemon": None,
        "wpa_supplicant": None, "modemmanager": None, "ifupdown": None}
    assert Inventory.from_json(data) == inv


def test_discover_imports_no_ui():
    probe = ("import sys, installer.box.discover; "
             "print([m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')])")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]"
