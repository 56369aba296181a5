"""The wizard end to end, by keyboard only, at 80x24, for every topology: from a new plan at
the welcome step to Finish, the files written are exactly those `edge-installer render`
writes for the same answers. Then what must not get through (invalid input, an unticked
cellular acknowledgement), Back keeping what was typed, and resuming the real program
after a SIGKILL.

NETWORK SAFETY: every walk that reaches the checks step answers DNS and NTP with 127.0.0.1,
no profile, no machine, no proxy (`wizard_helpers.drive` refuses anything else there).
The real program runs in a network namespace of its own when the box allows it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from textual.widgets import Button

from installer.planning import plan as planmod
from installer.planning.draft import Draft
from installer.planning.fields import check_interface_address, check_passphrase
from installer.planning.plan import Cellular, Dns, MachineNetwork, Ntp, Plan, Proxy, Uplink, Wifi
from installer.planning.validate import validate
from installer.render import Target, render
from screens import app as wizard
from screens.base import Choice
from tests.wizard_helpers import (
    SIZE,
    STATE_DIR,
    context,
    drive,
    error_at,
    field,
    frame_text,
    keys_handled,
    new_wizard,
    next_step,
    post_keys,
    replace_text,
    safe,
    screen_text,
    set_choice,
    set_field,
    set_toggle,
    text_of,
    tree,
    type_text,
)

REPO = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------- the five walks
# Each case: the answers as a plan file, the box the wizard renders for, the display mode.
# Uplinks: static (single, wireless-bridge) and DHCP (isolated, wifi, cellular); WiFi: WPA2
# hidden, WPA3 (netplan 0.106: through NetworkManager), WPA2/WPA3 transition on netplan 0.107.

SAFE = """
dns: {mode: custom, servers: [127.0.0.1]}
ntp: {mode: custom, servers: [127.0.0.1]}
profiles: []
"""

CASES = {
    "single": ("""
        topology: single
        uplink: {interface: enp2s0, ipv4: static, address: 10.20.0.15/24, gateway: 10.20.0.1}
        """, Target(), True),
    "isolated": ("""
        topology: isolated
        machine_network: {interfaces: [eno1], address: 192.168.50.2/24}
        uplink: {interface: enp2s0, ipv4: dhcp}
        """, Target(networkmanager=True), False),
    "wifi": ("""
        topology: wifi
        machine_network: {interfaces: [eno1], address: 192.168.50.2/24}
        uplink: {interface: wlan0, ipv4: dhcp}
        wifi: {ssid: Plant-Floor, security: wpa2-psk, passphrase: "Zq7-w1f1-Sekr3t", hidden: true}
        """, Target(), False),
    "wireless-bridge": ("""
        topology: wireless-bridge
        machine_network: {interfaces: [eno1, enp2s0], address: 192.168.60.2/24}
        uplink: {interface: wlan0, ipv4: static, address: 10.30.0.9/16, gateway: 10.30.0.1}
        wifi: {ssid: "Hall 4 AP", security: wpa3-sae, passphrase: "correct horse battery", hidden: false}
        """, Target(), True),
    "wifi-transition": ("""
        topology: wifi
        machine_network: {interfaces: [enp2s0], address: 172.16.5.1/24}
        uplink: {interface: wlan0, ipv4: static, address: 10.20.0.15/24, gateway: 10.20.0.1}
        wifi: {ssid: Plant-Floor, security: wpa2-wpa3, passphrase: "Tr4nsition-Pa55", hidden: false}
        """, Target(netplan_version=(0, 107)), False),
    "cellular": ("""
        topology: cellular
        machine_network: {interfaces: [eno1], address: 192.168.50.2/24}
        uplink: {interface: wwan0, ipv4: dhcp}
        cellular: {apn: internet, username: edge, password: "apn-pa55", acknowledge_unsupported: true,
                   data_cap_mb: 5000}
        """, Target(cloud_init=True), False),
}


def plan_file(path: Path, body: str) -> Path:
    """The answers as a plan file (format version 1, as a technician would write it)."""
    path.write_text("version: 1\n" + textwrap.dedent(body).strip() + "\n" + SAFE.strip() + "\n")
    return path


def cli_render(plan_path: Path, root: Path, target: Target) -> None:
    """`edge-installer render PLAN --root ROOT` for the wizard's target, in a process of its own."""
    version = ".".join(str(x) for x in target.netplan_version)
    args = [sys.executable, "-m", "installer", "render", str(plan_path), "--root", str(root),
            "--netplan-version", version, "--networkmanager" if target.networkmanager else "--no-networkmanager",
            "--cloud-init" if target.cloud_init else "--no-cloud-init"]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("case", list(CASES))
