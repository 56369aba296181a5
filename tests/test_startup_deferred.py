"""The wizard's first frame waits only for what the welcome step shows (issue 14, start-up).

What the welcome step does not need is imported, read or run later: the other steps' screens,
PyYAML, validation, the vendor profiles, the checks, dnspython, cryptography, the bundle code.
The wizard is started for real (`edge-installer --plain --root TMP` in a terminal) and, at the
moment its first frame is written, says which modules it had imported: a module deferred for
speed that comes back before the first frame fails here (bench/tui.py says what it costs).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path

import pytest

from bench.tuimeasure import PATCH_TERMINAL_AND_RUN, Session, tmux_available
from installer.box.discover import Inventory

REPO = Path(__file__).resolve().parent.parent

# Imported later than the first frame, each at the step (or the action) that needs it.
DEFERRED = [
    "yaml",                           # installer.planning.yamlfile: at the first file read or written
    "installer.planning.validate",    # screens.base: at the first Next
    "installer.writing.writer",       # the draft: at its first save (json, hashlib, tempfile with it)
    "installer.box",                  # the box's facts: the welcome step shows the discovery's own table
    "installer.render",               # the render target: at the review and write steps
    "installer.vendors.profiles",     # the catalogue: at the first step that shows it
    "installer.checks",               # the checks step
    "installer.fleet.bundle",         # a bundle given at the welcome step (cryptography)
    "cryptography",
    "dns",
    "screens.topology", "screens.interfaces", "screens.addressing", "screens.wireless", "screens.services",
    "screens.cloud", "screens.review", "screens.checks", "screens.write", "screens.done", "screens.perbox",
]

# Runs the wizard's command line in the terminal; when the first frame is written, records the
# screen, the modules imported and whether the garbage collector runs, then (1 s later, when the
# collector should run again) whether it does, and quits.
PROBE = r"""
import gc, json, os, sys
out = os.environ["PROBE_OUT"]

def patch(terminal):
    emit = terminal.PlainModeMixin._edge_emit
    def first(self, screen, renderable):
        emit(self, screen, renderable)
        if renderable is None or getattr(self, "_probed", False):
            return
        self._probed = True
        seen = {"screen": type(screen).__name__, "modules": sorted(sys.modules), "gc_at_first_frame": gc.isenabled()}
        def later():
            seen["gc_after"] = gc.isenabled()
            with open(out, "w") as f:
                json.dump(seen, f)
            self.exit()
        self.set_timer(1.0, later)
    terminal.PlainModeMixin._edge_emit = first

""" + PATCH_TERMINAL_AND_RUN


def wizard_with(probe: str, out_var: str, tmp_path: Path, out: Path) -> Session:
    """A Session (not started) of the wizard's command line run through `probe`, which
    writes what it sees to the file in $out_var; under a new --root, at 80x24, TERM=vt100."""
    if not tmux_available():
        if os.geteuid() == 0 or os.environ.get("CI"):
            pytest.fail("tmux is missing (./dev installs it): the start-up test must run")
        pytest.skip("tmux is not installed")
    root = tmp_path / "root"
    root.mkdir()
    cmd = shlex.join([sys.executable, "-c", probe, "--plain", "--root", str(root)])
    env = {"LANG": "C.UTF-8", "PYTHONPATH": str(REPO), out_var: str(out)}
    return Session(cmd, env=env, size=(80, 24), term="vt100", cwd=REPO)


def first_frame(tmp_path: Path) -> dict:
    out = tmp_path / "probe.json"
    with wizard_with(PROBE, "PROBE_OUT", tmp_path, out) as s:
        assert s.wait_for(out.exists, timeout=60), f"no first frame seen:\n{s.screen_text()}"
        s.wait_exit(timeout=10)
    return json.loads(out.read_text())


def test_the_first_frame_waits_for_nothing_the_welcome_step_does_not_show(tmp_path):
    seen = first_frame(tmp_path)
    assert seen["screen"] == "WelcomeScreen"
    modules = seen["modules"]
    # The test suite's network interlock (installer/__init__.py) is installed in every process
    # the tests start, the wizard's too: not the wizard's doing.
    guard = {"installer.checks", "installer.checks.netguard"} if os.environ.get("EDGE_INSTALLER_NET_GUARD") else set()
    early = sorted(m for m in set(modules) - guard if any(m == d or m.startswith(d + ".") for d in DEFERRED))
    assert early == [], f"imported before the first frame, deferred for speed: {early}"
    # ...and what it does show was there (the probe saw the wizard, not an empty start).
    assert {"screens.welcome", "textual.app"} <= set(modules)


def test_the_collector_waits_for_the_first_frame_and_runs_after_it(tmp_path):
    seen = first_frame(tmp_path)
    assert seen["gc_at_first_frame"] is False
    assert seen["gc_after"] is True


def test_discovery_in_the_background_gives_what_discover_gives(monkeypatch):
    """In the wizard's process (one thread) discover() runs in a forked child; here, beside
    pytest's threads or not, the inventory and its errors are the ones discover() gives."""
    from installer.box import discover as discover_mod
    from screens.run import Discovery, build_context

    fixed = Inventory.from_json({"interfaces": [{"name": "eno1", "kind": "wired", "mac": None, "carrier": True}],
                                 "default_gateways": [], "stack": {}})
    monkeypatch.setattr(discover_mod, "discover", lambda: (time.sleep(0.05), fixed)[1])
    context = build_context(Path("/"), "test", Discovery())
    assert context.inventory == fixed
    assert context.interfaces_table(76) == discover_mod.format_table(fixed, width=76)

    def broken() -> Inventory:
        raise PermissionError(13, "Permission denied", "/sys/class/net")

    monkeypatch.setattr(discover_mod, "discover", broken)
    with pytest.raises(PermissionError):  # raised where the wizard waits for it, as if called there
        Discovery().result()
    # ...and before the wizard runs, not inside a step: the start ends with one line (installer.cli).
    with pytest.raises(PermissionError):
        build_context(Path("/"), "test", Discovery())
    with pytest.raises(PermissionError):
        build_context(Path("/"), "test")


