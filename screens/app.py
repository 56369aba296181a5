"""The wizard application: holds the plan, shows one step at a time, saves the draft.

Kept small on purpose: each step screen edits its own sections and reports back with
`StepScreen.Done`; this class only replaces the plan, saves the draft and moves on.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, Input, Static

from installer.planning.draft import Draft, DraftError
from installer.planning.plan import Plan
from screens.base import ASSETS, Prose, StepScreen, WizardButton, WizardContext, any_case
from screens.terminal import PlainModeMixin

if TYPE_CHECKING:
    from textual.await_complete import AwaitComplete

# Every step: its id and where its screen lives. A step's module is imported only when the
# step is shown: the wizard's first frame need not wait for the checks, review or write code.
STEPS = {
    "welcome": ("screens.welcome", "WelcomeScreen"),
    "this-box": ("screens.perbox", "PerBoxScreen"),
    "topology": ("screens.topology", "TopologyScreen"),
    "interfaces": ("screens.interfaces", "InterfacesScreen"),
    "addressing": ("screens.addressing", "AddressingScreen"),
    "wireless": ("screens.wireless", "WirelessScreen"),
    "cellular": ("screens.wireless", "CellularScreen"),
    "services": ("screens.services", "ServicesScreen"),
    "cloud": ("screens.cloud", "CloudScreen"),
    "review": ("screens.review", "ReviewScreen"),
    "checks": ("screens.checks", "ChecksScreen"),
    "write": ("screens.write", "WriteScreen"),
    "done": ("screens.done", "DoneScreen"),
}


def step_ids(plan: Plan, context: WizardContext | None = None) -> list[str]:
    """The steps of this plan's flow, in order (wireless and cellular only where needed; the
    per-box step only when the wizard started from a bundle)."""
    ids = ["welcome"]
    if context is not None and context.extras.get("per_box"):
        ids.append("this-box")
    ids += ["topology", "interfaces", "addressing"]
    if plan.topology in ("wifi", "wireless-bridge"):
        ids.append("wireless")
    if plan.topology == "cellular":
        ids.append("cellular")
    return ids + ["services", "cloud", "review", "checks", "write", "done"]


def step_class(step: str) -> type[StepScreen]:
    """The screen class of a step, importing its module on first use."""
    import importlib

    module, name = STEPS[step]
    return getattr(importlib.import_module(module), name)


def step_classes(plan: Plan, context: WizardContext | None = None) -> list[type[StepScreen]]:
    """The screen classes of this plan's flow, in order (imports every step's module)."""
    return [step_class(s) for s in step_ids(plan, context)]


class DraftOffer(Screen[str]):
    """Shown before the first step when a draft was saved and the wizard was started without
    --resume: resume it, or start over with the draft kept aside (never replaced silently)."""

    AUTO_FOCUS = "#resume"
    BINDINGS = any_case([Binding("r", "choose('resume')", "Resume"),
                         Binding("s", "choose('new')", "Start over"),
                         Binding("left,right,up,down", "app.focus_next", show=False)])
    DEFAULT_CSS = """
    DraftOffer { layout: vertical; }
    DraftOffer Prose { padding: 0 1; margin-top: 1; }
    DraftOffer #offer-buttons { height: 1; margin-top: 1; padding: 0 1; }
    DraftOffer WizardButton { margin-right: 2; }
    """

    def __init__(self, draft: Draft, step: str | None):
        super().__init__()
        self.draft = draft
        self.step = step

    def compose(self) -> ComposeResult:
        import time

        saved = self.draft.saved_at()
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(saved)) if saved else "an unknown time"
        where = f" at the {self.step} step" if self.step else ""
        yield Static(" edge-installer | A draft was saved", id="step-title", markup=False)
        yield Prose(f"A draft of this box's plan was saved on {when}{where}: {self.draft.plan_path}")
        yield Prose("R resumes it. S starts over; the draft is then kept as a backup next to it "
                    "(draft-<time>.yaml), never replaced.", classes="hint")
        with Horizontal(id="offer-buttons"):
            yield WizardButton("Resume (R)", id="resume", primary=True)
            yield WizardButton("Start over (S)", id="new")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss("resume" if event.button.id == "resume" else "new")


class WizardApp(PlainModeMixin):
    """The edge-installer wizard (plain ASCII mode for the Linux console and serial lines,
    F4 to switch; see screens/terminal.py)."""

    CSS_PATH = [ASSETS / "wizard.tcss"]
    TITLE = "edge-installer"
    BINDINGS = [Binding("ctrl+q", "save_and_quit", "Quit", priority=True),
                Binding("ctrl+c", "save_and_quit", "Quit", priority=True, show=False),
                # Typed ahead over a serial line, "internet<Tab>5000" arrives as one burst: the
                # focus must move when the Tab arrives, not when the field gets round to it, or
                # "5000" lands in the APN. Priority bindings run in arrival order, here.
                Binding("tab", "app.focus_next", "Next field", priority=True, show=False),
                Binding("shift+tab", "app.focus_previous", "Previous field", priority=True, show=False),
                Binding("enter", "field_done", "Next field", priority=True, show=False)]

    def __init__(self, plan: Plan, context: WizardContext, *, draft: Draft | None = None,
                 start_step: str | None = None, offer_draft: bool = False,
                 after_first_frame: Callable[[], object] | None = None, **kwargs):
        super().__init__(**kwargs)
        # Called once the first frame is on the screen (screens.run: the garbage collector).
        self._after_first_frame = after_first_frame
        # A draft saved by an earlier run, and this one started without --resume: offered first.
        self.offer_draft = bool(offer_draft and draft is not None and draft.exists())
        self.plan = plan
        self.context = context
        self.draft = draft
        self.start_step = start_step
        self.step_id: str | None = None
        self.finished = False
        self._keys: deque[events.Key] = deque()
        self._key_pump: asyncio.Task | None = None
        self._switching: AwaitComplete | None = None

    def on_mount(self) -> None:
        if self._after_first_frame is not None:
            self.call_after_refresh(self._after_first_frame)
        draft = self.draft
        if self.offer_draft and draft is not None:  # offered only when there is one
            try:
                _, step = draft.load()
            except DraftError:
                step = None
            self.push_screen(DraftOffer(draft, step), callback=partial(self._draft_chosen, draft))
            return
        self._first_step()

    def _first_step(self) -> None:
        ids = step_ids(self.plan, self.context)
        self.show(self.start_step if self.start_step in ids else ids[0], first=True)

    def _draft_chosen(self, draft: Draft, choice: str | None) -> None:
        self.offer_draft = False
        if choice == "resume":
            try:
                plan, step = draft.load()
            except DraftError as e:
                self.notify(f"The draft cannot be resumed: {e}", severity="error")
            else:
                self.plan, self.start_step = plan, step
                warning = draft.warning()
                if warning:
                    self.context.extras["trust_warning"] = warning
                self._first_step()
                return
        try:
            backup = draft.backup()
        except OSError as e:
            self.notify(f"The draft could not be kept aside ({e}); it is not replaced: Ctrl+Q leaves.",
                        severity="error")
            self.draft = None  # nothing is saved over it in this run
        else:
            self.context.extras["draft_backup"] = str(backup)
            self.notify(f"The earlier draft is kept as {backup}.")
        self._first_step()

    # --- keys typed ahead --------------------------------------------------------------------
    # Over a serial line (or on a busy box) keys arrive in bursts: "/etx<BS>c<Tab>eth1<Ctrl+N>"
    # in one read. Textual hands each key to the focused widget's queue at once, resolves the
    # keys a widget binds (Backspace, Home, Space, Down) only after they bubbled up, and moves
    # the focus on Tab at once: a burst would be applied out of order, and keys typed during
    # a step change would reach the step being left. So the wizard takes keys one at a time:
    # the next is handed over only when the previous one went all the way up the focus chain
    # and any step change it caused is complete.

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            self._keys.append(event)
            if self._key_pump is None or self._key_pump.done():
                self._key_pump = asyncio.create_task(self._pump_keys())
            return
        await super().on_event(event)

    async def _pump_keys(self) -> None:
        while self._keys:
            event = self._keys.popleft()
            await super().on_event(event)
            await self._settled()

    async def keys_handled(self, seconds: float = 10.0) -> None:
        """Wait (bounded) until every key typed so far has been handled."""
        # Keys posted to the app but not yet taken from its queue are not in self._keys yet.
        arrived = asyncio.get_running_loop().create_future()
        def arrive() -> None:
            if not arrived.done():
                arrived.set_result(None)

        if self.call_later(arrive):
            try:
                await asyncio.wait_for(arrived, seconds)
            except TimeoutError:
                return
        deadline = asyncio.get_running_loop().time() + seconds
        while self._keys or (self._key_pump is not None and not self._key_pump.done()):
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.005)

    async def _press_keys(self, keys) -> None:
        # Textual's test Pilot presses keys through here; each is handled before the next, as
        # a person's are, whatever the machine's load.
        for key in keys:
            await super()._press_keys([key])
            await self.keys_handled()

    async def _settled(self) -> None:
        """Wait until the app and every widget of the step have handled what they had queued
        (a bubbling key resolved, the messages it caused handled too), and a step change has
        finished."""
        loop = asyncio.get_running_loop()
        for _ in range(20):
            # A key's handling posts more messages, up and down the tree (a key bubbles up;
            # RadioButton.Changed -> RadioSet.Changed -> Choice.Chosen). A callback queued behind
            # what a pump holds runs once that (the message being handled included) is done.
            # Settled: a whole pass that starts and ends with every queue empty.
            pumps = [self, self.screen, *self.screen.walk_children()]
            quiet_before = all(p._message_queue.empty() for p in pumps)
            waits = []
            for pump in pumps:
                done = loop.create_future()
                if pump.call_later(lambda f=done: f.done() or f.set_result(None)):
                    waits.append(done)
            if waits:
                await asyncio.wait(waits, timeout=1.0)
            await asyncio.sleep(0)
            if quiet_before and all(p._message_queue.empty() for p in pumps):
                break
        # Widgets just shown have no place in the layout until the next refresh, and the focus
        # order is by place: a Tab right after a choice that shows fields must wait for it.
        try:
            await asyncio.wait_for(self.screen.wait_for_refresh(), 1.0)
        except (TimeoutError, AssertionError):  # a screen not running yet (switching)
            pass
        switching, self._switching = self._switching, None
        if switching is not None:
            try:
                await asyncio.wait_for(asyncio.ensure_future(switching), 2.0)
            except Exception:
                pass
            # The new step takes its focus on mount: let that happen before the next key.
            await asyncio.sleep(0)

    def show(self, step: str, *, first: bool = False) -> None:
        """Show a step (by id) with the current plan."""
        ids = step_ids(self.plan, self.context)
        index = ids.index(step)
        screen = step_class(step)(self.plan, self.context, (index + 1, len(ids)))
        self.step_id = step
        if first:
            self.push_screen(screen)
        else:
            self._switching = self.switch_screen(screen)

    def save_draft(self, step: str | None = None) -> None:
        """Save the plan and the step to resume at (never raises into the UI)."""
        if self.draft is None or self.offer_draft:  # not over a draft still offered
            return
        try:
            warning = self.context.extras.get("trust_warning") if self.context is not None else None
            self.draft.save(self.plan, step or self.step_id or "welcome", warning)
        except OSError as e:
            self.notify(f"The draft could not be saved: {e}", severity="error")

    @on(StepScreen.Done)
    def _step_done(self, message: StepScreen.Done) -> None:
        message.stop()
        # Only the step on screen may move on: a Done from a step already left (a second
        # Ctrl+N it handled on its way out) would pass the new step unchecked.
        if getattr(message._sender, "screen", None) is not self.screen:
            return
        self.plan = message.plan
        ids = step_ids(self.plan, self.context)
        here = ids.index(self.step_id) if self.step_id in ids else 0
        if message.goto:
            target = message.goto
        elif message.direction == "back":
            target = ids[max(0, here - 1)]
        elif here + 1 < len(ids):
            target = ids[here + 1]
        else:
            self.finished = True
            self.save_draft(ids[-1])
            self.exit(self.plan)
            return
        self.save_draft(target)
        self.show(target)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # Enter ends a one-line field (as a form does); elsewhere it presses, ticks or chooses.
        if action == "field_done":
            return isinstance(self.focused, Input)
        return True

    def action_field_done(self) -> None:
        """Enter in a field: on to the next one (leaving it validates it)."""
        self.screen.focus_next()

    def before_forced_exit(self, reason: str) -> None:
        """SIGTERM, SIGHUP or Ctrl+C: keep what was typed in the draft before leaving; a change
        applied and not yet kept with K is undone first."""
        self._abandon_apply()
        self._keep_current_step()
        self.save_draft()

    def _abandon_apply(self) -> None:
        abandon = getattr(self.screen, "abandon", None)  # the write step, while it applies
        if abandon is not None:
            abandon()

    def _keep_current_step(self) -> None:
        screen = self.screen
        if isinstance(screen, StepScreen):
            try:
                self.plan = screen.read()
            except Exception:  # a half-built screen must not stop the technician from leaving
                pass

    def action_save_and_quit(self) -> None:
        """Keep what was typed on the current step in the draft, then leave (a change applied
        and not yet kept with K is undone first)."""
        self._abandon_apply()
        self._keep_current_step()
        self.save_draft()
        self.exit(None)


def new_plan() -> Plan:
    """The plan a new draft starts from: the seed's recommended topology and defaults."""
    return dataclasses.replace(Plan(), topology="isolated", profiles=("machinemetrics",))


def default_root() -> Path:
    """Where the wizard writes when --root is not given."""
    return Path("/")
