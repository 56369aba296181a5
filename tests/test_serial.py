"""The real wizard on a serial line and on the Linux console: `edge-installer` in tmux at 80x24
with TERM=vt100 (and TERM=linux), every byte it writes captured by pipe-pane, keys sent with
send-keys, plain mode chosen by the wizard itself from TERM.

- vt100, inside the network lab's edge namespace, the lab faulty (NATS port rejected, TLS
  intercepted by a DPI appliance): the whole isolated topology from the lab's plan, one field
  typed, the checks step showing the lab's failures (every [FAIL] line, the diagnoses, the
  summary's count), then write, done and Finish, and the files under the root. Not one byte
  >= 0x80, no mouse reporting, nothing a VT100 would print as garbage, terminal restored.
- linux: a short walk of the first steps (never the checks step), ASCII only too.
- Changed cells (screens/terminal.py ShadowScreen): the real wizard's frames, sent as changed
  cells only, leave the terminal cell for cell as Textual's full repaints do, for far fewer
  bytes; the screen model agrees with tmux's own screen at every step of the walks.

NETWORK SAFETY: the walk that reaches the checks step runs only inside the lab's edge
namespace (`ip netns exec`); the others never reach it and run in an empty network namespace
when the box allows one.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from textual._compositor import CompositorUpdate

from bench.tuimeasure import MOUSE_MODES, Session, VirtualTerminal, non_ascii_count, split_sequences, tmux_available
from screens import cells
from tests.lab.fixtures import healthy_lab, lab  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).with_name("edge-installer")
WIZARD = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "installer"]
NO_PROXY_ENV = dict.fromkeys(("http_proxy", "https_proxy", "all_proxy", "no_proxy",
                              "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"))
STATE = "var/lib/edge-installer"


DETAIL = re.compile(r"^ (PASS|WARN|FAIL|SKIP) ([a-z-]+)\s+(\S+)", re.M)


def listed(screen_text: str) -> set[str]:
    """The results in view in the checks step's bordered list; a long one wraps onto the next row."""
    entries: list[str] = []
    for line in screen_text.splitlines():
        line = line.strip()
        if len(line) < 2 or not (line.startswith("|") and line.endswith("|")):
            continue
        inner = line[1:-1].strip()
        if re.match(r"\[(PASS|WARN|FAIL|SKIP)\] ", inner):
            entries.append(inner)
        elif entries and inner:
            entries[-1] += " " + inner
    return set(entries)


def need_tmux() -> None:
    if tmux_available():
        return
    if os.geteuid() == 0 or os.environ.get("CI"):
        pytest.fail("tmux is missing (./dev installs it): the serial-line tests must run")
    pytest.skip("tmux is not installed")


