"""Plain mode: detection, the serial driver's filter, ASCII-only frames, NO_COLOR that stays
readable, the plain toggle both ways, lean focus and held frames proven frame-identical to stock
Textual, and the demo app in a real terminal (tmux, TERM=vt100): pure ASCII, no mouse or query
sequences, and a restored terminal after Ctrl+Q, Ctrl+C, SIGTERM and SIGHUP."""

from __future__ import annotations

import os
import re
import shlex
import signal
import sys
import time
from pathlib import Path

import pytest
from rich.cells import cell_len
from textual._compositor import CompositorUpdate
from textual.widgets import Checkbox, Input

from bench.tuimeasure import MOUSE_MODES, Session, VirtualTerminal, non_ascii_count, split_sequences, tmux_available
from screens import terminal
from screens.ascii import PLAIN_THEME, to_ascii
from screens.terminal import (
    CLEAR_ON_EXIT,
    PlainDriver,
    detect_plain,
    filter_output,
    lean_focus_active,
    prepare_environment,
)
from tests.tui_demo_app import DemoApp, StepTwo

REPO = Path(__file__).resolve().parent.parent
DEMO = [sys.executable, str(REPO / "tests" / "tui_demo_app.py")]
SGR = re.compile(r"\x1b\[([0-9;]*)m")
ANY_SEQ = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")

# ----------------------------------------------------------------------------- detection

UTF8 = {"TERM": "xterm-256color", "LANG": "en_US.UTF-8"}


@pytest.mark.parametrize("env,encoding,plain,word", [
    ({"TERM": "vt100", "LANG": "C.UTF-8"}, "utf-8", True, "TERM=vt100"),
    ({"TERM": "vt102", "LANG": "C.UTF-8"}, "utf-8", True, "serial"),
    ({"TERM": "vt220", "LANG": "C.UTF-8"}, "utf-8", True, "vt220"),
    ({"TERM": "linux", "LANG": "C.UTF-8"}, "utf-8", True, "Linux text console"),
    ({"TERM": "linux-16color", "LANG": "C.UTF-8"}, "utf-8", True, "Linux"),
    ({"TERM": "dumb", "LANG": "C.UTF-8"}, "utf-8", True, "dumb"),
    ({"LANG": "C.UTF-8"}, "utf-8", True, "TERM is not set"),
    ({"TERM": "", "LANG": "C.UTF-8"}, "utf-8", True, "TERM is not set"),
    (UTF8, "ascii", True, "encoding is ascii"),
    (UTF8, "latin-1", True, "encoding is latin-1"),
    (UTF8, "utf-8", False, "UTF-8"),
    ({"TERM": "xterm", "LANG": "C.utf8"}, "UTF-8", False, "UTF-8"),
    ({"TERM": "xterm", "LANG": "C"}, "utf-8", True, "LANG=C"),
    ({"TERM": "xterm", "LC_ALL": "POSIX", "LANG": "en_US.UTF-8"}, "utf-8", True, "LC_ALL=POSIX"),
    ({"TERM": "xterm", "LANG": "de_DE.ISO-8859-1"}, "utf-8", True, "not UTF-8"),
    ({"TERM": "xterm"}, "utf-8", True, "no LANG"),
    ({"TERM": "xterm", "LC_CTYPE": "en_US.UTF-8", "LANG": "C"}, "utf-8", False, "UTF-8"),
    # NO_COLOR takes colours away, it does not make the terminal plain
    ({**UTF8, "NO_COLOR": "1"}, "utf-8", False, "UTF-8"),
    ({"TERM": "screen-256color", "LANG": "en_US.UTF-8"}, "utf-8", False, "UTF-8"),
])
def test_detect_plain(env, encoding, plain, word):
    got, reason = detect_plain(env, encoding, tty_name="/dev/pts/3", utf8_mode=False)
    assert got is plain, reason
    assert word in reason


