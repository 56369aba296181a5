"""What the wizard costs on a serial line: bytes per event at 80x24, TERM=vt100, plain mode.

    .venv/bin/python bench/tui.py                 # the wizard: edge-installer --plain --root TMP
    .venv/bin/python bench/tui.py --imports       # ...and what it imports before its first frame
    .venv/bin/python bench/tui.py --full-repaints # the wizard without changed cells, to compare
    .venv/bin/python bench/tui.py --demo          # the demo app (tests/tui_demo_app.py)
    .venv/bin/python bench/tui.py --cmd "..."     # any program: the generic events below
    .venv/bin/python bench/tui.py --quota 0       # without the start-ups under a CPU quota

The wizard starts from a new plan under a temporary --root and is walked by keys: the first
frame (welcome), 5 idle seconds, a keystroke and a backspace in the welcome step's plan field,
Tab and Shift+Tab, Ctrl+N to the topology step, a Tab there, Esc back, then on to the
addressing step (each step change measured): a keystroke in its address field and a Tab to
the uplink choice. It never goes further: the checks step would start live network checks.
Start-up to the first complete frame and peak memory are ratios to a bare `textual.app.App`
measured in the same run (interleaved starts, medians; both with their bytecode cached, as
installed programs after their first start, or with nothing compiled: --cold). `--imports`
runs the wizard once more under `python -X importtime`, stops it at its first frame, and says
what it imported by then and what deferring each part would save. Then both start again as
often in a cgroup held to a quarter of one core (`--quota 25`: 25 ms of CPU per 100 ms, as
on a slow edge box; cgroup v1 cpu.cfs_quota_us/cpu.cfs_period_us or v2 cpu.max; needs root;
the cgroup is removed at the end): the wizard's first frame there should come within 2 s.
A benchmark reports; it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from tuimeasure import PATCH_TERMINAL_AND_RUN, Session, non_ascii_count, tmux_available  # noqa: E402

BAUD_BYTES_S = 11_520  # 115200 baud, 8N1
PY = shlex.quote(sys.executable)
EXE = Path(sys.executable).with_name("edge-installer")
WIZARD = shlex.quote(str(EXE)) if EXE.exists() else f"{PY} -m installer"
DEMO = f"{PY} tests/tui_demo_app.py --plain"
BARE = f"{PY} -c 'from textual.app import App; App().run()'"
ROOT_MARK = "{root}"  # replaced by a fresh temporary directory for each start
# The wizard with Textual's own full repaints instead of changed cells (screens/terminal.py),
# everything else as shipped: what the changed cells save.
FULL_REPAINTS = f"""{PY} -c '
import sys
from screens import terminal
init = terminal.PlainModeMixin.__init__
def full_repaints(self, *args, **kwargs):
    init(self, *args, **{{**kwargs, "diff_frames": False}})
terminal.PlainModeMixin.__init__ = full_repaints
from installer.cli import main
sys.exit(main())'"""

KB8, KEY, TAB, IDLE = 8_192, 150, 800, 0
TITLE = re.compile(r"Step (\d+) of \d+: ([^\n]*)")


def wire(n: int) -> str:
    return f"{n / BAUD_BYTES_S:.2f} s"


def environment(args: argparse.Namespace) -> dict[str, str | None]:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env: dict[str, str | None] = {"PATH": path, "LANG": args.lang, "PYTHONPATH": str(REPO)}
    env["NO_COLOR"] = "1" if args.no_color else None
    # Bytecode: both programs as installed and started before (a private cache the first
    # starts fill), or --cold: nothing compiled, as the first start from the zipapp.
    env["PYTHONPYCACHEPREFIX"] = args.pycache
    env["PYTHONDONTWRITEBYTECODE"] = "1" if args.cold else None
    return env


