"""Plain mode: the wizard on a Linux text console or a serial line (see notes/textual-on-serial).

What the wizard calls, in this order:

    plain, reason = detect_plain()          # (bool, words for the welcome screen); or a flag
    prepare_environment(plain)              # before the App is created
    app = WizardApp(..., plain=plain)       # class WizardApp(PlainModeMixin): ...
    app.run()                               # mouse=False by default
    sys.exit(app.return_code or 0)          # 130 Ctrl+C, 143 SIGTERM, 129 SIGHUP

`PlainModeMixin` (an App subclass) gives, while plain: ASCII glyphs ( ) (*) [ ] [X], ASCII
borders (assets/plain.tcss under the App's -plain class), a final ASCII line filter, key names
and title separator in ASCII, the 16-colour `edge-plain` theme (readable with NO_COLOR: focus
and highlights turn into reverse video), cursor blink off on every Input, the serial driver
(no query or mode a VT100 would print as garbage, screen cleared on exit), lean focus, and
frames sent as changed cells only (ShadowScreen: the terminal ends cell for cell as Textual's
full repaints leave it); without a terminal to model (headless), held full frames instead (a
newer full frame replaces an unsent one). Always: F4 toggles plain mode (`action_toggle_plain`,
or `set_plain(app, on)`); Ctrl+L repaints every cell; Ctrl+C, SIGTERM, SIGHUP and SIGINT call
`before_forced_exit(reason)` once (override it to save the draft), then exit cleanly so Textual
restores the terminal. An App binding of its own for ctrl+c wins over the mixin's.

Plain mode is per App: the hooks installed on Textual's classes ask the widget's App.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import weakref
from pathlib import Path
from time import monotonic
from typing import Any, Mapping, MutableMapping, Sequence

import textual
from textual import events, on
from textual._compositor import ChopsUpdate, LayoutUpdate
from textual.app import App
from textual.binding import Binding
from textual.content import Content
from textual.drivers.linux_driver import LinuxDriver
from textual.filter import LineFilter, NoColor
from textual.screen import Screen
from textual.timer import Timer

from screens.ascii import PLAIN_KEYS, PLAIN_THEME, AsciiFilter, HighlightsToReverse, PlainHighlights, is_plain
from screens.cells import CHANGED_CELLS_VERSIONS, ShadowScreen, _ShadowUpdate

PLAIN_TCSS = Path(__file__).resolve().parent.parent / "assets" / "plain.tcss"
PLAIN_CLASS = "-plain"

# ----------------------------------------------------------------------------- detection

PLAIN_TERMS = frozenset({"vt100", "vt102", "vt220", "linux", "dumb"})
SERIAL_TTY = re.compile(r"^/dev/(ttyS|ttyUSB|ttyACM|ttyAMA|ttymxc|ttyO|ttySAC|hvc)\d+$|^/dev/console$")
_COERCED = {"C.UTF-8", "C.utf8", "UTF-8"}


def _is_utf8(name: str) -> bool:
    return name.replace("-", "").replace("_", "").lower().endswith("utf8")


def _declared_locale(env: Mapping[str, str], utf8_mode: bool) -> tuple[str, str]:
    """The locale the user's environment declares for LC_CTYPE, seen through PEP 538/540.

    Python 3.7+ coerces a C/POSIX locale to C.UTF-8 by writing LC_CTYPE into os.environ
    (and turns on UTF-8 mode), so a coerced LC_CTYPE says nothing about the terminal: skip it.
    """
    explicit_utf8 = env.get("PYTHONUTF8") == "1" or "utf8" in getattr(sys, "_xoptions", {})
    coerced = utf8_mode and not explicit_utf8 and env.get("LC_CTYPE") in _COERCED
    for name in ("LC_ALL", "LC_CTYPE", "LANG"):
        if name == "LC_CTYPE" and coerced:
            continue
        if env.get(name):
            return name, env[name]
    return "", ""


def detect_plain(env: Mapping[str, str] = os.environ, encoding: str | None = None, *,
                 tty_name: str | None = None, utf8_mode: bool | None = None) -> tuple[bool, str]:
    """Should the wizard run in plain (ASCII, 16-colour, serial-lean) mode, and why, in words.

    Plain when TERM is unset or a hardware/console type (vt100, vt102, vt220, linux, dumb),
    when the output stream or the declared locale is not UTF-8, or when the controlling tty is
    a serial port. NO_COLOR alone does not make it plain (it only takes the colours away).
    `encoding` defaults to the encoding of the stream Textual writes to (stderr); `tty_name`
    to stdin's tty; `utf8_mode` to `sys.flags.utf8_mode`.
    """
    term = env.get("TERM", "")
    if not term:
        return True, "TERM is not set, so the terminal's abilities are unknown"
    base = term.split("-", 1)[0]
    if base in PLAIN_TERMS:
        what = {"linux": "the Linux text console, whose font lacks most symbols",
                "dumb": "a dumb terminal"}.get(base, "a serial or hardware terminal")
        return True, f"TERM={term}: {what}"
    if encoding is None:
        stream = sys.__stderr__ or sys.stderr
        encoding = getattr(stream, "encoding", None) or "ascii"
    if not _is_utf8(encoding):
        return True, f"the output encoding is {encoding}, not UTF-8"
    if utf8_mode is None:
        utf8_mode = bool(sys.flags.utf8_mode)
    name, value = _declared_locale(env, utf8_mode)
    if not _is_utf8(value.partition("@")[0]):
        declared = f"{name}={value}" if name else "no LANG or LC_* variable"
        return True, f"the locale ({declared}) is not UTF-8"
    if tty_name is None:
        try:
            tty_name = os.ttyname(sys.__stdin__.fileno()) if sys.__stdin__ else ""
        except (OSError, ValueError):
            tty_name = ""
    if tty_name and SERIAL_TTY.match(tty_name):
        return True, f"the console is the serial line {tty_name}"
    return False, f"TERM={term} with a UTF-8 locale"


# ----------------------------------------------------------------------------- environment

def _tty_size() -> tuple[int, int]:
    for stream in (sys.__stdout__, sys.__stderr__, sys.__stdin__):
        try:
            size = os.get_terminal_size(stream.fileno())
        except (AttributeError, OSError, ValueError):
            continue
        return size.columns, size.lines
    return 0, 0


def prepare_environment(plain: bool, env: MutableMapping[str, str] = os.environ, *,
                        tty_size: tuple[int, int] | None = None) -> dict[str, str]:
    """Set what Textual reads before the App exists; returns the variables it set.

    Always: no kitty keyboard protocol, no animations. Plain mode (or TERM dumb/unset, which
    Rich would otherwise drive at 24-bit colour): 16 colours. Plain or NO_COLOR: the ANSI
    theme. A tty that reports 0x0 (no `stty rows/cols` on a serial line): 80x24.
    Textual reads its constants at import; when env is os.environ they are updated too.
    """
    chosen: dict[str, str] = {
        "TEXTUAL_DISABLE_KITTY_KEY": "1",
        "TEXTUAL_ANIMATIONS": "none",
    }
    term = env.get("TERM", "")
    if plain or not term or term.split("-", 1)[0] == "dumb":
        chosen["TEXTUAL_COLOR_SYSTEM"] = "standard"
    if plain or "NO_COLOR" in env:
        chosen["TEXTUAL_THEME"] = "ansi-dark"
    columns, lines = _tty_size() if tty_size is None else tty_size
    if (columns == 0 or lines == 0) and not (env.get("COLUMNS") and env.get("LINES")):
        chosen["COLUMNS"], chosen["LINES"] = "80", "24"
    env.update(chosen)
    if env is os.environ:
        from textual import constants
        constants.DISABLE_KITTY_KEY = True  # type: ignore[misc]
        constants.TEXTUAL_ANIMATIONS = "none"  # type: ignore[misc]
        if "TEXTUAL_COLOR_SYSTEM" in chosen:
            constants.COLOR_SYSTEM = "standard"  # type: ignore[misc]
    return chosen


# ----------------------------------------------------------------------------- driver

# What a dumb terminal would print as garbage, and nothing else. Found in a raw pty capture
# of Textual 8.2.8: OSC 22 (pointer shape), DECRQM queries (?2026$p, ?2048$p), focus events
# (?1004), bracketed paste (?2004), in-band resize (?2048), the kitty keyboard push/pop
# (>Nu, <u), and, when a widget uses them, OSC 52 (clipboard) and OSC 8 (hyperlinks: the
# text stays). Mouse modes are not here: the app runs with mouse=False.
DROPPED_SEQUENCES = re.compile(
    r"\x1b\](?:22|52|8);[^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b\[\?\d+\$p"
    r"|\x1b\[\?(?:1004|2004|2048|2026)[hl]"
    r"|\x1b\[[<>=]\d*u"
)
CLEAR_ON_EXIT = "\x1b[0m\x1b[H\x1b[2J"
ALT_SCREEN_OFF = "\x1b[?1049l"


def filter_output(data: str) -> str:
    """The driver's filter, as a function (tested on its own)."""
    return DROPPED_SEQUENCES.sub("", data)