def test_detect_plain_sees_through_pep538_coercion():
    # LANG=C: Python 3.11 writes LC_CTYPE=C.UTF-8 into os.environ and turns on UTF-8 mode;
    # the stream is UTF-8 but the user's terminal was declared C.
    coerced = {"TERM": "xterm", "LANG": "C", "LC_CTYPE": "C.UTF-8"}
    assert detect_plain(coerced, "utf-8", tty_name="", utf8_mode=True) == (
        True, "the locale (LANG=C) is not UTF-8")
    # Explicitly asked for C.UTF-8 (no coercion: UTF-8 mode stays off): a UTF-8 terminal.
    assert detect_plain(coerced, "utf-8", tty_name="", utf8_mode=False)[0] is False
    # PYTHONUTF8=1 turns UTF-8 mode on without saying anything about LC_CTYPE.
    asked = {**coerced, "PYTHONUTF8": "1"}
    assert detect_plain(asked, "utf-8", tty_name="", utf8_mode=True)[0] is False


def test_detect_plain_real_process_with_lang_c():
    """The same, in a real interpreter started with LANG=C (coercion happens for real)."""
    import subprocess
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from screens.terminal import detect_plain;"
            "print(detect_plain(tty_name=''))")
    env = {"PATH": os.environ.get("PATH", ""), "TERM": "xterm-256color", "LANG": "C"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "(True, 'the locale (LANG=C) is not UTF-8')" in out.stdout
    env["LANG"] = "C.UTF-8"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.startswith("(False,"), out.stdout + out.stderr


def test_detect_plain_serial_tty():
    assert detect_plain(UTF8, "utf-8", tty_name="/dev/ttyS0", utf8_mode=False) == (
        True, "the console is the serial line /dev/ttyS0")
    assert detect_plain(UTF8, "utf-8", tty_name="/dev/ttyUSB1", utf8_mode=False)[0]
    assert not detect_plain(UTF8, "utf-8", tty_name="/dev/pts/0", utf8_mode=False)[0]


def test_prepare_environment_plain():
    env = {"TERM": "vt100"}
    chosen = prepare_environment(True, env, tty_size=(80, 24))
    assert env["TEXTUAL_COLOR_SYSTEM"] == "standard"
    assert env["TEXTUAL_DISABLE_KITTY_KEY"] == "1"
    assert env["TEXTUAL_ANIMATIONS"] == "none"
    assert env["TEXTUAL_THEME"] == "ansi-dark"
    assert "LINES" not in env and chosen == {k: v for k, v in env.items() if k != "TERM"}


def test_prepare_environment_never_leaves_dumb_at_truecolor_and_fixes_0x0():
    env = {"TERM": "dumb"}
    prepare_environment(False, env, tty_size=(0, 0))
    assert env["TEXTUAL_COLOR_SYSTEM"] == "standard"
    assert (env["COLUMNS"], env["LINES"]) == ("80", "24")
    env = {"TERM": "xterm-256color", "NO_COLOR": "1"}
    prepare_environment(False, env, tty_size=(120, 40))
    assert "TEXTUAL_COLOR_SYSTEM" not in env and "LINES" not in env
    assert env["TEXTUAL_THEME"] == "ansi-dark"  # readable with NO_COLOR, not black on black
    env = {"TERM": "vt100", "LINES": "30", "COLUMNS": "100"}
    prepare_environment(True, env, tty_size=(0, 0))
    assert (env["COLUMNS"], env["LINES"]) == ("100", "30")


def test_prepare_environment_reaches_textual_already_imported(monkeypatch):
    from textual import constants
    for name in ("DISABLE_KITTY_KEY", "TEXTUAL_ANIMATIONS", "COLOR_SYSTEM"):
        monkeypatch.setattr(constants, name, getattr(constants, name))
    saved = dict(os.environ)
    try:
        prepare_environment(True, tty_size=(80, 24))
        assert os.environ["TEXTUAL_COLOR_SYSTEM"] == "standard"
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert constants.COLOR_SYSTEM == "standard" and constants.DISABLE_KITTY_KEY
    assert constants.TEXTUAL_ANIMATIONS == "none"


# ----------------------------------------------------------------------------- driver filter

DROPPED = [
    "\x1b]22;default\x07",                    # OSC 22 pointer shape
    "\x1b]22;pointer\x1b\\",
    "\x1b[?2026$p", "\x1b[?2048$p",           # DECRQM queries
    "\x1b[?1004h", "\x1b[?1004l",             # focus events
    "\x1b[?2004h", "\x1b[?2004l",             # bracketed paste
    "\x1b[?2048h", "\x1b[?2048l",             # in-band resize
    "\x1b[?2026h", "\x1b[?2026l",             # synchronized output
    "\x1b[>25u", "\x1b[<u", "\x1b[>1u",       # kitty keyboard push / pop
    "\x1b]52;c;aGVsbG8=\x07",                 # OSC 52 clipboard
    "\x1b]8;id=1;https://example.invalid\x1b\\", "\x1b]8;;\x1b\\",  # OSC 8 hyperlink
]
KEPT = [
    "\x1b[?1049h", "\x1b[?1049l", "\x1b[?25l", "\x1b[?25h", "\x1b[?7l", "\x1b[?7h",
    "\x1b[1;1H", "\x1b[12;40H", "\x1b[0m", "\x1b[1;4;7;39;49m", "\x1b[2J", "\x1b[K",
    "\x07", "plain text", "\x1b[?1000l",
]


@pytest.mark.parametrize("seq", DROPPED)
def test_filter_drops(seq):
    assert filter_output(f"a{seq}b") == "ab"


@pytest.mark.parametrize("seq", KEPT)
def test_filter_keeps(seq):
    assert filter_output(f"a{seq}b") == f"a{seq}b"


def test_filter_on_textuals_real_preamble_and_exit():
    preamble = ("\x1b[?1049h\x1b[?25l\x1b[?1004h\x1b[?2026$p\x1b[?2048$p\x1b[?2004h"
                "\x1b[?7l\x1b]22;default\x07")
    assert filter_output(preamble) == "\x1b[?1049h\x1b[?25l\x1b[?7l"
    leaving = "\x1b[?2004l\x1b[?7h\x1b[<u\x1b[?1049l\x1b[?25h\x1b[?1004l"
    assert filter_output(leaving) == "\x1b[?7h\x1b[?1049l\x1b[?25h"


class _Writer:
    def __init__(self):
        self.out: list[str] = []

    def write(self, data: str) -> None:
        self.out.append(data)


def make_driver(app) -> PlainDriver:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTSTP, signal.SIGCONT)}
    try:
        driver = PlainDriver(app, mouse=False)  # LinuxDriver hooks SIGTSTP/SIGCONT
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    driver._writer_thread = _Writer()
    return driver