class Roots:
    """Fresh --root directories for the wizard's starts, removed at the end."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="bench-tui-"))
        self.n = 0

    def command(self, cmd: str) -> str:
        if ROOT_MARK not in cmd:
            return cmd
        self.n += 1
        root = self.base / f"root{self.n}"
        root.mkdir()
        return cmd.replace(ROOT_MARK, shlex.quote(str(root)))

    def close(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def start_once(cmd: str, args: argparse.Namespace,
               quiet: float | None = None) -> tuple[float | None, float | None, int]:
    """Start, wait for quiet, quit: (start-up s, its CPU s, peak RSS kB)."""
    with Session(cmd, env=environment(args), size=(80, 24), term=args.term, cwd=REPO,
                 **({"quiet": quiet} if quiet else {})) as s:
        s.settle(timeout=60)
        startup, cpu, rss = s.startup_seconds(), s.startup_cpu_seconds(), s.peak_rss_kb()
        s.send(*args.quit_keys.split())
        s.wait_exit(timeout=10)
    return startup, cpu, rss


class Walk:
    """Events measured in one session: rows of (event, bytes, target, notes)."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.rows: list[tuple[str, int | None, int | None, str]] = []

    def step(self) -> str:
        m = TITLE.search(self.s.screen_text())
        return f"{m.group(1)} {m.group(2).strip()}" if m else "?"

    def event(self, label: str, keys: str, target: int | None, *, literal: bool = False,
              note: str = "") -> int:
        n = self.s.event(keys, literal=True) if literal else self.s.event(*keys.split())
        self.rows.append((label, n, target, note or wire(n)))
        return n

    def change(self, label: str, keys: str, target: int | None) -> bool:
        """A step change: measured, and told when the step did not change."""
        before = self.step()
        n = self.s.event(*keys.split())
        after = self.step()
        self.rows.append((f"{label} ({before} -> {after})", n, target, wire(n)))
        return after != before


def walk_wizard(s: Session, args: argparse.Namespace) -> Walk:
    w = Walk(s)
    w.rows.append((f"idle {args.idle:g} s (welcome)", s.idle(args.idle), IDLE, "cursor blink, clock, timers"))
    w.event("keystroke in a field ('/', welcome's plan file)", "/", KEY, literal=True)
    w.event("backspace in that field", "BSpace", KEY)
    w.event("Tab (plan field -> Next)", "Tab", TAB)
    w.event("Shift+Tab (Next -> plan field)", "BTab", TAB)
    if not w.change("step change, Ctrl+N", "C-n", KB8):
        return w
    w.event("Tab (topology choice -> Back)", "Tab", TAB)
    w.change("step back, Esc", "Escape", KB8)
    for _ in range(3):  # welcome -> topology -> interfaces -> addressing
        if not w.change("step change, Ctrl+N", "C-n", KB8):
            return w
    if "Addressing" in w.step():
        s.type("192.168.50.2/2")
        s.settle()
        w.event("keystroke in a field ('4', machine address)", "4", KEY, literal=True)
        w.event("Tab (address field -> uplink choice)", "Tab", TAB)
        w.event("Shift+Tab (uplink choice -> address field)", "BTab", TAB)
        w.event("keystroke making the address invalid ('x')", "x", KEY, literal=True)
        w.event("Tab showing the field's error under it", "Tab", TAB)
    return w


def walk_generic(s: Session, args: argparse.Namespace) -> Walk:
    w = Walk(s)
    if args.setup_keys:
        s.event(*args.setup_keys.split())
    w.rows.append((f"idle {args.idle:g} s", s.idle(args.idle), IDLE, "cursor blink, clock, timers"))
    w.event(f"keystroke in a field ({args.keystroke!r})", args.keystroke, KEY, literal=True)
    w.event(f"Tab ({args.tab_keys})", args.tab_keys, TAB)
    w.event(f"step change ({args.step_keys})", args.step_keys, KB8)
    if args.back_keys:
        w.event(f"step back ({args.back_keys})", args.back_keys, KB8)
    return w


# ----------------------------------------------------------------------------- CPU quota

