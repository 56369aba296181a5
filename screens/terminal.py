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

The parts, each in its own module (every name stays importable from here):
screens/capability.py (what the terminal can show: detect_plain, prepare_environment),
screens/driver.py (PlainDriver: what reaches the terminal), screens/plainmode.py (set_plain,
lean focus), screens/ascii.py (glyphs, theme, line filters), screens/cells.py (changed cells);
this module holds the App side, PlainModeMixin: keys, frames, forced exits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import weakref
from collections.abc import Sequence
from time import monotonic
from typing import Any

import textual  # noqa: F401  (tests set terminal.textual.__version__)
from textual import events, on
from textual._compositor import ChopsUpdate, LayoutUpdate
from textual.app import App
from textual.binding import Binding
from textual.content import Content
from textual.filter import LineFilter, NoColor
from textual.screen import Screen
from textual.timer import Timer

from screens.ascii import PLAIN_KEYS, PLAIN_THEME, AsciiFilter, HighlightsToReverse, PlainHighlights
from screens.capability import PLAIN_TERMS, SERIAL_TTY, detect_plain, prepare_environment
from screens.cells import CHANGED_CELLS_VERSIONS, ShadowScreen, _ShadowUpdate
from screens.driver import ALT_SCREEN_OFF, CLEAR_ON_EXIT, DROPPED_SEQUENCES, PlainDriver, _TolerantStream, filter_output
from screens.plainmode import (
    LEAN_FOCUS_VERSIONS,
    PLAIN_CLASS,
    PLAIN_TCSS,
    _quiet_cursor,
    lean_focus_active,
    lean_focus_supported,
    set_lean_focus,
    set_plain,
    textual_version,
)

__all__ = [
    "ALT_SCREEN_OFF", "CLEAR_ON_EXIT", "DROPPED_SEQUENCES", "LEAN_FOCUS_VERSIONS", "PLAIN_CLASS", "PLAIN_TCSS",
    "PLAIN_TERMS", "SERIAL_TTY", "PlainDriver", "PlainModeMixin", "_TolerantStream", "detect_plain",
    "filter_output", "lean_focus_active", "lean_focus_supported", "prepare_environment", "set_lean_focus",
    "set_plain", "textual_version",
]


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
        self._edge_first_out = False
        self._edge_early: list[tuple[Screen, Any]] = []
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
        if not self._edge_first_out:
            if self._batch_count:
                self._edge_hold_early(screen, renderable)
                return
            self._edge_first_out = True
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

    # -- the first frame: Textual lays the first step out inside its own start-up batch (the
    # App's Compose and Mount, where the step is pushed) and drops a frame written inside a
    # batch. The screen then arrives in pieces, as the widgets that refresh again after the
    # batch are repainted: the plan field's placeholder last, ~20 ms later on a 2-core box.
    # Until a first frame is out, one written inside a batch is held and written at its end.
    def _edge_hold_early(self, screen: Screen, renderable: Any) -> None:
        if isinstance(renderable, LayoutUpdate):  # the whole screen: what came before is in it
            self._edge_early = [(screen, renderable)]
        elif self._edge_early:
            self._edge_early.append((screen, renderable))

    def _end_batch(self) -> None:
        super()._end_batch()
        if self._batch_count or not self._edge_early:
            return
        early, self._edge_early = self._edge_early, []
        for screen, renderable in early:
            if screen is self.screen:  # not a screen the batch already replaced
                self._display(screen, renderable)

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
                and textual_version() in CHANGED_CELLS_VERSIONS)

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
        installed: list[int] = []
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