async def test_plain_driver_writes_filtered_and_clears_on_exit():
    driver = make_driver(DemoApp(plain=True))
    driver._filtering = True
    driver.write("\x1b[?1004h")  # nothing left: nothing written
    driver.write("\x1b[?2004l\x1b[?7h\x1b[<u")
    driver.write("\x1b[?1049l\x1b[?25h")
    assert driver._writer_thread.out == ["\x1b[?7h", CLEAR_ON_EXIT + "\x1b[?1049l\x1b[?25h"]


async def test_plain_driver_passes_everything_when_not_plain():
    driver = make_driver(DemoApp(plain=False))
    driver.write("\x1b[?2004h\x1b]22;default\x07")
    assert driver._writer_thread.out == ["\x1b[?2004h\x1b]22;default\x07"]


def test_demo_app_uses_the_plain_driver():
    assert DemoApp(plain=True).driver_class is PlainDriver


# ----------------------------------------------------------------------------- ASCII

@pytest.mark.parametrize("text", [
    "▔▔▁▁▊▎", "( ● )", "⭘ title — sub", "Long labe…", "…", "a…", "┌─┬─┐│└┘├┤╭╮╰╯═║╔╗",
    "↑↓←→⏎⌫", "café", "日本", "🔎 search", "x\u0301y", "•••", "░▒▓█",
])
def test_to_ascii_keeps_width(text):
    out = to_ascii(text)
    assert out.isascii(), out
    assert cell_len(out) == cell_len(text), (text, out)


def test_to_ascii_shapes():
    assert to_ascii("┌──┐") == "+--+"
    assert to_ascii("│") == "|"
    assert to_ascii("Long label…") == "Long lab..."
    assert to_ascii("—") == "-"
    assert to_ascii("▐●▌") == "|*|"