class _TolerantStream:
    """The terminal stream, minus the exceptions of a hung-up line (SIGHUP, serial unplugged)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.broken = False

    def write(self, text: str) -> None:
        if not self.broken:
            try:
                self._stream.write(text)
            except (OSError, ValueError):
                self.broken = True

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self.broken = True

    def fileno(self) -> int:
        return self._stream.fileno()


class PlainDriver(LinuxDriver):
    """LinuxDriver that, when its App is in plain mode at start, sends only what a VT100 or
    the Linux console understands, and clears the screen on exit (the Linux VT has no alt
    screen, so the last frame would otherwise stay)."""

    def __init__(self, app: App, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._file = _TolerantStream(self._file)
        self._filtering = False

    def start_application_mode(self) -> None:
        self._filtering = is_plain(self._app)
        shadow = getattr(self._app, "_edge_shadow", None)
        if shadow is not None:  # a new (alternate) screen: nothing on it is known
            shadow.invalidate()
        super().start_application_mode()

    def write(self, data: str) -> None:
        if self._filtering or is_plain(self._app):
            data = filter_output(data)
            if ALT_SCREEN_OFF in data:
                data = data.replace(ALT_SCREEN_OFF, CLEAR_ON_EXIT + ALT_SCREEN_OFF)
            if not data:
                return
        super().write(data)


# ----------------------------------------------------------------------------- lean focus

# Screen.focused repaints the whole screen on every focus change (repaint=True); the widgets
# that gain and lose focus repaint themselves anyway. Proven frame-identical for these
# versions only (tests/test_terminal.py): any other Textual keeps the stock behaviour.
LEAN_FOCUS_VERSIONS = frozenset({"8.2.8"})


def lean_focus_supported() -> bool:
    return textual.__version__ in LEAN_FOCUS_VERSIONS


def set_lean_focus(on: bool) -> bool:
    """Turn the full repaint on focus change off (on=True) or back on. Process-wide.

    Returns whether lean focus is now in force (never on an unproven Textual version).
    """
    lean = on and lean_focus_supported()
    Screen.focused._repaint = not lean  # type: ignore[attr-defined]
    return lean


def lean_focus_active() -> bool:
    return not Screen.focused._repaint  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- the App side

def _quiet_cursor(app: App, widget: Any) -> None:
    if getattr(widget, "cursor_blink", False) is True:
        widget.cursor_blink = False
        app._edge_unblinked.add(widget)  # type: ignore[attr-defined]


def _all_screens(app: App) -> list[Screen]:
    seen: dict[int, Screen] = {}
    for stack in app._screen_stacks.values():
        for screen in stack:
            seen[id(screen)] = screen
    return list(seen.values())


def _set_theme(app: App, name: str) -> None:
    """`app.theme = name`; before the App runs, without the second parse of every stylesheet
    that Textual's theme watcher queues (13-25 ms of start-up): nothing is parsed yet then, so
    the theme's classes, colour filter and CSS variables are set directly."""
    if app.is_running:
        app.theme = name
        return
    app.set_reactive(App.theme, name)
    theme = app.current_theme
    classes = {c: False for c in app.classes if c.startswith("-theme-")}
    classes.update({f"-theme-{theme.name}": True, "-dark-mode": theme.dark, "-light-mode": not theme.dark})
    app.update_classes(classes, update=False)
    app._refresh_truecolor_filter(app.ansi_theme)
    app.stylesheet.set_variables(app.get_css_variables())