# In a process of one thread, as the wizard's: the child is forked, its inventory is the one
# discover() gives in this process, a child that fails is replaced by discover() here (whose
# error is then raised here), and every child is reaped, asked for its result or not.
FORKED = r"""
import json, os, sys
from installer.box import discover as discover_mod
from screens.run import Discovery

out = {}
d = Discovery()
out["forked"] = d._child is not None
child = d._child[0] if d._child else None
out["table"] = d.table(76) == discover_mod.format_table(discover_mod.discover(), width=76)
out["same"] = d.result() == discover_mod.discover()
out["reaped"] = child is not None and not os.path.exists(f"/proc/{child}")

def broken():
    raise PermissionError(13, "Permission denied", "/sys/class/net")
discover_mod.discover = broken
d = Discovery()
try:
    d.result()
    out["error"] = None
except PermissionError as e:
    out["error"] = e.filename
d = Discovery()
child = d._child[0] if d._child else None
d.close()
out["closed_reaped"] = child is not None and not os.path.exists(f"/proc/{child}")
print(json.dumps(out))
"""


def test_discovery_is_forked_in_a_process_of_one_thread():
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", FORKED], capture_output=True, text=True, timeout=60, env=env,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # the failing child left without a traceback
    assert json.loads(done.stdout) == {"forked": True, "table": True, "same": True, "reaped": True,
                                       "error": "/sys/class/net", "closed_reaped": True}


# Records each write the wizard's terminal driver makes, in order, to WRITES_OUT.
WRITES = r"""
import json, os, sys
from textual.drivers.linux_driver import LinuxDriver
out = open(os.environ["WRITES_OUT"], "w")
write = LinuxDriver.write
def recorded(self, data):
    out.write(json.dumps(data) + "\n")
    out.flush()
    write(self, data)
LinuxDriver.write = recorded
from installer import cli
sys.exit(cli.main(sys.argv[1:]))
"""


def test_the_first_frame_is_the_whole_welcome_step_in_one_piece(tmp_path):
    """Textual lays the first step out inside its start-up batch and drops that frame; the
    screen then came in pieces (the title and table first, the plan field's placeholder in a
    later frame). The wizard holds that frame and writes it when the batch ends: the first
    write that paints anything already paints everything the settled screen shows."""
    from bench.tuimeasure import VirtualTerminal

    out = tmp_path / "writes.jsonl"
    with wizard_with(WRITES, "WRITES_OUT", tmp_path, out) as s:
        s.settle(quiet=1.0, timeout=60)
        writes = [json.loads(line) for line in out.read_text().splitlines()]  # before the quit clears it
        s.send("C-q")
        s.wait_exit(timeout=10)
    final = VirtualTerminal(80, 24)
    final.feed("".join(writes))
    # The plan field's placeholder is the piece that came last.
    assert "Step 1 of" in final.text() and "/path/to/plan.yaml" in final.text(), final.text()
    shown = VirtualTerminal(80, 24)
    for data in writes:
        shown.feed(data)
        if shown.text().strip():  # the first write that shows any text
            break
    assert shown.text() == final.text(), f"the first frame lacked what the settled screen shows:\n{shown.text()}"