def frame_text(app) -> str:
    """The whole current frame as the terminal would receive it (notes, section 6)."""
    return app.screen._compositor.render_update(full=True).render_segments(app.console)


def visible(frame: str) -> str:
    return ANY_SEQ.sub("", frame)


def screen_of(frame: str) -> VirtualTerminal:
    vt = VirtualTerminal(80, 24)
    vt.feed(frame)
    return vt


@pytest.mark.parametrize("no_color", [False, True])
async def test_plain_frames_are_ascii(monkeypatch, no_color):
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    app = DemoApp(plain=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        frames = [frame_text(app)]
        await pilot.press("1", "0", "tab", "tab", "tab", "tab", "down", "space", "tab")
        frames.append(frame_text(app))
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, StepTwo)
        await pilot.press("h", "i", "tab", "x")
        frames.append(frame_text(app))
        app.notify("Saved the draft", title="Draft")  # a toast, on top
        await pilot.pause()
        frames.append(frame_text(app))
    for frame in frames:
        bad = sorted({c for c in visible(frame) if ord(c) >= 0x80})
        assert not bad, bad
        assert frame.isascii()
    first = screen_of(frames[0]).text()
    assert "( ) Single company network" in first and "(*) Isolated dual-NIC" in first
    assert "[ ] Use a proxy" in first and "+----" in first and "|  Next  |" in first


def sgr_params(frame: str) -> list[list[str]]:
    return [m.group(1).split(";") for m in SGR.finditer(frame)]


