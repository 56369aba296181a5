"""What the terminal can show, decided before the App exists: plain mode or not, and why.

`detect_plain()` looks at TERM, the output encoding, the declared locale and the controlling
tty; `prepare_environment(plain)` sets what Textual reads at import (colours, theme, kitty
keys, animations, a size for a tty that reports none). Nothing here imports Textual's App.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, MutableMapping

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


def _tty_size() -> tuple[int, int]:
    for stream in (sys.__stdout__, sys.__stderr__, sys.__stdin__):
        if stream is None:
            continue
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
        # Textual declares these Final, read once at its import: updated here on purpose.
        constants.DISABLE_KITTY_KEY = True  # type: ignore[misc]
        constants.TEXTUAL_ANIMATIONS = "none"  # type: ignore[misc]
        if "TEXTUAL_COLOR_SYSTEM" in chosen:
            constants.COLOR_SYSTEM = "standard"  # type: ignore[misc]
    return chosen
