"""What the wizard's Pilot tests share: a fixed box, the context the CLI would build for it,
typing as a terminal sends keys, and plans that drive the real widgets by keyboard.

`drive(pilot, plan, until_step=STEP)` answers every step with the plan's values, through the
keys a technician presses (Tab to move, arrows and Space to choose, typed text, Ctrl+N):
a Plan file is an answers file for the real UI (STYLE.md, "Answers that drive the real UI").

NETWORK SAFETY: a plan that reaches the checks step must be `safe()`: no profile, no
machine, no proxy, DNS and NTP at 127.0.0.1. `drive()` refuses any other plan there.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from textual import events
from textual.keys import _character_to_key
from textual.widgets import Input, OptionList, Static
from textual.widgets._toggle_button import ToggleButton

from installer.box.discover import Inventory
from installer.checks.base import Result
from installer.checks.runner import Report
from installer.planning.plan import Dns, Ntp, Plan, Uplink
from installer.planning.validate import default_context
from installer.render import Target
from installer.vendors.profiles import load_catalog
from screens import app as wizard
from screens.base import Choice, FieldInput, Toggle, WizardContext

SIZE = (80, 24)
STOCK_TARGET = Target()  # the render target of a stock box (frozen: one instance serves every default)
STATE_DIR = "var/lib/edge-installer"


# A box with the seed's two wired ports, a WiFi card and a modem (and what discovery also
# lists: loopback, a container bridge).
INVENTORY = Inventory.from_json({
    "interfaces": [
        {"name": "lo", "kind": "loopback", "carrier": True},
        {"name": "eno1", "kind": "wired", "mac": "00:30:18:aa:00:01", "carrier": True},
        {"name": "enp2s0", "kind": "wired", "mac": "00:30:18:aa:00:02", "carrier": True},
        {"name": "wlan0", "kind": "wireless", "mac": "00:30:18:aa:00:03", "carrier": False},
        {"name": "wwan0", "kind": "cellular", "mac": None, "carrier": None},
        {"name": "docker0", "kind": "virtual", "mac": "02:42:ac:11:00:01", "carrier": False},
    ],
    "default_gateways": [{"gateway": "10.20.0.1", "interface": "enp2s0"}],
    "stack": {"netplan_version": "0.106", "networkmanager_installed": True},
})


def context(root: Path, *, inventory: Inventory | None = INVENTORY, target: Target = STOCK_TARGET,
            plain_reason: str = "", check_timeout: float = 0.3, **extra) -> WizardContext:
    """The WizardContext `screens.run.build_context` would make for this box, with a fixed
    inventory and render target (and short check timeouts: only loopback is ever asked)."""
    kinds = {i.name: i.kind for i in inventory.interfaces} if inventory is not None else None
    ctx = WizardContext(root=Path(root), inventory=inventory,
                        validation=default_context(kinds, target),
                        catalog=load_catalog(), target=target, plain_reason=plain_reason, **extra)
    ctx.extras.setdefault("check_timeout", check_timeout)
    return ctx


def safe(plan: Plan) -> Plan:
    """The plan with nothing to reach beyond loopback: the only kind the checks may run on here."""
    return dataclasses.replace(plan, profiles=(), profile_params={}, machines=(), proxy=None,
                               dns=Dns("custom", ("127.0.0.1",)), ntp=Ntp("custom", ("127.0.0.1",)))


def is_safe(plan: Plan) -> bool:
    """Nothing the checks of this plan would reach leaves loopback."""
    return (not plan.profiles and not plan.machines and plan.proxy is None
            and plan.dns == Dns("custom", ("127.0.0.1",)) and plan.ntp == Ntp("custom", ("127.0.0.1",)))


def _result(id, kind, target, status, diagnosis, evidence, remediation="", duration=0.01):
    return Result(id, kind, target, status, diagnosis, evidence, remediation, duration, None, f"{id}:{target}")


# A finished run of the checks of a safe() isolated plan (machine network eno1 192.168.50.2/24,
# uplink enp2s0 static 10.20.0.15/24) on a box whose plant DNS server answers and whose NTP is
# blocked (the texts are the checks' own words).
REPORT = Report([
    _result("link-state", "link", "eno1", "pass", "ok", "eno1 (machine network): carrier, 192.168.50.2/24"),
    _result("link-isolation", "link", "machine network", "pass", "ok", "no default route on eno1; IPv4 forwarding off"),
    _result("link-state", "link", "enp2s0", "warn", "address-missing",
            "enp2s0 (uplink) has 10.20.0.99/24, not 10.20.0.15/24; writing the configuration sets it",
            "Apply the plan (write step), or check that nothing else manages this interface "
            "(`edge-installer render` lists conflicting files)."),
    _result("dns-resolver", "dns", "127.0.0.1", "pass", "ok", "127.0.0.1 answered NOERROR for . in 2 ms"),
    _result("ntp-server", "ntp", "127.0.0.1", "fail", "ntp-timeout", "127.0.0.1: no answer on 123/udp within 3 s",
            "No NTP answer from 127.0.0.1 within 3 s: a firewall drops outbound 123/udp. Ask IT to allow "
            "outbound UDP port 123 (seed 000, \"Firewall Requirements\" and \"Network Checklist\").", 3.0),
    _result("bandwidth-estimate", "bandwidth", "0 machine(s)", "pass", "ok",
            "No machines are listed, so there is no upload to estimate (seed 000, \"Bandwidth Requirements\")."),
], 3.02)


# --------------------------------------------------------------------------- keys and screens

def post_keys(app, keys) -> None:
    """Keys typed ahead: all posted before the app handles the first (a serial line, a busy box)."""
    for key in keys:
        char = key if len(key) == 1 else None
        app.post_message(events.Key(key if char is None or key.isalnum() else _character_to_key(key), char))


async def keys_handled(pilot, seconds: float = 10.0) -> None:
    """Wait (bounded) until the wizard has handled every key typed ahead: it takes them one at
    a time, each once the one before has been resolved all the way."""
    await pilot.app.keys_handled(seconds)
    assert not pilot.app._keys, f"{len(pilot.app._keys)} keys still waiting after {seconds} s"
    await pilot.pause()


async def type_text(pilot, text: str) -> None:
    """Type into the focused input as a burst of keys, as a terminal sends them (pilot.press
    waits for idle after every key: 50 ms a character)."""
    post_keys(pilot.app, text)
    await keys_handled(pilot)


async def keys(pilot, *names: str) -> None:
    """Keys in a burst, as typed ahead, then wait until the wizard has handled every one."""
    post_keys(pilot.app, names)
    await keys_handled(pilot)


async def replace_text(pilot, text: str) -> None:
    """Empty the focused input, then type."""
    if pilot.app.focused.value:
        await keys(pilot, "end", "ctrl+u")
    await type_text(pilot, text)


async def until(pilot, condition, seconds: float = 10.0) -> None:
    """Wait (bounded) for a condition while the app runs."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting (step {pilot.app.step_id})")


