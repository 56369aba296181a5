"""Ports that follow the hardware (plan `ports`, issue 12 part 4), proven on booted boxes: a plan
that names its roles otherwise than the box's kernel does ("lan0" for the machine network,
"wan0" for the uplink) and binds them to the box's two NICs, the uplink by MAC and the machine
port by its socket (udev's ID_PATH), takes effect. What is checked is the state in effect (`ip`,
`nmcli`, `edge-installer check --json` in the box), not the bytes on disk:

- networkd (netplan + systemd-networkd): netplan's `match` + `set-name` rename the MAC-bound
  uplink, and our systemd .link file the path-bound machine port (netplan has no path match),
  both already after `edge-installer apply` (measured on netplan 0.106 / systemd 252: udev
  applies .link files again when `netplan apply` re-triggers the network devices) and again at
  the next boot (a power cycle here): each port carries the plan's name and address, the uplink
  reaches the lab's cloud, the box its plant machine, and the link checks pass;
- stock (NetworkManager keyfiles, no netplan): NetworkManager's profiles bind to the NICs by
  MAC and by path ([match] path=) although the kernel keeps its names; the link checks find the
  ports by those bindings.

The MACs and paths are read from the guest first, as a technician reads them from
`edge-installer interfaces` and `udevadm info` before writing the plan. The lab's NICs are all
virtio-net: a binding by driver would match both (refused as ambiguous by `check`), so it is
not tried here.
"""

from __future__ import annotations

import json

import pytest

from tests.box import product as P
from tests.box.fixtures import boot_box, box_session, installed, pyz  # noqa: F401  (fixtures)
from tests.lab import topology as T

pytestmark = pytest.mark.box

LAN, WAN = "lan0", "wan0"  # the plan's names: not the box's eno1 / enp2s0


def bound_plan(box, renderer: str) -> dict:
    """The lab's isolated plan with its ports named lan0/wan0 and bound to the box's NICs: the
    uplink by the MAC the box reports (`edge-installer interfaces --json`), the machine port by
    its socket, udev's ID_PATH (`udevadm info`)."""
    macs = {i["name"]: i["mac"] for i in box_interfaces(box)}
    assert macs.get(T.MACHINE_IF) and macs.get(T.UPLINK_IF), macs
    path = udev_path(box, T.MACHINE_IF)
    assert path.startswith("pci-"), path
    plan = P.plan_for(box.lab, renderer=renderer, uplink="static", dns="custom", ntp="custom")
    plan["machine_network"]["interfaces"] = [LAN]
    plan["uplink"]["interface"] = WAN
    plan["ports"] = {LAN: {"path": path}, WAN: {"mac": macs[T.UPLINK_IF]}}
    return plan


def udev_path(box, name: str) -> str:
    """udev's ID_PATH of the interface `name` (or of whatever is at /sys/class/net/name)."""
    out = box.exec(["udevadm", "info", "-q", "property", "-p", f"/sys/class/net/{name}"], check=True).stdout
    return next((line.split("=", 1)[1] for line in out.splitlines() if line.startswith("ID_PATH=")), "")


def box_interfaces(box) -> list[dict]:
    """`edge-installer interfaces --json` in the box: what a technician reads the MACs from."""
    done = box.exec([P.BIN, "interfaces", "--json"], timeout=120)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)["interfaces"]


def links(box) -> dict[str, str]:
    """kernel name -> MAC of every interface but the loopback, as `ip` has them."""
    return {link["ifname"]: link.get("address", "") for link in
            json.loads(box.exec(["ip", "-j", "link", "show"], check=True).stdout) if link["ifname"] != "lo"}


def apply_bound(box, plan: dict) -> dict[str, str]:
    """Apply `plan` with --no-confirm (it must succeed, without a traceback); the links after it."""
    P.put_plan(box, plan)
    done = P.apply(box, P.PLAN, "--no-confirm")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    named = links(box)
    print("after apply:", named)
    return named


def check_json(box) -> dict:
    """`edge-installer check --plan PLAN --json` in the box (exit 2 is allowed: only the link
    checks are judged here)."""
    done = box.exec([P.BIN, "check", "--plan", P.PLAN, "--json", "--timeout", "5"], timeout=180)
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def link_results(report: dict) -> dict[str, dict]:
    """The link-state results by target (the plan's port name)."""
    return {c["target"]: c for c in report["checks"] if c["id"] == "link-state"}