async def test_walk_by_keyboard_writes_what_render_writes(tmp_path, case):
    body, target, plain = CASES[case]
    plan = planmod.load(plan_file(tmp_path / "answers.yaml", body))
    assert not validate(plan)
    root = tmp_path / "box"
    root.mkdir()
    app = new_wizard(root, target=target, plain=plain, draft=Draft(root))
    seen = []

    async def on_step(pilot):
        seen.append(pilot.app.step_id)
        assert app.plain_mode is plain

    async with app.run_test(size=SIZE) as pilot:
        assert app.step_id == "welcome"
        await drive(pilot, plan, on_step=on_step)
        report = app.context.report
    assert app.finished and app.return_value == plan
    wanted = ["welcome", "topology", "interfaces", "addressing"]
    wanted += ["wireless"] if plan.wifi else ["cellular"] if plan.cellular else []
    assert seen == wanted + ["services", "cloud", "review", "checks", "write", "done"]

    # Only loopback was asked; the run finished.
    assert report is not None and not report.cancelled
    # (ARP probes of the static addresses are refused outside a lab: "address" results say so.)
    assert {r.kind for r in report.results} <= {"link", "dns", "ntp", "bandwidth", "address", "wifi"}
    assert all(r.diagnosis.endswith("unchecked") for r in report.results if r.kind == "address")
    assert {r.target for r in report.results if r.kind in ("dns", "ntp")} == {"127.0.0.1"}

    # The same files, bytes and modes as the real command line writes for the same answers.
    other = tmp_path / "cli"
    other.mkdir()
    cli_render(tmp_path / "answers.yaml", other, target)
    written, expected = tree(root), tree(other)
    assert expected and "etc/netplan/90-edge-installer.yaml" in expected
    assert sorted(written) == sorted(expected)
    for path, (content, mode) in expected.items():
        assert written[path] == (content, mode), path

    # The plan kept for later: mode 0600 (it holds the secrets), the same answers.
    saved = root / STATE_DIR / "plan.yaml"
    assert mode_of(saved) == 0o600
    assert planmod.load(saved) == plan
    assert mode_of(root / STATE_DIR / "draft.yaml") == 0o600
    for secret in plan.secrets():
        assert secret.encode() not in (root / STATE_DIR / "report.md").read_bytes()
        assert secret.encode() not in (root / STATE_DIR / "firewall-request.md").read_bytes()


# --------------------------------------------------------------------------- what is refused

ISOLATED = Plan(topology="isolated", machine_network=MachineNetwork(("eno1",)), uplink=Uplink("enp2s0"))


def core_message(plan: Plan, path: str) -> str:
    return next(e.message for e in validate(plan) if e.field == path)


async def refused(pilot, step: str, plan_before: Plan) -> None:
    """Ctrl+N did not leave the step, nor change the app's plan, and says how many problems."""
    app = pilot.app
    assert await next_step(pilot) == step
    assert app.plan == plan_before
    assert "to fix before Next" in text_of(app, "#step-errors")


async def test_bad_address_blocks_next_with_the_cores_message(tmp_path):
    app = new_wizard(tmp_path, plan=ISOLATED, start_step="addressing")
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "192.168.50.300/24")
        await refused(pilot, "addressing", ISOLATED)
        bad = dataclasses.replace(ISOLATED, machine_network=MachineNetwork(("eno1",), "192.168.50.300/24"))
        assert error_at(app, "machine-address") == core_message(bad, "machine_network.address")
        assert error_at(app, "machine-address") == check_interface_address("192.168.50.300/24")
        assert app.focused is field(app, "machine-address").input  # the cursor is at the problem
        assert "192.168.50.300/24" in frame_text(app)
        await replace_text(pilot, "192.168.50.2/24")
        assert await next_step(pilot) == "services"