async def focus(pilot, widget) -> None:
    """Tab until `widget` (or, for a field or a choice, its input or radio set) has the focus:
    as many Tabs as it is away in the focus chain, typed ahead, then one at a time if needed."""
    if isinstance(widget, FieldInput):
        widget = widget.input
    elif isinstance(widget, Choice):
        widget = widget.radio_set
    app = pilot.app
    if app.focused is widget:
        return
    chain = app.screen.focus_chain
    assert widget in chain, f"{widget!r} cannot take the focus (hidden?)"
    here = chain.index(app.focused) if app.focused in chain else -1
    await keys(pilot, *["tab"] * ((chain.index(widget) - here) % len(chain)))
    for _ in range(len(chain)):
        if app.focused is widget:
            return
        await pilot.press("tab")
    raise AssertionError(f"{widget!r} never got the focus (at {app.focused!r})")


def field(app, fid: str) -> FieldInput:
    return app.screen.query_one(f"#{fid}", FieldInput)


def error_at(app, fid: str) -> str:
    """The message shown under a field (or a choice)."""
    return str(app.screen.query_one(f"#{fid}").query_one(".field-error", Static).render())


def text_of(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).content)


def frame_text(app) -> str:
    """The frame as the terminal would get it, without escape sequences."""
    raw = app.screen._compositor.render_update(full=True).render_segments(app.console)
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "\n", raw)


def screen_text(app) -> str:
    """Every text the current screen holds, shown or scrolled away, plus the visible frame."""
    parts = []
    for w in app.screen.query("*"):
        if isinstance(w, OptionList):
            parts += [str(o.prompt) for o in w.options]
        elif isinstance(w, Input):
            parts.append(w.value)
        elif isinstance(w, ToggleButton):
            parts.append(str(w.label))
        elif isinstance(w, Static):
            parts.append(str(w.content))
    parts.append(app.export_screenshot())
    return "\n".join(parts)


