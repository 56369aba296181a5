"""The interfaces step's ports, against real kernel links: veth pairs in a network namespace
this test creates (nothing touches the host's interfaces). The wizard runs inside the
namespace (`ip netns exec`, which mounts the namespace's own /sys), headless at 80x24, on the
inventory discovery takes there; the test flips the peers' state from inside and reads what
the step shows.

- live refresh: carrier, speed and MAC follow the kernel while the step is open, only the
  changed row is repainted, and the focus stays in the field being typed in;
- P (any case): unplugging and plugging a "cable" (the peer down, then up) names the port;
- I: `ethtool -p` on a veth answers "Operation not supported", said at the port. (Whether a
  LED really blinks cannot be seen here: no physical NIC in the lab.)
- a name the box does not have is refused at its field, with the names it has.

The parts that need no kernel (the ethtool message, the speed words) are tested directly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from installer.box.discover import link_status, speed_text
from screens.interfaces import ethtool_problem

REPO = Path(__file__).resolve().parents[1]

# Runs inside the namespace. Prints one JSON object of what the step showed at each moment.
IN_NAMESPACE = r'''
import asyncio, json, subprocess, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from installer.box.discover import discover
from installer.planning.plan import MachineNetwork, Plan, Uplink
from tests.wizard_helpers import new_wizard, error_at, field, focus, replace_text, until, keys

ROOT = Path(sys.argv[2])
seen = {}

def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)

def rows(app):
    return [r.text for r in app.screen.query("#detected PortRow") if r.id.startswith("row-")]

def row(app, name):
    return next(t for t in rows(app) if t[2:].split()[0] == name)

async def main():
    inventory = discover(root=ROOT)
    plan = Plan(topology="isolated", machine_network=MachineNetwork(("veth-a",)), uplink=Uplink("veth-c"))
    app = new_wizard(ROOT, plan=plan, start_step="interfaces", inventory=inventory)
    app.context.extras.update(sys_class_net="/sys/class/net", port_refresh_s=0.1, plug_watch_s=8)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await until(pilot, lambda: "veth-a" in "".join(rows(app)))
        seen["start"] = rows(app)
        # Typing in the uplink field while the list refreshes.
        await focus(pilot, field(app, "uplink"))
        typing = app.focused
        row_c = screen.query_one("#detected").query_one("#row-1")
        before_c = row_c.repaints
        ip("link", "set", "veth-b", "down")          # veth-a's cable "pulled"
        await until(pilot, lambda: "no link" in row(app, "veth-a"), 5)
        seen["a_unplugged"] = row(app, "veth-a")
        ip("link", "set", "veth-a", "address", "02:00:00:c6:33:0b")
        await until(pilot, lambda: "02:00:00:c6:33:0b" in row(app, "veth-a"), 5)
        seen["a_new_mac"] = row(app, "veth-a")
        ip("link", "set", "veth-b", "up")
        await until(pilot, lambda: "link up" in row(app, "veth-a"), 5)
        seen["a_back"] = row(app, "veth-a")
        seen["c_repaints"] = row_c.repaints - before_c  # veth-c did not change
        ip("link", "set", "veth-c", "down")          # administratively down: speed unknown
        await until(pilot, lambda: " down " in row(app, "veth-c"), 5)
        seen["c_down"] = row(app, "veth-c")
        seen["focus_kept"] = app.focused is typing

        # A name this box does not have, refused at its field and blocking Next.
        await replace_text(pilot, "eno2")
        await pilot.press("tab")
        seen["eno2_field"] = error_at(app, "uplink")
        await pilot.press("ctrl+n")
        seen["eno2_next"] = (app.step_id, error_at(app, "uplink"))
        await focus(pilot, field(app, "uplink"))
        await replace_text(pilot, "veth-c")

        # P (with Shift: the hint shows capitals) on the list, then the cable out and back in.
        await focus(pilot, screen.query_one("#detected"))
        await keys(pilot, "P")
        seen["watching"] = str(screen.query_one("#port-status").content)
        await pilot.pause(0.5)
        ip("link", "set", "veth-b", "down")
        await pilot.pause(0.6)
        ip("link", "set", "veth-b", "up")
        await until(pilot, lambda: str(screen.query_one("#port-status").content).startswith("Found"), 8)
        seen["plug"] = str(screen.query_one("#port-status").content)
        # Nothing touched: the watch ends on its own and says so.
        app.screen.plug_watch_s = 0.6
        await keys(pilot, "p")
        await until(pilot, lambda: str(screen.query_one("#port-status").content).startswith("No port"), 5)
        seen["plug_nothing"] = str(screen.query_one("#port-status").content)

        # I on veth-a: the real `ethtool -p veth-a 1`.
        app.screen.identify_s = 1
        await keys(pilot, "i")
        note = screen.query_one("#detected").query_one("#note-0")
        await until(pilot, lambda: "driver" in note.text, 10)
        seen["identify"] = note.text
        await pilot.pause()
        seen["lines"] = [strip.text.rstrip() for strip in screen._compositor.render_strips()]
    print(json.dumps(seen))

asyncio.run(main())
'''


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip("NOT ROOT: the ports tests need a network namespace with veth pairs. They did NOT run.")
    for tool in ("ip", "ethtool"):
        if shutil.which(tool) is None:
            pytest.fail(f"`{tool}` is missing: install the {'iproute2' if tool == 'ip' else 'ethtool'} package")
    name = f"ei-ports-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)  # takes its links along


def ip(ns: str, *args: str) -> None:
    done = subprocess.run(["ip", "-n", ns, *args], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, f"ip -n {ns} {' '.join(args)}: {done.stderr}"


@pytest.mark.lab
def test_ports_live_refresh_plug_and_identify_on_real_links(netns, tmp_path):
    ip(netns, "link", "set", "lo", "up")
    ip(netns, "link", "add", "veth-a", "address", "02:00:00:c6:33:0a", "type", "veth", "peer", "name", "veth-b")
    ip(netns, "link", "add", "veth-c", "type", "veth", "peer", "name", "veth-d")
    for link in ("veth-a", "veth-b", "veth-c", "veth-d"):
        ip(netns, "link", "set", link, "up")
    done = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", IN_NAMESPACE, str(REPO),
                           str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    start = "\n".join(seen["start"])
    assert "veth-a" in start and "veth-c" in start and "10 Gb/s" in start and "02:00:00:c6:33:0a" in start
    # Live: the carrier, then the MAC, then the carrier again, as the kernel says.
    assert "no link" in seen["a_unplugged"]
    assert "02:00:00:c6:33:0b" in seen["a_new_mac"]
    assert "link up" in seen["a_back"]
    assert seen["c_repaints"] == 0, "an unchanged row was repainted"
    # Administratively down: no carrier to tell, and the speed unknown.
    assert seen["c_down"].split()[2:4] == ["down", "-"], seen["c_down"]
    assert seen["focus_kept"], "the refresh took the focus from the field being typed in"

    assert seen["eno2_field"].startswith("eno2: this box has no interface by that name; it has ")
    assert "veth-a" in seen["eno2_field"]
    assert seen["eno2_next"][0] == "interfaces" and seen["eno2_next"][1].startswith("eno2:")

    assert seen["watching"].startswith("Watching 2 ports")
    assert seen["plug"] == "Found: veth-a (its carrier went down and came back)."
    assert seen["plug_nothing"].startswith("No port's carrier changed")

    assert seen["identify"] == "veth-a: its driver cannot blink the LED (Operation not supported)."
    # ...in one line at the port, right under its row
    lines = seen["lines"]
    row = next(i for i, line in enumerate(lines) if line.strip().startswith("> veth-a"))
    assert lines[row + 1].strip() == seen["identify"], lines


def test_ethtool_problem_is_one_line():
    assert ethtool_problem("Cannot identify NIC: Operation not supported\n") == "Operation not supported"
    assert ethtool_problem("") == "ethtool failed"
    assert ethtool_problem("x\nCannot get device settings: No such device\n") == "No such device"
    assert "\x1b" not in ethtool_problem("bad: \x1b[2J")


def test_speed_words_and_a_missing_link(tmp_path):
    assert [speed_text(s) for s in (None, 100, 1000, 2500, 10000, 25000)] == [
        "-", "100 Mb/s", "1000 Mb/s", "2500 Mb/s", "10 Gb/s", "25 Gb/s"]
    node = tmp_path / "eth9"
    node.mkdir()
    (node / "carrier").write_text("1\n")
    (node / "address").write_text("3c:ec:ef:00:00:09\n")
    (node / "addr_len").write_text("6\n")
    for value, speed in (("1000\n", 1000), ("-1\n", None), ("4294967295\n", None)):
        (node / "speed").write_text(value)
        status = link_status("eth9", tmp_path)
        assert (status.present, status.carrier, status.speed, status.mac) == (True, True, speed, "3c:ec:ef:00:00:09")
    assert not link_status("eth8", tmp_path).present


async def test_leaving_the_step_stops_a_blinking_led(tmp_path):
    """`ethtool -p` blinks until its time is up or it gets SIGINT (the kernel then restores the
    LED): leaving the step sends it. Stood in for by a process that waits as ethtool does (a
    veth cannot blink, so ethtool returns at once here)."""
    import time

    from installer.planning.plan import MachineNetwork, Plan, Uplink
    from tests.wizard_helpers import new_wizard

    plan = Plan(topology="isolated", machine_network=MachineNetwork(("eno1",)), uplink=Uplink("enp2s0"))
    app = new_wizard(tmp_path, plan=plan, start_step="interfaces")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        blinking = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        screen._identifying = blinking
        await pilot.press("escape")  # back to the topology step
        await pilot.pause()
        assert app.step_id == "topology"
        deadline = time.monotonic() + 5
        while blinking.poll() is None and time.monotonic() < deadline:
            await pilot.pause(0.05)
    try:
        assert blinking.returncode is not None and blinking.returncode != 0
    finally:
        if blinking.poll() is None:
            blinking.kill()


async def test_a_name_the_plan_binds_to_hardware_is_not_refused(tmp_path):
    """A plan's `ports` name a port by its MAC (udev renames it when applied): not a missing
    interface. A plain unknown name still is."""
    from installer.planning.plan import MachineNetwork, Plan, Port, Uplink
    from tests.wizard_helpers import error_at, new_wizard

    plan = Plan(topology="isolated", machine_network=MachineNetwork(("lan1",)), uplink=Uplink("enp2s0"),
                ports=(Port("lan1", mac="00:30:18:aa:00:01"),))
    app = new_wizard(tmp_path, plan=plan, start_step="interfaces")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+n")
        assert app.step_id == "addressing", error_at(app, "machine")
    plan = Plan(topology="isolated", machine_network=MachineNetwork(("lan1",)), uplink=Uplink("enp2s0"))
    app = new_wizard(tmp_path, plan=plan, start_step="interfaces")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+n")
        assert app.step_id == "interfaces" and error_at(app, "machine").startswith("lan1: this box has no")
