"""What every wizard step has: a step counter, Back/Next by keyboard, a help panel with the
seeds' guidance, and validation from `installer.planning.validate` shown at the field it names.

A step edits its own sections of the plan: `read()` returns the plan with this step's
widgets applied (never validating), and the base class validates the result, shows each
message at its field and only then tells the app `StepScreen.Done`. The app alone holds the
plan (attributes down, messages up).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.validation import ValidationResult, Validator
from textual.widgets import Button, Checkbox, Input, Label, RadioButton, RadioSet, Static

from installer.planning.plan import FieldError, Plan

if TYPE_CHECKING:  # only named in annotations: not imported before the first frame needs them
    from installer.box.discover import Inventory
    from installer.checks.runner import Report
    from installer.planning.validate import Context as ValidationContext
    from installer.render import Target
    from installer.vendors.profilemodel import Catalog

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def any_case(bindings: Iterable) -> list:
    """Bindings whose letter keys answer in both cases: the hints show capitals, and Shift or
    Caps Lock must not turn a hotkey into nothing ("s" also binds "S")."""
    out = []
    for binding in bindings:
        if isinstance(binding, Binding):
            keys = [k.strip() for k in binding.key.split(",")]
            extra = [k.upper() for k in keys if len(k) == 1 and k.isalpha() and k.islower() and k.upper() not in keys]
            if extra:
                binding = dataclasses.replace(binding, key=",".join(keys + extra))
        out.append(binding)
    return out


_BREAK_AT = (re.compile(r"(?<=[/\\,;=])"),  # between the names of a path, the items of a list
             re.compile(r"(?<=[-_.:])(?=[^-_.:])"))  # inside a name longer than the line, only then


def _pieces(token: str, width: int, level: int = 0) -> list[str]:
    """A token too long for a line, cut after a "/" (or ",", ";", "="); a single name still
    longer than the line after a "-", "_", "." or ":"; cut hard only where nothing else fits."""
    if len(token) <= width:
        return [token]
    if level >= len(_BREAK_AT):
        return [token[i:i + width] for i in range(0, len(token), width)]
    out: list[str] = []
    line = ""
    for part in (p for p in _BREAK_AT[level].split(token) if p):
        if len(line) + len(part) <= width:
            line += part
            continue
        if line:
            out.append(line)
        pieces = _pieces(part, width, level + 1)
        out.extend(pieces[:-1])
        line = pieces[-1]
    if line:
        out.append(line)
    return out


def wrap_words(text: str, width: int) -> str:
    """Text wrapped to `width` at spaces, and long tokens (paths, URLs) at "/" and the like:
    never a word broken mid-way where a break between names is possible. A line's leading
    spaces indent its continuation lines."""
    if width < 8:
        return text
    lines: list[str] = []
    for raw in text.split("\n"):
        if len(raw) <= width:  # fits: kept as written (a table's columns, an indented list)
            lines.append(raw)
            continue
        indent = raw[: len(raw) - len(raw.lstrip(" "))]
        words = raw.split()
        if not words:
            lines.append(raw.rstrip())
            continue
        room = max(8, width - len(indent))
        line = ""
        for word in words:
            if line and len(line) + 1 + len(word) <= room:
                line += " " + word
                continue
            if line:
                lines.append(indent + line)
                line = ""
            if len(word) <= room:
                line = word
                continue
            pieces = _pieces(word, room)
            lines.extend(indent + p for p in pieces[:-1])
            line = pieces[-1]
        lines.append(indent + line)
    return "\n".join(lines)


class Prose(Static):
    """A Static of plain text (markup off) that wraps at spaces and, inside paths and other
    long tokens, after a "/": Textual's own wrapping cuts such a token at the screen edge."""

    def __init__(self, text: str = "", **kwargs):
        kwargs.setdefault("markup", False)
        super().__init__(text, **kwargs)
        self._text = text

    def update(self, content="", *, layout: bool = True) -> None:
        self._text = str(content)
        super().update(content, layout=layout)

    @property
    def text(self) -> str:
        """The text as given (unwrapped)."""
        return self._text

    def _wrap_width(self, width: int | None = None) -> int:
        return width if width is not None else self.content_region.width or self.size.width

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(wrap_words(self._text, width).split("\n")) if self._text else 0

    def render(self):
        from textual.content import Content

        width = self._wrap_width()
        return Content(wrap_words(self._text, width) if width else self._text)


