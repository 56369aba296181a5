"""The wizard's rough edges at 80x24 (issue 12, part 5), each as a technician meets it, through
the real WizardApp by keyboard: hotkeys with Shift or Caps Lock, "saved" lines in sight, help
that scrolls, a saved draft offered (never replaced silently), error lines that clear once
fixed, no word broken at the screen edge, the focused choice in reverse video in plain mode,
counts that match what is listed, and the vendor documents named by title."""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

import pytest

from bench.tuimeasure import VirtualTerminal
from installer.box.discover import Interface, Inventory
from installer.planning.draft import Draft
from installer.planning.plan import MachineNetwork, Plan, Uplink
from installer.vendors.sources import TITLES
from screens import app as wizard
from screens.base import HelpPanel, help_text, wrap_words
from tests.test_snapshots import CELLULAR, PLAN, written
from tests.wizard_helpers import (
    INVENTORY,
    REPORT,
    SIZE,
    context,
    error_at,
    field,
    focus,
    keys,
    new_wizard,
    replace_text,
    safe,
    text_of,
    until,
)

CHECKED = safe(PLAN)


def visible_lines(app) -> list[str]:
    """The rows of the frame on screen, as text."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def visible(app) -> str:
    return "\n".join(visible_lines(app))


def checks_app(root: Path, **kw) -> wizard.WizardApp:
    ctx = context(root)
    ctx.report = REPORT
    ctx.extras["report_plan"] = CHECKED
    return wizard.WizardApp(CHECKED, ctx, start_step="checks", **kw)


# --------------------------------------------------------------------------- hotkeys, saved

@pytest.mark.parametrize("key", ["S", "s"])
async def test_checks_save_hotkey_in_any_case_and_the_saved_line_in_sight(tmp_path, key):
    app = checks_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await keys(pilot, key)  # Shift+S, or S with Caps Lock: the terminal sends "S"
        await until(pilot, lambda: "Report saved" in text_of(app, "#saved"))
        await pilot.pause()
        assert "Report saved: " in visible(app), visible(app)   # not below the fold
        await keys(pilot, key.replace("S", "F").replace("s", "f"))
        await until(pilot, lambda: "Firewall request saved" in text_of(app, "#saved"))
        await pilot.pause()
        assert "Firewall request saved: " in visible(app)
    state = tmp_path / "var/lib/edge-installer"
    assert (state / "report.md").is_file() and (state / "firewall-request.csv").is_file()


async def test_done_saved_lines_in_sight_at_80x24(tmp_path):
    ctx = context(tmp_path)
    ctx.report = REPORT
    ctx.extras.update(report_plan=PLAN, write_result=written(tmp_path, PLAN))
    app = wizard.WizardApp(PLAN, ctx, start_step="done")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: not app.screen.saving)
        await pilot.pause()
        shown = visible(app)
        assert "Plan (mode 0600, holds secrets):" in shown and "plan.yaml" in shown
        assert "firewall-request.csv" in shown


# --------------------------------------------------------------------------- help

async def test_f1_help_scrolls_by_keyboard_to_its_last_line(tmp_path):
    app = new_wizard(tmp_path, plan=PLAN, start_step="cloud")
    text = help_text("cloud").splitlines()
    async with app.run_test(size=SIZE) as pilot:
        before = app.focused
        await pilot.press("f1")
        panel = app.screen.query_one("#help", HelpPanel)
        assert app.focused is panel and panel.max_scroll_y > 0  # longer than its panel
        assert text[-1].strip() not in visible(app)
        await pilot.press("pagedown", "pagedown", "pagedown")
        await pilot.pause()
        assert panel.scroll_y == panel.max_scroll_y
        assert text[-1].strip() in visible(app)  # the end of the help, not cut off
        await pilot.press("home")
        await pilot.pause()
        assert panel.scroll_y == 0 and text[0].strip()[:40] in visible(app)
        await pilot.press("f1")  # hidden again; the focus back where it was
        assert not panel.display or not panel.has_class("-shown")
        assert app.focused is before


# --------------------------------------------------------------------------- the draft

OLD = dataclasses.replace(PLAN, uplink=Uplink("enp2s0", "static", "10.20.0.77/24", "10.20.0.1"))


def offering(root: Path, draft: Draft) -> wizard.WizardApp:
    """The wizard as `edge-installer --root ROOT` (no --resume) starts it over a saved draft."""
    return wizard.WizardApp(wizard.new_plan(), context(root), draft=draft, offer_draft=True)


async def test_a_saved_draft_is_offered_and_resumed(tmp_path):
    draft = Draft(tmp_path)
    draft.save(OLD, "addressing")
    app = offering(tmp_path, draft)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "A draft of this box's plan was saved" in visible(app))
        shown = visible(app)
        assert "at the addressing" in shown and "draft.yaml" in shown
        assert app.step_id is None
        await keys(pilot, "R")
        await until(pilot, lambda: app.step_id == "addressing")
        assert field(app, "uplink-address").value == "10.20.0.77/24"
    assert list(draft.plan_path.parent.glob("draft-*.yaml")) == []


async def test_starting_over_keeps_the_old_draft_as_a_backup(tmp_path):
    draft = Draft(tmp_path)
    draft.save(OLD, "addressing")
    old_text = draft.plan_path.read_text()
    app = offering(tmp_path, draft)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        # Ctrl+Q on the offer leaves the draft as it was.
        await keys(pilot, "s")
        await until(pilot, lambda: app.step_id == "welcome")
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.step_id == "topology")
    backups = list(draft.plan_path.parent.glob("draft-2*.yaml"))
    assert len(backups) == 1 and backups[0].read_text() == old_text
    assert (backups[0].stat().st_mode & 0o777) == 0o600
    assert draft.load()[1] == "topology"  # the new run's own draft


async def test_quitting_at_the_offer_replaces_nothing(tmp_path):
    draft = Draft(tmp_path)
    draft.save(OLD, "addressing")
    old_text = draft.plan_path.read_text()
    app = offering(tmp_path, draft)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+q")
    assert draft.plan_path.read_text() == old_text and draft.load()[1] == "addressing"


def test_the_command_line_offers_the_draft(tmp_path, monkeypatch):
    """screens.run starts the app with the offer unless --resume was given."""
    from screens import run

    made = []

    class Probe(wizard.WizardApp):
        def run(self, **kw):
            made.append(self.offer_draft)
            return None

    monkeypatch.setattr(wizard, "WizardApp", Probe)
    monkeypatch.setattr(run, "build_context", lambda root, reason="", discovery=None: context(root))
    Draft(tmp_path).save(OLD, "addressing")
    run.run_wizard(str(tmp_path), None, False, True)
    run.run_wizard(str(tmp_path), None, True, True)
    assert made == [True, False]


# --------------------------------------------------------------------------- error lines

async def test_error_lines_clear_once_the_field_is_fixed(tmp_path):
    plan = Plan(topology="isolated", machine_network=MachineNetwork(("eno1",)), uplink=Uplink("enp2s0"))
    app = new_wizard(tmp_path, plan=plan, start_step="addressing")
    async with app.run_test(size=SIZE) as pilot:
        await focus(pilot, field(app, "machine-address"))
        await replace_text(pilot, "192.168.50.300/24")
        await pilot.press("ctrl+n")
        assert app.step_id == "addressing"
        assert error_at(app, "machine-address") and "problem" in text_of(app, "#step-errors")
        # Fixed, and the field left: both lines go.
        await focus(pilot, field(app, "machine-address"))
        await replace_text(pilot, "192.168.50.2/24")
        await pilot.press("tab")
        await pilot.pause()
        assert error_at(app, "machine-address") == ""
        assert text_of(app, "#step-errors") == ""
        assert not app.screen.query_one("#step-errors").has_class("-shown")


async def test_an_error_without_a_validator_clears_too_and_the_rest_stays(tmp_path):
    """Two problems; one fixed: its message goes, the count says one is left."""
    app = new_wizard(tmp_path, plan=Plan(topology="isolated"), start_step="interfaces")
    async with app.run_test(size=SIZE) as pilot:
        await focus(pilot, field(app, "uplink"))
        await replace_text(pilot, "eno1")  # the machine network's port already
        await pilot.press("ctrl+n")
        assert "already the machine network's port" in error_at(app, "uplink")
        await focus(pilot, field(app, "uplink"))
        await replace_text(pilot, "enp2s0")
        await pilot.press("tab")
        await pilot.pause()
        assert error_at(app, "uplink") == "" and text_of(app, "#step-errors") == ""


# --------------------------------------------------------------------------- words

def test_wrap_words_breaks_paths_between_names():
    path = "/tmp/a-rather-long-directory-name/another-long-directory-level/var/lib/edge-installer/plan.yaml"
    lines = wrap_words(f"Plan (mode 0600, holds secrets): {path}", 60).split("\n")
    assert all(len(line) <= 60 for line in lines)
    assert lines[1].endswith("/") and "".join(lines[1:]) == path
    assert wrap_words("  one two three four five six", 12).split("\n") == ["  one two", "  three four", "  five six"]
    # Only a name longer than the line is cut, at a hyphen when it has one.
    assert wrap_words("x" * 30, 10).split("\n") == ["x" * 10] * 3


LONG_ROOT = "site-with-a-long-name/edge-box-number-seventeen-of-the-plant/staging-root"


def words_of(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z0-9]{2,}", text))


def broken_words(lines: list[str], known: set[str]) -> list[str]:
    """Words cut at the end of a row and continued on the next (the halves joined make a
    word the screen's texts hold)."""
    found = []
    for a, b in itertools.pairwise(lines):
        tail = re.search(r"([A-Za-z0-9]+)\s*$", a)
        head = re.match(r"\s*([A-Za-z0-9]+)", b)
        if (tail and head and tail.group(1) + head.group(1) in known
                and (tail.group(1) not in known or head.group(1) not in known)):
            found.append(f"{a.strip()[-20:]} | {b.strip()[:20]}")
    return found


STEPS = [("welcome", PLAN), ("topology", PLAN), ("interfaces", PLAN), ("addressing", PLAN),
         ("services", PLAN), ("cloud", PLAN), ("review", PLAN), ("checks", CHECKED), ("done", PLAN)]


@pytest.mark.parametrize("step,plan", STEPS)
async def test_no_word_broken_at_80_columns(tmp_path, step, plan):
    root = tmp_path / LONG_ROOT
    root.mkdir(parents=True)
    ctx = context(root)
    ctx.report = REPORT
    ctx.extras["report_plan"] = plan
    if step == "done":
        ctx.extras["write_result"] = written(root, plan)
    app = wizard.WizardApp(plan, ctx, start_step=step)
    async with app.run_test(size=SIZE) as pilot:
        if step == "done":
            await until(pilot, lambda: not app.screen.saving)
        if step == "checks":
            await keys(pilot, "s")
            await until(pilot, lambda: "saved" in text_of(app, "#saved"))
        await pilot.pause()
        texts = "\n".join(str(getattr(w, "content", "")) for w in app.screen.query("Static"))
        lines = visible_lines(app)
        assert broken_words(lines, words_of(texts)) == [], "\n".join(lines)
        # F1: the help is wrapped the same way.
        await pilot.press("f1")
        await pilot.pause()
        assert broken_words(visible_lines(app), words_of(help_text(step))) == []


# --------------------------------------------------------------------------- plain mode

def cells_of(app) -> VirtualTerminal:
    frame = app.screen._compositor.render_update(full=True).render_segments(app.console)
    vt = VirtualTerminal(80, 24)
    vt.feed(frame)
    return vt


def reversed_text(app, region) -> str:
    vt = cells_of(app)
    return "".join(ch for y in range(region.y, region.bottom) for x in range(region.x, region.right)
                   for ch, pen in [vt.cells[y][x]] if "reverse" in pen.attrs)


async def test_plain_mode_focused_choice_is_reverse_video(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = new_wizard(tmp_path, plan=PLAN, start_step="topology", plain=True)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        radio = app.screen.query_one("#topology").radio_set
        await focus(pilot, radio)
        await pilot.pause()
        chosen = "Isolated"
        assert chosen in reversed_text(app, radio.region).replace(" ", "") or chosen in reversed_text(app, radio.region)
    # A checkbox (the proxy) and a button have it too.
    app = new_wizard(tmp_path, plan=PLAN, start_step="services", plain=True)
    async with app.run_test(size=SIZE) as pilot:
        toggle = app.screen.query_one("#use-proxy")
        await focus(pilot, toggle)
        await pilot.pause()
        assert "proxy" in reversed_text(app, toggle.region)
        nxt = app.screen.query_one("#next")
        await focus(pilot, nxt)
        await pilot.pause()
        assert "Next" in reversed_text(app, nxt.region)


# --------------------------------------------------------------------------- counts

async def test_interfaces_counts_match_what_is_listed(tmp_path):
    """Two virtual links given a role are listed; what is not listed is named, never a count
    that seems to contradict the list."""
    links = [Interface("lo", "loopback", None, True, "unknown", (), None),
             Interface("veth-a", "virtual", "02:00:00:00:00:0a", True, "up", (), None),
             Interface("veth-c", "virtual", "02:00:00:00:00:0c", True, "up", (), None),
             Interface("eth0", "wired", "02:00:00:00:00:01", True, "up", (), "e1000")]
    box = Inventory(tuple(links), (), INVENTORY.stack)
    plan = Plan(topology="isolated", machine_network=MachineNetwork(("veth-a",)), uplink=Uplink("veth-c"))
    app = new_wizard(tmp_path, plan=plan, start_step="interfaces", inventory=box)
    async with app.run_test(size=SIZE):
        rows = [r.text for r in app.screen.query("#detected PortRow") if r.id.startswith("row-")]
        assert [r[2:].split()[0] for r in rows] == ["veth-a", "veth-c", "eth0"]
        assert "This box has (not listed: lo):" in visible(app)
        assert "virtual/loopback not shown" not in visible(app)


# --------------------------------------------------------------------------- vendor documents

ALL_STEPS = [("welcome", PLAN), ("topology", PLAN), ("interfaces", PLAN), ("addressing", PLAN),
             ("services", PLAN), ("cloud", PLAN), ("review", PLAN), ("checks", CHECKED), ("write", PLAN),
             ("done", PLAN), ("cellular", CELLULAR)]


@pytest.mark.parametrize("step,plan", ALL_STEPS)
async def test_vendor_documents_by_title_never_seed_numbers(tmp_path, step, plan):
    ctx = context(tmp_path)
    ctx.extras["report_plan"] = plan
    app = wizard.WizardApp(plan, ctx, start_step=step)
    async with app.run_test(size=SIZE) as pilot:
        if step == "done":
            await until(pilot, lambda: not app.screen.saving)
        # (not the review's view of the generated files: their comments are the renderer's)
        texts = "\n".join(str(getattr(w, "content", "")) for w in app.screen.query("Static")
                          if not (w.has_class("file-body") or w.id == "diff"))
        assert not re.search(r"\bseeds? ?0\d\d|\bseed\b", texts, re.I), step
    help_ = help_text(step)
    assert not re.search(r"\bseeds? ?0\d\d|\bseed\b", help_, re.I), step


def test_help_names_the_documents_it_draws_on():
    assert TITLES["000"] in help_text("interfaces") and TITLES["000"] in help_text("topology")
    cloud = help_text("cloud")
    assert all(TITLES[d] in cloud.replace("\n  ", " ").replace("\n", " ") for d in ("000", "001", "002"))


async def test_welcome_table_is_wrapped_once_inside_the_frame(tmp_path):
    """The table's own wrapping (continuation lines indented) fits the body: Textual does not
    wrap its long lines a second time ("...network config" / "at" / "  boot)")."""
    from installer.box.discover import format_table

    box = Inventory.from_json({
        "interfaces": [{"name": "lo", "kind": "loopback", "carrier": True, "addresses": ["127.0.0.1/8"]},
                       {"name": "enp2s0", "kind": "wired", "mac": "00:30:18:aa:00:02", "carrier": True,
                        "addresses": ["fe80::2c55:13ff:fed6:88ab/64"]}],
        "stack": {"netplan_version": "0.106", "cloud_init_installed": True, "time_daemon": "chrony",
                  "resolved": False}})
    app = new_wizard(tmp_path, inventory=box)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        shown = [line.strip() for line in visible_lines(app)]
        table = format_table(box, width=76).splitlines()
        assert any(len(line) > 70 for line in table)  # long enough to have wrapped twice before
        for line in table:
            assert line.strip() in shown, (line, shown)


async def test_the_cellular_acknowledgement_error_speaks_in_the_wizards_terms(tmp_path):
    """The topology step's own message for the unticked acknowledgement wins over the plan
    file's ("set it to true"), and no document is called "seed 000"."""
    plan = dataclasses.replace(wizard.new_plan(), topology="cellular")
    app = new_wizard(tmp_path, plan=plan, start_step="topology")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.step_id == "topology"
        shown = text_of(app, "#step-errors") + " " + " ".join(
            str(w.render()) for w in app.screen.query(".field-error"))
        assert "tick the box" in shown, shown
        assert "set it to true" not in shown and "seed 000" not in shown


async def test_a_role_moved_to_another_port_leaves_no_stale_binding(tmp_path):
    """The bundle bound the uplink "wan0" to a MAC; here the technician gives the uplink to eth1
    instead: wan0's binding goes with it (no error that no step could fix), the machine port's
    binding stays."""
    from installer.planning.plan import Port

    links = [Interface("eth0", "wired", "02:00:00:00:00:01", True, "up", (), "e1000"),
             Interface("eth1", "wired", "02:00:00:00:00:02", True, "up", (), "e1000")]
    box = Inventory(tuple(links), (), INVENTORY.stack)
    plan = dataclasses.replace(PLAN, machine_network=dataclasses.replace(PLAN.machine_network, interfaces=("lan0",)),
                               uplink=dataclasses.replace(PLAN.uplink, interface="wan0"),
                               ports=(Port("lan0", mac="02:00:00:00:00:01"), Port("wan0", mac="52:54:00:00:00:09")))
    app = new_wizard(tmp_path, plan=plan, start_step="interfaces", inventory=box)
    async with app.run_test(size=SIZE) as pilot:
        await focus(pilot, app.screen.query_one("#uplink"))
        await replace_text(pilot, "eth1")
        await pilot.press("ctrl+n")
        await until(pilot, lambda: app.step_id != "interfaces")
    assert app.plan.uplink.interface == "eth1"
    assert app.plan.ports == (Port("lan0", mac="02:00:00:00:00:01"),)
