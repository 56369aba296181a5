"""The plain-mode driver: what reaches a VT100, the Linux console or a serial line.

`PlainDriver` is Textual's LinuxDriver minus the queries and modes a dumb terminal would
print as garbage (`filter_output`), with the screen cleared on exit (the Linux VT has no
alternate screen) and a stream that survives a hung-up line.
"""

from __future__ import annotations

import re
from typing import Any

from textual.app import App
from textual.drivers.linux_driver import LinuxDriver

from screens.ascii import is_plain

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
        # LinuxDriver writes only through write/flush/fileno, which the wrapper keeps.
        self._file = _TolerantStream(self._file)  # type: ignore[assignment]
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