class WizardContext:
    """What the steps may read but not change: the box, the catalogue, where to write.

    What takes time to know may be left for the first step that reads it, so that the first
    frame need not wait for it (screens.run.build_context): the box's facts (`inventory`, the
    render `target`) through `box_later`, the vendor profiles (`validation`, `catalog`, read by
    `rules()` and `catalogue()`) through `later`. A value given or set stays."""

    def __init__(self, root: Path, inventory: Inventory | None = None, validation: ValidationContext | None = None,
                 catalog: Catalog | None = None, target: Target | None = None, plain_reason: str = "",
                 report: Report | None = None, extras: dict | None = None,
                 later: Callable[[], tuple[ValidationContext, Catalog]] | None = None,
                 box_later: Callable[[], tuple[Inventory, Target]] | None = None,
                 table: Callable[[int], str | None] | None = None) -> None:
        self.root = root
        self._inventory = inventory
        self._target = target
        self.validation = validation
        self.catalog = catalog
        self.plain_reason = plain_reason
        self.report = report  # the last checks' report
        self.extras = extras if extras is not None else {}
        self.later = later
        self._box_later = box_later
        # The welcome step's table of interfaces as the discovery laid it out (at a width), or None.
        self._table = table

    @property
    def inventory(self) -> Inventory | None:
        """This box's interfaces and stack (discovered now, when that was left for later)."""
        self._read_box()
        return self._inventory

    @inventory.setter
    def inventory(self, value: Inventory | None) -> None:
        self._inventory = value
        self._table = None  # a table laid out for another inventory

    @property
    def target(self) -> Target | None:
        """What the renderers must know of this box (known now, when that was left for later)."""
        self._read_box()
        return self._target

    @target.setter
    def target(self, value: Target | None) -> None:
        self._target = value

    def interfaces_table(self, width: int) -> str:
        """The table of this box's interfaces, `width` columns wide: as the discovery laid it out
        when it could (the box's facts need not be read for it), else from the inventory."""
        if self._table is not None:  # cleared when the inventory is set: laid out for that one only
            text = self._table(width)
            if text is not None:
                return text
        from installer.box.discover import format_table

        inventory = self.inventory
        return format_table(inventory, width=width) if inventory is not None else "No interfaces detected."

    def rules(self) -> ValidationContext | None:
        """The validation context (read now, when it was left for later)."""
        self._read_later()
        return self.validation

    def catalogue(self) -> Catalog | None:
        """The catalogue of vendor profiles (read now, when it was left for later)."""
        self._read_later()
        return self.catalog

    def _read_box(self) -> None:
        if self._box_later is not None:
            inventory, target = self._box_later()
            self._box_later = None
            # A value set in the meantime (a test, a caller) stays.
            self._inventory = inventory if self._inventory is None else self._inventory
            self._target = target if self._target is None else self._target

    def _read_later(self) -> None:
        if self.later is not None:
            validation, catalog = self.later()
            self.later = None
            # A value set in the meantime (a test, a caller) stays.
            self.validation = validation if self.validation is None else self.validation
            self.catalog = catalog if self.catalog is None else self.catalog


class CoreValidator(Validator):
    """A Textual validator whose message is the core's (installer.planning.fields) message."""

    def __init__(self, check: Callable[[str], str | None]):
        super().__init__()
        self.check = check

    def validate(self, value: str) -> ValidationResult:
        problem = self.check(value)
        return self.failure(problem) if problem else self.success()


