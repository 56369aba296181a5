"""Ports that follow the hardware (plan `ports`, issue 12 part 4), proven on booted boxes: a plan
that names its roles otherwise than the box's kernel does ("lan0" for the machine network,
"wan0" for the uplink) and binds them by MAC to the box's two NICs takes effect. What is
checked is the state in effect (`ip`, `nmcli`, `edge-installer check --json` in the box), not
the bytes on disk:

- networkd (netplan + systemd-networkd): netplan's `match` + `set-name` give the ports the
  plan's names, the plan's addresses are on them, the uplink reaches the lab's cloud and the
  link checks pass;
- stock (NetworkManager keyfiles, no netplan): NetworkManager's profiles bind to the NICs by
  MAC although the kernel keeps its names; the link checks find the ports by that binding.

The MACs are read from the guest first, as a technician reads them from
`edge-installer interfaces` before writing the plan.
"""

from __future__ import annotations

import json

import pytest

from tests.box import product as P
from tests.box.fixtures import box_session, boot_box, installed, pyz  # noqa: F401  (fixtures)
from tests.lab import topology as T

pytestmark = pytest.mark.box

LAN, WAN = "lan0", "wan0"  # the plan's names: not the box's eno1 / enp2s0


def bound_plan(box, renderer: str) -> dict:
    """The lab's isolated plan with its ports named lan0/wan0 and bound to the box's NICs by
    the MACs the box reports (`edge-installer interfaces --json`)."""
    macs = {i["name"]: i["mac"] for i in box_interfaces(box)}
    assert macs.get(T.MACHINE_IF) and macs.get(T.UPLINK_IF), macs
    plan = P.plan_for(box.lab, renderer=renderer, uplink="static", dns="custom", ntp="custom")
    plan["machine_network"]["interfaces"] = [LAN]
    plan["uplink"]["interface"] = WAN
    plan["ports"] = {LAN: {"mac": macs[T.MACHINE_IF]}, WAN: {"mac": macs[T.UPLINK_IF]}}
    return plan


def box_interfaces(box) -> list[dict]:
    """`edge-installer interfaces --json` in the box: what a technician reads the MACs from."""
    done = box.exec([P.BIN, "interfaces", "--json"], timeout=120)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)["interfaces"]


def links(box) -> dict[str, str]:
    """kernel name -> MAC of every interface but the loopback, as `ip` has them."""
    return {l["ifname"]: l.get("address", "") for l in
            json.loads(box.exec(["ip", "-j", "link", "show"], check=True).stdout) if l["ifname"] != "lo"}


def check_json(box) -> dict:
    """`edge-installer check --plan PLAN --json` in the box (exit 2 is allowed: only the link
    checks are judged here)."""
    done = box.exec([P.BIN, "check", "--plan", P.PLAN, "--json", "--timeout", "5"], timeout=180)
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def link_results(report: dict) -> dict[str, dict]:
    """The link-state results by target (the plan's port name)."""
    return {c["target"]: c for c in report["checks"] if c["id"] == "link-state"}


def test_networkd_ports_bound_by_mac_take_the_plans_names(installed):
    box = installed("networkd")
    plan = bound_plan(box, "netplan")
    macs = {plan["ports"][LAN]["mac"]: LAN, plan["ports"][WAN]["mac"]: WAN}
    P.put_plan(box, plan)
    done = P.apply(box, P.PLAN, "--no-confirm")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    named = links(box)
    print("after apply:", named)
    # `netplan apply` renames a port matched by MAC at once (measured on netplan 0.106): no
    # reboot or re-plug is needed for the plan's names to hold.
    assert {named.get(LAN), named.get(WAN)} == set(macs), named
    assert T.MACHINE_IF not in named and T.UPLINK_IF not in named, named
    st = P.wait_until(lambda: (s := P.state(box))["addresses"].get(WAN) == [f"{T.EDGE_UPLINK}/{T.PREFIX}"]
                      and s, 60, "the uplink's address on wan0")
    print("addresses:", st["addresses"], "routes:", st["default_routes"])
    assert st["addresses"].get(LAN) == [f"{T.EDGE_MACHINE}/{T.PREFIX}"], st
    assert st["default_routes"] == [(T.GATEWAY, WAN)], st
    assert P.reaches(box, P.vendor_name(), 443) == "ok"
    machine = T.MACHINES[0]
    assert P.reaches(box, machine.address, machine.port) == "ok"
    report = check_json(box)
    found = link_results(report)
    print("link-state:", {k: (v["status"], v["evidence"]) for k, v in found.items()})
    assert found[LAN]["status"] == "pass" and found[WAN]["status"] == "pass", found
    assert T.EDGE_MACHINE in found[LAN]["evidence"] and T.EDGE_UPLINK in found[WAN]["evidence"], found
    # And at the next boot udev names them so from the start (netplan's generated .link files):
    # the power pulled and put back (a new QEMU on the same disk; quicker than a reboot under TCG).
    box.exec(["sync"], timeout=120, check=True)
    box.power_cut()
    box.start()
    box.wait_ready()
    named = links(box)
    print("after a power cycle:", named)
    assert {named.get(LAN), named.get(WAN)} == set(macs) and T.MACHINE_IF not in named, named
    st = P.wait_until(lambda: (s := P.state(box))["addresses"].get(WAN) == [f"{T.EDGE_UPLINK}/{T.PREFIX}"]
                      and s, 90, "the uplink's address on wan0 after the power cycle")
    assert st["addresses"].get(LAN) == [f"{T.EDGE_MACHINE}/{T.PREFIX}"], st
    assert P.reaches(box, P.vendor_name(), 443) == "ok"


def test_networkmanager_profiles_bound_by_mac_hold_the_ports_under_their_kernel_names(installed):
    box = installed("stock")
    plan = bound_plan(box, "networkmanager")
    P.put_plan(box, plan)
    done = P.apply(box, P.PLAN, "--no-confirm")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    # NetworkManager renames nothing: the kernel's names stay, the profiles follow the MACs.
    named = links(box)
    assert named.get(T.MACHINE_IF) == plan["ports"][LAN]["mac"], named
    assert named.get(T.UPLINK_IF) == plan["ports"][WAN]["mac"], named
    assert LAN not in named and WAN not in named, named
    active = box.exec(["nmcli", "-t", "-f", "NAME,DEVICE", "connection", "show", "--active"], check=True).stdout
    print("active:", active.split())
    pairs = set(active.split())
    assert f"edge-machines:{T.MACHINE_IF}" in pairs and f"edge-uplink:{T.UPLINK_IF}" in pairs, active
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
