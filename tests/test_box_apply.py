"""`edge-installer apply` on booted Debian 12 boxes (tests/box): what is in effect afterwards,
read from the box itself, on each kind of box a plant has:

- networkd: netplan + systemd-networkd + systemd-resolved + timesyncd (Ubuntu-like);
- nm: netplan handing everything to NetworkManager, resolved, timesyncd;
- stock: Debian with NetworkManager managing every device, chrony, no resolved, no netplan.

And that a change nobody confirms does not stay: not answered, the apply killed with SIGKILL
(the revert timer fires), the power cut (the boot unit puts the old files back before the
network starts). Each VM is restored from a snapshot taken after install, so tests do not
see each other's changes.
"""

from __future__ import annotations

import time

import pytest

from installer.render.dropins import proxy_url
from tests.box import product as P
from tests.box.fixtures import boot_box, box_session, installed, pyz  # noqa: F401  (fixtures)
from tests.lab import topology as T

pytestmark = pytest.mark.box

# The plan each kind of box gets: what its technician would choose.
PLANS = {
    "networkd": {"renderer": "netplan", "uplink": "static", "dns": "custom", "ntp": "custom"},
    "nm": {"renderer": "netplan", "uplink": "dhcp", "dns": "google", "ntp": "pool"},
    "stock": {"renderer": "networkmanager", "uplink": "static", "dns": "custom", "ntp": "custom"},
}




def expect_applied(box, variant: str, st: dict) -> None:
    """The plan of PLANS[variant] is what the box runs."""
    spec = PLANS[variant]
    assert st["addresses"].get(T.MACHINE_IF) == [f"{T.EDGE_MACHINE}/{T.PREFIX}"], st
    up = st["addresses"].get(T.UPLINK_IF, [])
    if spec["uplink"] == "static":
        assert up == [f"{T.EDGE_UPLINK}/{T.PREFIX}"], st
    else:
        assert len(up) == 1 and up[0].startswith("203.0.113.1") and up[0].endswith("/24"), st
    # One default route, through the uplink: none on the machine network.
    assert st["default_routes"] == [(T.GATEWAY, T.UPLINK_IF)], st
    if spec["dns"] == "custom":
        assert T.DNS in st["dns"], st["dns"]
    else:
        assert "8.8.8.8" in st["dns"], st["dns"]
    if spec["ntp"] == "custom":
        assert T.NTP in st["ntp"], st["ntp"]
    else:
        assert "pool.ntp.org" in st["ntp"], st["ntp"]
    assert st["hostname"] == "edge-01"


def test_apply_on_each_kind_of_box_holds_and_reaches_cloud_and_machines(installed):
    """All three boxes at once, so that the minute's wait is spent once."""
    boxes = {v: installed(v) for v in PLANS}
    for variant, box in boxes.items():
        P.put_plan(box, P.plan_for(box.lab, **PLANS[variant]))
        done = P.apply(box, P.PLAN, "--no-confirm")
        assert done.returncode == 0, f"{variant}:\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        st = P.state(box)
        expect_applied(box, variant, st)
        # The box reaches its cloud by name (its own resolver) and a plant machine.
        assert P.reaches(box, P.vendor_name(), 443) == "ok", variant
        machine = T.MACHINES[0]
        assert P.reaches(box, machine.address, machine.port) == "ok", variant
        # Commands of software the box does not run were not run.
        if variant == "stock":
            assert "systemd-resolved" not in done.stdout and "systemd-timesyncd" not in done.stdout
            assert "ran: systemctl restart chrony" in done.stdout, done.stdout
    time.sleep(60)  # NetworkManager took networkd's addresses away at ~30 s on a stock box
    for variant, box in boxes.items():
        expect_applied(box, variant, P.state(box))
        assert P.reaches(box, P.vendor_name(), 443) == "ok", f"{variant} a minute later"


