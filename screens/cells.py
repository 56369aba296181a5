"""Changed cells only: a model of what the terminal shows, so a frame sends only the cells
that differ (a serial line at 115200 baud carries about 11 KB/s).

The terminal ends cell for cell as Textual's full repaints would leave it; anything the
model cannot represent is sent as Textual would send it. Pinned to the Textual versions it
was proven on.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from rich.color import ColorSystem
from textual._compositor import CompositorUpdate, LayoutUpdate
from textual.strip import Strip

# Textual sends every cell of every region it repaints, each coloured run ending in a reset
# (ESC[0m), even when the terminal already shows exactly that: a focus change that repaints a
# scrolling body, a radio set painted twice, the title and key lines of every new step. In
# plain mode the App keeps a model of what the terminal shows (ShadowScreen) and sends only
# the cells that differ, with one SGR change per change of style and cursor-forward over short
# gaps (and, with ERASE_BLANKS, EL for blank line ends and ED for a mostly blank screen). The
# terminal ends in the same state, cell for cell (tests/test_serial.py; test_terminal.py's
# tmux comparison). The model is forgotten when the driver starts, the size or the mode
# changes, and on Ctrl+L, which repaints everything (a serial terminal plugged in half-way).

# Built on Textual's compositor updates (LayoutUpdate, ChopsUpdate: private): proven
# cell-identical for these versions only (tests/test_serial.py); any other keeps Textual's bytes.
CHANGED_CELLS_VERSIONS = frozenset({"8.2.8"})

_Cell = tuple  # (character, SGR key); None where the terminal's content is unknown
_BLANK = (" ", "")
_CANCEL = frozenset({"22", "23", "24", "25", "27", "28", "29"})


@lru_cache(maxsize=1024)
def sgr_key(ansi: str) -> str:
    """Rich's SGR parameters for a style, canonical: every run starts from a reset, so the
    default colours (39, 49) say nothing, and without cancel codes the order is irrelevant."""
    parts = ansi.split(";") if ansi else []
    groups: list[str] = []
    i = 0
    while i < len(parts):
        p = parts[i]
        if p in ("38", "48") and i + 1 < len(parts):
            n = 3 if parts[i + 1] == "5" else 5
            groups.append(";".join(parts[i:i + n]))
            i += n
            continue
        if p not in ("", "0", "39", "49"):
            groups.append(p)
        i += 1
    if not _CANCEL.intersection(groups):
        groups.sort()
    return ";".join(groups)


def _sgr(key: str) -> str:
    return f"\x1b[0;{key}m" if key else "\x1b[0m"


def _cup(row: int, col: int) -> str:
    if col == 0:
        return f"\x1b[{row + 1}H" if row else "\x1b[H"
    return f"\x1b[{row + 1};{col + 1}H"


class ShadowScreen:
    """What the terminal shows, as far as this App sent it: cells of (character, SGR key).

    `render(update, console, size)` turns a Textual compositor update into the bytes that
    bring the terminal from its current state to the update's, and records the new state.
    Anything it cannot model (a character that is not printable ASCII) goes out as Textual
    would send it and those cells become unknown, so they are sent again next time.
    """

    ED_FACTOR = 0.7
    """A known screen is cleared and redrawn only when that is this much cheaper (no flash)."""

    def __init__(self, erase: bool = False) -> None:
        self.erase = erase
        self.width = self.height = 0
        self.rows: list[list[_Cell | None]] = []

    def invalidate(self) -> None:
        """Forget what the terminal shows: the next frame paints every cell."""
        self.rows = [[None] * self.width for _ in range(self.height)]

    @property
    def known(self) -> bool:
        return any(cell is not None for row in self.rows for cell in row)

    def render(self, update: Any, console: Any, size: tuple[int, int]) -> str:
        width, height = size
        if (width, height) != (self.width, self.height):
            self.width, self.height = width, height
            self.invalidate()
        color_system = console._color_system or ColorSystem.TRUECOLOR
        new: dict[int, dict[int, _Cell | None]] = {}
        raw: list[str] = []

        def place(strip: Strip, x: int, y: int, limit: int) -> None:
            if not 0 <= y < height or limit <= 0:
                return
            cells = _strip_cells(strip, color_system)
            row = new.setdefault(y, {})
            if cells is None:  # not modelled: Textual's own bytes, the cells unknown after
                raw.append(_cup(y, x) + strip.crop(0, limit).render(console))
                for col in range(x, min(x + limit, width)):
                    row[col] = None
                return
            for col, cell in enumerate(cells[:limit], x):
                if col >= width:
                    break
                row[col] = cell

        full = False
        if isinstance(update, LayoutUpdate):
            region = update.region
            full = (region.x, region.y, region.width, region.height) == (0, 0, width, height)
            for y, line in enumerate(update.strips, region.y):
                x = region.x
                for strip in line:
                    place(strip, x, y, strip.cell_length)
                    x += strip.cell_length
        else:  # ChopsUpdate: exactly the cells Textual's render_segments would write
            for y, x1, x2 in update.spans:
                for end, (x, strip) in zip(update.chop_ends[y], update.chops[y].items(), strict=False):
                    if strip is None or x > x2 or end <= x1:
                        continue
                    place(strip, x, y, min(end, x2) - x)

        after = [list(row) for row in self.rows]
        for y, cells in new.items():
            for x, cell in cells.items():
                after[y][x] = cell
        out = self._diff(self.rows, after, new)
        if full and not raw and self.erase:
            blank: list[list[_Cell | None]] = [[_BLANK] * width for _ in range(height)]
            cleared = "\x1b[2J" + self._diff(blank, after, {y: dict(enumerate(r)) for y, r in enumerate(after)})
            if len(cleared) < len(out) * (1.0 if not self.known else self.ED_FACTOR):
                out = cleared
        self.rows = after
        if raw:
            out += "".join(raw) + "\x1b[0m"
        return out

    def _diff(self, before: list[list[_Cell | None]], after: list[list[_Cell | None]],
              touched: Mapping[int, Mapping[int, Any]]) -> str:
        out: list[str] = []
        pen = ""          # every writer (Textual's frames, this) leaves the pen reset
        cursor: tuple[int, int] | None = None
        width = self.width

        def write(row: list[_Cell | None], start: int, stop: int) -> None:
            nonlocal pen
            for col in range(start, stop):
                ch, key = row[col]  # type: ignore[misc]
                if key != pen:
                    out.append(_sgr(key))
                    pen = key
                out.append(ch)

        def cost(row: list[_Cell | None], start: int, stop: int) -> int:
            n, p = 0, pen
            for col in range(start, stop):
                cell = row[col]
                if cell is None:
                    return 1 << 30
                if cell[1] != p:
                    n += len(_sgr(cell[1]))
                    p = cell[1]
                n += 1
            return n

        def move(y: int, x: int, row: list[_Cell | None]) -> None:
            nonlocal cursor
            if cursor == (y, x):
                return
            if cursor is not None and cursor[0] == y and x > cursor[1]:
                forward = f"\x1b[{x - cursor[1]}C"
                if cost(row, cursor[1], x) <= len(forward):
                    write(row, cursor[1], x)
                else:
                    out.append(forward)
            else:
                out.append(_cup(y, x))
            cursor = (y, x)

        for y in sorted(touched):
            old, row = before[y], after[y]
            changed = [x for x in sorted(touched[y]) if row[x] is not None and row[x] != old[x]]
            if not changed:
                continue
            blank_from = width
            while blank_from > 0 and row[blank_from - 1] == _BLANK:
                blank_from -= 1
            erase_at = next((x for x in changed if x >= blank_from), None) if self.erase else None
            if erase_at is not None and width - erase_at < 4:
                erase_at = None  # EL costs more than the spaces
            runs: list[list[int]] = []
            for x in changed:
                if erase_at is not None and x >= erase_at:
                    break
                if runs and x == runs[-1][1]:
                    runs[-1][1] = x + 1
                else:
                    runs.append([x, x + 1])
            for start, stop in runs:
                move(y, start, row)
                write(row, start, stop)
                cursor = (y, stop) if stop < width else None
            if erase_at is not None:
                move(y, erase_at, row)
                if pen:
                    out.append("\x1b[0m")
                    pen = ""
                out.append("\x1b[K")
        if pen:
            out.append("\x1b[0m")
        return "".join(out)


def _strip_cells(strip: Strip, color_system: Any) -> list[_Cell] | None:
    cells: list[_Cell] = []
    extend = cells.extend
    for text, style, control in strip:
        if control:
            continue
        if not (text.isascii() and text.isprintable()):
            return None
        key = "" if style is None else sgr_key(Strip.render_ansi(style, color_system))
        extend([(ch, key) for ch in text])
    return cells


class _ShadowUpdate(CompositorUpdate):
    """A compositor update that, when Textual writes it, sends only the changed cells."""

    def __init__(self, shadow: ShadowScreen, update: Any, size: tuple[int, int]) -> None:
        self.shadow = shadow
        self.update = update
        self.size = size

    def render_segments(self, console: Any) -> str:
        try:
            return self.shadow.render(self.update, console, self.size)
        except Exception:  # never lose a frame to the model: send Textual's, forget the model
            self.shadow.invalidate()
            return self.update.render_segments(console)