async def test_gateway_outside_the_subnet_blocks_next(tmp_path):
    app = new_wizard(tmp_path, plan=ISOLATED, start_step="addressing")
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "192.168.50.2/24")
        await set_choice(pilot, "ipv4", "static")
        await set_field(pilot, "uplink-address", "10.20.0.15/24")
        await set_field(pilot, "gateway", "10.30.0.1")
        await refused(pilot, "addressing", ISOLATED)
        bad = dataclasses.replace(ISOLATED, machine_network=MachineNetwork(("eno1",), "192.168.50.2/24"),
                                  uplink=Uplink("enp2s0", "static", "10.20.0.15/24", "10.30.0.1"))
        message = core_message(bad, "uplink.gateway")
        assert "10.20.0.0/24" in message
        assert error_at(app, "gateway") == message
        assert error_at(app, "machine-address") == "" and error_at(app, "uplink-address") == ""
        assert app.focused is field(app, "gateway").input
        await replace_text(pilot, "10.20.0.1")
        assert await next_step(pilot) == "services"


async def test_seven_character_passphrase_blocks_next(tmp_path):
    plan = dataclasses.replace(ISOLATED, topology="wifi", uplink=Uplink("wlan0"),
                               machine_network=MachineNetwork(("eno1",), "192.168.50.2/24"))
    app = new_wizard(tmp_path, plan=plan, start_step="wireless")
    async with app.run_test(size=SIZE) as pilot:
        await type_text(pilot, "Plant-Floor")
        await set_field(pilot, "passphrase", "abc1234")
        await refused(pilot, "wireless", plan)
        bad = dataclasses.replace(plan, wifi=Wifi("Plant-Floor", "wpa2-psk", "abc1234"))
        assert error_at(app, "passphrase") == core_message(bad, "wifi.passphrase")
        assert error_at(app, "passphrase") == check_passphrase("abc1234", "wpa2-psk")
        assert "abc1234" not in frame_text(app)  # shown as asterisks, even when wrong
        await type_text(pilot, "5")              # 8 characters: accepted
        assert await next_step(pilot) == "services"
    assert app.plan.wifi == Wifi("Plant-Floor", "wpa2-psk", "abc12345")


# The core's message for the unticked box (installer.planning.validate), shown on the step's error line.
# The topology step's own words (a tick box), not the plan file's (a key set to true).
ACK_MESSAGE = "cellular cannot be chosen without accepting the warning above: tick the box"


def record_steps(app) -> list[str]:
    """Every step the app shows from now on, in order."""
    shown: list[str] = []
    show = app.show

    def recording_show(step, **kw):
        shown.append(step)
        show(step, **kw)

    app.show = recording_show
    return shown


def unticked_cellular_got_through(app) -> bool:
    """The wizard is past the topology step with cellular chosen and no acknowledgement."""
    past = app.finished or app.step_id not in ("welcome", "topology")
    plan = app.plan
    return past and plan.topology == "cellular" and not (plan.cellular and plan.cellular.acknowledge_unsupported)