# networkd's revert (addresses and every file) is proven by the killed apply and the power cut,
# its unconfirmed exit path by the box without resolved: the suite's time goes to the others.
@pytest.mark.parametrize("variant", ["nm", "stock"])
def test_no_confirmation_brings_the_old_configuration_back(installed, variant):
    box = installed(variant)
    before_files = P.config_files(box)
    before = P.state(box)
    P.put_plan(box, P.plan_for(box.lab, **PLANS[variant]))
    done = P.apply(box, P.PLAN, "--confirm-timeout", "3")
    assert done.returncode == 1, f"{done.stdout}\n{done.stderr}"
    assert "not confirmed within 3 s: restoring the previous configuration" in done.stdout
    # The old addresses come back (DHCP may take a moment), with the old routes and resolvers.
    after = P.wait_until(lambda: (s := P.state(box))["addresses"] == before["addresses"] and s, 90,
                         f"{variant}: the old addresses back")
    assert after["default_routes"] == before["default_routes"]
    assert after["dns"] == before["dns"] and after["hostname"] == before["hostname"]
    assert P.config_files(box) == before_files


def test_a_killed_apply_is_undone_by_the_revert_timer(installed):
    box = installed("networkd")
    before_files, before = P.config_files(box), P.state(box)
    P.put_plan(box, P.plan_for(box.lab, **PLANS["networkd"]))
    P.start_apply(box, P.PLAN, "--confirm-timeout", "10")
    P.wait_for(box, "/root/apply.log", "Keep this network configuration?")
    assert P.state(box)["addresses"][T.UPLINK_IF] == [f"{T.EDGE_UPLINK}/{T.PREFIX}"]
    box.sh(f"kill -KILL $(cat {P.APPLY_PID})")
    # Nobody is left to answer: systemd's timer runs `edge-installer recover` 10 + 20 s later.
    P.wait_until(lambda: P.state(box)["addresses"] == before["addresses"], 120,
                 "the revert timer restoring the old addresses")
    assert P.config_files(box) == before_files
    # journald stores the unit's output a moment after the restore itself: wait for it (bounded).
    P.wait_until(lambda: "the previous files are back" in box.exec(
        ["journalctl", "-b", "-o", "cat", "-u", "edge-installer-revert-*"]).stdout, 30,
        "the revert unit's message in the journal")


@pytest.mark.parametrize("variant", ["networkd", "stock"])
def test_power_cut_before_confirmation_boots_the_old_configuration(installed, variant):
    box = installed(variant)
    before_files, before = P.config_files(box), P.state(box)
    P.put_plan(box, P.plan_for(box.lab, **PLANS[variant]))
    P.start_apply(box, P.PLAN, "--confirm-timeout", "600")
    P.wait_for(box, "/root/apply.log", "Keep this network configuration?")
    assert P.state(box)["hostname"] == "edge-01"
    box.power_cut()
    box.start()
    box.wait_ready()
    after = P.wait_until(lambda: (s := P.state(box))["addresses"] == before["addresses"] and s, 90,
                         f"{variant}: the old addresses after the power cut")
    assert after["hostname"] == before["hostname"] and after["default_routes"] == before["default_routes"]
    files = P.config_files(box)
    assert files == before_files
    # The boot unit put them back, and had finished before the network daemon started.
    recover = P.timestamp(box, "edge-installer-recover.service", "ExecMainExitTimestampMonotonic")
    daemon = P.timestamp(box, "systemd-networkd.service" if variant == "networkd" else "NetworkManager.service",
                         "ExecMainStartTimestampMonotonic")
    assert 0 < recover <= daemon, (recover, daemon)
    log = box.exec(["journalctl", "-b", "-o", "cat", "-u", "edge-installer-recover.service"]).stdout
    assert "the previous files are back" in log, log


