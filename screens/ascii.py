"""Plain mode's ASCII: what the wizard draws on a terminal that cannot show Unicode.

Glyphs that show state without colour ( ) (*) [ ] [X], scrollbars, key names, the
`edge-plain` 16-colour theme readable with NO_COLOR, and the final line filter mapping any
leftover non-ASCII character to ASCII. The hooks installed on Textual's classes ask the
widget's App whether it is plain, so an App that is not plain looks stock.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Any

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style as RichStyle
from textual.app import App
from textual.color import Color
from textual.filter import LineFilter
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.theme import Theme
from textual.widgets import RadioButton
from textual.widgets._toggle_button import ToggleButton


def is_plain(node: Any) -> bool:
    """Is `node` (an App or a widget) in plain mode? False when it has no App."""
    app = node if isinstance(node, App) else None
    if app is None:
        try:
            app = node.app
        except Exception:
            return False
    return bool(getattr(app, "_edge_plain", False))


_BLOCKS = {
    "█": "#", "▓": "#", "▒": "#", "░": "#", "▀": "-", "▄": "-", "▔": "-", "▁": "_", "▂": "_",
    "▃": "-", "▅": "#", "▆": "#", "▇": "#", "▉": "#", "▊": "|", "▋": "|", "▌": "|", "▍": "|",
    "▎": "|", "▏": "|", "▐": "|", "▕": "|",
}
_SYMBOLS = {
    "—": "-", "–": "-", "‒": "-", "―": "-", "‐": "-", "−": "-", "‘": "'", "’": "'", "‚": ",",
    "“": '"', "”": '"', "„": '"', "«": "<", "»": ">", "‹": "<", "›": ">", "•": "*", "·": ".",
    "●": "*", "○": "o", "◯": "o", "⭘": "o", "◉": "*", "◆": "*", "◇": "o", "■": "#", "□": "o",
    "▪": "*", "▫": "o", "▲": "^", "▼": "v", "▶": ">", "◀": "<", "►": ">", "◄": "<", "▸": ">",
    "▾": "v", "←": "<", "→": ">", "↑": "^", "↓": "v", "↵": "<", "⏎": "<", "⌫": "<", "✓": "v",
    "✔": "v", "✗": "x", "✘": "x", "×": "x", "÷": "/", "°": "o", "±": "+", "…": ".", "⋯": ".",
    "\u00a0": " ", "\u2007": " ", "\u202f": " ", "🔎": "?",
}


@lru_cache(maxsize=2048)
def ascii_char(ch: str) -> str:
    """ASCII for one character, exactly as many cells wide as the character."""
    if ch.isascii():
        return ch
    width = cell_len(ch)
    if width == 0:
        return ""
    if ch in _SYMBOLS:
        out = _SYMBOLS[ch]
    elif ch in _BLOCKS:
        out = _BLOCKS[ch]
    elif "\u2500" <= ch <= "\u257f":
        name = unicodedata.name(ch, "")
        if "DIAGONAL" in name:
            out = {"╱": "/", "╲": "\\"}.get(ch, "X")
        elif ("HORIZONTAL" in name or " LEFT" in name or " RIGHT" in name) and not any(
                w in name for w in ("VERTICAL", " UP", " DOWN", "ARC")):
            out = "-"
        elif ("VERTICAL" in name or " UP" in name or " DOWN" in name) and not any(
                w in name for w in ("HORIZONTAL", " LEFT", " RIGHT", "ARC")):
            out = "|"
        else:
            out = "+"
    else:
        decomposed = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
        out = decomposed[:1] or "?"
    return (out * width)[:width]


@lru_cache(maxsize=4096)
def to_ascii(text: str) -> str:
    """Map text to 7-bit ASCII without changing its width in cells.

    An ellipsis becomes "..." by taking the (up to) two cells before it, which is where a
    truncated label has text to spare.
    """
    if text.isascii():
        return text
    out: list[str] = []
    for ch in text:
        if ch in "…⋯":
            take = 0
            while take < 2 and out and len(out[-1]) == 1 and out[-1] != " ":
                out.pop()
                take += 1
            out.append("." * (take + 1))
        else:
            out.append(ascii_char(ch))
    return "".join(out)


class AsciiFilter(LineFilter):
    """The last line filter in plain mode: whatever is left that is not ASCII becomes ASCII."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        return [
            segment if control or text.isascii() else Segment(to_ascii(text), style, control)
            for segment in segments
            for text, style, control in (segment,)
        ]


_REVERSE = RichStyle(reverse=True)


class HighlightsToReverse(LineFilter):
    """Runs just before NoColor: a cell with a background colour is a highlight (the block
    cursor, a focused button, a selection), so keep it visible as reverse video.

    Textual's visual styles drop `reverse` (Widget.get_visual_style), so CSS alone cannot
    mark focus without colour on toggle buttons and buttons.
    """

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        out = []
        for text, style, control in segments:
            if style is not None and style.bgcolor is not None and not style.bgcolor.is_default:
                style = style + _REVERSE
            out.append(Segment(text, style, control))
        return out