async def test_no_color_is_readable_and_focus_shows_without_colour(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = DemoApp(plain=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.theme == PLAIN_THEME.name and app.ansi_color
        for _ in range(7):  # every focusable widget of the step, one after the other
            frame = frame_text(app)
            for params in sgr_params(frame):
                colours = [p for p in params if p.isdigit() and (30 <= int(p) <= 49 or 90 <= int(p) <= 107)]
                assert set(colours) <= {"39", "49"}, params  # no colour at all, not black on black
            focused = app.focused
            region = focused.region
            vt = screen_of(frame)
            cells = [vt.cells[y][x] for y in range(region.y, region.bottom)
                     for x in range(region.x, region.right)]
            assert any("reverse" in pen.attrs for _, pen in cells), focused
            await pilot.press("tab")
            await pilot.pause()


async def test_plain_16_colours_never_black_on_black(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = DemoApp(plain=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for key in ("tab", "tab", "tab", "tab"):
            vt = screen_of(frame_text(app))
            for row in vt.cells:
                for char, pen in row:
                    if char.strip() and pen.fg and pen.bg:
                        assert pen.fg[-1] != pen.bg[-1] or "reverse" in pen.attrs, pen
                    assert not (char.strip() and pen.fg in ("30", "90") and not pen.bg)
            await pilot.press(key)


async def test_toggle_plain_switches_glyphs_both_ways(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = DemoApp(plain=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        original = frame_text(app)
        plain = visible(original)
        assert "(*) Isolated" in plain and "[ ] Use a proxy" in plain and plain.isascii()
        await pilot.press("f4")
        await pilot.pause()
        assert not app.plain_mode and not app.has_class("-plain")
        fancy = visible(frame_text(app))
        assert "▐●▌" in fancy and "(*)" not in fancy and "[ ]" not in fancy
        assert not fancy.isascii()
        assert not lean_focus_active()
        await pilot.press("f4")
        await pilot.pause()
        again = visible(frame_text(app))
        assert app.plain_mode and again.isascii() and "(*) Isolated" in again
        assert screen_of(frame_text(app)).snapshot() == screen_of(original).snapshot()


async def test_checkbox_shows_state_in_the_character():
    app = DemoApp(plain=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.screen.query_one("#proxy", Checkbox).value = True
        await pilot.pause()
        assert "[X] Use a proxy" in screen_of(frame_text(app)).text()


async def test_cursor_blink_off_on_every_input_including_pushed_screens():
    app = DemoApp(plain=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        inputs = list(app.screen.query(Input))
        assert inputs and all(not i.cursor_blink for i in inputs)
        await pilot.press("ctrl+n")
        await pilot.pause()
        second = list(app.screen.query(Input))
        assert second and all(not i.cursor_blink for i in second)
        # one mounted later, on a screen already showing
        late = Input(id="late", compact=True)
        await app.screen.mount(late)
        late.focus()
        await pilot.pause()
        assert late.cursor_blink is False
        assert late._blink_timer is not None and late._cursor_visible
        await pilot.press("f4")  # plain off: the stock blink comes back
        await pilot.pause()
        assert late.cursor_blink and all(i.cursor_blink for i in second)


async def test_header_has_no_clock_and_an_ascii_icon():
    from textual.app import ComposeResult
    from textual.widgets import Header
    from textual.widgets._header import HeaderClock

    class WithHeader(terminal.PlainModeMixin):
        TITLE = "edge-installer"

        def compose(self) -> ComposeResult:
            yield Header(show_clock=True)

    app = WithHeader(plain=True)
    async with app.run_test(size=(80, 24)) as pilot:
        app.sub_title = "step 1"
        await pilot.pause()
        assert app.query_one(HeaderClock).display is False
        top = screen_of(frame_text(app)).text().splitlines()[0]
        assert top.isascii() and "edge-installer - step 1" in top
        assert ":" not in top  # no clock


def test_tolerant_stream_survives_a_hung_up_line():
    class HungUp:
        def write(self, text):
            raise OSError(5, "Input/output error")

        def flush(self):
            raise OSError(5, "Input/output error")

    stream = terminal._TolerantStream(HungUp())
    stream.write("\x1b[?25h")
    stream.flush()
    assert stream.broken


async def test_title_and_key_display_ascii():
    app = DemoApp(plain=True)
    async with app.run_test(size=(80, 24)):
        assert str(app.format_title("edge-installer", "step 2")) == "edge-installer - step 2"
        from textual.binding import Binding
        assert app.get_key_display(Binding("up", "x")) == "Up"
        assert app.get_key_display(Binding("enter", "x")) == "Enter"
        app.action_toggle_plain()
        assert app.get_key_display(Binding("up", "x")) == "↑"
        assert "—" in str(app.format_title("edge-installer", "step 2"))


# ----------------------------------------------------------------------------- lean focus

class RecordingDemo(DemoApp):
    """The demo app, keeping every update it sends towards the terminal."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.stream: list[str] = []

    def _edge_emit(self, screen, renderable) -> None:
        if isinstance(renderable, CompositorUpdate):
            self.stream.append(renderable.render_segments(self.console))
        super()._edge_emit(screen, renderable)


LEAN_KEYS = ["tab", "tab", "shift+tab", "tab", "tab", "down", "down", "enter", "tab", "space",
             "tab", "tab", "shift+tab", "shift+tab", "1", "ctrl+n", "tab", "a", "tab", "tab",
             "escape", "tab", "shift+tab"]


async def run_keys(keys: list[str], lean: bool, coalesce: bool = False,
                   settle: float | None = None) -> tuple[list, list[int], list]:
    """Terminal state (a screen model fed with what was sent) and bytes after each key."""
    app = RecordingDemo(plain=True, lean_focus=lean, coalesce_frames=coalesce)
    vt = VirtualTerminal(80, 24)
    screens, costs, truths = [], [], []
    async with app.run_test(size=(80, 24)) as pilot:
        assert lean_focus_active() is lean
        await pilot.pause(settle)
        for key in [None, *keys]:
            if key:
                await pilot.press(key)
            await pilot.pause(settle)
            assert not app._edge_pending
            sent = "".join(app.stream)
            app.stream.clear()
            vt.feed(sent)
            costs.append(len(sent))
            screens.append(vt.snapshot())
            truths.append(screen_of(frame_text(app)).snapshot())
    assert not lean_focus_active()  # restored when the app ends
    return screens, costs, truths


@pytest.mark.skipif(not terminal.lean_focus_supported(), reason="lean focus not proven here")
async def test_lean_focus_frames_identical_to_stock():
    stock, stock_costs, stock_truth = await run_keys(LEAN_KEYS, lean=False)
    lean, lean_costs, _ = await run_keys(LEAN_KEYS, lean=True)
    for step, (a, b, truth) in enumerate(zip(stock, lean, stock_truth, strict=True)):
        key = ([None] + LEAN_KEYS)[step]
        assert a == truth, f"stock terminal differs from its own full frame after {key}"
        assert a == b, f"lean focus frame differs from stock after {key}"
    tabs = [i for i, k in enumerate([None] + LEAN_KEYS) if k == "tab"]
    assert sum(lean_costs[i] for i in tabs) < 0.6 * sum(stock_costs[i] for i in tabs)


COALESCE_KEYS = ["ctrl+n", "tab", "escape", "1", "ctrl+n", "escape"]


async def test_coalesced_frames_end_identical_and_cheaper():
    """Held full frames: the terminal ends every step in the same state, for fewer bytes."""
    stock, stock_costs, truth = await run_keys(COALESCE_KEYS, lean=False)
    held, held_costs, _ = await run_keys(COALESCE_KEYS, lean=False, coalesce=True, settle=0.4)
    for step, (a, b, t) in enumerate(zip(stock, held, truth, strict=True)):
        key = ([None] + COALESCE_KEYS)[step]
        assert a == t, f"stock terminal differs from its own full frame after {key}"
        assert a == b, f"coalesced frame differs from stock after {key}"
    switches = [i for i, k in enumerate([None] + COALESCE_KEYS) if k in (None, "ctrl+n", "escape")]
    assert sum(held_costs[i] for i in switches) < 0.7 * sum(stock_costs[i] for i in switches)


def test_lean_focus_pinned_to_the_proven_version(monkeypatch):
    monkeypatch.setattr(terminal.textual, "__version__", "9.0.0")
    assert terminal.set_lean_focus(True) is False
    assert not lean_focus_active()


# ----------------------------------------------------------------------------- tmux

def need_tmux():
    if tmux_available():
        return
    if os.geteuid() == 0 or os.environ.get("CI"):
        pytest.fail("tmux is missing (./dev installs it): the serial-terminal tests must run")
    pytest.skip("tmux is not installed")


def no_forbidden_sequences(data: bytes) -> None:
    for mode in MOUSE_MODES:
        assert mode not in data, mode
    for seq in (b"\x1b]22;", b"$p", b"\x1b[?1004h", b"\x1b[?2004h", b"\x1b[>"):
        assert seq not in data, seq


def terminal_restored(data: bytes) -> None:
    seqs = [c for k, c in split_sequences(data) if k == "seq"]
    last_hide = max((i for i, s in enumerate(seqs) if s == b"\x1b[?25l"), default=-1)
    assert b"\x1b[?25h" in seqs[last_hide + 1:], "cursor left hidden"
    last_alt = max(i for i, s in enumerate(seqs) if s == b"\x1b[?1049h")
    assert b"\x1b[?1049l" in seqs[last_alt + 1:], "alternate screen not left"
    last_nowrap = max(i for i, s in enumerate(seqs) if s == b"\x1b[?7l")
    assert b"\x1b[?7h" in seqs[last_nowrap + 1:], "autowrap left off"
    assert data.rfind(b"\x1b[2J") > data.rfind(b"\x1b[1;1H"), "screen not cleared on exit"


def wrapped(tmp_path: Path, extra: str = "") -> str:
    """The demo under a shell that records its exit status and the tty's modes after it."""
    after = tmp_path / "after.txt"
    return ("sh -c " + shlex.quote(
        f"{shlex.join(DEMO)} --plain --draft-file {tmp_path / 'draft.txt'} {extra}; "
        f"echo status=$? > {after}; stty -a >> {after}; sleep 30"))


def wait_file(path: Path, timeout: float = 15.0) -> str:
    """The shell's record once `stty -a` has written it (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and "isig" in path.read_text():
            return path.read_text()
        time.sleep(0.05)
    return path.read_text() if path.exists() else ""


def tty_sane(stty: str) -> None:
    assert re.search(r"(?<!-)icanon\b", stty) and re.search(r"(?<!-)echo\b", stty), stty
    assert re.search(r"(?<!-)isig\b", stty), stty


@pytest.mark.parametrize("no_color", [None, "1"])
def test_tmux_vt100_session_is_pure_ascii(tmp_path, no_color):
    need_tmux()
    with Session(wrapped(tmp_path), env={"NO_COLOR": no_color, "LANG": "C.UTF-8"},
                 size=(80, 24), term="vt100", cwd=REPO) as s:
        assert s.settle(timeout=20)
        assert "(*) Isolated dual-NIC" in s.screen_text()
        s.type("10.0.0.5/24")
        s.settle()
        assert "10.0.0.5/24" in s.screen_text()
        s.send("Tab")
        s.settle()
        s.send("C-n")
        s.settle()
        assert "Step 2 of 2" in s.screen_text()
        s.type("Plant")
        s.send("Escape")
        s.settle()
        assert "Step 1 of 2" in s.screen_text()
        s.send("C-q")
        status = wait_file(tmp_path / "after.txt")
        data = s.data()
    assert status.startswith("status=0"), status
    tty_sane(status)
    assert non_ascii_count(data) == 0
    no_forbidden_sequences(data)
    terminal_restored(data)
    if no_color:
        for params in SGR.findall(data.decode()):
            assert not re.search(r"(^|;)(3[0-8]|4[0-8]|9\d|10\d)(;|$)", params), params


def test_tmux_tuned_frames_equal_stock_frames(tmp_path):
    """Lean focus and coalesced frames, judged by a real terminal: same screen, fewer bytes."""
    need_tmux()
    keys = [("type", "10.0"), ("send", "Tab"), ("send", "Tab"), ("send", "Tab"),
            ("send", "Down"), ("send", "Enter"), ("send", "C-n"), ("send", "Tab"),
            ("send", "Escape")]
    def stable(s):
        # Settled, and still the same after a second quiet spell: on a loaded machine the app
        # can take longer than one quiet spell to start on a key.
        screen = None
        for _ in range(10):
            assert s.settle(timeout=20)
            now = s.screen_text(escapes=True)
            if now == screen:
                return now
            screen = now
        return screen

    stock, sizes = [], {}
    for name, extra in (("stock", ["--stock-frames"]), ("tuned", [])):
        cmd = shlex.join([*DEMO, "--plain", *extra])
        with Session(cmd, env={"LANG": "C.UTF-8"}, term="vt100", cwd=REPO) as s:
            for step, (kind, key) in enumerate([(None, None), *keys]):
                if kind is not None:
                    (s.type if kind == "type" else s.send)(key)
                if name == "stock":
                    stock.append(stable(s))
                else:  # the same screen, once the tuned app has drawn it (bounded)
                    assert s.wait_for(lambda st=step: s.screen_text(escapes=True) == stock[st], timeout=20), (
                        f"screens differ after {(['start'] + keys)[step]}")
                    assert s.settle(timeout=20)
            sizes[name] = s.size()
            s.send("C-q")
            s.wait_exit()
    assert sizes["tuned"] < 0.6 * sizes["stock"], sizes


@pytest.mark.parametrize("how,reason,code", [
    ("SIGTERM", "SIGTERM", 143), ("SIGHUP", "SIGHUP", 129), ("C-c", "Ctrl+C", 130)])
def test_tmux_forced_exit_restores_terminal_and_saves_draft(tmp_path, how, reason, code):
    need_tmux()
    with Session(wrapped(tmp_path), env={"LANG": "C.UTF-8"}, size=(80, 24), term="vt100",
                 cwd=REPO) as s:
        assert s.settle(timeout=20)
        s.type("10.0")
        s.settle()
        if how.startswith("SIG"):
            pids = [p for p in s._tree_pids() if b"tui_demo_app" in _cmdline(p)
                    and not _cmdline(p).startswith(b"sh")]
            assert len(pids) == 1, pids
            os.kill(pids[0], getattr(signal, how))
        else:
            s.send(how)
        status = wait_file(tmp_path / "after.txt")
        data = s.data()
    assert status.startswith(f"status={code}"), status
    tty_sane(status)
    assert (tmp_path / "draft.txt").read_text().strip() == reason
    terminal_restored(data)
    assert non_ascii_count(data) == 0


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""
