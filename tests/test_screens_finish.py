"""The wizard's last steps through Textual's Pilot at 80x24, keyboard only: cloud and
machines, review, live checks, write, done.

NETWORK SAFETY: a test that shows the checks step (or can reach it) uses `safe()`: no
profile, no machine, DNS and NTP at 127.0.0.1, so no packet leaves loopback. The review and
write steps never touch the network, whatever the plan's profiles.
"""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

from textual.widgets import OptionList

from installer.box.discover import Interface, Inventory
from installer.box.stack import Stack
from installer.checks import findings
from installer.checks.base import Result
from installer.checks.runner import Report
from installer.planning import plan as planmod
from installer.planning.plan import Machine, Plan, Uplink
from installer.planning.validate import default_context
from installer.render import NETPLAN_FILE, Target, render
from installer.vendors.profiles import load_catalog
from screens import app as wizard
from screens.base import WizardContext
from tests.wizard_helpers import STOCK_TARGET, safe, screen_text, text_of, until

REPO = Path(__file__).resolve().parent.parent
SIZE = (80, 24)
CLOUD_INIT = b"network:\n  version: 2\n  ethernets:\n    eno1:\n      dhcp4: true\n"


# --- set-up ---------------------------------------------------------------------------------

def inventory() -> Inventory:
    def wired(name, mac):
        return Interface(name, "wired", mac, True, "up", (), "e1000e")

    return Inventory((wired("eno1", "00:11:22:33:44:01"), wired("enp2s0", "00:11:22:33:44:02"),
                      Interface("wlan0", "wireless", "00:11:22:33:44:03", False, "down", (), "iwlwifi")),
                     (), Stack((0, 106), False, False, True, False))


def example(name: str) -> Plan:
    return planmod.load(REPO / "examples" / f"{name}.yaml")


def make_app(root: Path, plan: Plan, step: str, target: Target = STOCK_TARGET, **context) -> wizard.WizardApp:
    inv = inventory()
    # As screens.run.build_context: validation knows the box the plan is for.
    validation = default_context({i.name: i.kind for i in inv.interfaces}, target)
    ctx = WizardContext(root=root, inventory=inv, validation=validation,
                        catalog=load_catalog(), target=target, **context)
    ctx.extras.setdefault("check_timeout", 0.3)
    return wizard.WizardApp(plan, ctx, start_step=step)


async def focus(pilot, wanted: str, limit: int = 30) -> None:
    """Tab until the widget with id `wanted` has focus (keyboard only)."""
    for _ in range(limit):
        if pilot.app.focused is not None and pilot.app.focused.id == wanted:
            return
        await pilot.press("tab")
    raise AssertionError(f"#{wanted} never got focus (at {pilot.app.focused})")


def place(root: Path, path: str, content: bytes, mode: int = 0o644) -> Path:
    p = root / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)
    p.chmod(mode)
    return p


# --- cloud and machines ------------------------------------------------------------------------

async def test_cloud_profiles_iem_host_and_machines_by_keyboard(tmp_path):
    app = make_app(tmp_path, example("isolated"), "cloud")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert screen.STEP == "cloud"
        assert "port 8193/tcp" in screen_text(app)  # the listed machines show their controller's port
        assert not screen.query_one("#param-siemens-industrial-edge-iem-host").display

        await focus(pilot, "profile-siemens-industrial-edge")
        await pilot.press("space")
        assert screen.query_one("#param-siemens-industrial-edge-iem-host").display
        await pilot.press("ctrl+n")  # the IEM host is required once Siemens is ticked
        assert app.step_id == "cloud"
        assert "required by profile siemens-industrial-edge" in screen_text(app)
        await focus(pilot, "param-siemens-industrial-edge-iem-host-input")
        await pilot.press(*"iem.lan")

        # Remove the first listed machine (Lathe 3), add a new one with a chosen controller.
        await focus(pilot, "machines")
        await pilot.press("delete")
        await focus(pilot, "m-name-input")
        await pilot.press(*"P9", "tab", *"192.168.50.40")
        await pilot.press("tab")  # the controller list: pick Siemens OPC-UA
        controllers = list(load_catalog().controllers)
        for _ in range(controllers.index("siemens-opc-ua")):
            await pilot.press("down")
        await pilot.press("space")
        await focus(pilot, "add-machine")
        await pilot.press("enter")
        assert "P9  192.168.50.40  Siemens OPC-UA, port 4840/tcp" in screen_text(app)

        await pilot.press("ctrl+n")
        await pilot.pause()
    assert app.plan.profiles == ("machinemetrics", "siemens-industrial-edge")
    assert app.plan.profile_params == {"siemens-industrial-edge": {"iem_host": "iem.lan"}}
    assert app.plan.machines == (Machine("Mill 7", "192.168.50.22", "mtconnect-agent"),
                                 Machine("P9", "192.168.50.40", "siemens-opc-ua"))
    assert app.step_id == "review"