class CpuQuota:
    """A cgroup of its own holding what starts in it to quota_ms of CPU per period_ms: cgroup v1
    (cpu.cfs_quota_us / cpu.cfs_period_us) where the cpu controller is mounted alone, else v2
    (cpu.max). `problem` says why there is none (not root, no cpu controller); close() removes it."""

    def __init__(self, quota_ms: int, period_ms: int = 100) -> None:
        self.quota_ms, self.period_ms = quota_ms, period_ms
        self.path: Path | None = None
        self.version = 0
        self.problem = ""
        self.setting = ""
        mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
        v1 = next((m[1] for m in mounts if m[2] == "cgroup" and "cpu" in m[3].split(",")), None)
        v2 = next((m[1] for m in mounts if m[2] == "cgroup2"
                   and "cpu" in self._read(Path(m[1]) / "cgroup.controllers").split()), None)
        try:
            if v1:
                self.path, self.version = Path(v1) / f"edge-bench-{os.getpid()}", 1
                self.path.mkdir()
                (self.path / "cpu.cfs_period_us").write_text(str(period_ms * 1000))
                (self.path / "cpu.cfs_quota_us").write_text(str(quota_ms * 1000))
                self.setting = (f"cgroup v1 cpu.cfs_quota_us={self._read(self.path / 'cpu.cfs_quota_us').strip()} "
                                f"cpu.cfs_period_us={self._read(self.path / 'cpu.cfs_period_us').strip()}")
            elif v2:
                base = Path(v2)
                if "cpu" not in self._read(base / "cgroup.subtree_control").split():
                    (base / "cgroup.subtree_control").write_text("+cpu")
                self.path, self.version = base / f"edge-bench-{os.getpid()}", 2
                self.path.mkdir()
                (self.path / "cpu.max").write_text(f"{quota_ms * 1000} {period_ms * 1000}")
                self.setting = f"cgroup v2 cpu.max={self._read(self.path / 'cpu.max').strip()}"
            else:
                self.problem = "no cgroup with the cpu controller is mounted"
        except OSError as error:
            self.problem = f"cannot set up a cgroup ({error.strerror}: {error.filename}; it needs root)"
            self.close()

    @staticmethod
    def _read(path: Path) -> str:
        try:
            return path.read_text()
        except OSError:
            return ""

    def command(self, cmd: str) -> str:
        """cmd, started inside the cgroup (its shell joins it, then becomes the program)."""
        if self.path is None:
            return cmd
        procs = shlex.quote(str(self.path / "cgroup.procs"))
        return f"sh -c {shlex.quote(f'echo $$ > {procs} && exec {cmd}')}"

    def close(self) -> None:
        """Remove the cgroup once the programs started in it are gone (waits up to 10 s)."""
        if self.path is None:
            return
        for _ in range(200):
            if not self._read(self.path / "cgroup.procs").strip():
                break
            time.sleep(0.05)
        try:
            self.path.rmdir()
        except OSError as error:
            print(f"bench/tui.py: could not remove {self.path}: {error.strerror}", file=sys.stderr)
        else:
            self.path = None


# ----------------------------------------------------------------------------- imports

# Runs the wizard with fd 2 going to the import log (-X importtime writes there) and the UI on
# the terminal, writes a marker at the first frame Textual sends, and quits.
IMPORT_WRAPPER = r"""
import os, sys
tty = os.dup(2)
os.dup2(os.open(os.environ["IMPORT_LOG"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
sys.stderr = sys.__stderr__ = open(tty, "w", buffering=1)
from installer import cli
from screens import terminal
emit = terminal.PlainModeMixin._edge_emit
def first(self, screen, renderable):
    emit(self, screen, renderable)
    if renderable is not None and not getattr(self, "_bench_marked", False):
        self._bench_marked = True
        os.write(2, b"=== FIRST FRAME\n")
        self.call_later(self.exit)
terminal.PlainModeMixin._edge_emit = first
sys.exit(cli.main(sys.argv[1:]))
"""
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")
# What the first frame needs (the command line, the welcome step, build_context's modules);
# the groups are timed on top of it, each in fresh processes: what deferring them would save.
FIRST_FRAME_NEEDS = ["textual.app", "textual.widgets", "installer.planning.plan", "installer.planning.draft",
                     "installer.commands",
                     "screens.terminal", "screens.run", "screens.app", "screens.base", "screens.welcome",
                     "installer.box.discover", "installer.render", "installer.box.stack"]
STEPS_BUT_FIRST = ["screens.topology", "screens.interfaces", "screens.addressing", "screens.wireless",
                   "screens.services", "screens.cloud", "screens.review", "screens.checks", "screens.write",
                   "screens.done"]