def set_plain(app: App, on: bool) -> None:
    """Switch `app` (a PlainModeMixin) into or out of plain mode, and repaint everything."""
    app._edge_plain = on  # type: ignore[attr-defined]
    app.set_class(on, PLAIN_CLASS)
    want_plain_theme = on or getattr(app, "no_color", False)
    if want_plain_theme and app.theme != PLAIN_THEME.name:
        app._edge_theme_before = (app.theme, app.ansi_color)  # type: ignore[attr-defined]
        app.ansi_color = True
        _set_theme(app, PLAIN_THEME.name)
    elif not want_plain_theme and app.theme == PLAIN_THEME.name:
        theme, ansi = getattr(app, "_edge_theme_before", ("textual-dark", None))
        _set_theme(app, theme)
        app.ansi_color = ansi
    app._edge_lean = set_lean_focus(on and app._edge_lean_wanted)  # type: ignore[attr-defined]
    shadow = getattr(app, "_edge_shadow", None)
    if shadow is not None:  # the other mode's frames were not modelled
        shadow.invalidate()
    if not on:
        for widget in list(app._edge_unblinked):  # type: ignore[attr-defined]
            widget.cursor_blink = True
        app._edge_unblinked.clear()  # type: ignore[attr-defined]
    if not app.is_running:
        return
    for screen in _all_screens(app):
        for widget in screen.walk_children(with_self=True):
            if on:
                _quiet_cursor(app, widget)
            widget.refresh(layout=True)
        screen.refresh_bindings()
    app.refresh_css(animate=False)
    app.screen.refresh(layout=True)