async def test_cloud_refuses_a_machine_outside_the_machine_network(tmp_path):
    plan = dataclasses.replace(example("isolated"), machines=())
    app = make_app(tmp_path, plan, "cloud")
    async with app.run_test(size=SIZE) as pilot:
        await focus(pilot, "m-name-input")
        await pilot.press(*"Lathe 1", "tab", *"10.9.9.9")
        await focus(pilot, "add-machine")
        await pilot.press("enter")
        assert app.screen.machines == []  # not added
        assert "10.9.9.9" in text_of(app, "#m-address .field-error")
        # Unticking every profile and leaving the form empty is a valid answer: no cloud.
        await focus(pilot, "m-address-input")
        await pilot.press("end", "ctrl+u", "shift+tab", "end", "ctrl+u")
        await focus(pilot, "profile-machinemetrics")
        await pilot.press("space", "ctrl+n")
        await pilot.pause()
    assert app.plan.profiles == () and app.plan.machines == ()
    assert app.step_id == "review"


async def test_cloud_says_how_many_machines_and_that_the_list_scrolls(tmp_path):
    """The list shows four rows and plain mode draws no scroll bar: the hint above it counts
    the machines, says the list scrolls, and follows additions and removals."""
    five = tuple(Machine(f"Lathe {n}", f"192.168.50.{20 + n}", "fanuc-focas") for n in range(1, 6))
    app = make_app(tmp_path, dataclasses.replace(example("isolated"), machines=five), "cloud")
    async with app.run_test(size=SIZE) as pilot:
        assert "5 machines, 4 shown: Up/Down scrolls" in text_of(app, "#machines-hint")
        await focus(pilot, "machines")
        await pilot.press("delete")
        assert len(app.screen.machines) == 4
        assert text_of(app, "#machines-hint").startswith("4 machines. Enter on a machine edits it")
        for _ in range(4):
            await pilot.press("delete")
        assert app.screen.machines == [] and "None yet" in text_of(app, "#machines-hint")


# --- review -----------------------------------------------------------------------------------

async def test_review_shows_files_and_diff_and_no_secret(tmp_path):
    plan = example("wifi")
    secret = plan.wifi.passphrase
    place(tmp_path, "/etc/hostname", b"old-box\n")
    place(tmp_path, "/etc/netplan/50-cloud-init.yaml", CLOUD_INIT, 0o600)
    # An older run's file with the same secret: the diff must not show it either.
    real = {f.path: f for f in render(plan, Target())}
    place(tmp_path, NETPLAN_FILE, real[NETPLAN_FILE].content.replace(b"dhcp4: true", b"dhcp4: false"), 0o600)
    app = make_app(tmp_path, plan, "review")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("pagedown", "pagedown")
        text = screen_text(app)
        assert secret not in text
        assert "********" in text
        assert "WiFi network 'Plant-Floor'" in text  # the plan in words
        for f in real.values():  # every file, with its full (redacted) content
            assert f.path in text
        assert "[Time]\nNTP=\nFallbackNTP=0.pool.ntp.org" in text
        diff = text_of(app, "#diff").splitlines()
        assert "-old-box" in diff and "+edge-03" in diff
        assert "+      dhcp4: true" in diff
        assert ("/etc/netplan/50-cloud-init.yaml: netplan merges it with ours (configures eno1)"
                in text_of(app, "#moves"))
        assert not app.screen.query("#problems")


async def test_review_blocks_next_and_goes_to_the_step_that_fixes_it(tmp_path):
    plan = dataclasses.replace(safe(example("isolated")),
                               uplink=Uplink("enp2s0", "static", "10.20.0.16/24", "10.30.0.1"))
    app = make_app(tmp_path, plan, "review")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+n")
        assert app.step_id == "review"
        assert "problem to fix before Next" in text_of(app, "#step-errors")
        problems = app.screen.query_one("#problems", OptionList)
        assert app.focused is problems
        assert "uplink.gateway" in str(problems.get_option_at_index(0).prompt)
        owner = next(c for c in wizard.step_classes(plan) if "uplink.gateway" in c.SECTIONS
                     or "uplink" in c.SECTIONS)
        await pilot.press("enter")
        await pilot.pause()
        assert app.step_id == owner.STEP