GROUPS = [  # (what, modules imported on top of FIRST_FRAME_NEEDS, imported before the first frame now?)
    ("the step modules but the first (welcome)", STEPS_BUT_FIRST, True),
    ("  of which installer.checks runner+report", ["installer.checks.runner", "installer.checks.report"], True),
    ("the other verbs (installer.cli imports them all)", ["installer.cli"], True),
    ("PyYAML (read at the first file loaded)", ["yaml"], False),
    ("validation (at the first Next)", ["installer.planning.validate"], False),
    ("the vendor profiles (catalogue, validation context)", ["installer.vendors.profiles"], False),
    ("installer.checks.planner (every check)", ["installer.checks.planner"], False),
    ("cryptography (x509, AES-GCM, scrypt)", ["cryptography.x509", "cryptography.hazmat.primitives.ciphers.aead",
                                              "cryptography.hazmat.primitives.kdf.scrypt"], False),
    ("dnspython (dns.resolver)", ["dns.resolver"], False),
]
GROUP_TIMING = """
import importlib, sys, time
for m in {base!r}: importlib.import_module(m)
t = time.perf_counter()
for m in {mods!r}: importlib.import_module(m)
print((time.perf_counter() - t) * 1000)
"""


def python_env(args: argparse.Namespace) -> dict[str, str]:
    """This process's environment with the bench's bytecode settings, for plain subprocesses."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({k: v for k, v in environment(args).items() if v is not None})
    return env


def group_cost(mods: list[str], env: dict[str, str], runs: int = 5) -> float | None:
    """Median ms to import mods on top of what the first frame needs, in fresh processes
    (after one discarded run that fills the bytecode cache)."""
    times = []
    for _ in range(runs + 1):
        run = subprocess.run([sys.executable, "-c", GROUP_TIMING.format(base=FIRST_FRAME_NEEDS, mods=mods)],
                             capture_output=True, text=True, cwd=REPO, env=env)
        try:
            times.append(float(run.stdout))
        except ValueError:
            return None
    return statistics.median(times[1:])


def parse_importtime(text: str) -> list[tuple[int, int, int, str]]:
    """(self us, cumulative us, depth, module) for every `-X importtime` line of text."""
    return [(int(m[1]), int(m[2]), len(m[3]) // 2, m[4])
            for line in text.splitlines() if (m := IMPORT_LINE.match(line))]


# Instructions to the first frame: what each program executes until its first frame is written,
# counted by callgrind. Wall time moves with whatever else the machine runs; this count does not
# (the same program, inputs and environment give the same count within ~0.1%). Each program is
# stopped (os._exit) as its first frame is written; the count is the started process's (not the
# wizard's discovery child). The wizard's hook patches screens.terminal as the wizard imports it,
# in its own order, so that the collector and the imports run as they do without it.
FIRST_FRAME_EXIT_WIZARD = r"""
import os
def patch(terminal):
    emit = terminal.PlainModeMixin._edge_emit
    def first(self, screen, renderable):
        emit(self, screen, renderable)
        if renderable is not None:
            os._exit(0)
    terminal.PlainModeMixin._edge_emit = first
""" + PATCH_TERMINAL_AND_RUN
FIRST_FRAME_EXIT_BARE = r"""
import os
from textual.app import App
display = App._display
def first(self, screen, renderable):
    display(self, screen, renderable)
    if renderable is not None:
        os._exit(0)