def no_blink(app) -> None:
    """Freeze the cursor of every input on the screen (full mode blinks; plain mode does not)."""
    for w in app.screen.query(Input):
        w.cursor_blink = False


# --------------------------------------------------------------------------- answering steps

async def next_step(pilot) -> str:
    """Ctrl+N; the step shown afterwards."""
    await pilot.press("ctrl+n")
    await pilot.pause()
    return pilot.app.step_id


async def set_field(pilot, fid: str, value: str | None) -> None:
    """Tab to a field and make it hold `value` (typed; nothing typed when it already does)."""
    f = field(pilot.app, fid)
    value = value or ""
    if f.input.value == value:
        return
    await focus(pilot, f)
    await replace_text(pilot, value)


async def set_choice(pilot, cid: str, value: str) -> None:
    """Tab to a choice, move the cursor with the arrows and choose with Space."""
    choice = pilot.app.screen.query_one(f"#{cid}", Choice)
    if choice.value == value:
        return
    await focus(pilot, choice)
    values = [v for v, _ in choice._options]
    radio = choice.radio_set
    before = radio._selected
    delta = values.index(value) - (radio._selected or 0)
    await keys(pilot, *(["down"] * delta if delta > 0 else ["up"] * -delta), "space")
    assert choice.value == value, (cid, choice.value, value, before, radio._selected, radio.pressed_index,
                                   pilot.app.focused)


async def set_toggle(pilot, tid: str, value: bool) -> None:
    """Tab to a checkbox and tick or untick it with Space."""
    toggle = pilot.app.screen.query_one(f"#{tid}", Toggle)
    if toggle.value == value:
        return
    await focus(pilot, toggle)
    await pilot.press("space")
    assert toggle.value == value, tid


async def answer_topology(pilot, plan: Plan) -> None:
    await set_choice(pilot, "topology", plan.topology)
    if plan.topology == "cellular":
        await set_toggle(pilot, "acknowledge", bool(plan.cellular and plan.cellular.acknowledge_unsupported))


async def answer_interfaces(pilot, plan: Plan) -> None:
    screen = pilot.app.screen
    mn = plan.machine_network
    if plan.topology == "wireless-bridge":
        ports = screen._ports  # toggle id -> detected wired port
        for tid, name in ports.items():
            await set_toggle(pilot, tid, name in mn.interfaces)
        await set_field(pilot, "machine", " ".join(n for n in mn.interfaces if n not in ports.values()))
    elif mn is not None:
        await set_field(pilot, "machine", " ".join(mn.interfaces))
    await set_field(pilot, "uplink", plan.uplink.interface)


async def answer_addressing(pilot, plan: Plan) -> None:
    if plan.machine_network is not None:
        await set_field(pilot, "machine-address", plan.machine_network.address)
    if plan.topology == "cellular":
        return
    up = plan.uplink or Uplink()
    await set_choice(pilot, "ipv4", up.ipv4)
    if up.ipv4 == "static":
        await set_field(pilot, "uplink-address", up.address)
        await set_field(pilot, "gateway", up.gateway)


async def answer_wireless(pilot, plan: Plan) -> None:
    wifi = plan.wifi
    await set_field(pilot, "ssid", wifi.ssid)
    await set_choice(pilot, "security", wifi.security)
    await set_field(pilot, "passphrase", wifi.passphrase)
    await set_toggle(pilot, "hidden", wifi.hidden)


async def answer_cellular(pilot, plan: Plan) -> None:
    c = plan.cellular
    await set_field(pilot, "apn", c.apn)
    await set_field(pilot, "username", c.username)
    await set_field(pilot, "password", c.password)
    await set_field(pilot, "cap", None if c.data_cap_mb is None else str(c.data_cap_mb))