async def test_review_refuses_what_the_box_cannot_run_and_names_the_package(tmp_path):
    # A box without NetworkManager: the plan's NetworkManager keyfiles cannot work there.
    plan = dataclasses.replace(safe(example("isolated")), renderer="networkmanager")
    app = make_app(tmp_path, plan, "review", target=Target(networkmanager_installed=False))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+n")
        assert app.step_id == "review"
        problems = app.screen.query_one("#problems", OptionList)
        prompt = str(problems.get_option_at_index(0).prompt)
        assert "renderer" in prompt and "network-manager" in prompt, prompt
    assert not (tmp_path / "etc").exists()


async def test_review_next_with_a_valid_plan(tmp_path):
    app = make_app(tmp_path, safe(example("isolated")), "review")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.step_id == "checks"
        await until(pilot, lambda: app.context.report is not None)


# --- live checks ---------------------------------------------------------------------------------

async def test_checks_run_show_save_and_confirm_failures(tmp_path):
    app = make_app(tmp_path, safe(example("isolated")), "checks")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.context.report, Report))
        report = app.context.report
        ids = {(r.id, r.target) for r in report.results}
        assert ("dns-resolver", "127.0.0.1") in ids and ("ntp-server", "127.0.0.1") in ids
        assert ("link-state", "eno1") in ids and ("bandwidth-estimate", "0 machine(s)") in ids
        lines = [str(o.prompt) for o in app.screen.query_one("#results", OptionList).options]
        # The list opens on the causes (one finding each), then every check.
        found, _ = findings.group(report.results)
        n = len(found)
        assert n and len(lines) == len(report.results) + n
        assert all(line.isascii() for line in lines)
        assert [line.split(" ")[0] for line in lines[:n]] == [f"F{i}" for i in range(1, n + 1)]
        assert all(line.startswith(("[PASS] ", "[WARN] ", "[FAIL] ", "[SKIP] ")) for line in lines[n:])
        assert text_of(app, "#progress").startswith("Done: ") and f"{n} causes found" in text_of(app, "#progress")
        assert text_of(app, "#detail").startswith("F1 ") and "What to do: " in text_of(app, "#detail")

        results = app.screen.query_one("#results", OptionList)
        await pilot.press("home", *["down"] * (n + 1))
        assert text_of(app, "#detail").startswith(lines[n + 1][1:5])  # the chosen result's evidence
        assert "Seen: " in text_of(app, "#detail")

        chosen = app.screen.shown[n + 1].key
        await pilot.press("o")  # re-run one: the same list comes back, that one fresh
        await until(pilot, lambda: app.context.report is not report and not app.screen.running)
        assert [r.key for r in app.context.report.results] == [r.key for r in report.results]
        assert results.highlighted == n + 1 and app.screen.shown[n + 1].key == chosen

        await pilot.press("s")
        await until(pilot, lambda: (tmp_path / "var/lib/edge-installer/report.md").exists())
        await pilot.press("f")
        await until(pilot, lambda: (tmp_path / "var/lib/edge-installer/firewall-request.csv").exists())
        await pilot.pause(0.1)
        for name in ("report.md", "firewall-request.md", "firewall-request.csv"):
            p = tmp_path / "var/lib/edge-installer" / name
            assert stat.S_IMODE(p.stat().st_mode) == 0o644
            assert str(p) in text_of(app, "#saved") or name == "report.md"
        assert "127.0.0.1" in (tmp_path / "var/lib/edge-installer/report.md").read_text()

        failed = app.context.report.summary["fail"]
        assert failed  # eno1 has no planned address here, nothing answers DNS on 127.0.0.1...
        await pilot.press("ctrl+n")
        assert app.step_id == "checks"
        assert f"{failed} check" in text_of(app, "#step-errors") and "failed" in text_of(app, "#step-errors")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.step_id == "write"


async def test_leaving_the_checks_cancels_the_run(tmp_path):
    app = make_app(tmp_path, safe(example("isolated")), "checks", extras={"check_timeout": 1.0})
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        results = screen.query_one("#results", OptionList)
        # Live progress: results show one by one while the slow ones (NTP) still wait.
        await until(pilot, lambda: screen.running and results.option_count >= 1)
        assert " of " in text_of(app, "#progress") and str(results.get_option_at_index(0).prompt).startswith("[")
        await pilot.press("ctrl+n")
        assert "still running" in text_of(app, "#step-errors")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.step_id == "write"
        assert not [w for w in app.workers if w.group == "checks" and w.is_running]
        assert app.context.report is None