class WizardButton(Button, inherit_css=False):
    """The wizard's buttons: Textual's Button, always compact, in its default style, plain or
    "primary". Its CSS is Button's own for those (in full colour and in ANSI colours), without
    the styles and variants the wizard never shows (flat; success, warning, error): Textual
    parses a widget's CSS at every start, and Button's whole is the largest the first step
    would read (7 KB, ~3% of the work to its first frame)."""

    DEFAULT_CSS = """
    WizardButton:ansi.-style-default {
        border: tall $border-blurred;
        background: ansi_default;

        &:disabled {
            text-opacity: 1;
            text-style: bold dim;
            border: tall $border-blurred !important;
            background: ansi_default !important;
            pointer: not-allowed;
            &:hover {
                background: ansi_default;
            }
        }
        &:hover {
            background: $ansi-background;
            border: tall $border;
        }
        &.-active {
            background: $ansi-background !important;
            border: blank $background !important;
            tint: transparent;
        }
        &.-primary {
            color: $primary;
            border: tall $primary;
            background: ansi_default;
            &:hover {
                background: $ansi-background;
            }
        }
    }

    WizardButton {
        width: auto;
        min-width: 16;
        height: auto;
        line-pad: 1;
        text-align: center;
        content-align: center middle;
        pointer: pointer;

        &.-style-default {
            text-style: bold;
            color: $button-foreground;
            background: $surface;
            border: none;
            border-top: tall $surface-lighten-1;
            border-bottom: tall $surface-darken-1;

            &.-textual-compact {
                border: none !important;
            }
            &:disabled {
                text-opacity: 0.6;
                pointer: not-allowed;
            }
            &:focus {
                text-style: $button-focus-text-style;
                background-tint: $foreground 5%;
            }
            &:hover {
                border-top: tall $surface;
                background: $surface-darken-1;
            }
            &.-active {
                background: $surface;
                border-bottom: tall $surface-lighten-1;
                border-top: tall $surface-darken-1;
                tint: $background 30%;
            }
            &.-primary {
                color: $button-color-foreground;
                background: $primary;
                border-top: tall $primary-lighten-3;
                border-bottom: tall $primary-darken-3;

                &:hover {
                    background: $primary-darken-2;
                    border-top: tall $primary;
                }
                &.-active {
                    background: $primary;
                    border-bottom: tall $primary-lighten-3;
                    border-top: tall $primary-darken-3;
                }
            }
        }
    }
    """

    def __init__(self, label: str, *, id: str | None = None, primary: bool = False, disabled: bool = False) -> None:
        super().__init__(label, id=id, compact=True, variant="primary" if primary else "default", disabled=disabled)


class FieldInput(Vertical):
    """A labelled one-line input for one plan field, with the field's error under it."""

    DEFAULT_CSS = """
    FieldInput { height: auto; }
    FieldInput > .field-error { color: $error; height: auto; }
    FieldInput > .field-error.-empty { display: none; }
    """

    def __init__(self, label: str, *, field: str, value: str | None = "", placeholder: str = "",
                 password: bool = False, check: Callable[[str], str | None] | None = None, id: str | None = None):
        super().__init__(id=id)
        self.field_path = field
        self._label = label
        self._input = Input(value or "", placeholder=placeholder, password=password, compact=True,
                            validators=[CoreValidator(check)] if check else None,
                            validate_on=["blur", "submitted"], id=f"{id}-input" if id else None)
        self._error = Static("", classes="field-error -empty", markup=False)

    def compose(self) -> ComposeResult:
        yield Label(self._label)
        yield self._input
        yield self._error

    @property
    def value(self) -> str:
        """The text entered, stripped."""
        return self._input.value.strip()

    @property
    def input(self) -> Input:
        """The Input widget itself."""
        return self._input

    _core_error: str | None = None  # the step's (installer.planning.validate) message, until re-checked
    _own_error: str | None = None   # the field's validator, as of its last blur or Enter

    def set_error(self, message: str | None) -> None:
        """Show (or clear) the core's message for this field."""
        self._core_error = message
        self._show_error()

    def _show_error(self) -> None:
        message = self._own_error or self._core_error
        self._error.update(message or "")
        self._error.set_class(not message, "-empty")
        self._input.set_class(bool(message), "-invalid")

    @on(Input.Blurred)
    @on(Input.Submitted)
    def _show_validation(self, event: Input.Blurred | Input.Submitted) -> None:
        result = event.validation_result
        if result is not None:
            self._own_error = None if result.is_valid else "; ".join(result.failure_descriptions)
            if self._own_error is None:
                self._core_error = None  # fixed: the step re-checks what is left (StepScreen._recheck)
            self._show_error()