App._display = first
App().run()
"""
COLLECTED = re.compile(r"^==(\d+)== Collected : (\d+)$", re.M)


def instructions_to_first_frame(code: str, argv: str, args: argparse.Namespace, roots: Roots) -> int | None:
    """Instructions the started process executes until its first frame (the second of two
    runs under callgrind: the first fills the bytecode cache); None without valgrind."""
    if shutil.which("valgrind") is None:
        return None
    count = None
    for n in range(2):
        log = roots.base / f"callgrind-{n}.log"
        out = roots.base / "callgrind.%p"
        cmd = (f"valgrind --tool=callgrind --log-file={shlex.quote(str(log))} "
               f"--callgrind-out-file={shlex.quote(str(out))} {PY} -c {shlex.quote(code)} {argv}")
        with Session(roots.command(cmd), env=environment(args), size=(80, 24), term=args.term, cwd=REPO) as s:
            s.wait_for(s.exited, timeout=300)
        text = log.read_text() if log.exists() else ""
        # The started process's pid opens the log; a forked child's lines carry its own pid.
        started = re.match(r"==(\d+)==", text)
        count = next((int(n) for pid, n in COLLECTED.findall(text) if started and pid == started[1]), None)
    return count


def instructions_report(args: argparse.Namespace, roots: Roots) -> str:
    wizard = instructions_to_first_frame(FIRST_FRAME_EXIT_WIZARD, args.wizard_args, args, roots)
    bare = instructions_to_first_frame(FIRST_FRAME_EXIT_BARE, "", args, roots)
    if not wizard or not bare:
        return "instructions to the first frame: not measured (valgrind is not installed, or no frame was seen)"
    return (f"instructions to the first frame (callgrind; unmoved by other load): wizard {wizard / 1e6:,.0f} M, "
            f"bare App {bare / 1e6:,.0f} M = {wizard / bare:.2f}x")


def import_report(args: argparse.Namespace, roots: Roots) -> list[str]:
    log = roots.base / "imports.log"
    cmd = f"{PY} -X importtime -c {shlex.quote(IMPORT_WRAPPER)} {roots.command(args.wizard_args)}"
    env = {**environment(args), "IMPORT_LOG": str(log)}
    with Session(cmd, env=env, size=(80, 24), term=args.term, cwd=REPO) as s:
        s.wait_for(s.exited, timeout=30)
    text = log.read_text() if log.exists() else ""
    if "=== FIRST FRAME" not in text:
        return ["imports: the wizard did not reach its first frame under -X importtime"]
    wizard = parse_importtime(text.split("=== FIRST FRAME")[0])
    bare_run = subprocess.run([sys.executable, "-X", "importtime", "-c", "from textual.app import App"],
                              capture_output=True, text=True, cwd=REPO, env=python_env(args))
    bare = parse_importtime(bare_run.stderr)
    w_ms, b_ms = sum(r[0] for r in wizard) / 1000, sum(r[0] for r in bare) / 1000
    bare_names = {r[3] for r in bare}
    extra = [r for r in wizard if r[3] not in bare_names]
    out = [f"imports before the first frame (-X importtime, its own overhead included): "
           f"{w_ms:.0f} ms in {len(wizard)} modules; a bare App imports {b_ms:.0f} ms in {len(bare)}; "
           f"the wizard's {len(extra)} more modules: {sum(r[0] for r in extra) / 1000:.0f} ms"]
    by_package: dict[str, int] = {}
    for self_us, _, _, name in extra:
        parts = name.split(".")
        key = ".".join(parts[:2]) if parts[0] in ("installer", "screens") else parts[0]
        by_package[key] = by_package.get(key, 0) + self_us
    top = sorted(by_package.items(), key=lambda kv: -kv[1])[:10]
    out.append("  the extra, by package (self time): " + ", ".join(f"{k} {v / 1000:.1f}" for k, v in top))
    imported = {r[3] for r in wizard}
    out.append("  what deferring would save (ms to import on top of what the first frame needs, median of 5 "
               "fresh processes; 'now' = imported before the first frame today):")
    for what, mods, _ in GROUPS:
        ms = group_cost(mods, python_env(args))
        now = "now" if any(m in imported for m in mods) else "not yet"
        out.append(f"    {what:50} {ms:6.1f} ms  {now}" if ms is not None else f"    {what:50} n/a")
    return out


CATALOG_TIMING = r"""
import time
from importlib import resources
import yaml
from installer.vendors import profiles; from installer.planning import yamlfile
root = resources.files("assets")
def best(n=5):
    times = []
    for _ in range(n):
        t = time.perf_counter(); profiles._load_catalog(root); times.append(time.perf_counter() - t)
    return min(times) * 1000