async def test_back_at_the_checks_the_last_report_of_the_same_plan_stays(tmp_path):
    plan = safe(example("isolated"))
    report = Report([Result("dns-resolver", "dns", "127.0.0.1", "fail", "dns-unreachable", "refused", "Open 53/udp.",
                            0.01, None, "dns-resolver:127.0.0.1")], 0.02)
    app = make_app(tmp_path, plan, "checks", report=report, extras={"report_plan": plan})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        assert not app.screen.running and app.context.report is report
        assert "What to do: Open 53/udp." in text_of(app, "#detail")
    changed = dataclasses.replace(plan, hostname="edge-99")  # another plan: its checks run anew
    app = make_app(tmp_path, changed, "checks", report=report, extras={"report_plan": plan})
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.context.report is not report and not app.screen.running)
        assert len(app.context.report.results) > 1


# --- write ---------------------------------------------------------------------------------------

async def test_write_needs_confirmation_then_writes_with_modes_and_moves(tmp_path):
    plan = example("isolated")
    place(tmp_path, "/etc/netplan/50-cloud-init.yaml", CLOUD_INIT, 0o600)
    place(tmp_path, "/etc/hostname", b"old-box\n")
    app = make_app(tmp_path, plan, "write")
    async with app.run_test(size=SIZE) as pilot:
        assert "/etc/netplan/50-cloud-init.yaml" in text_of(app, "#moves")
        await pilot.press("ctrl+n")  # not written yet: Next refuses
        assert app.step_id == "write" and "not written yet" in text_of(app, "#step-errors")
        await pilot.press("w")  # no confirmation: nothing happens
        await pilot.pause(0.1)
        assert not (tmp_path / NETPLAN_FILE.lstrip("/")).exists()

        await focus(pilot, "confirm")
        await pilot.press("space", "w")
        await until(pilot, lambda: app.screen.result is not None)
        out = text_of(app, "#result")
        assert "moved aside: /etc/netplan/50-cloud-init.yaml (into the backup set" in out
        assert "replaced: /etc/hostname" in out and "Backups and manifest:" in out
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.step_id == "done"
    for f in render(plan, app.context.target):
        p = tmp_path / f.path.lstrip("/")
        assert p.read_bytes() == f.content
        assert stat.S_IMODE(p.stat().st_mode) == f.mode
    assert not (tmp_path / "etc/netplan/50-cloud-init.yaml").exists()
    kept = list(tmp_path.glob("var/lib/edge-installer/backups/*/files/etc/netplan/50-cloud-init.yaml"))
    assert len(kept) == 1 and kept[0].read_bytes() == CLOUD_INIT


async def test_a_write_error_is_told_in_words(tmp_path):
    (tmp_path / NETPLAN_FILE.lstrip("/")).mkdir(parents=True)  # a directory where the file goes
    app = make_app(tmp_path, example("isolated"), "write")
    async with app.run_test(size=SIZE) as pilot:
        await focus(pilot, "confirm")
        await pilot.press("space", "w")
        await until(pilot, lambda: "NOT written" in text_of(app, "#result"))
        out = text_of(app, "#result")
        assert f"{NETPLAN_FILE}: exists and is not a regular file" in out
        assert "Traceback" not in screen_text(app)
        await pilot.press("ctrl+n")
        assert app.step_id == "write"


# --- done ----------------------------------------------------------------------------------------

async def test_done_saves_plan_report_and_firewall_request_then_finishes(tmp_path):
    plan = example("wifi")
    report = Report([Result("dns-resolver", "dns", "127.0.0.1", "pass", "ok", "answered", "", 0.01, None,
                            "dns-resolver:127.0.0.1")], 0.02)
    app = make_app(tmp_path, plan, "done", report=report, extras={"report_plan": plan})
    async with app.run_test(size=SIZE) as pilot:
        assert str(app.screen.query_one("#next").label) == "Finish"
        await until(pilot, lambda: not app.screen.saving)
        saved = text_of(app, "#saved")
        state = tmp_path / "var/lib/edge-installer"
        for name in ("plan.yaml", "report.md", "firewall-request.md", "firewall-request.csv"):
            assert str(state / name) in saved
        assert plan.wifi.passphrase not in screen_text(app)
        await pilot.press("ctrl+n")
        await pilot.pause()
    assert app.finished and app.return_value == plan
    saved_plan = state / "plan.yaml"
    assert stat.S_IMODE(saved_plan.stat().st_mode) == 0o600
    assert planmod.load(saved_plan) == plan
    assert stat.S_IMODE((state / "report.md").stat().st_mode) == 0o644
    assert "dns-resolver" in (state / "report.md").read_text()
    assert "destination,ips,port" in (state / "firewall-request.csv").read_text()


def test_help_is_ascii():
    for step in ("cloud", "review", "checks", "write", "done"):
        text = (REPO / "assets/help" / f"{step}.md").read_text()
        assert text.isascii() and text.strip()