class PlainModeMixin(App):
    """Base class for the wizard's App: `class WizardApp(PlainModeMixin): ...`.

    Keyword arguments (the rest go to App): `plain` (None: `detect_plain()`); `lean_focus`,
    `coalesce_frames` and `diff_frames` (only the changed cells; defaults to coalesce_frames)
    are all on in plain mode, off only to compare with stock Textual.
    F4 toggles plain mode; Ctrl+L repaints every cell; Ctrl+C, SIGTERM, SIGHUP and SIGINT call
    `before_forced_exit(reason)` and then exit cleanly (terminal restored) with 130, 143, 129,
    130 as `return_code`.
    """

    BINDINGS = [
        Binding("f4", "toggle_plain", "Plain", show=False, priority=True),
        Binding("ctrl+c", "interrupt", "Quit", show=False, priority=True, system=True),
        Binding("ctrl+l", "redraw", "Redraw", show=False, priority=True, system=True),
    ]

    FRAME_HOLD_S = 0.08
    """In plain mode, when frames are not sent as changed cells, a full frame waits this long:
    a newer full frame replaces it unsent. (As changed cells a repeated frame costs only what
    changed, and holding would only delay the first frame: 0.1-0.2 s at start-up.)"""
    FRAME_HOLD_MAX_S = 0.3
    """...but none waits longer than this, however many follow."""
    ERASE_BLANKS = False
    """Changed cells: clear blank line ends (EL) and mostly blank screens (ED) instead of
    writing spaces. The same picture for 1.4 KB less on a first frame, but a terminal that
    tells erased cells from written spaces (tmux's capture-pane) sees the difference."""

    def __init__(self, *args: Any, plain: bool | None = None, lean_focus: bool = True,
                 coalesce_frames: bool = True, diff_frames: bool | None = None,
                 **kwargs: Any) -> None:
        if plain is None:
            plain = detect_plain()[0]
        # The NoColor/Monochrome choice is made once, in App.__init__: ANSI colours give the
        # readable NoColor one (default colours plus bold/reverse), never black on black.
        if (plain or "NO_COLOR" in os.environ) and kwargs.get("ansi_color") is None:
            kwargs["ansi_color"] = True
        if kwargs.get("driver_class") is None and sys.platform != "win32":
            kwargs["driver_class"] = PlainDriver
        super().__init__(*args, **kwargs)
        self.css_path = [*self.css_path, PLAIN_TCSS]
        self.register_theme(PLAIN_THEME)
        self._edge_plain = False
        self._edge_lean_wanted = lean_focus
        self._edge_lean = False
        self._edge_unblinked: weakref.WeakSet = weakref.WeakSet()
        self._edge_ascii_filter = AsciiFilter()
        self._edge_highlights = HighlightsToReverse()
        self._edge_plain_highlights = PlainHighlights()
        self._edge_forced: str | None = None
        self._edge_coalesce = coalesce_frames
        self._edge_pending: list[tuple[Screen, Any]] = []
        self._edge_flush_timer: Timer | None = None
        self._edge_hold_since = 0.0
        self._edge_diff = coalesce_frames if diff_frames is None else diff_frames
        self._edge_shadow = ShadowScreen(erase=self.ERASE_BLANKS)
        set_plain(self, plain)

    # -- plain mode
    @property
    def plain_mode(self) -> bool:
        return self._edge_plain

    def action_toggle_plain(self) -> None:
        set_plain(self, not self._edge_plain)

    def get_line_filters(self) -> Sequence[LineFilter]:
        filters = list(super().get_line_filters())
        no_color = False
        for index, line_filter in enumerate(filters):
            if isinstance(line_filter, NoColor):  # NO_COLOR: highlights become reverse video
                filters.insert(index, self._edge_highlights)
                no_color = True
                break
        if self._edge_plain:
            if not no_color:  # a monochrome VT100 shows bold and reverse only: focus in reverse
                filters.append(self._edge_plain_highlights)
            filters.append(self._edge_ascii_filter)
        return filters

    def format_title(self, title: str, sub_title: str) -> Content:
        if not self._edge_plain or not sub_title:
            return super().format_title(title, sub_title)
        return Content.assemble(Content(title), (" - ", "dim"), Content(sub_title).stylize("dim"))

    def get_key_display(self, binding: Binding) -> str:
        shown = super().get_key_display(binding)
        return shown.translate(PLAIN_KEYS) if self._edge_plain else shown

    # -- frames: Textual paints a new screen two or three times in a row (resume, mount,
    # resize), each a full frame of 3-4 KB: 0.3 s apiece at 115200 baud. Sent as changed
    # cells (on a terminal, the default), the repeats cost only their differences. Otherwise a
    # full frame paints every cell, so an unsent one can be dropped when a newer one arrives;
    # partial updates that follow a held frame wait behind it, in order.
    def _display(self, screen: Screen, renderable: Any) -> None:
        if renderable is None:
            self._edge_emit(screen, renderable)
            return
        if not (self._edge_coalesce and self._edge_plain) or self._edge_diffing():
            # Sent as changed cells, a repeated full frame costs only what changed: no hold.
            if self._edge_pending:
                self._edge_flush()
            self._edge_emit(screen, renderable)
            return
        now = monotonic()
        if isinstance(renderable, LayoutUpdate):
            if not self._edge_pending:
                self._edge_hold_since = now
            self._edge_pending = [(screen, renderable)]
            if self._edge_flush_timer is not None:
                self._edge_flush_timer.stop()
            wait = min(self.FRAME_HOLD_S, self._edge_hold_since + self.FRAME_HOLD_MAX_S - now)
            if wait <= 0:  # held long enough (and Textual's Timer cannot take 0 s): send now
                self._edge_flush()
                return
            self._edge_flush_timer = self.set_timer(wait, self._edge_flush, name="edge-frame-hold")
        elif self._edge_pending:
            self._edge_pending.append((screen, renderable))
        else:
            self._edge_emit(screen, renderable)

    def _edge_flush(self) -> None:
        if self._edge_flush_timer is not None:
            self._edge_flush_timer.stop()
        self._edge_flush_timer = None
        if self._batch_count:  # Textual would drop a frame written inside a batch: wait
            self._edge_flush_timer = self.set_timer(0.01, self._edge_flush)
            return
        pending, self._edge_pending = self._edge_pending, []
        for screen, renderable in pending:
            self._edge_emit(screen, renderable)

    def _edge_diffing(self) -> bool:
        """Are frames written as changed cells now? (Plain mode, a terminal: not headless.)"""
        driver = self._driver
        return (self._edge_diff and self._edge_plain and not self.is_headless
                and driver is not None and not driver.is_inline
                and textual.__version__ in CHANGED_CELLS_VERSIONS)

    def _edge_emit(self, screen: Screen, renderable: Any) -> None:
        """Where a frame leaves for the driver (tests record here)."""
        if isinstance(renderable, (LayoutUpdate, ChopsUpdate)) and self._edge_diffing():
            size = screen._compositor.size
            renderable = _ShadowUpdate(self._edge_shadow, renderable, (size.width, size.height))
        super()._display(screen, renderable)

    def action_redraw(self) -> None:
        """Ctrl+L: send every cell again (a terminal attached, or garbled, half-way)."""
        self._edge_shadow.invalidate()
        self.screen.refresh(repaint=True)

    @on(events.DescendantFocus)
    def _edge_no_blink(self, event: events.DescendantFocus) -> None:
        if self._edge_plain:
            _quiet_cursor(self, event.widget)

    @on(events.Mount)
    def _edge_mounted(self, event: events.Mount) -> None:
        self.screen_change_signal.subscribe(self, self._edge_screen_changed, immediate=True)
        self._edge_screen_changed(self.screen)

    @on(events.Unmount)
    def _edge_unmounted(self, event: events.Unmount) -> None:
        if self._edge_lean:  # lean focus is process-wide: leave Textual as found
            set_lean_focus(False)

    def _edge_screen_changed(self, screen: Screen) -> None:
        # A pushed screen is announced before its widgets mount: look again after a refresh.
        self._edge_quiet_screen(screen)
        self.call_after_refresh(self._edge_quiet_screen, screen)

    def _edge_quiet_screen(self, screen: Screen) -> None:
        if self._edge_plain:
            for widget in screen.walk_children():
                _quiet_cursor(self, widget)

    # -- leaving: Ctrl+C and signals
    def before_forced_exit(self, reason: str) -> None:
        """Called once before an exit the user did not choose in the UI (Ctrl+C, a signal).

        Override to save the draft. Must be quick and must not touch the terminal.
        """

    def forced_exit(self, reason: str, return_code: int) -> None:
        if self._edge_forced is not None:
            return
        self._edge_forced = reason
        try:
            self.before_forced_exit(reason)
        except Exception as error:  # the terminal must be restored whatever the hook does
            self.log.error(f"before_forced_exit failed: {error!r}")
        self.exit(return_code=return_code)

    @property
    def forced_exit_reason(self) -> str | None:
        return self._edge_forced

    def action_interrupt(self) -> None:
        self.forced_exit("Ctrl+C", 130)

    def _edge_install_signals(self) -> list[int]:
        loop = asyncio.get_running_loop()
        installed = []
        for signum, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGHUP, "SIGHUP"),
                             (signal.SIGINT, "SIGINT")):
            try:
                loop.add_signal_handler(signum, self.forced_exit, name, 128 + signum)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            installed.append(signum)
        return installed

    async def run_async(self, *, headless: bool = False, mouse: bool = False,
                        **kwargs: Any) -> Any:
        installed = [] if headless else self._edge_install_signals()
        try:
            return await super().run_async(headless=headless, mouse=mouse, **kwargs)
        finally:
            loop = asyncio.get_running_loop()
            for signum in installed:
                loop.remove_signal_handler(signum)

    def run(self, *, mouse: bool = False, **kwargs: Any) -> Any:
        return super().run(mouse=mouse, **kwargs)