async def test_cellular_acknowledgement_cannot_be_skipped(tmp_path):
    # A safe plan all the same: should a key sequence ever get through, the checks ask only loopback.
    app = new_wizard(tmp_path, plan=safe(wizard.new_plan()))
    async with app.run_test(size=SIZE) as pilot:
        await next_step(pilot)
        await set_choice(pilot, "topology", "cellular")
        assert "Use at your own risk" in frame_text(app)
        assert await next_step(pilot) == "topology"
        assert ACK_MESSAGE in text_of(app, "#step-errors")
        assert "1 problem to fix before Next" in text_of(app, "#step-errors")
        assert app.focused is app.screen.query_one("#acknowledge")  # the cursor is on the box to tick

        # Every other way on: Enter on Next, Escape then Next from the welcome step, a burst
        # of Ctrl+N, and a long run of seeded random keys that never ticks the box (nor
        # chooses another topology: Space and Enter press buttons only).
        app.screen.query_one("#next").focus()
        await pilot.press("enter")
        assert app.step_id == "topology" and ACK_MESSAGE in text_of(app, "#step-errors")
        await pilot.press("escape")
        assert app.step_id == "welcome" and app.plan.topology == "cellular"
        await pilot.press("ctrl+n", "ctrl+n", "ctrl+n", "ctrl+n")
        assert app.step_id == "topology" and app.screen.query_one("#topology", Choice).value == "cellular"
        assert not unticked_cellular_got_through(app)

        # Seeded random keys, one at a time (typed ahead in a burst they do get through: see
        # test_keys_typed_ahead_never_skip_a_step below); every step shown is recorded.
        shown = record_steps(app)
        rng = random.Random(4)
        keys = ["tab", "shift+tab", "down", "up", "enter", "ctrl+n", "ctrl+n", "escape", "space", "f1"]
        for _ in range(20):
            key = rng.choice(keys)
            if key in ("space", "enter") and not isinstance(app.focused, Button):
                key = "ctrl+n"  # a choice or the box is never pressed: cellular stays chosen, unticked
            await pilot.press(key)
            assert not unticked_cellular_got_through(app), key
        assert set(shown) <= {"welcome", "topology"}, shown
        if app.step_id == "welcome":
            await next_step(pilot)

        # Ticked, it goes on.
        assert app.screen.query_one("#topology", Choice).value == "cellular"
        await set_toggle(pilot, "acknowledge", True)
        assert await next_step(pilot) == "interfaces"
    assert app.plan.cellular.acknowledge_unsupported is True


# --------------------------------------------------------------------------- Back

BACK_PLAN = Plan(topology="wifi", machine_network=MachineNetwork(("eno1",), "192.168.50.2/24"),
                 uplink=Uplink("wlan0", "dhcp"),
                 wifi=Wifi("Plant-Floor", "wpa2-wpa3", "Tr4nsition-Pa55", True),
                 dns=Dns("dhcp"), ntp=Ntp("dhcp"),
                 proxy=Proxy("http://proxy.plant.local:3128", "edge", "pr0xy-pa55", (".plant.local",)),
                 profiles=("machinemetrics",))


def assert_widgets(app, plan: Plan) -> None:
    """The step on screen shows the plan's values."""
    s, step = app.screen, app.step_id
    if step == "services":
        assert s.query_one("#dns", Choice).value == plan.dns.mode
        assert s.query_one("#ntp", Choice).value == plan.ntp.mode
        assert s.query_one("#use-proxy").value is True
        assert field(app, "proxy-url").value == plan.proxy.url
        assert field(app, "proxy-username").value == plan.proxy.username
        assert field(app, "proxy-password").input.value == plan.proxy.password
        assert field(app, "no-proxy").value == " ".join(plan.proxy.no_proxy)
    elif step == "wireless":
        assert field(app, "ssid").value == plan.wifi.ssid
        assert s.query_one("#security", Choice).value == plan.wifi.security
        assert field(app, "passphrase").input.value == plan.wifi.passphrase
        assert s.query_one("#hidden").value is plan.wifi.hidden
    elif step == "addressing":
        assert field(app, "machine-address").value == plan.machine_network.address
        assert s.query_one("#ipv4", Choice).value == "dhcp" and not s.query_one("#static").display
    elif step == "interfaces":
        assert (field(app, "machine").value, field(app, "uplink").value) == ("eno1", "wlan0")
    elif step == "topology":
        assert s.query_one("#topology", Choice).value == "wifi"