def test_services_get_the_proxy_and_nobody_else_reads_its_password(installed):
    box = installed("networkd")
    plan = P.plan_for(box.lab, **PLANS["networkd"], proxy=box.lab.proxy_settings())
    P.put_plan(box, plan)
    done = P.apply(box, P.PLAN, "--no-confirm")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    from installer.planning import plan as planmod

    url = proxy_url(planmod.loads(__import__("yaml").safe_dump(plan)))
    assert url and "%" in url  # the password needs percent-encoding: systemd's specifiers would eat it
    # A real service started after apply sees the exact URL.
    box.write_file("/etc/systemd/system/proxyprobe.service",
                   "[Service]\nType=oneshot\nUMask=0077\n"
                   "ExecStart=/bin/sh -c 'printf %%s \"$https_proxy\" > /run/proxyprobe'\n")
    box.sh("systemctl daemon-reload; systemctl start proxyprobe.service")
    assert box.read_file("/run/proxyprobe").decode() == url
    password = box.lab.proxy_password
    encoded = url.split("@")[-2].split(":", 2)[-1]
    for secret in (password, encoded):
        # Not in the manager's environment nor in any unit's properties (both readable by all).
        assert secret not in box.exec(["systemctl", "show-environment"]).stdout
        assert secret not in box.exec(["systemctl", "show", "proxyprobe.service"]).stdout
        assert secret not in box.exec(["busctl", "get-property", "org.freedesktop.systemd1",
                                       "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                                       "Environment"]).stdout
    # An unprivileged user can read no file that holds it.
    nobody = box.exec(["runuser", "-u", "nobody", "--", "cat", "/etc/edge-installer/proxy.env"])
    assert nobody.returncode != 0
    found = box.exec(["runuser", "-u", "nobody", "--", "grep", "-rlF", encoded, "/etc", "/run", "/var/lib",
                      "/var/cache", "/tmp"]).stdout
    assert found.strip() == "", found


def test_networkd_ports_on_a_box_where_networkmanager_runs_keep_their_addresses(installed):
    """NetworkManager manages every device it is not told to leave alone: netplan's networkd
    backend on such a box (forced here with --no-networkmanager) must keep it off the ports,
    or it takes their addresses away within half a minute."""
    box = installed("nm")
    P.put_plan(box, P.plan_for(box.lab, **PLANS["networkd"]))
    done = P.apply(box, P.PLAN, "--no-confirm", "--no-networkmanager")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "ran: systemctl try-reload-or-restart NetworkManager.service" in done.stdout, done.stdout
    devices = box.exec(["nmcli", "-t", "-f", "DEVICE,STATE", "device"]).stdout
    assert f"{T.MACHINE_IF}:unmanaged" in devices and f"{T.UPLINK_IF}:unmanaged" in devices, devices
    time.sleep(35)  # NetworkManager's DHCP gives up and flushes after ~30 s when it holds the port
    st = P.state(box)
    # Without the drop-in eno1 had no address left at this point (NetworkManager's DHCP).
    assert st["addresses"].get(T.MACHINE_IF) == [f"{T.EDGE_MACHINE}/{T.PREFIX}"], st
    assert st["addresses"].get(T.UPLINK_IF) == [f"{T.EDGE_UPLINK}/{T.PREFIX}"], st
    assert st["default_routes"] == [(T.GATEWAY, T.UPLINK_IF)], st


def test_networkd_box_without_resolved_gets_the_resolvers_in_resolv_conf(installed):
    """Debian 12 has no systemd-resolved unless it is installed: with networkd the plan's
    resolvers would never reach /etc/resolv.conf. edge-installer writes it itself there, and
    restores the old one when the change is not confirmed."""
    box = installed("networkd")
    box.sh("systemctl disable --now --quiet systemd-resolved.service; "
           "DEBIAN_FRONTEND=noninteractive dpkg --purge systemd-resolved >/dev/null 2>&1; "
           "rm -f /etc/resolv.conf; printf 'nameserver 203.0.113.99\\n' >/etc/resolv.conf")
    old = box.read_file("/etc/resolv.conf")
    P.put_plan(box, P.plan_for(box.lab, **PLANS["networkd"]))
    done = P.apply(box, P.PLAN, "--confirm-timeout", "3")
    assert done.returncode == 1 and "DNS through /etc/resolv.conf" in done.stdout, f"{done.stdout}\n{done.stderr}"
    assert "systemd-resolved" not in done.stdout.split("\n", 1)[1]  # no command for what is not there
    assert box.read_file("/etc/resolv.conf") == old
    done = P.apply(box, P.PLAN, "--no-confirm")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert f"nameserver {T.DNS}" in box.read_file("/etc/resolv.conf").decode()
    assert P.reaches(box, P.vendor_name(), 443) == "ok"  # the name through the box's own resolver
