"""What the wizard costs on a serial line: bytes per event at 80x24, TERM=vt100, plain mode.

    .venv/bin/python bench/tui.py                          # the demo app (tests/tui_demo_app.py)
    .venv/bin/python bench/tui.py --cmd "edge-installer --plain --root /tmp/x"

Prints one table: bytes for the first frame (until the output is quiet), one keystroke in a
field, one Tab, one step change, 5 idle seconds; start-up to the first complete frame and peak
memory as ratios to a bare `textual.app.App` measured in the same run. A benchmark reports;
it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from tuimeasure import Session, non_ascii_count, tmux_available  # noqa: E402

BAUD_BYTES_S = 11_520  # 115200 baud, 8N1
DEMO = f"{shlex.quote(sys.executable)} tests/tui_demo_app.py --plain"
BARE = f"{shlex.quote(sys.executable)} -c 'from textual.app import App; App().run()'"


def wire(n: int) -> str:
    return f"{n / BAUD_BYTES_S:.2f} s"


def environment(args: argparse.Namespace) -> dict[str, str | None]:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env: dict[str, str | None] = {"PATH": path, "LANG": args.lang}
    if args.no_color:
        env["NO_COLOR"] = "1"
    else:
        env["NO_COLOR"] = None
    return env


def start_once(cmd: str, args: argparse.Namespace) -> tuple[float | None, float | None, int]:
    """Start, wait for quiet, quit: (start-up s, its CPU s, peak RSS kB)."""
    with Session(cmd, env=environment(args), size=(80, 24), term=args.term, cwd=REPO) as s:
        s.settle(timeout=30)
        startup, cpu, rss = s.startup_seconds(), s.startup_cpu_seconds(), s.peak_rss_kb()
        s.send(*args.quit_keys.split())
        s.wait_exit(timeout=10)
    return startup, cpu, rss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cmd", default=DEMO, help="the app to measure (a shell command)")
    parser.add_argument("--bare", default=BARE, help="the baseline app")
    parser.add_argument("--term", default="vt100")
    parser.add_argument("--lang", default="C.UTF-8")
    parser.add_argument("--no-color", action="store_true", help="run with NO_COLOR=1")
    parser.add_argument("--runs", type=int, default=5, help="start-ups of each app (median)")
    parser.add_argument("--setup-keys", default="", help="tmux keys to reach a field first")
    parser.add_argument("--keystroke", default="1", help="literal text typed in the field")
    parser.add_argument("--tab-keys", default="Tab")
    parser.add_argument("--step-keys", default="C-n", help="tmux keys for a step change")
    parser.add_argument("--back-keys", default="Escape", help="tmux keys to step back")
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--quit-keys", default="C-q")
    args = parser.parse_args(argv)

    if not tmux_available():
        print("bench/tui.py: tmux is not installed; nothing measured")
        return 0

    rows: list[tuple[str, str, str, str]] = []
    with Session(args.cmd, env=environment(args), size=(80, 24), term=args.term, cwd=REPO) as s:
        s.settle(timeout=30)
        first = s.size()
        first_complete = s.first_frame_bytes()
        screen = s.screen_text()
        if args.setup_keys:
            s.event(*args.setup_keys.split())
        idle = s.idle(args.idle)
        key = s.event(args.keystroke, literal=True)
        tab = s.event(*args.tab_keys.split())
        step = s.event(*args.step_keys.split())
        back = s.event(*args.back_keys.split()) if args.back_keys else None
        rss_after = s.peak_rss_kb()
        s.mark()
        s.send(*args.quit_keys.split())
        status = s.wait_exit(timeout=10)
        leaving = s.bytes_since_mark()
        high = non_ascii_count(s.data())
        total = s.size()

    # Start-up and memory: the same number of starts of each, interleaved, after one
    # discarded start of the bare app (the first Python start of a run pays cold caches).
    start_once(args.bare, args)
    runs: dict[str, tuple[list[float], list[float], list[float]]] = {
        "app": ([], [], []), "bare": ([], [], [])}
    for _ in range(max(1, args.runs)):
        for name, cmd in (("bare", args.bare), ("app", args.cmd)):
            for values, value in zip(runs[name], start_once(cmd, args)):
                if value:
                    values.append(value)
    (startups_app, cpu_app, rss_app), (startups_bare, cpu_bare, rss_bare) = runs["app"], runs["bare"]

    def ratio(a: list[float], b: list[float]) -> float | None:
        return statistics.median(a) / statistics.median(b) if a and b else None

    t_ratio, m_ratio = ratio(startups_app, startups_bare), ratio(rss_app, rss_bare)
    c_ratio = ratio(cpu_app, cpu_bare)
    first_note = wire(first)
    if first_complete and startups_app:
        # Local start-up plus the time the line needs for the bytes up to the complete frame.
        on_line = statistics.median(startups_app) + first_complete / BAUD_BYTES_S
        first_note += f"; complete at {first_complete:,} B, on the line ~{on_line:.2f} s after exec"
    rows += [
        ("first frame (until quiet)", f"{first:,} B", "<= 8,192 B", first_note),
        (f"keystroke in a field ({args.keystroke!r})", f"{key:,} B", "<= 150 B", wire(key)),
        (f"Tab ({args.tab_keys})", f"{tab:,} B", "<= 800 B", wire(tab)),
        (f"step change ({args.step_keys})", f"{step:,} B", "<= 8,192 B", wire(step)),
    ]
    if back is not None:
        rows.append((f"step back ({args.back_keys})", f"{back:,} B", "<= 8,192 B", wire(back)))
    rows += [
        (f"idle {args.idle:g} s", f"{idle:,} B", "0 B", "cursor blink, clock, timers"),
        ("start-up to first frame",
         f"{t_ratio:.2f}x" if t_ratio else "n/a", "<= 1.30x",
         f"{statistics.median(startups_app):.2f} s vs bare {statistics.median(startups_bare):.2f} s"
         + (f"; CPU {statistics.median(cpu_app):.2f} s vs {statistics.median(cpu_bare):.2f} s"
            f" = {c_ratio:.2f}x" if c_ratio else "")
         if t_ratio else "no complete frame seen"),
        ("peak memory (VmHWM)", f"{m_ratio:.2f}x" if m_ratio else "n/a", "<= 1.30x",
         f"{statistics.median(rss_app) / 1024:.1f} MB vs bare "
         f"{statistics.median(rss_bare) / 1024:.1f} MB; {rss_after / 1024:.1f} MB after the events"
         if m_ratio else ""),
    ]

    print(f"edge-installer TUI bench: 80x24 TERM={args.term} LANG={args.lang}"
          f"{' NO_COLOR=1' if args.no_color else ''}; 115200 baud = {BAUD_BYTES_S:,} B/s")
    print(f"app:  {args.cmd}")
    print(f"bare: {args.bare}   (start-up/memory: median of {len(startups_app)} / "
          f"{len(startups_bare)} starts)")
    widths = [max(len(r[i]) for r in rows + [("event", "measured", "target", "")])
              for i in range(4)]
    header = ("event", "measured", "target", "notes")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    print(f"exit: {leaving} B, status {status}; bytes >= 0x80 in the whole "
          f"session: {high} of {total:,}")
    if not screen.strip():
        print("warning: the first screen was empty")
    return 0


if __name__ == "__main__":
    sys.exit(main())