async def test_back_keeps_what_was_entered(tmp_path):
    app = new_wizard(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await drive(pilot, BACK_PLAN, until_step="cloud")
        entered = app.plan
        assert entered == BACK_PLAN
        for step in ("services", "wireless", "addressing", "interfaces", "topology"):
            await pilot.press("escape")
            assert app.step_id == step
            assert_widgets(app, BACK_PLAN)
            assert app.plan == entered
        for step in ("interfaces", "addressing", "wireless", "services", "cloud"):
            assert await next_step(pilot) == step
            assert_widgets(app, BACK_PLAN)
        assert app.plan == entered
        # The review (no checks: this plan reaches real servers) shows the files of this plan.
        assert await next_step(pilot) == "review"
        listed = text_of(app, "#file-list")
        for f in render(BACK_PLAN, app.context.target):
            assert f.path in listed
        text = screen_text(app)
        assert "Tr4nsition-Pa55" not in text and "pr0xy-pa55" not in text
        await pilot.press("escape")
        assert app.step_id == "cloud"
    assert app.plan == entered


# --------------------------------------------------------------------------- found broken

# Found with the walks above (plain mode, the live checks step): a frame held past
# FRAME_HOLD_MAX_S asked Textual for a 0 s timer, whose Timer divides by its interval.
async def test_plain_mode_survives_a_frame_held_past_its_limit(tmp_path):
    app = wizard.WizardApp(wizard.new_plan(), context(tmp_path), plain=True)  # frames coalesced, as shipped
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        app._display(screen, screen._compositor.render_update(full=True))  # a full frame, held
        time.sleep(app.FRAME_HOLD_MAX_S + 0.05)  # the loop busy meanwhile (a slow box, checks arriving)
        app._display(screen, screen._compositor.render_update(full=True))  # the next one
        await pilot.pause(0.1)
        assert app.is_running and app.step_id == "welcome"


UNTICKED = dataclasses.replace(safe(wizard.new_plan()), topology="cellular",
                               cellular=Cellular(acknowledge_unsupported=False))
NO_ADDRESS = safe(ISOLATED)


@pytest.mark.parametrize("plan,start,stop", [(UNTICKED, "welcome", "topology"),
                                             (NO_ADDRESS, "interfaces", "addressing")],
                         ids=["cellular-acknowledgement", "missing-address"])
async def test_keys_typed_ahead_never_skip_a_step(tmp_path, plan, start, stop):
    app = new_wizard(tmp_path, plan=plan, start_step=start)
    async with app.run_test(size=SIZE) as pilot:
        shown = record_steps(app)
        post_keys(app, ["ctrl+n", "ctrl+n"])  # Ctrl+N twice: the box was slow to answer the first
        await keys_handled(pilot)
        assert shown == [stop] and app.step_id == stop
        assert "to fix before Next" in text_of(app, "#step-errors")


@pytest.mark.parametrize("start,keys,fid,wanted", [
    ("welcome", [*"/etx", "backspace", *"c/plan.yaml"], "load", "/etc/plan.yaml"),
    ("interfaces", ["end", "ctrl+u", *"eth1"], "machine", "eth1"),
    ("addressing", [*"192.168.50.2/24", "tab", "down", "space", "tab", *"10.20.0.15/24"], "uplink-address",
     "10.20.0.15/24"),
], ids=["backspace", "ctrl+u", "choice-then-tab"])
async def test_keys_typed_ahead_land_where_they_were_meant(tmp_path, start, keys, fid, wanted):
    app = new_wizard(tmp_path, plan=NO_ADDRESS, start_step=start)
    async with app.run_test(size=SIZE) as pilot:
        post_keys(app, keys)
        await keys_handled(pilot)
        assert field(app, fid).input.value == wanted


# --------------------------------------------------------------------------- resume after a kill

def need_tmux():
    if shutil.which("tmux"):
        return
    if os.geteuid() == 0 or os.environ.get("CI"):
        pytest.fail("tmux is missing (./dev installs it): the resume test must run")
    pytest.skip("tmux is not installed")


def program(root: Path, *extra: str) -> str:
    """The real `edge-installer --root ROOT`, alone in a network namespace where the box allows
    one (nothing it could do would then leave loopback)."""
    exe = Path(sys.executable).with_name("edge-installer")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "installer"]
    cmd += ["--root", str(root), *extra]
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        cmd = ["unshare", "-n", *cmd]
    return shlex.join(cmd)


def shows(session, *texts: str, timeout: float = 20.0) -> str:
    """Wait (bounded) until every text is on the screen, and for the program to be quiet: keys
    are sent one group at a time, as a person types (a burst has its own test above)."""
    ok = session.wait_for(lambda: all(t in session.screen_text() for t in texts), timeout=timeout)
    session.settle(quiet=0.15, timeout=5)
    screen = session.screen_text()
    assert ok, f"{texts} not on screen:\n{screen}"
    return screen