fast = best() if yaml.__with_libyaml__ else float("nan")  # the loader the product uses: libyaml's
yaml.__with_libyaml__ = False  # as on a box whose PyYAML lacks libyaml: the pure-Python parser
yamlfile.strict_loader.cache_clear()
print(f"{best():.1f} {fast:.1f}")
"""


def catalog_report(args: argparse.Namespace) -> str:
    run = subprocess.run([sys.executable, "-c", CATALOG_TIMING], capture_output=True, text=True, cwd=REPO,
                         env=python_env(args))
    try:
        pure, fast = (float(x) for x in run.stdout.split())
    except ValueError:
        return f"profile catalogue: not measured ({run.stderr.strip()[-200:]})"
    return (f"profile catalogue (4 profiles + protocols; read when a step first needs it, not before the first "
            f"frame): "
            f"{pure:.0f} ms with PyYAML's pure-Python SafeLoader, {fast:.0f} ms with libyaml's CSafeLoader")


# ----------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--cmd", help="a program to measure with the generic events (a shell command)")
    what.add_argument("--demo", action="store_true", help="the demo app (tests/tui_demo_app.py)")
    parser.add_argument("--full-repaints", action="store_true",
                        help="the wizard sends Textual's full repaints instead of changed cells")
    parser.add_argument("--wizard-args", default=f"--plain --root {ROOT_MARK}",
                        help="the wizard's arguments ({root}: a fresh temporary directory)")
    parser.add_argument("--bare", default=BARE, help="the baseline app")
    parser.add_argument("--term", default="vt100")
    parser.add_argument("--lang", default="C.UTF-8")
    parser.add_argument("--no-color", action="store_true", help="run with NO_COLOR=1")
    parser.add_argument("--runs", type=int, default=5, help="start-ups of each app (median)")
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--imports", action="store_true", help="also: what the wizard imports before its first frame")
    parser.add_argument("--instructions", action="store_true",
                        help="also: instructions each executes to its first frame (callgrind; ~1 min)")
    parser.add_argument("--setup-keys", default="", help="generic: tmux keys to reach a field first")
    parser.add_argument("--keystroke", default="1", help="generic: literal text typed in the field")
    parser.add_argument("--tab-keys", default="Tab")
    parser.add_argument("--step-keys", default="C-n", help="generic: tmux keys for a step change")
    parser.add_argument("--back-keys", default="Escape", help="generic: tmux keys to step back")
    parser.add_argument("--quit-keys", default="C-q")
    parser.add_argument("--cold", action="store_true",
                        help="start-up with nothing compiled (no .pyc: a first start from the zipapp)")
    parser.add_argument("--quota", type=int, default=25, metavar="MS",
                        help="also start both (--runs times) held to MS ms of CPU per 100 ms, in a cgroup "
                             "(needs root; 0: not)")
    args = parser.parse_args(argv)

    if not tmux_available():
        print("bench/tui.py: tmux is not installed; nothing measured")
        return 0
    wizard = not (args.cmd or args.demo)
    program = FULL_REPAINTS if args.full_repaints else WIZARD
    cmd = f"{program} {args.wizard_args}" if wizard else (DEMO if args.demo else args.cmd)
    roots = Roots()
    args.pycache = str(roots.base / "pycache")
    quota: CpuQuota | None = None
    quota_runs: dict[str, list[float]] = {"app": [], "bare": []}
    try:
        with Session(roots.command(cmd), env=environment(args), size=(80, 24), term=args.term,
                     cwd=REPO) as s:
            s.settle(timeout=30)
            first = s.size()
            first_complete = s.first_frame_bytes()
            screen = s.screen_text()
            w = walk_wizard(s, args) if wizard else walk_generic(s, args)
            rss_after = s.peak_rss_kb()
            s.mark()
            s.send(*args.quit_keys.split())
            status = s.wait_exit(timeout=10)
            leaving = s.bytes_since_mark()
            high = non_ascii_count(s.data())
            total = s.size()

        # Start-up and memory: the same number of starts of each, interleaved, after one
        # discarded start of each (the first start of a run pays cold caches, and compiles).
        start_once(args.bare, args)
        start_once(roots.command(cmd), args)
        runs: dict[str, tuple[list[float], list[float], list[float]]] = {"app": ([], [], []), "bare": ([], [], [])}
        for _ in range(max(1, args.runs)):
            for name, one in (("bare", args.bare), ("app", cmd)):
                for values, value in zip(runs[name], start_once(roots.command(one), args), strict=True):
                    if value:
                        values.append(value)
        if args.quota > 0:
            # Held to a share of one core, output comes in bursts: wait longer for quiet.
            quota = CpuQuota(args.quota)
            quiet = 0.6 * 100 / min(args.quota, 100)
            for _ in range(max(1, args.runs)):
                for name, one in (("bare", args.bare), ("app", cmd)):
                    value = start_once(quota.command(roots.command(one)), args, quiet=quiet)[0]
                    if value:
                        quota_runs[name].append(value)
        imports = import_report(args, roots) + [catalog_report(args)] if (wizard and args.imports) else []
        if wizard and args.instructions:
            imports.append(instructions_report(args, roots))
    finally:
        roots.close()
        if quota is not None:
            quota.close()
    (startups_app, cpu_app, rss_app), (startups_bare, cpu_bare, rss_bare) = runs["app"], runs["bare"]

    def ratio(a: list[float], b: list[float]) -> float | None:
        return statistics.median(a) / statistics.median(b) if a and b else None

    t_ratio, m_ratio, c_ratio = ratio(startups_app, startups_bare), ratio(rss_app, rss_bare), ratio(cpu_app, cpu_bare)
    first_note = wire(first)
    if first_complete and startups_app:
        # Local start-up plus the time the line needs for the bytes up to the complete frame.
        on_line = statistics.median(startups_app) + first_complete / BAUD_BYTES_S
        first_note += f"; complete at {first_complete:,} B, on the line ~{on_line:.2f} s after exec"
    rows: list[tuple[str, str, str, str]] = [("first frame (until quiet)", f"{first:,} B", "<= 8,192 B", first_note)]
    for label, n, target, note in w.rows:
        verdict = "" if target is None or n is None else (" ok" if n <= target else " MISSED")
        rows.append((label, f"{n:,} B" if n is not None else "n/a",
                     ("<= " if target else "") + f"{target:,} B{verdict}" if target is not None else "", note))
    rows[0] = (rows[0][0], rows[0][1], rows[0][2] + (" ok" if first <= KB8 else " MISSED"), rows[0][3])
    for label, value, note in (
            ("start-up to first frame", t_ratio,
             f"{statistics.median(startups_app):.2f} s vs bare {statistics.median(startups_bare):.2f} s"
             + (f"; CPU {statistics.median(cpu_app):.2f} s vs {statistics.median(cpu_bare):.2f} s = {c_ratio:.2f}x"
                if c_ratio else "") if t_ratio else "no complete frame seen"),
            ("peak memory (VmHWM)", m_ratio,
             f"{statistics.median(rss_app) / 1024:.1f} MB vs bare {statistics.median(rss_bare) / 1024:.1f} MB; "
             f"{rss_after / 1024:.1f} MB after the events" if m_ratio else "")):
        rows.append((label, f"{value:.2f}x" if value else "n/a",
                     "<= 1.30x" + ((" ok" if value <= 1.3 else " MISSED") if value else ""), note))

    print(f"edge-installer TUI bench: 80x24 TERM={args.term} LANG={args.lang}"
          f"{' NO_COLOR=1' if args.no_color else ''}; 115200 baud = {BAUD_BYTES_S:,} B/s")
    shown = f"{WIZARD} {args.wizard_args}, with Textual's full repaints" if args.full_repaints and wizard else cmd
    print(f"app:  {shown}")
    print(f"bare: {args.bare}   (start-up/memory: median of {len(startups_app)} / {len(startups_bare)} starts, "
          f"{'nothing compiled' if args.cold else 'bytecode cached'})")
    widths = [max(len(r[i]) for r in rows + [("event", "measured", "target", "")]) for i in range(3)]
    print("  ".join(h.ljust(w_) for h, w_ in zip(("event", "measured", "target"), widths, strict=True)) + "  notes")
    print("  ".join("-" * w_ for w_ in widths) + "  -----")
    for row in rows:
        print("  ".join(c.ljust(w_) for c, w_ in zip(row, widths, strict=False)) + "  " + row[3])
    if quota is not None:
        limited, limited_bare = quota_runs["app"], quota_runs["bare"]
        if quota.problem or not limited:
            print(f"start-up under a CPU quota of {args.quota} ms per 100 ms: not measured "
                  f"({quota.problem or 'no complete frame seen'})")
        else:
            app_s = statistics.median(limited)
            bare_note = (f"bare {statistics.median(limited_bare):.2f} s = "
                         f"{app_s / statistics.median(limited_bare):.2f}x" if limited_bare else "bare: n/a")
            print(f"start-up to first frame under a CPU quota of {args.quota} ms per 100 ms ({quota.setting}): "
                  f"{app_s:.2f} s (target <= 2.00 s{' ok' if app_s <= 2.0 else ' MISSED'}); {bare_note}; "
                  f"median of {len(limited)} / {len(limited_bare)} starts")
    print(f"exit: {leaving} B, status {status}; bytes >= 0x80 in the whole session: {high} of {total:,}")
    if not screen.strip():
        print("warning: the first screen was empty")
    for line in imports:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