class Choice(Vertical):
    """A labelled set of options (a compact RadioSet) for one plan field; keyboard first:
    the cursor starts on the chosen option, arrows move, Space or Enter choose."""

    DEFAULT_CSS = """
    Choice { height: auto; }
    Choice > .field-error { color: $error; height: auto; }
    Choice > .field-error.-empty { display: none; }
    """

    class Chosen(Message):
        """The chosen value changed."""

        def __init__(self, choice: Choice, value: str):
            super().__init__()
            self.choice = choice
            self.value = value

        @property
        def control(self) -> Choice:
            """The Choice that changed (lets `@on(Choice.Chosen, "#id")` match)."""
            return self.choice

    def __init__(self, label: str, options: Iterable[tuple[str, str]], *, field: str, value: str | None,
                 id: str | None = None):
        super().__init__(id=id)
        self.field_path = field
        self._label = label
        self._options = list(options)
        values = [v for v, _ in self._options]
        self._index = values.index(value) if value in values else 0
        self._error = Static("", classes="field-error -empty", markup=False)

    def compose(self) -> ComposeResult:
        yield Label(self._label)
        with RadioSet(compact=True):
            for i, (_, text) in enumerate(self._options):
                yield RadioButton(text, value=i == self._index)
        yield self._error

    def on_mount(self) -> None:
        # Textual starts the cursor on the first option, not the chosen one; and the RadioSet's
        # own mount (which moves its cursor) may run after this one: place it once both ran.
        self._place_cursor()
        self.call_after_refresh(self._place_cursor)

    def _place_cursor(self) -> None:
        radio = self.query_one(RadioSet)
        index = radio.pressed_index
        radio._selected = index if index >= 0 else self._index

    @property
    def value(self) -> str:
        """The chosen option's value."""
        radio = self.query_one(RadioSet)
        index = radio.pressed_index if radio.pressed_index >= 0 else self._index
        return self._options[index][0]

    @property
    def radio_set(self) -> RadioSet:
        """The RadioSet widget itself."""
        return self.query_one(RadioSet)

    def set_error(self, message: str | None) -> None:
        """Show (or clear) the core's message for this field."""
        self._error.update(message or "")
        self._error.set_class(not message, "-empty")

    @on(RadioSet.Changed)
    def _changed(self, event: RadioSet.Changed) -> None:
        event.stop()
        self.post_message(self.Chosen(self, self._options[event.index][0]))


class Toggle(Checkbox):
    """A yes/no plan field."""

    def __init__(self, label: str, *, field: str, value: bool, id: str | None = None):
        super().__init__(label, value=value, compact=True, id=id)
        self.field_path = field

    def set_error(self, message: str | None) -> None:
        """Checkboxes show their error through the step's error line."""
        self.set_class(bool(message), "-invalid")


class HelpPanel(VerticalScroll):
    """The step's help (F1): shown below the body, focused while shown so the arrows, Page
    Up/Down, Home and End scroll it; F1 or Esc hides it and gives the focus back."""

    BINDINGS = [Binding("escape", "close", "Close help", show=False)]

    async def action_close(self) -> None:
        screen = self.screen
        if isinstance(screen, StepScreen):
            await screen.action_toggle_help()


class StepBody(VerticalScroll):
    """The step's body: focusable only when it has something to scroll (a Tab landing on a
    body that cannot move is a focus the technician cannot see, and repaints it all)."""

    def allow_focus(self) -> bool:
        return self.max_scroll_y > 0 or self.max_scroll_x > 0