@pytest.fixture
def ports_ns():
    """A network namespace with two Ethernet-like links, eth1 and eth2 (veth pairs), for the
    wizard to run in (`ip netns exec` mounts the namespace's own /sys): the interfaces step
    refuses names the box does not have, so the box must have the ones typed."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("NOT ROOT (or no iproute2): the resume test runs the wizard in a network "
                    "namespace with the ports it names. It did NOT run.")
    name = f"ei-resume-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for link, peer in (("eth1", "eth1-peer"), ("eth2", "eth2-peer")):
            subprocess.run(["ip", "-n", name, "link", "add", link, "type", "veth", "peer", "name", peer],
                           check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def in_ns(ns: str, root: Path, *extra: str) -> str:
    exe = Path(sys.executable).with_name("edge-installer")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "installer"]
    return shlex.join(["ip", "netns", "exec", ns, *cmd, "--root", str(root), *extra])


def test_resume_after_a_kill_continues_at_the_right_step(tmp_path, ports_ns):
    need_tmux()
    from bench.tuimeasure import Session

    root = tmp_path / "box"
    root.mkdir()
    env = {"LANG": "C.UTF-8", "NO_COLOR": "1"}
    with Session(in_ns(ports_ns, root), env=env, size=SIZE, term="vt100", cwd=REPO) as s:
        shows(s, "Step 1 of", "Welcome")
        s.send("C-n")
        shows(s, "Topology", "(*) Isolated")
        s.send("C-n")
        shows(s, "Interfaces")
        s.send("End", "C-u")
        shows(s, "e.g. eno1")                            # the machine network's port, emptied
        s.type("eth1")
        shows(s, " eth1\n")
        s.send("Tab")
        s.send("End", "C-u")
        shows(s, "e.g. enp2s0")                          # the uplink, emptied
        s.type("eth2")
        shows(s, " eth2\n")
        s.send("C-n")
        shows(s, "Addressing", "Machine network on eth1")
        s.type("192.168.77.2/24")
        shows(s, "192.168.77.2/24")
        s.send("Tab")
        s.send("Down")
        s.send("Space")                                  # the uplink: static
        shows(s, "(*) Static address")
        s.send("Tab")
        s.type("10.40.0.7/24")
        shows(s, "10.40.0.7/24")
        s.send("Tab")
        s.type("10.40.0.1")
        shows(s, "10.40.0.1\n")
        s.send("C-n")
        shows(s, "Step 5 of 10: DNS, time and proxy")
        s.send("Down", "Space")                          # chosen, not yet saved
        s.kill(signal.SIGKILL)                           # no handler runs: what is on disk is all there is
        assert s.wait_for(s.exited, timeout=10)

    draft = root / STATE_DIR / "draft.yaml"
    assert mode_of(draft) == 0o600 and mode_of(root / STATE_DIR / "draft-state.json") == 0o600
    assert json.loads((root / STATE_DIR / "draft-state.json").read_text())["step"] == "services"
    saved = planmod.load(draft)
    assert (saved.topology, saved.machine_network, saved.uplink) == (
        "isolated", MachineNetwork(("eth1",), "192.168.77.2/24"), Uplink("eth2", "static", "10.40.0.7/24", "10.40.0.1"))
    assert saved.dns == wizard.new_plan().dns  # the choice made on the killed step is lost, no more

    with Session(in_ns(ports_ns, root, "--resume"), env=env, size=SIZE, term="vt100", cwd=REPO) as s:
        shows(s, "Step 5 of 10: DNS, time and proxy")
        s.send("Escape")
        screen = shows(s, "Step 4 of 10: Addressing")
        for value in ("Machine network on eth1", "192.168.77.2/24", "Uplink eth2", "(*) Static address",
                      "10.40.0.7/24", "10.40.0.1"):
            assert value in screen, value
        s.send("Escape")
        screen = shows(s, "Step 3 of 10: Interfaces")
        assert "eth1" in screen and "eth2" in screen
        s.send("C-q")
        assert s.wait_for(s.exited, timeout=10)
    assert mode_of(draft) == 0o600
    assert json.loads((root / STATE_DIR / "draft-state.json").read_text())["step"] == "interfaces"