async def answer_services(pilot, plan: Plan) -> None:
    await set_choice(pilot, "dns", plan.dns.mode)
    if plan.dns.mode == "custom":
        await set_field(pilot, "dns-servers", " ".join(plan.dns.servers))
    await set_choice(pilot, "ntp", plan.ntp.mode)
    if plan.ntp.mode == "custom":
        await set_field(pilot, "ntp-servers", " ".join(plan.ntp.servers))
    await set_toggle(pilot, "use-proxy", plan.proxy is not None)
    if plan.proxy is not None:
        p = plan.proxy
        await set_field(pilot, "proxy-url", p.url)
        await set_field(pilot, "proxy-username", p.username)
        await set_field(pilot, "proxy-password", p.password)
        await set_field(pilot, "no-proxy", " ".join(p.no_proxy))


async def answer_cloud(pilot, plan: Plan) -> None:
    assert not plan.machines, "drive() adds no machines (the cloud tests do)"
    for pid in pilot.app.screen._profile_ids():
        await set_toggle(pilot, f"profile-{pid}", pid in plan.profiles)
    for pid, params in plan.profile_params.items():
        for name, value in params.items():
            await set_field(pilot, f"param-{pid}-{name}".replace("_", "-"), value)


async def answer_checks(pilot, plan: Plan) -> None:
    """Wait for the checks to finish."""
    app = pilot.app
    await until(pilot, lambda: isinstance(app.context.report, Report) and not app.screen.running)


async def leave_checks(pilot) -> None:
    """Past failures, Ctrl+N asks once more: say yes."""
    app = pilot.app
    if app.context.report.summary["fail"]:
        await pilot.press("ctrl+n")
        assert app.step_id == "checks" and "failed" in text_of(app, "#step-errors")


async def answer_write(pilot, plan: Plan) -> None:
    """Tick the confirmation, W, and wait for the files."""
    app = pilot.app
    await set_toggle(pilot, "confirm", True)
    await pilot.press("w")
    await until(pilot, lambda: app.screen.result is not None)


async def answer_done(pilot, plan: Plan) -> None:
    await until(pilot, lambda: not pilot.app.screen.saving)


ANSWERS = {"topology": answer_topology, "interfaces": answer_interfaces, "addressing": answer_addressing,
           "wireless": answer_wireless, "cellular": answer_cellular, "services": answer_services,
           "cloud": answer_cloud, "checks": answer_checks, "write": answer_write, "done": answer_done}


async def answer(pilot, plan: Plan) -> None:
    """Answer the step on screen with the plan's values (not leaving it)."""
    step = pilot.app.step_id
    if step in ("review", "checks") and not (is_safe(plan) and is_safe(pilot.app.plan)):
        raise AssertionError("NETWORK SAFETY: only a safe() plan may go past the review to the checks")
    handler = ANSWERS.get(step)
    if handler is not None:
        await handler(pilot, plan)


async def drive(pilot, plan: Plan, until_step: str | None = None, *, on_step=None, on_answered=None) -> None:
    """Answer every step with the plan and go on (Ctrl+N), until `until_step` is shown (not
    answered) or the wizard has finished. `on_step(pilot)` is called on each step as shown,
    `on_answered(pilot)` once it is answered, before Next."""
    app = pilot.app
    seen = []
    while not app.finished and app.step_id != until_step:
        step = app.step_id
        assert step not in seen[-1:], f"stuck on {step}: {text_of(app, '#step-errors')}"
        seen.append(step)
        if on_step is not None:
            await on_step(pilot)
        await answer(pilot, plan)
        if on_answered is not None:
            await on_answered(pilot)
        if step == "checks":
            await leave_checks(pilot)
        await next_step(pilot)
        if not app.finished and app.step_id == step:
            raise AssertionError(f"Next refused on {step}: {text_of(app, '#step-errors')}")


def new_wizard(root: Path, *, target: Target = STOCK_TARGET, plain: bool = False, draft=None,
               start_step: str | None = None, plan: Plan | None = None, **ctx) -> wizard.WizardApp:
    """The wizard as `edge-installer --root ROOT` starts it (a new plan at the welcome step,
    unless told otherwise), on the fixed box."""
    return wizard.WizardApp(plan if plan is not None else wizard.new_plan(),
                            context(root, target=target, **ctx), draft=draft, start_step=start_step,
                            plain=plain)


def tree(root: Path, ignore: str = STATE_DIR) -> dict[str, tuple[bytes, int]]:
    """Every file under root (but those under `ignore`): path -> (bytes, permission bits)."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel == ignore or rel.startswith(ignore + "/"):
            continue
        if p.is_file() or p.is_symlink():
            out[rel] = (p.read_bytes(), p.lstat().st_mode & 0o7777)
    return out
