"""Count the bytes a full-screen program writes to a real terminal (tmux).

A program runs in a detached tmux pane of a given size and TERM; every byte it writes is
copied to a file by `pipe-pane -o 'cat >> FILE'`; keys go in with `send-keys`. An event's
cost is the number of bytes that arrived between a mark and the moment the output has been
quiet for `quiet` seconds. Every wait is bounded.

    with Session(cmd, env={"NO_COLOR": "1"}, size=(80, 24), term="vt100") as s:
        s.settle()
        first = s.bytes_since_mark()
        tab = s.event("Tab")            # mark, send, settle, count
        s.type("abc")                   # literal text
        print(s.screen_text(), s.non_ascii_bytes(), s.startup_seconds(), s.peak_rss_kb())

The program is started only after pipe-pane is attached (the pane's shell waits for a
go-file), so not one early byte is lost and start-up is timed from the real exec.

`VirtualTerminal` is a tiny screen model of the sequences Textual emits (cursor moves,
SGR, erase): enough to tell when a full frame has been painted, and to compare frames
cell by cell in tests.
"""

from __future__ import annotations

import codecs
import os
import re
import shlex
import shutil
import signal as _signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# The end of a `python -c` wrapper around the wizard's command line: calls the wrapper's
# patch(module) when the wizard imports screens.terminal, in its own order (the collector and
# the imports then run as they do without the wrapper), and runs the command line.
PATCH_TERMINAL_AND_RUN = r"""
import sys as _sys
from importlib import abc as _abc, machinery as _machinery

class _Hook(_abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "screens.terminal":
            return None
        _sys.meta_path.remove(self)
        spec = _machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            patch(module)
        spec.loader.exec_module = exec_module
        return spec

_sys.meta_path.insert(0, _Hook())
from installer import cli
_sys.exit(cli.main(_sys.argv[1:]))
"""
QUIET_S = 0.6
POLL_S = 0.005

# ESC [ ... final, ESC ] ... BEL/ST, ESC P ... ST, two-byte ESC x
_SEQ = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    rb"|\x1bP.*?\x1b\\"
    rb"|\x1b[ -/]*[0-~]",
    re.S,
)
MOUSE_MODES = (b"\x1b[?1000h", b"\x1b[?1002h", b"\x1b[?1003h", b"\x1b[?1005h",
               b"\x1b[?1006h", b"\x1b[?1015h", b"\x1b[?1016h")


def tmux_available() -> bool:
    return shutil.which("tmux") is not None


def split_sequences(data: bytes) -> list[tuple[str, bytes]]:
    """Split raw output into ("seq", bytes) escape sequences and ("text", bytes) runs."""
    out: list[tuple[str, bytes]] = []
    pos = 0
    for m in _SEQ.finditer(data):
        if m.start() > pos:
            out.append(("text", data[pos:m.start()]))
        out.append(("seq", m.group()))
        pos = m.end()
    if pos < len(data):
        out.append(("text", data[pos:]))
    return out


_CSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]")
_OSC = re.compile(rb"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_DCS = re.compile(rb"\x1bP.*?\x1b\\", re.S)


def _complete(data: bytes, at: int) -> bool:
    """Is the escape sequence starting at `at` complete? ("ESC [" alone is the start of a CSI,
    not a two-byte sequence.)"""
    kind = data[at + 1:at + 2]
    if not kind:
        return False
    form = {b"[": _CSI, b"]": _OSC, b"P": _DCS}.get(kind)
    return bool(form.match(data, at) if form else _SEQ.match(data, at))


def non_ascii_count(data: bytes) -> int:
    """Bytes >= 0x80 anywhere (inside escape sequences too: every byte counts)."""
    return sum(1 for b in data if b >= 0x80)


# --------------------------------------------------------------------------- screen model

_BASIC = {"1": "bold", "2": "dim", "3": "italic", "4": "underline", "5": "blink",
          "7": "reverse", "8": "conceal", "9": "strike"}
_UNSET = {"22": ("bold", "dim"), "23": ("italic",), "24": ("underline",), "25": ("blink",),
          "27": ("reverse",), "28": ("conceal",), "29": ("strike",)}


@dataclass(frozen=True)
class Pen:
    """The graphic rendition in force: colours as SGR strings ("31", "38;5;9"), attributes."""

    fg: str = ""
    bg: str = ""
    attrs: frozenset[str] = frozenset()


def apply_sgr(pen: Pen, params: str) -> Pen:
    parts = params.split(";") if params else ["0"]
    fg, bg, attrs = pen.fg, pen.bg, set(pen.attrs)
    i = 0
    while i < len(parts):
        p = parts[i] or "0"
        if p == "0":
            fg, bg, attrs = "", "", set()
        elif p in _BASIC:
            attrs.add(_BASIC[p])
        elif p in _UNSET:
            attrs.difference_update(_UNSET[p])
        elif p in ("38", "48"):
            if i + 1 < len(parts) and parts[i + 1] == "5":
                value, i = ";".join(parts[i:i + 3]), i + 2
            else:
                value, i = ";".join(parts[i:i + 5]), i + 4
            if p == "38":
                fg = value
            else:
                bg = value
        elif p == "39":
            fg = ""
        elif p == "49":
            bg = ""
        elif p.isdigit() and (30 <= int(p) <= 37 or 90 <= int(p) <= 97):
            fg = p
        elif p.isdigit() and (40 <= int(p) <= 47 or 100 <= int(p) <= 107):
            bg = p
        i += 1
    return Pen(fg, bg, frozenset(attrs))


BLANK = Pen()


class VirtualTerminal:
    """A minimal terminal: enough of ECMA-48 for Textual's output (CUP, SGR, ED, EL, CR, LF).

    Cells hold (character, Pen). `painted` records which rows received text since the last
    `reset_painted()`, which is how a "full frame" is recognised.
    """

    def __init__(self, width: int = 80, height: int = 24) -> None:
        self.width, self.height = width, height
        self.cells: list[list[tuple[str, Pen]]] = [[(" ", BLANK)] * width for _ in range(height)]
        self.painted: set[int] = set()
        self.erased: set[int] = set()   # rows cleared by ED or EL (blank, painted or not)
        self.row = self.col = 0
        self.pen = BLANK
        self._pending = b""
        self._decode = codecs.getincrementaldecoder("utf-8")("replace").decode

    def feed(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        data = self._pending + data
        self._pending = b""
        cut = data.rfind(b"\x1b")  # keep an unfinished escape sequence for the next call
        if cut != -1 and not _complete(data, cut):
            data, self._pending = data[:cut], data[cut:]
        for kind, chunk in split_sequences(data):
            if kind == "seq":
                self._sequence(chunk)
            else:
                self._text(self._decode(chunk))

    def _sequence(self, seq: bytes) -> None:
        if not seq.startswith(b"\x1b[") or seq[2:3] in (b"?", b">", b"<", b"="):
            return
        final = seq[-1:]
        params = seq[2:-1].decode("ascii", "replace")
        if final == b"m":
            self.pen = apply_sgr(self.pen, params)
        elif final in (b"H", b"f"):
            nums = [int(p) if p.isdigit() else 1 for p in (params.split(";") if params else [])]
            r = nums[0] if nums else 1
            c = nums[1] if len(nums) > 1 else 1
            self.row = min(max(r, 1), self.height) - 1
            self.col = min(max(c, 1), self.width) - 1
        elif final == b"J" and params in ("2", "3"):
            erased = Pen("", self.pen.bg)  # background colour erase: the pen's background only
            self.cells = [[(" ", erased)] * self.width for _ in range(self.height)]
            self.erased.update(range(self.height))
        elif final == b"K" and params in ("", "0"):
            for c in range(self.col, self.width):
                self.cells[self.row][c] = (" ", Pen("", self.pen.bg))
            self.erased.add(self.row)
        elif final in (b"A", b"B", b"C", b"D"):  # cursor up, down, forward, back
            n = int(params) if params.isdigit() and int(params) > 0 else 1
            if final == b"A":
                self.row = max(self.row - n, 0)
            elif final == b"B":
                self.row = min(self.row + n, self.height - 1)
            elif final == b"C":
                self.col = min(self.col + n, self.width - 1)
            else:
                self.col = max(self.col - n, 0)

    def _text(self, text: str) -> None:
        for ch in text:
            if ch == "\r":
                self.col = 0
            elif ch == "\n":
                self.row = min(self.row + 1, self.height - 1)
            elif ch < " " or ch == "\x7f":
                continue
            elif self.col < self.width:
                self.cells[self.row][self.col] = (ch, self.pen)
                self.painted.add(self.row)
                self.col += 1  # Textual turns autowrap off: the cursor stays in the last column

    def reset_painted(self) -> None:
        self.painted = set()
        self.erased = set()

    @property
    def full_frame(self) -> bool:
        return len(self.painted) >= self.height

    def text(self) -> str:
        return "\n".join("".join(c for c, _ in row).rstrip() for row in self.cells)

    def snapshot(self) -> tuple[tuple[tuple[str, Pen], ...], ...]:
        """Every cell's character and rendition: what a person would see."""
        return tuple(tuple(row) for row in self.cells)


# ------------------------------------------------------------------------------- session

class Session:
    """One program in one detached tmux pane, on a private tmux server."""

    def __init__(self, cmd: str | list[str], *, env: dict[str, str | None] | None = None,
                 size: tuple[int, int] = (80, 24), term: str = "vt100",
                 cwd: str | os.PathLike | None = None, quiet: float = QUIET_S,
                 start_timeout: float = 10.0) -> None:
        if not tmux_available():
            raise RuntimeError("tmux is not installed")
        self.cmd = cmd if isinstance(cmd, str) else shlex.join(cmd)
        self.env = dict(env or {})
        self.width, self.height = size
        self.term = term
        self.cwd = str(cwd) if cwd else os.getcwd()
        self.quiet = quiet
        self.start_timeout = start_timeout
        self._dir = Path(tempfile.mkdtemp(prefix="tuimeasure-"))
        self.capture = self._dir / "out.bin"
        self._go = self._dir / "go"
        self._socket = str(self._dir / "tmux.sock")
        self.target = "m:0.0"
        self._mark = 0
        self._t_start: float | None = None
        self._growth: list[tuple[float, int, float | None]] = []  # (time, size, CPU s) samples
        self.pid: int | None = None
        self._peak_kb = 0
        self._started = False

    # -- tmux plumbing
    def tmux(self, *args: str, check: bool = True, timeout: float = 10.0) -> str:
        r = subprocess.run(["tmux", "-S", self._socket, *args], capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {r.stderr.strip()}")
        return r.stdout

    def start(self) -> Session:
        script = self._dir / "run.sh"
        lines = ["#!/bin/sh", "unset COLORTERM TMUX TMUX_PANE", f"export TERM={shlex.quote(self.term)}",
                 f"export LINES={self.height} COLUMNS={self.width}"]
        for k, v in self.env.items():
            lines.append(f"unset {k}" if v is None else f"export {k}={shlex.quote(v)}")
        # Wait (bounded) for the go-file: pipe-pane is attached before the program starts.
        lines += [f"cd {shlex.quote(self.cwd)}",
                  "i=0; while [ ! -e " + shlex.quote(str(self._go)) + " ] && [ $i -lt 2000 ]; "
                  "do sleep 0.005; i=$((i+1)); done",
                  f"exec {self.cmd}"]
        script.write_text("\n".join(lines) + "\n")
        script.chmod(0o755)
        self.capture.touch()
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "m", "-x", str(self.width),
                  "-y", str(self.height), "sh " + shlex.quote(str(script)))
        self._started = True
        self.tmux("set-option", "-t", "m", "remain-on-exit", "on")
        self.tmux("set-option", "-t", "m", "status", "off")
        self.tmux("resize-window", "-t", "m", "-x", str(self.width), "-y", str(self.height),
                  check=False)
        self.tmux("pipe-pane", "-o", "-t", self.target, "cat >> " + shlex.quote(str(self.capture)))
        self.pid = int(self.tmux("display-message", "-p", "-t", self.target, "#{pane_pid}").strip())
        self._t_start = time.monotonic()
        self._go.touch()
        return self

    def __enter__(self) -> Session:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._started:
            try:
                self.tmux("kill-server", check=False)
            except subprocess.TimeoutExpired:
                pass
            self._started = False
        shutil.rmtree(self._dir, ignore_errors=True)

    # -- output
    def size(self) -> int:
        try:
            return self.capture.stat().st_size
        except FileNotFoundError:
            return 0

    def data(self) -> bytes:
        return self.capture.read_bytes()

    def _sample(self) -> int:
        n = self.size()
        if not self._growth or self._growth[-1][1] != n:
            self._growth.append((time.monotonic(), n, self._cpu_seconds()))
        self._sample_rss()
        return n

    def _cpu_seconds(self) -> float | None:
        """CPU time (user + system) the program has used so far: start-up cost under load."""
        if self.pid is None:
            return None
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def settle(self, quiet: float | None = None, timeout: float = 15.0) -> bool:
        """Wait until no byte has arrived for `quiet` s (True), or `timeout` s passed (False)."""
        quiet = self.quiet if quiet is None else quiet
        deadline = time.monotonic() + timeout
        last_n, last_change = self._sample(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(POLL_S)
            n = self._sample()
            now = time.monotonic()
            if n != last_n:
                last_n, last_change = n, now
            elif now - last_change >= quiet and (n > 0 or self.exited()):
                return True
        return False

    def wait_for(self, predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._sample()
            if predicate():
                return True
            time.sleep(interval)
        return False

    def mark(self) -> None:
        self._mark = self.size()

    def bytes_since_mark(self) -> int:
        return self.size() - self._mark

    def data_since_mark(self) -> bytes:
        return self.data()[self._mark:]

    def non_ascii_bytes(self, data: bytes | None = None) -> int:
        return non_ascii_count(self.data() if data is None else data)

    # -- input
    def send(self, *keys: str) -> None:
        """tmux key names: "Tab", "BTab", "Enter", "Escape", "C-q", "F4", "Down"..."""
        self.tmux("send-keys", "-t", self.target, *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.target, "-l", text)

    def event(self, *keys: str, literal: bool = False, quiet: float | None = None,
              timeout: float = 15.0) -> int:
        """Bytes written in answer to one event (mark, send, settle)."""
        self.settle(quiet=quiet, timeout=timeout)
        self.mark()
        if literal:
            self.type("".join(keys))
        else:
            self.send(*keys)
        self.settle(quiet=quiet, timeout=timeout)
        return self.bytes_since_mark()

    def idle(self, seconds: float) -> int:
        """Bytes written while nothing happens for `seconds`."""
        self.mark()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.05)
            self._sample()
        return self.bytes_since_mark()

    # -- the pane
    def screen_text(self, escapes: bool = False) -> str:
        args = ["capture-pane", "-p", "-t", self.target] + (["-e"] if escapes else [])
        return self.tmux(*args)

    def exited(self) -> bool:
        out = self.tmux("display-message", "-p", "-t", self.target, "#{pane_dead}", check=False)
        return out.strip() == "1"

    def exit_status(self, timeout: float = 3.0) -> int | None:
        """The program's exit status (128 + N for signal N), None while it runs.

        tmux marks a pane dead when its pty closes, and learns the status a moment later,
        when it reaps the process: wait (bounded) for that moment.
        """
        deadline = time.monotonic() + timeout
        while self.exited():
            out = self.tmux("display-message", "-p", "-t", self.target,
                            "#{pane_dead_status}|#{pane_dead_signal}", check=False).strip()
            status, _, sig = out.partition("|")
            if status.isdigit():
                return int(status)
            if sig.isdigit():
                return 128 + int(sig)
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        return None

    def wait_exit(self, timeout: float = 10.0) -> int | None:
        self.wait_for(self.exited, timeout=timeout)
        self.settle(timeout=2.0)
        return self.exit_status()

    def kill(self, sig: int = _signal.SIGTERM) -> None:
        """Signal the program this session started (and only it)."""
        if self.pid is not None:
            os.kill(self.pid, sig)

    # -- start-up and memory
    def first_frame_bytes(self) -> int | None:
        """Bytes written until the screen first showed what it shows now (call it once the
        first screen has settled), every row painted or cleared on the way: a program that
        sends only changed cells, or clears blank lines (EL, ED) instead of writing spaces,
        is complete at the same moment as one that paints every cell. (A screen that never
        settles: until every row had been painted or cleared once.)"""
        data = self.data()
        final = VirtualTerminal(self.width, self.height)
        final.feed(data)
        target = final.text()
        vt = VirtualTerminal(self.width, self.height)
        every_row = None  # if the screen never settles (a clock): every row painted once
        for i in range(0, len(data), 64):
            vt.feed(data[i:i + 64])
            if len(vt.painted | vt.erased) >= self.height:
                every_row = every_row or min(i + 64, len(data))
                if vt.text() == target:
                    return self._first_complete_in(data, i, target)
        return every_row

    def _first_complete_in(self, data: bytes, start: int, target: str) -> int:
        """The exact byte within data[start:start + 64] at which the screen is complete (64-byte
        steps alone would count the bytes that follow a frame, a cursor move written 30 ms
        later, as part of it)."""
        vt = VirtualTerminal(self.width, self.height)
        vt.feed(data[:start])
        for end in range(start + 1, min(start + 64, len(data)) + 1):
            vt.feed(data[end - 1:end])
            if len(vt.painted | vt.erased) >= self.height and vt.text() == target:
                return end
        return min(start + 64, len(data))

    def _first_frame_sample(self) -> tuple[float, int, float | None] | None:
        offset = self.first_frame_bytes()
        if offset is None or self._t_start is None:
            return None
        return next((g for g in self._growth if g[1] >= offset), None)

    def startup_seconds(self) -> float | None:
        """From exec to the moment the first complete frame (every row painted) had arrived."""
        sample = self._first_frame_sample()
        return None if sample is None else sample[0] - self._t_start

    def startup_cpu_seconds(self) -> float | None:
        """CPU time the program had used when its first complete frame arrived (10 ms ticks)."""
        sample = self._first_frame_sample()
        return None if sample is None else sample[2]

    def _tree_pids(self) -> list[int]:
        if self.pid is None:
            return []
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(children.get(p, []))
        return out

    def _sample_rss(self) -> None:
        if self.pid is None:
            return
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return
        m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        if m:
            self._peak_kb = max(self._peak_kb, int(m.group(1)))

    def peak_rss_kb(self) -> int:
        """Peak resident memory (VmHWM) of the program, sampled while it runs."""
        for pid in self._tree_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
            if m:
                self._peak_kb = max(self._peak_kb, int(m.group(1)))
        return self._peak_kb