def help_text(step: str) -> str:
    """The help of a step (assets/help/<step>.md), as plain text."""
    path = ASSETS / "help" / f"{step}.md"
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return "No help for this step."


class StepScreen(Screen):
    """One step of the wizard. Subclasses set STEP, TITLE, SECTIONS and implement
    `compose_body()` and `read()`."""

    STEP: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    # Field paths (prefixes) of the plan this step edits: its errors are shown and block Next.
    SECTIONS: ClassVar[tuple[str, ...]] = ()
    NEXT_LABEL: ClassVar[str] = "Next >"
    # The first control, not the scrolling body, takes the focus: the technician types at once.
    AUTO_FOCUS = "Input, RadioSet, Checkbox, OptionList, ListView, #next"

    BINDINGS = [
        # Not a priority binding: the key then queues behind the one before it (Space on a
        # checkbox, then Ctrl+N at once over a serial line must tick first, then go on).
        Binding("ctrl+n", "next", "Next"),
        Binding("escape", "back", "Back"),
        Binding("f1", "toggle_help", "Help"),
    ]

    def __init_subclass__(cls, **kwargs):
        # Letter hotkeys of every step (R, O, S, F on the checks, W and K on the write step)
        # answer with Shift or Caps Lock too; before Textual merges the bindings.
        if "BINDINGS" in cls.__dict__:
            cls.BINDINGS = any_case(cls.__dict__["BINDINGS"])
        super().__init_subclass__(**kwargs)

    class Done(Message):
        """The step is finished: go `direction` ("next" or "back") with this plan."""

        def __init__(self, plan: Plan, direction: str, goto: str | None = None):
            super().__init__()
            self.plan = plan
            self.direction = direction
            self.goto = goto

    def __init__(self, plan: Plan, context: WizardContext, position: tuple[int, int]):
        super().__init__()
        self.plan = plan
        self.context = context
        self.position = position

    # --- for subclasses ---------------------------------------------------------------
    def compose_body(self) -> ComposeResult:
        """The step's own widgets."""
        yield from ()

    def read(self) -> Plan:
        """The plan with this step's widgets applied. Must not validate or raise."""
        return self.plan

    def extra_errors(self, plan: Plan) -> list[FieldError]:
        """Step-specific rules beyond installer.planning.validate (e.g. an unticked acknowledgement)."""
        return []

    def compose_status(self) -> ComposeResult:
        """Lines of the step that must stay in sight below the body (a "saved" confirmation)."""
        yield from ()

    # --- the frame -----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        n, total = self.position
        yield Static(f" edge-installer | Step {n} of {total}: {self.TITLE}", id="step-title", markup=False)
        warning = self.context.extras.get("trust_warning")
        if warning:  # an unsigned or untrusted bundle accepted: said on every step, never scrolled away
            yield Static(warning, id="trust-warning", classes="warning", markup=False)
        with StepBody(id="body"):
            yield from self.compose_body()
        yield from self.compose_status()
        # The help panel (hidden until F1) is made at the first F1: the first frame need not wait for it.
        yield Prose("", id="step-errors")
        with Horizontal(id="nav"):
            yield WizardButton("< Back", id="back", disabled=n == 1)
            yield WizardButton(self.NEXT_LABEL, id="next", primary=True)
            yield Static("Esc back  Ctrl+N next  F1 help  F4 plain  Ctrl+Q quit", id="keys", markup=False)

    def errors_for_step(self, plan: Plan) -> list[FieldError]:
        """The validation errors this step must fix before Next."""
        # The step's own message for a field wins over the core's: it speaks in the wizard's
        # terms (a tick box), the core's in the plan file's (a key set to true).
        from installer.planning.validate import validate  # at the first Next, not before the first frame

        own = self.extra_errors(plan)
        worded = {e.field for e in own}
        return [e for e in validate(plan, self.context.rules())
                if self.owns(e.field) and e.field not in worded] + own

    def owns(self, path: str) -> bool:
        """Does this step edit the field at `path`?"""
        return any(path == s or path.startswith((s + ".", s + "[")) for s in self.SECTIONS)

    _showing_errors = False  # the error line holds show_errors' count (not some other message)

    def show_errors(self, errors: list[FieldError], *, move_focus: bool = True) -> None:
        """Each message at its field; the rest (and a count) on the step's error line."""
        widgets = {getattr(w, "field_path", None): w for w in self.query("FieldInput, Choice, Toggle")
                   if isinstance(w, (FieldInput, Choice, Toggle))}
        for w in widgets.values():
            if w is not None:
                w.set_error(None)
        unplaced = []
        first = None
        for e in errors:
            widget = widgets.get(e.field) or next(
                (w for p, w in widgets.items() if p and e.field.startswith(p + "[")), None)
            if widget is not None:
                widget.set_error(e.message)
                first = first or widget
                if isinstance(widget, Toggle):  # a checkbox has no error line of its own
                    unplaced.append(e.message)
            else:
                unplaced.append(str(e))
        if errors:
            head = f"{len(errors)} problem{'s' if len(errors) > 1 else ''} to fix before Next."
            self.say(" ".join([head] + unplaced))
            self._showing_errors = True
            if first is not None and move_focus:
                if isinstance(first, FieldInput):
                    first.input.focus()
                elif isinstance(first, Choice):
                    first.radio_set.focus()
                else:
                    first.focus()
        else:
            self.say("")

    def say(self, message: str) -> None:
        """Show (or clear, with "") a message on the step's error line."""
        self._showing_errors = False
        line = self.query_one("#step-errors", Static)
        line.update(message)
        line.set_class(bool(message), "-shown")

    def _recheck(self) -> None:
        """After a refused Next, a field left (or a choice made) checks the step again: what
        was fixed loses its message, at the field and on the error line; nothing new is shown
        and the focus stays where the technician is."""
        if not self._showing_errors:
            return
        try:
            errors = self.errors_for_step(self.read())
        except Exception:  # a half-filled step: the next Next says what is wrong
            return
        self.show_errors(errors, move_focus=False)

    @on(Input.Blurred)
    @on(Choice.Chosen)
    @on(Checkbox.Changed)
    def _field_changed(self, event) -> None:
        self.call_later(self._recheck)  # after the field itself has shown its own verdict

    # --- actions ---------------------------------------------------------------------------
    def action_next(self) -> None:
        plan = self.read()
        errors = self.errors_for_step(plan)
        self.show_errors(errors)
        if not errors:
            self.post_message(self.Done(plan, "next"))

    def action_back(self) -> None:
        if self.position[0] > 1:
            # Back keeps what was typed on this step, valid or not.
            self.post_message(self.Done(self.read(), "back"))

    _focus_before_help = None

    async def action_toggle_help(self) -> None:
        if not self.query("#help"):  # the first F1 on this step: the panel, where the step's frame has room for it
            await self.mount(HelpPanel(Prose(help_text(self.STEP), id="help-text"), id="help"), before="#step-errors")
        panel = self.query_one("#help", HelpPanel)
        panel.toggle_class("-shown")
        if panel.has_class("-shown"):
            self._focus_before_help = self.focused
            panel.scroll_home(animate=False)
            panel.focus()
        else:
            back = self._focus_before_help
            self._focus_before_help = None
            if back is not None and back.is_attached and back.focusable:
                back.focus()
            elif self.focused is panel:
                self.focus_next()

    @on(Button.Pressed, "#next")
    def _next_pressed(self) -> None:
        self.action_next()

    @on(Button.Pressed, "#back")
    def _back_pressed(self) -> None:
        self.action_back()

    @on(Input.Submitted)
    def _enter_moves_on(self, event: Input.Submitted) -> None:
        # Enter in a field goes to the next field, as in a form; Ctrl+N finishes the step.
        self.focus_next()


def words(e: BaseException) -> str:
    """An exception as words for the technician: the file and the reason, no traceback."""
    if isinstance(e, OSError):
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror or e}"
    return str(e) or type(e).__name__