class PlainHighlights(LineFilter):
    """Plain mode, colours kept: a cell with a background colour (the block cursor on the
    focused choice, a focused button, the title bar) is drawn in reverse video on the
    terminal's own colours, as a monochrome VT100 can show it: bold and reverse, no colour.
    (Textual drops a CSS `reverse` from widgets' visual styles; see HighlightsToReverse.)"""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        out = []
        for text, style, control in segments:
            if style is not None and style.bgcolor is not None and not style.bgcolor.is_default:
                style = style.without_color + _REVERSE
            out.append(Segment(text, style, control))
        return out


class PlainScrollBarRender(ScrollBarRender):
    """Scrollbars drawn with spaces only: the thumb shows in reverse video."""

    VERTICAL_BARS = [" "] * 8
    HORIZONTAL_BARS = [" "] * 8


_glyphs_installed = False


def install_glyph_hooks() -> None:
    """Make Textual's toggle glyphs and scrollbars ask their App whether it is plain.

    Stock glyphs show a radio button's state only by colour (a dot that is always drawn);
    plain ones show it in the character: ( ) (*), [ ] [X]. Idempotent.
    """
    global _glyphs_installed
    if _glyphs_installed:
        return
    _glyphs_installed = True

    names = ("BUTTON_LEFT", "BUTTON_RIGHT", "BUTTON_INNER")
    stock_glyphs = {(cls, name): getattr(cls, name)
                    for cls in (ToggleButton, RadioButton) for name in names}

    def glyph(cls: type[ToggleButton], name: str, plain_value: Any) -> None:
        stock = stock_glyphs[cls, name]

        def get(self: Any) -> str:
            if not is_plain(self):
                return stock
            return plain_value(self) if callable(plain_value) else plain_value

        setattr(cls, name, property(get))

    glyph(ToggleButton, "BUTTON_LEFT", "[")
    glyph(ToggleButton, "BUTTON_RIGHT", "]")
    glyph(ToggleButton, "BUTTON_INNER", lambda b: "X" if b.value else " ")
    glyph(RadioButton, "BUTTON_LEFT", "(")
    glyph(RadioButton, "BUTTON_RIGHT", ")")
    glyph(RadioButton, "BUTTON_INNER", lambda b: "*" if b.value else " ")
    stock_renderer = ScrollBar.renderer
    ScrollBar.renderer = property(  # type: ignore[assignment]
        lambda self: PlainScrollBarRender if is_plain(self) else stock_renderer)


install_glyph_hooks()

PLAIN_KEYS = str.maketrans({"↑": "Up", "↓": "Down", "←": "Left", "→": "Right",
                            "⏎": "Enter", "⌫": "BkSp", "↵": "Enter"})

# A 16-colour palette that means the same with NO_COLOR: highlights are black on white, which
# HighlightsToReverse turns into reverse video when the colours are taken away; nothing is
# drawn black on the (black) console's default background.
PLAIN_THEME = Theme(
    name="edge-plain", ansi=True, dark=True,
    primary="ansi_cyan", secondary="ansi_blue", accent="ansi_yellow",
    warning="ansi_yellow", error="ansi_red", success="ansi_green",
    foreground="ansi_default", background="ansi_default", surface="ansi_default",
    panel="ansi_default", boost="ansi_default",
    variables={
        "ansi-background": "ansi_default", "ansi-foreground": "ansi_default",
        "border": "ansi_cyan", "border-blurred": "ansi_default",
        # The block cursor (the focused choice, checkbox, list item, button) has a background
        # colour here only to be found by PlainHighlights, which draws it in reverse video.
        "block-cursor-foreground": "ansi_black", "block-cursor-background": "ansi_white",
        "block-cursor-text-style": "bold",
        "block-cursor-blurred-foreground": "ansi_default",
        "block-cursor-blurred-background": "ansi_default",
        "block-cursor-blurred-text-style": "bold", "block-hover-background": "ansi_default",
        "input-cursor-foreground": "ansi_default", "input-cursor-background": "ansi_default",
        "input-cursor-text-style": "reverse",
        "input-selection-foreground": "ansi_default",
        "input-selection-background": "ansi_default",
        "button-foreground": "ansi_default", "button-color-foreground": "ansi_default",
        "button-focus-text-style": "bold",
        "footer-foreground": "ansi_default", "footer-background": "ansi_default",
        "footer-key-foreground": "ansi_yellow", "footer-description-foreground": "ansi_default",
        "scrollbar": "ansi_default", "scrollbar-hover": "ansi_default",
        "scrollbar-active": "ansi_default", "scrollbar-background": "ansi_default",
        "scrollbar-background-hover": "ansi_default",
        "scrollbar-background-active": "ansi_default", "scrollbar-corner-color": "ansi_default",
    },
)
