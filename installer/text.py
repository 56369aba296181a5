"""Text from outside the program made safe to show on a terminal, a serial console, in the
journal or a report's lines.

Interface names, SSIDs, bundle manifests, file names, records and other programs' output can
hold any byte: ESC (a terminal obeys it), control characters, text-direction marks, bytes that
are not UTF-8 (decoded with surrogateescape, as os and iw give them) and lone surrogates (valid
JSON can hold them, UTF-8 cannot). Each such character is shown as \\xNN of its bytes, in one
of two forms:

- `ascii_safe`: printable ASCII only. For what may reach a serial console, the journal, a
  report or an error line.
- `unicode_safe`: letters, digits and symbols of any script kept. For a full terminal.

`backslash=True` also escapes the backslash, so that the shown text reads back to the exact
bytes (an SSID named `\\x41` is not shown as `A`'s escape). Without it, text already escaped
stays as it is. `limit` cuts the shown text at that many characters, never inside an escape,
and ends it with "...". This module imports nothing of the program.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

ELLIPSIS = "..."


def ascii_safe(text: object, limit: int | None = None, *, backslash: bool = False) -> str:
    """`text` (str() of it) with every character that is not printable ASCII as \\xNN of its bytes."""
    return _shown((ch if " " <= ch <= "~" and not (backslash and ch == "\\") else _escape(ch)
                   for ch in str(text)), limit)


def unicode_safe(text: object, limit: int | None = None, *, backslash: bool = False) -> str:
    """`text` with letters, marks, digits, punctuation and symbols of any script as they are, and
    control, format, separator (but the space) and surrogate characters as \\xNN of their bytes."""
    def shown(ch: str) -> str:
        if (backslash and ch == "\\") or (ch != " " and unicodedata.category(ch)[0] in "CZ"):
            return _escape(ch)
        return ch
    return _shown(map(shown, str(text)), limit)


def _escape(ch: str) -> str:
    try:  # an undecodable byte (surrogateescape) is that byte again
        raw = ch.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate from JSON: its three bytes as UTF-8 would write them
        raw = ch.encode("utf-8", "surrogatepass")
    return "".join(f"\\x{b:02x}" for b in raw)


def _shown(pieces: Iterable[str], limit: int | None) -> str:
    if limit is None:
        return "".join(pieces)
    out: list[str] = []
    used = 0
    for piece in pieces:
        if used + len(piece) > limit:
            return "".join(out) + ELLIPSIS
        out.append(piece)
        used += len(piece)
    return "".join(out)
