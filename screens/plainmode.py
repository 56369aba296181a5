"""Switching an App into and out of plain mode, and the lean focus it brings.

`set_plain(app, on)` sets the App's -plain class (ASCII borders from assets/plain.tcss), the
16-colour `edge-plain` theme, cursor blink off on every Input and lean focus, then repaints
everything. Lean focus: Screen.focused repaints the whole screen on every focus change
(repaint=True); the widgets that gain and lose focus repaint themselves anyway.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import textual
from textual.app import App
from textual.screen import Screen

from screens.ascii import PLAIN_THEME

PLAIN_TCSS = Path(__file__).resolve().parent.parent / "assets" / "plain.tcss"
PLAIN_CLASS = "-plain"

# Proven frame-identical for these versions only (tests/test_terminal.py): any other Textual
# keeps the stock behaviour.
LEAN_FOCUS_VERSIONS = frozenset({"8.2.8"})


@cache
def _installed_textual_version() -> str:
    """Textual's version, read once: from the name of its one dist-info directory beside the
    package, else from its metadata. (`textual.__version__` asks importlib.metadata on every
    access: 20-40 ms the first time, importing email, zipfile and csv, and about 1 ms after,
    for every frame that asked.)"""
    site = Path(textual.__file__).resolve().parent.parent
    found = [p.name for p in site.glob("textual-*.dist-info")] if site.is_dir() else []
    if len(found) == 1:
        return found[0].removeprefix("textual-").removesuffix(".dist-info")
    from importlib.metadata import version

    return version("textual")


def textual_version() -> str:
    """The running Textual's version (a `textual.__version__` set on the module wins: tests)."""
    return vars(textual).get("__version__") or _installed_textual_version()


def lean_focus_supported() -> bool:
    return textual_version() in LEAN_FOCUS_VERSIONS


def set_lean_focus(on: bool) -> bool:
    """Turn the full repaint on focus change off (on=True) or back on. Process-wide.

    Returns whether lean focus is now in force (never on an unproven Textual version).
    """
    lean = on and lean_focus_supported()
    Screen.focused._repaint = not lean
    return lean


def lean_focus_active() -> bool:
    return not Screen.focused._repaint


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