def isolated(argv: list[str]) -> list[str]:
    """argv in an empty network namespace when the box allows one: nothing can leave it."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"],
                                                  capture_output=True).returncode == 0:
        return ["unshare", "-n", *argv]
    return argv


def session(argv: list[str], term: str, status: Path) -> Session:
    """argv in a tmux pane, under a shell that writes its exit status to `status` (tmux, the
    pane's parent, sometimes leaves an exited program unreaped for seconds)."""
    env = {**NO_PROXY_ENV, "LANG": "C.UTF-8", "NO_COLOR": None, "PYTHONPATH": str(REPO)}
    cmd = f"{shlex.join(argv)}; echo $? > {shlex.quote(str(status))}"
    return Session(f"sh -c {shlex.quote(cmd)}", env=env, size=(80, 24), term=term, cwd=REPO, quiet=0.3)


def exit_status(status: Path, s: Session, timeout: float = 15.0) -> int | None:
    """The program's exit status once it has left (bounded wait), all its output captured."""
    s.wait_for(lambda: status.exists() and status.read_text().strip() != "", timeout=timeout)
    s.wait_for(s.exited, timeout=5)
    s.settle(timeout=2)
    text = status.read_text().strip() if status.exists() else ""
    return int(text) if text.isdigit() else None


class Screen:
    """The pane, read back two ways: tmux's own screen, and a model fed the captured bytes."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.vt = VirtualTerminal(s.width, s.height)
        self.fed = 0

    def text(self) -> str:
        return self.s.screen_text()

    def wait(self, *texts: str, timeout: float = 15.0) -> str:
        """Wait (bounded) until every text is on screen; the screen."""
        ok = self.s.wait_for(lambda: all(t in self.text() for t in texts), timeout=timeout)
        shown = self.text()
        assert ok, f"{texts} not on screen after {timeout} s:\n{shown}"
        return shown

    def key(self, *keys: str, then: str | None = None, timeout: float = 15.0) -> str:
        """Send keys; wait for `then` on screen (else for the output to settle)."""
        self.s.send(*keys)
        if then is not None:
            return self.wait(then, timeout=timeout)
        self.s.settle(timeout=timeout)
        return self.text()

    def type(self, text: str) -> str:
        self.s.type(text)
        return self.wait(text)

    def model_agrees(self) -> None:
        """The screen model (fed every byte so far) shows what tmux shows, character for character."""
        self.s.settle(timeout=5)
        data = self.s.data()
        self.vt.feed(data[self.fed:])
        self.fed = len(data)
        ours = [line.rstrip() for line in self.vt.text().splitlines()]
        tmux = [line.rstrip() for line in self.text().splitlines()]
        tmux += [""] * (len(ours) - len(tmux))
        assert ours == tmux


def step(screen_text: str) -> str:
    m = re.search(r"Step \d+ of \d+: [^\n]*", screen_text)
    return m.group(0).strip() if m else "?"


def clean_bytes(data: bytes) -> None:
    """Only what a VT100 or the Linux console understands: 7-bit, no mouse, no queries."""
    assert non_ascii_count(data) == 0, [c for c in data if c >= 0x80][:10]
    for mode in MOUSE_MODES:
        assert mode not in data, mode
    for seq in (b"\x1b]22;", b"$p", b"\x1b[?1004h", b"\x1b[?2004h", b"\x1b[>", b"\x1b[<u",
                b"\x1b[?2026", b"\x1b]8;", b"\x1b]52;"):
        assert seq not in data, seq
    for kind, chunk in split_sequences(data):
        if kind == "text":  # no control character but CR, LF, BS, BEL
            assert not re.search(rb"[\x00-\x07\x0b-\x0c\x0e-\x1a\x1c-\x1f\x7f]", chunk), chunk[:40]


def restored(data: bytes) -> None:
    seqs = [c for k, c in split_sequences(data) if k == "seq"]
    assert b"\x1b[?25h" in seqs[max(i for i, x in enumerate(seqs) if x == b"\x1b[?25l"):], "cursor hidden"
    assert b"\x1b[?1049l" in seqs[max(i for i, x in enumerate(seqs) if x == b"\x1b[?1049h"):], "alt screen"
    assert b"\x1b[?7h" in seqs[max(i for i, x in enumerate(seqs) if x == b"\x1b[?7l"):], "autowrap off"


# ----------------------------------------------------------------------------- the lab walk

def test_vt100_whole_isolated_walk_in_a_faulty_lab(healthy_lab, tmp_path):
    need_tmux()
    root = tmp_path / "root"
    root.mkdir()
    plan = healthy_lab.write_plan(tmp_path / "plan.yaml")  # isolated, MachineMetrics, 2 machines
    healthy_lab.block(7422, action="reject")  # the NATS port: connection refused
    healthy_lab.intercept_tls()               # a DPI appliance re-signs TLS with its own CA
    argv = ["ip", "netns", "exec", healthy_lab.edge_ns, *WIZARD, "--root", str(root), "--plan", str(plan)]
    with session(argv, "vt100", tmp_path / "status") as s:
        sc = Screen(s)
        seen = [step(sc.wait("Step 2 of 10: Topology", "(*) Isolated", timeout=30))]
        for title in ("Interfaces", "Addressing"):
            seen.append(step(sc.key("C-n", then=f": {title}")))
        # One field typed: the machine network's address, cleared and typed again.
        sc.wait("198.51.100.2/24")
        sc.key("End")
        sc.key("C-u")
        assert "198.51.100.2/24" not in sc.text()
        sc.type("198.51.100.2/24")
        sc.model_agrees()
        for title in ("DNS, time and proxy", "Cloud and machines", "Review"):
            seen.append(step(sc.key("C-n", then=f": {title}")))
        assert seen[-1] == "Step 7 of 10: Review", seen

        # The checks start as soon as the step is shown.
        shown = sc.key("C-n", then="Step 8 of 10: Live checks")
        shown = sc.wait("Done:", " failed", timeout=45)
        summary = re.search(r"(\d+) passed, (\d+) warnings?, (\d+) failed, (\d+) skipped", shown.replace("\n", " "))
        assert summary, shown
        failed = int(summary.group(3))
        assert failed > 0
        sc.model_agrees()
        # The list opens on the causes: the DPI appliance (TLS re-signed, and with it the
        # OpenVPN tunnel to CloudLink) and the rejected NATS port, one finding each.
        causes = re.search(r"(\d+) causes? found", " ".join(shown.split()))
        assert causes and int(causes.group(1)) == 2, shown
        flat = " ".join(sc.text().split())
        assert "F1 FAIL: A TLS-inspecting appliance" in flat and "and 7 more" in flat, sc.text()
        s.send("Down")
        s.wait_for(lambda: "F2 FAIL: Outbound TCP port 7422 is rejected" in " ".join(sc.text().split()), timeout=5)
        s.send("Down")
        s.wait_for(lambda: DETAIL.search(sc.text()), timeout=5)
        # Failures come first, the first one chosen: walk them with Down, reading each line of
        # the list; for the first failure of each check, scroll the step down to read its
        # evidence, remediation and diagnosis (too long for 24 rows with the list in view).
        lines: set[str] = set()
        details: dict[str, str] = {}
        for _ in range(failed + 1):
            shown = sc.text()
            lines |= listed(shown)
            head = DETAIL.search(shown)
            assert head, shown
            if head.group(1) == "FAIL" and head.group(2) not in details:
                sc.key("BTab")  # the step's scrolling body
                details[head.group(2)] = sc.key("End", then="Diagnosis: ")
                sc.key("Tab")   # back to the list, which scrolls back into view
                s.wait_for(lambda: listed(sc.text()), timeout=5)
            s.send("Down")
            was = head.group(0)
            s.wait_for(lambda was=was: DETAIL.search(sc.text()) and DETAIL.search(sc.text()).group(0) != was,
                       timeout=3)
        fails = {line for line in lines if line.startswith("[FAIL]")}
        assert len(fails) == failed, "\n".join(sorted(lines)) + "\n" + sc.text()
        assert any(line.startswith("[FAIL] tls-verify api.machinemetrics.com:443") for line in fails), fails
        assert any(line.startswith("[FAIL] tcp-connect ") and line.endswith(":7422") for line in fails), fails
        diagnoses = {check: re.search(r"Diagnosis: ([a-z-]+)", text).group(1) for check, text in details.items()}
        # The DPI appliance also answers CloudLink's OpenVPN hard reset in its own way.
        assert diagnoses == {"tls-verify": "tls-intercepted", "tcp-connect": "tcp-refused",
                             "openvpn-handshake": "openvpn-not-openvpn"}, diagnoses
        assert healthy_lab.dpi_ca_name in " ".join(details["tls-verify"].split()), details["tls-verify"]
        assert "What to do: " in details["tls-verify"] and "What to do: " in details["tcp-connect"]
        sc.model_agrees()

        # Failures do not block Next, but Next asks once more.
        sc.key("C-n", then="failed. The IT team can fix the firewall later")
        sc.key("C-n", then="Step 9 of 10: Write the files")
        sc.key("Space", then="[X] Yes, write these files now")
        sc.key("w", then="Done.", timeout=30)
        sc.key("C-n", then="Plan (mode 0600", timeout=30)
        assert step(sc.text()) == "Step 10 of 10: Done"
        sc.model_agrees()
        s.mark()
        s.send("C-n")  # Finish
        status = exit_status(tmp_path / "status", s)
        data = s.data()
    assert status == 0, status
    clean_bytes(data)
    restored(data)
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    for wanted in ("etc/netplan/90-edge-installer.yaml", f"{STATE}/plan.yaml", f"{STATE}/report.md",
                   f"{STATE}/firewall-request.md", f"{STATE}/firewall-request.csv"):
        assert wanted in files, sorted(files)
    assert stat.S_IMODE((root / STATE / "plan.yaml").stat().st_mode) == 0o600
    report = (root / STATE / "report.md").read_text()
    assert "tls-intercepted" in report and "tcp-refused" in report and healthy_lab.dpi_ca_name in report


# ----------------------------------------------------------------------------- Linux console

def test_linux_console_short_walk_is_ascii(tmp_path):
    need_tmux()
    root = tmp_path / "root"
    root.mkdir()
    with session(isolated([*WIZARD, "--root", str(root)]), "linux", tmp_path / "status") as s:
        sc = Screen(s)
        sc.wait("Step 1 of", "Welcome", "Display: TERM=linux", timeout=30)
        sc.type("/no/such/plan.yaml")
        sc.key("C-n", then="1 problem to fix before Next.")
        for _ in "/no/such/plan.yaml":
            s.send("BSpace")
        s.wait_for(lambda: "/no/such" not in sc.text(), timeout=5)
        sc.key("C-n", then=": Topology")
        assert "(*) Isolated networks" in sc.text()
        sc.key("Down")
        sc.key("Up")
        sc.key("Tab")
        sc.key("C-n", then=": Interfaces")
        sc.key("F1")
        sc.key("Escape")  # closes the help (it has the focus, to scroll), then back
        sc.key("Escape", then=": Topology")
        sc.model_agrees()
        s.mark()
        sc.key("C-l")  # every cell again
        assert s.bytes_since_mark() > 80 * 24, s.bytes_since_mark()
        sc.model_agrees()
        s.send("C-q")
        status = exit_status(tmp_path / "status", s)
        data = s.data()
    assert status == 0, status
    clean_bytes(data)
    restored(data)


# ----------------------------------------------------------------------------- changed cells

WALK = ["1", "backspace", "tab", "shift+tab", "ctrl+n", "down", "down", "up", "up", "tab", "tab", "tab",
        "ctrl+n", "tab", "tab", "ctrl+n", "end", "ctrl+u", *"10.1.2", "ctrl+n", "backspace", *"3.4/24",
        "tab", "tab", "escape", "ctrl+n", "ctrl+n", "tab", "tab", "f1", "f1", "tab", "ctrl+n", "tab",
        "tab", "escape", "ctrl+l", "ctrl+n", "space", "ctrl+n"]


async def test_changed_cells_leave_the_terminal_as_full_repaints_do(tmp_path):
    """Every frame of a keyboard walk through the real wizard (welcome to review), sent as
    Textual sends it and as changed cells (spaces written, or blanks erased with EL/ED): the
    same terminal, cell for cell, after every key, for a fraction of the bytes."""
    from screens.app import WizardApp, new_plan
    from screens.run import build_context

    frames: list[CompositorUpdate] = []

    class Recording(WizardApp):
        def _edge_emit(self, screen, renderable) -> None:
            if isinstance(renderable, CompositorUpdate):
                frames.append(renderable)
            super()._edge_emit(screen, renderable)

    context = build_context(tmp_path, "test")
    # The walk names the seed's ports (eno1, enp2s0), which the interfaces step refuses on a
    # box without them: this box's frames, on a box that has them (the fixed one, not live).
    from installer.planning.validate import default_context
    from tests.wizard_helpers import INVENTORY

    context.inventory = INVENTORY
    context.validation = default_context({i.name: i.kind for i in INVENTORY.interfaces}, context.target)
    context.extras.pop("sys_class_net", None)
    app = Recording(new_plan(), context, plain=True)
    ways = {"stock": None, "cells": cells.ShadowScreen(), "erase": cells.ShadowScreen(erase=True)}
    vts = {way: VirtualTerminal(80, 24) for way in ways}
    sent = dict.fromkeys(ways, 0)
    async with app.run_test(size=(80, 24)) as pilot:
        for key in [None, *WALK]:
            if key:
                await pilot.press(key)
            await pilot.pause()
            while app._edge_pending:
                await pilot.pause(0.02)
            for update in frames:
                for way, shadow in ways.items():
                    out = update.render_segments(app.console) if shadow is None else \
                        shadow.render(update, app.console, (80, 24))
                    vts[way].feed(out)
                    sent[way] += len(out)
            frames.clear()
            stock = vts["stock"].snapshot()
            assert vts["cells"].snapshot() == stock, f"changed cells differ after {key!r}"
            assert vts["erase"].snapshot() == stock, f"changed cells with EL/ED differ after {key!r}"
            assert app.step_id != "checks"
        assert app.step_id == "review"
    assert sent["erase"] < sent["cells"] < 0.4 * sent["stock"], sent


def test_strips_that_are_not_ascii_go_out_as_textual_sends_them():
    """What the model cannot hold (a wide or non-ASCII character) is sent unchanged and is
    sent again next time; everything else is diffed."""
    from rich.console import Console
    from rich.segment import Segment
    from rich.style import Style
    from textual._compositor import LayoutUpdate
    from textual.geometry import Region
    from textual.strip import Strip

    console = Console(color_system="standard", force_terminal=True, width=10)
    shadow = cells.ShadowScreen()

    def frame(*rows: str) -> LayoutUpdate:
        return LayoutUpdate([[Strip([Segment(r.ljust(10)[:10], Style(bold=i == 0))])] for i, r in enumerate(rows)],
                            Region(0, 0, 10, len(rows)))

    first = shadow.render(frame("title", "abc", "x"), console, (10, 3))
    assert "title" in first and "abc" in first
    assert shadow.render(frame("title", "abc", "x"), console, (10, 3)) == ""  # nothing changed
    again = shadow.render(frame("title", "abd", "x"), console, (10, 3))
    assert again == "\x1b[2;3Hd"  # one cell: where, and what
    wide = shadow.render(frame("title", "ab\u4e2d", "x"), console, (10, 3))
    assert "\u4e2d" in wide
    assert "\u4e2d" in shadow.render(frame("title", "ab\u4e2d", "x"), console, (10, 3))  # unknown: sent again
    vt = VirtualTerminal(10, 3)
    for chunk in (first, again):
        vt.feed(chunk)
    assert vt.text().splitlines()[:3] == ["title", "abd", "x"]