def test_networkd_ports_bound_by_mac_and_path_take_the_plans_names(installed):
    box = installed("networkd")
    plan = bound_plan(box, "netplan")
    lan_mac = links(box)[T.MACHINE_IF]
    macs = {lan_mac: LAN, plan["ports"][WAN]["mac"]: WAN}
    named = apply_bound(box, plan)
    # `netplan apply` renames a port matched by MAC at once, and the path-bound one through our
    # .link file too (measured on netplan 0.106): no reboot or re-plug is needed.
    assert named.get(WAN) == plan["ports"][WAN]["mac"] and T.UPLINK_IF not in named, named
    assert named.get(LAN) == lan_mac and T.MACHINE_IF not in named, named
    link_file = box.exec(["cat", f"/etc/systemd/network/10-edge-installer-{LAN}.link"]).stdout
    assert f"Path={plan['ports'][LAN]['path']}" in link_file and f"Name={LAN}" in link_file, link_file
    st = P.wait_until(lambda: (s := P.state(box))["addresses"].get(WAN) == [f"{T.EDGE_UPLINK}/{T.PREFIX}"]
                      and s, 60, "the uplink's address on wan0")
    print("addresses:", st["addresses"], "routes:", st["default_routes"])
    assert st["default_routes"] == [(T.GATEWAY, WAN)], st
    assert P.reaches(box, P.vendor_name(), 443) == "ok"
    before = link_results(check_json(box))
    print("link-state before the next boot:", {k: (v["status"], v["evidence"]) for k, v in before.items()})
    assert before[WAN]["status"] == "pass" and T.EDGE_UPLINK in before[WAN]["evidence"], before
    # At the next boot udev names both from the start (netplan's .link file for the MAC, ours
    # for the path): the power pulled and put back (a new QEMU on the same disk; quicker than a
    # reboot under TCG).
    box.exec(["sync"], timeout=120, check=True)
    box.power_cut()
    box.start()
    box.wait_ready()
    named = links(box)
    print("after a power cycle:", named)
    assert {named.get(LAN), named.get(WAN)} == set(macs) and named[LAN] == lan_mac, named
    assert T.MACHINE_IF not in named and T.UPLINK_IF not in named, named
    assert udev_path(box, LAN) == plan["ports"][LAN]["path"]
    st = P.wait_until(lambda: (s := P.state(box))["addresses"].get(WAN) == [f"{T.EDGE_UPLINK}/{T.PREFIX}"]
                      and s["addresses"].get(LAN) == [f"{T.EDGE_MACHINE}/{T.PREFIX}"] and s, 90,
                      "the plan's addresses on wan0 and lan0 after the power cycle")
    print("addresses:", st["addresses"], "routes:", st["default_routes"])
    assert st["default_routes"] == [(T.GATEWAY, WAN)], st
    assert P.reaches(box, P.vendor_name(), 443) == "ok"
    machine = T.MACHINES[0]
    assert P.wait_until(lambda: P.reaches(box, machine.address, machine.port) == "ok", 30,
                        "the box reaching its plant machine over lan0")
    found = link_results(check_json(box))
    print("link-state:", {k: (v["status"], v["evidence"]) for k, v in found.items()})
    assert found[LAN]["status"] == "pass" and found[WAN]["status"] == "pass", found
    assert T.EDGE_MACHINE in found[LAN]["evidence"] and T.EDGE_UPLINK in found[WAN]["evidence"], found


def test_networkmanager_profiles_bound_by_mac_and_path_hold_the_ports_under_their_kernel_names(installed):
    box = installed("stock")
    plan = bound_plan(box, "networkmanager")
    # NetworkManager renames nothing: the kernel's names stay, the profiles follow the MACs.
    named = apply_bound(box, plan)
    assert udev_path(box, T.MACHINE_IF) == plan["ports"][LAN]["path"]
    assert named.get(T.UPLINK_IF) == plan["ports"][WAN]["mac"], named
    assert LAN not in named and WAN not in named, named
    active = box.exec(["nmcli", "-t", "-f", "NAME,DEVICE", "connection", "show", "--active"], check=True).stdout
    print("active:", active.split())
    pairs = set(active.split())
    assert f"edge-machines:{T.MACHINE_IF}" in pairs and f"edge-uplink:{T.UPLINK_IF}" in pairs, active
    matched = box.exec(["nmcli", "-g", "match.path", "connection", "show", "edge-machines"], check=True).stdout
    # (-g escapes the colons of its values)
    assert matched.strip().replace("\\:", ":") == plan["ports"][LAN]["path"], matched  # by the socket, not by name
    st = P.state(box)
    print("addresses:", st["addresses"], "routes:", st["default_routes"])
    assert st["addresses"].get(T.MACHINE_IF) == [f"{T.EDGE_MACHINE}/{T.PREFIX}"], st
    assert st["addresses"].get(T.UPLINK_IF) == [f"{T.EDGE_UPLINK}/{T.PREFIX}"], st
    assert st["default_routes"] == [(T.GATEWAY, T.UPLINK_IF)], st
    assert P.reaches(box, P.vendor_name(), 443) == "ok"
    found = link_results(check_json(box))
    print("link-state:", {k: (v["status"], v["evidence"]) for k, v in found.items()})
    assert found[LAN]["status"] == "pass" and found[WAN]["status"] == "pass", found
    # The evidence names the port the binding found, by the kernel's name for it.
    assert T.MACHINE_IF in found[LAN]["evidence"] and T.EDGE_MACHINE in found[LAN]["evidence"], found
    assert T.UPLINK_IF in found[WAN]["evidence"] and T.EDGE_UPLINK in found[WAN]["evidence"], found
