"""What the technician sees: every step of the wizard at 80x24, in full mode and in plain
mode (the Linux console, a serial line), one snapshot each (pytest-textual-snapshot).

Deterministic by construction: a fixed box (wizard_helpers.INVENTORY), fixed plans, the root
shown as `demo-root` (relative to a fresh working directory), the cursor not blinking, and a
finished, fixed check report (a live run's durations and this machine's links would differ
from run to run; the live checks are exercised in test_wizard_e2e.py). Nothing here reaches
the network: the only step that could, checks, shows the fixed report of a safe plan.

Update after a deliberate change of the screens: pytest tests/test_snapshots.py --snapshot-update,
then look at the SVGs that changed (tests/__snapshots__/test_snapshots/).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from installer.box.wifi import Network
from installer.planning.plan import Cellular, Dns, Machine, MachineNetwork, Ntp, Plan, Uplink, Wifi
from installer.render import Target, render
from installer.writing.existing import find_conflicts, move_aside_paths
from installer.writing.writer import write_files
from screens import app as wizard
from tests.wizard_helpers import REPORT, SIZE, context, no_blink, safe, until

ROOT = Path("demo-root")

PLAN = Plan(topology="isolated", machine_network=MachineNetwork(("eno1",), "192.168.50.2/24"),
            uplink=Uplink("enp2s0", "static", "10.20.0.15/24", "10.20.0.1"),
            dns=Dns("google"), ntp=Ntp("pool"), profiles=("machinemetrics",),
            machines=(Machine("Lathe 3", "192.168.50.21", "fanuc-focas"),))
WIFI = dataclasses.replace(PLAN, topology="wifi", uplink=Uplink("wlan0", "dhcp"),
                           wifi=Wifi("Plant-Floor", "wpa2-psk", "Zq7-w1f1-Sekr3t", False))
CELLULAR = dataclasses.replace(PLAN, topology="cellular", uplink=Uplink("wwan0", "dhcp"),
                               cellular=Cellular("internet", "edge", "apn-pa55", True, 5000))
CHECKED = safe(PLAN)  # the fixed report (wizard_helpers.REPORT) is this plan's
# The networks the wireless step's radio hears (installer.box.wifi.Network).
AIR = [Network("Plant-Floor", "aa:00:00:00:00:01", -58.0, "wpa2", "5 GHz", 36, 5180, False),
       Network("Plant-Secure", "aa:00:00:00:00:02", -66.0, "wpa2-enterprise", "5 GHz", 44, 5220, False),
       Network("Guest", "aa:00:00:00:00:03", -71.0, "open", "2.4 GHz", 6, 2437, False)]


def written(root: Path, plan: Plan):
    """What the write step leaves for the done step: the files written under root, with the
    backup set's name (a time stamp and a process id) fixed."""
    files = render(plan, Target())
    result = write_files(root, files, move_aside_paths(find_conflicts(root, plan, files)))
    return dataclasses.replace(result, backup_dir="/var/lib/edge-installer/backups/20250601T101500-4242")


# step -> (plan, keys pressed before the snapshot)
STEPS = {
    "welcome": (PLAN, []),
    "topology": (PLAN, []),
    "interfaces": (PLAN, []),
    "addressing": (PLAN, []),
    "wireless": (WIFI, []),
    "cellular": (CELLULAR, []),
    "services": (PLAN, []),
    "cloud": (PLAN, []),
    "review": (PLAN, []),
    "checks": (CHECKED, []),      # finished: the fixed report
    "write": (PLAN, ["space"]),   # confirmed, not yet written
    "done": (PLAN, []),           # after writing
}


@pytest.fixture
def box(tmp_path, monkeypatch):
    """A fresh working directory holding the box's root, `demo-root`; NO_COLOR unset."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    ROOT.mkdir()
    return ROOT


@pytest.mark.parametrize("mode", ["full", "plain"])
@pytest.mark.parametrize("step", list(STEPS))
def test_step(snap_compare, box, step, mode):
    plan, press = STEPS[step]
    plain = mode == "plain"
    ctx = context(box, target=Target(), plain_reason="plain ASCII (--plain)" if plain else "full display")
    if step in ("checks", "done"):
        ctx.report = REPORT
        ctx.extras["report_plan"] = plan
    if step == "done":
        ctx.extras["write_result"] = written(box, plan)
    if step == "wireless":  # what the radio hears is fixed (a scan runs in a worker)
        ctx.extras["wifi_scanner"] = lambda interface: AIR
    app = wizard.WizardApp(plan, ctx, start_step=step, plain=plain)

    async def run_before(pilot) -> None:
        assert app.step_id == step and app.plain_mode is plain
        if step == "done":
            await until(pilot, lambda: not app.screen.saving)
        if step == "wireless":
            await until(pilot, lambda: "strongest first" in str(app.screen.query_one("#scan-status").content))
        no_blink(app)

    assert snap_compare(app, press=press, terminal_size=SIZE, run_before=run_before)


def test_no_secret_in_any_snapshot():
    """The passphrase and passwords of the plans shown are in no snapshot (STYLE.md, Secrets)."""
    svgs = sorted((Path(__file__).parent / "__snapshots__" / "test_snapshots").glob("test_step*.svg"))
    assert len(svgs) == 2 * len(STEPS)
    secrets = {s for plan, _ in STEPS.values() for s in plan.secrets()}
    assert secrets == {"Zq7-w1f1-Sekr3t", "apn-pa55"}
    for svg in svgs:
        text = svg.read_text(encoding="utf-8")
        for secret in secrets:
            assert secret not in text, svg.name
