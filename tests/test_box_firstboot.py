"""edge-installer installed on a real Debian 12 box as README "Installing on a box" says, and
what happens at the box's next power-on (tests/box: a VM under QEMU, wired into the lab).

- First boot: the file as /usr/local/bin/edge-installer and the three units from
  packaging/systemd enabled; at the next power-on tty1 and ttyS0 both offer the wizard
  (systemctl, and "press Enter" on the serial console). Enter on ttyS0 starts it there in
  plain mode; the whole isolated topology is answered over the serial line (bytes in, bytes
  out, read back through a screen model), the live checks run in the box against the lab's
  cloud, the files are written, applied and kept with K, and Done saves the plan. The box
  then holds the plan (addresses read with `ip -j addr`), the consoles get their login
  prompts back, and at the next power-on neither unit starts the wizard again (the plan saved
  by Done is their documented stop condition). Every byte the wizard session sent on the
  serial line is 7-bit; no mouse tracking, no query a VT100 would print as garbage.
- Debian's python3 alone: no pip, no venv, no Textual from Debian; `python3 -I -S` (no site,
  no environment) runs validate and `interfaces --json` from the single file.

NETWORK SAFETY: the VMs have `-nic none` plus taps inside the lab's namespaces only
(tests/box/vm.py, net.py); the only networks anything here reaches are the lab's
198.51.100.0/24 and 203.0.113.0/24.

The guest runs under TCG (slow: the wizard's first frame takes seconds); every wait is for a
text on the screen, bounded, never a sleep.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml

from bench.tuimeasure import MOUSE_MODES, VirtualTerminal, non_ascii_count, split_sequences
from tests.box import product as P
from tests.box.fixtures import boot_box, box_session, pyz  # noqa: F401  (fixtures)
from tests.box.qmp import BoxTimeout
from tests.lab import topology as T

pytestmark = pytest.mark.box

UNIT_NAMES = ("edge-installer-recover.service", "edge-installer-firstboot.service",
              "edge-installer-serial.service")
PROMPT = b"edge-installer: press Enter to set up this box."
STATE = "/var/lib/edge-installer"
FINAL_PLAN = f"{STATE}/plan.yaml"
LOGIN = re.compile(rb"login: ")
KERNEL_LINE = re.compile(rb"\r?\[ *\d+\.\d+\] [^\n]*\n")
KERNEL_PARTIAL = re.compile(rb"\r?\[ *\d*(?:\.\d*)?(?:\] [^\n]*)?$")

# What a terminal sends for each key (xterm/VT100 codes; Textual reads them all).
CTRL_N, TAB, SPACE, DOWN, ENTER = b"\x0e", b"\t", b" ", b"\x1b[B", b"\r"
# Sequences no VT100-class terminal or Linux console must receive (test_serial.clean_bytes).
FORBIDDEN = (*MOUSE_MODES, b"\x1b]22;", b"$p", b"\x1b[?1004h", b"\x1b[?2004h", b"\x1b[>", b"\x1b[<u",
             b"\x1b[?2026", b"\x1b]8;", b"\x1b]52;")

BOOT_TIMEOUT = 300     # a cold boot under TCG on a loaded 2-core machine: 15-90 s measured
STEP_TIMEOUT = 60      # a step change over the serial line (the guest is slow, not the line)
QUIET = 0.4            # no byte for this long: the frame on the console is complete


# ----------------------------------------------------------------------------- installing

def install_as_readme(box, pyz, units: bool = True) -> None:
    """README, "Installing on a box": the file copied over and installed with `install -m
    0755`; the units installed, daemon-reload, enabled. Nothing is run yet (a box imaged this
    way: the first run unpacks the dependencies)."""
    box.write_file("/root/edge-installer.pyz", pyz.read_bytes(), 0o644)
    script = ["install -m 0755 /root/edge-installer.pyz /usr/local/bin/edge-installer"]
    if units:
        box.exec(["mkdir", "-p", "/root/packaging/systemd"], check=True)
        for name in UNIT_NAMES:
            box.write_file(f"/root/packaging/systemd/{name}", (P.UNITS / name).read_bytes(), 0o644)
        script += ["cd /root",
                   "install -m 0644 packaging/systemd/*.service /etc/systemd/system/",
                   "systemctl daemon-reload",
                   "systemctl enable " + " ".join(UNIT_NAMES)]
    box.sh("\n".join(script), timeout=120)


def power_cycle(box) -> None:
    """Everything on disk (sync), then the plug pulled and put back: a new QEMU on the same
    disk. Faster than `systemctl reboot` under TCG (no shutdown), and what a box gets."""
    box.exec(["sync"], timeout=120, check=True)
    box.power_cut()
    box.start()


def unit(box, name: str) -> dict[str, str]:
    """A few of the unit's properties as systemd has them."""
    out = box.exec(["systemctl", "show", name, "-p", "ActiveState", "-p", "SubState", "-p", "UnitFileState",
                    "-p", "ConditionResult", "-p", "ExecMainStatus", "-p", "Result", "-p", "MainPID"]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def vcs1(box) -> str:
    """What the screen (tty1) shows, its rows joined by single spaces."""
    return " ".join(box.exec(["cat", "/dev/vcs1"]).stdout.split())


# ----------------------------------------------------------------------------- the console

class Console:
    """The box's serial console as the wizard draws it: what arrived since `start` fed to an
    80x24 screen model, without the kernel's messages.

    The kernel prints its messages on its console (console=ttyS0, no `quiet`: warnings too,
    such as "hrtimer: interrupt took N ns" on a slow guest) wherever the cursor is, between
    any two bytes of the wizard's; a terminal shows them over the wizard's screen until those
    cells change again or Ctrl+L repaints them. The model leaves them out (and keeps them in
    `kernel`), so the test reads the wizard's screen; the byte checks see every byte."""

    def __init__(self, serial, start: int) -> None:
        self.serial = serial
        self.start = start
        self.fed = start
        self.held = b""
        self.kernel: list[bytes] = []
        self.vt = VirtualTerminal(80, 24)

    def text(self) -> str:
        data = self.serial.received
        chunk = self.held + data[self.fed:]
        self.fed = len(data)
        chunk = KERNEL_LINE.sub(lambda m: self.kernel.append(m.group()) or b"", chunk)
        partial = KERNEL_PARTIAL.search(chunk)  # a message that may still be arriving
        cut = partial.start() if partial else len(chunk)
        self.vt.feed(chunk[:cut])
        self.held = chunk[cut:]
        return self.vt.text()

    def settled(self, quiet: float = QUIET) -> bool:
        """Nothing more arrived for `quiet` seconds: the frame on screen is complete (a frame
        is written at once, but a poll may fall between two reads of it)."""
        before = len(self.serial.received)
        time.sleep(quiet)
        return len(self.serial.received) == before

    def wait(self, *texts: str, timeout: float = STEP_TIMEOUT) -> str:
        """The screen once every text is on it and the output has settled (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.text()
            if all(t in shown for t in texts) and self.settled():
                shown = self.text()
                if all(t in shown for t in texts):
                    return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"{texts} not on the serial console after {timeout:g} s:\n{shown}")
            time.sleep(0.2)

    def wait_regex(self, pattern: str, timeout: float = STEP_TIMEOUT) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.text()
            m = re.search(pattern, " ".join(shown.split()))
            if m and self.settled():
                return re.search(pattern, " ".join(self.text().split())) or m
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not on the serial console after {timeout:g} s:\n{shown}")
            time.sleep(0.2)

    def key(self, data: bytes, then: str | None = None, timeout: float = STEP_TIMEOUT) -> str:
        self.serial.write(data)
        return self.wait(then, timeout=timeout) if then is not None else self.text()

    def type(self, text: str, timeout: float = STEP_TIMEOUT) -> str:
        """Typed as a burst (as a terminal sends a paste), then read back on the screen."""
        return self.key(text.encode("ascii"), then=text, timeout=timeout)


def step(screen: str) -> str:
    m = re.search(r"Step \d+ of \d+: [^\n]*", screen)
    return m.group(0).strip() if m else "?"


def clean_bytes(data: bytes) -> None:
    """Only what a VT100 or the Linux console understands: 7-bit, no mouse, no queries, no
    control character in the text but CR, LF, BS and BEL."""
    high = [i for i, b in enumerate(data) if b >= 0x80]
    assert not high, f"{len(high)} bytes >= 0x80, the first in {data[max(0, high[0] - 60):high[0] + 20]!r}"
    for seq in FORBIDDEN:
        assert seq not in data, seq
    for kind, chunk in split_sequences(data):
        if kind == "text":
            assert not re.search(rb"[\x00-\x07\x0b-\x0c\x0e-\x1a\x1c-\x1f\x7f]", chunk), chunk[:60]


# ----------------------------------------------------------------------------- the tests

def test_first_boot_wizard_on_the_serial_console_sets_up_the_box(boot_box, pyz):
    started = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - started, 1)

    box = boot_box("networkd")
    assert box.exec(["test", "-e", "/var/cache/edge-installer"]).returncode != 0  # never run here
    install_as_readme(box, pyz)
    for name in UNIT_NAMES:
        assert unit(box, name)["UnitFileState"] == "enabled", name
    lap("installed")

    # --- the next power-on: both consoles offer the wizard -----------------------------------
    power_cycle(box)
    serial = box.serial(0)
    serial.read_until(PROMPT, timeout=BOOT_TIMEOUT)
    boot_log = serial.received
    box.wait_ready(timeout=BOOT_TIMEOUT)
    lap("booted")
    for name in ("edge-installer-serial.service", "edge-installer-firstboot.service"):
        u = unit(box, name)
        assert (u["ActiveState"], u["SubState"]) == ("active", "running"), (name, u)
    # Each has taken its console from the login prompt.
    for getty in ("serial-getty@ttyS0.service", "getty@tty1.service"):
        assert unit(box, getty)["ActiveState"] == "inactive", getty
    # The screen (tty1, read back through /dev/vcs1) says the same.
    tty1 = P.wait_until(lambda: (lambda t: t if PROMPT.decode() in t else None)(vcs1(box)), 60,
                        "tty1 offers the wizard")
    assert "login:" not in tty1, tty1
    # Nothing was interrupted: the recover unit had nothing to do and was skipped.
    assert unit(box, "edge-installer-recover.service")["ConditionResult"] == "no"

    # --- Enter on the serial console: the wizard there, plain ---------------------------------
    con = Console(serial, len(serial.received))
    serial.write(ENTER)
    # The first run unpacks the dependencies (as root, into /var/cache/edge-installer) first.
    shown = con.wait("Step 1 of 10: Welcome", "Ctrl+N next", timeout=240)
    lap("wizard")
    assert "Display: plain ASCII" in shown, shown
    assert "eno1" in shown and "enp2s0" in shown, shown
    assert "systemd-networkd" in shown, shown
    fb = unit(box, "edge-installer-firstboot.service")
    assert fb["ActiveState"] == "inactive", fb  # Enter here gave tty1 back to its getty
    ps = box.exec(["ps", "-o", "args=", "-p", unit(box, "edge-installer-serial.service")["MainPID"]]).stdout
    assert "/usr/local/bin/edge-installer --plain" in ps, ps
    pid = unit(box, "edge-installer-serial.service")["MainPID"]
    env = box.exec(["sh", "-c", f"tr '\\0' '\\n' < /proc/{pid}/environ"]).stdout
    assert "TERM=vt220" in env.splitlines(), env

    # Welcome: a new plan.
    con.key(CTRL_N, then="Step 2 of 10: Topology")
    # Topology: isolated is the recommended default, chosen.
    assert "(*) Isolated networks" in con.text(), con.text()
    con.key(CTRL_N, then="Step 3 of 10: Interfaces")
    # Interfaces: the seed's names, which this box has: eno1 to the machines, enp2s0 uplink.
    shown = con.wait("eno1", "enp2s0")
    fields = re.findall(r"^\s*(eno1|enp2s0)\s*$", shown, re.M)
    assert fields == ["eno1", "enp2s0"], shown
    con.key(CTRL_N, then="Step 4 of 10: Addressing")
    # Addressing: the machine network's address typed; the uplink static.
    con.type(f"{T.EDGE_MACHINE}/{T.PREFIX}")
    con.key(TAB)                                      # the uplink's DHCP/static choice
    con.key(DOWN + SPACE, then="Uplink address/prefix")
    con.key(TAB)
    con.type(f"{T.EDGE_UPLINK}/{T.PREFIX}")
    con.key(TAB)
    con.type(T.GATEWAY)
    con.key(CTRL_N, then="Step 5 of 10: DNS, time and proxy")
    # DNS and NTP: custom, the lab's servers.
    con.key(DOWN + DOWN + SPACE, then="DNS servers (IP addresses)")
    con.key(TAB)
    con.type(T.DNS)
    con.key(TAB)                                      # the NTP choice
    con.key(DOWN + DOWN + SPACE, then="NTP servers (names or IPs)")
    con.key(TAB)
    con.type(T.NTP)
    con.key(CTRL_N, then="Step 6 of 10: Cloud and machines")
    # Cloud: MachineMetrics, ticked in a new plan.
    assert re.search(r"\[X\] MachineMetrics", con.text()), con.text()
    con.key(CTRL_N, then="Step 7 of 10: Review")
    lap("answered")

    # Live checks: they run as soon as the step is shown, in the box, against the lab's cloud.
    con.key(CTRL_N, then="Step 8 of 10: Live checks")
    m = con.wait_regex(r"(\d+) passed, (\d+) warnings?, (\d+) failed, (\d+) skipped", timeout=180)
    passed, warned, failed, skipped = map(int, m.groups())
    lap("checks")
    assert passed > 0, con.text()  # each check's verdict is read from the saved report below
    con.key(CTRL_N)
    if failed:  # failures do not block Next; Next asks once more
        con.wait("failed. The IT team can fix the firewall later")
        con.key(CTRL_N)
    con.wait("Step 9 of 10: Write the files")

    # Write and apply: tick, W; netplan apply and the re-check run; K keeps the change.
    con.key(SPACE, then="[X] Yes, write these files now")
    con.key(b"w", then="Press K to KEEP", timeout=240)
    lap("applied")
    con.key(b"k", then="Done.", timeout=STEP_TIMEOUT)
    con.key(CTRL_N, then="Step 10 of 10: Done", timeout=STEP_TIMEOUT)
    shown = con.wait("Plan (mode 0600", timeout=STEP_TIMEOUT)
    assert "Applied and confirmed on this box." in " ".join(shown.split()), shown
    session_end = len(serial.received)
    con.key(CTRL_N)  # Finish
    # The wizard ends; the serial console gets its login prompt back.
    serial.mark()
    serial.read_until(LOGIN, timeout=STEP_TIMEOUT)
    lap("finished")
    wizard_bytes = serial.received[con.start:session_end]
    con.text()
    after = serial.received[session_end:]

    # --- on the box: the files, in effect ---------------------------------------------------
    st = P.state(box)
    assert st["addresses"].get(T.UPLINK_IF) == [f"{T.EDGE_UPLINK}/{T.PREFIX}"], st
    assert st["addresses"].get(T.MACHINE_IF) == [f"{T.EDGE_MACHINE}/{T.PREFIX}"], st
    assert st["default_routes"] == [(T.GATEWAY, T.UPLINK_IF)], st
    assert T.DNS in st["dns"], st["dns"]
    assert T.NTP in st["ntp"], st["ntp"]
    # The checks ran in the box against the lab's cloud: its DNS, NTP, HTTPS and NATS answered;
    # the only failures are TLS, whose certificates come from the lab's own CA, which a plan made
    # in the wizard does not name (tls.extra_ca_file): the checks call that interception.
    rows = re.findall(r"^\| (PASS|WARN|FAIL|SKIP) \| ([a-z-]+) \| ([^|]*?) \| ([a-z-]+) \|",
                      box.read_file(f"{STATE}/report.md").decode(), re.M)
    assert len(rows) == passed + warned + failed + skipped, rows
    verdicts = {(check, target): (status, diagnosis) for status, check, target, diagnosis in rows}
    assert verdicts[("dns-resolver", T.DNS)][0] == "PASS", verdicts
    assert verdicts[("ntp-server", T.NTP)][0] == "PASS", verdicts
    assert any(c == "tcp-connect" and v[0] == "PASS" for (c, _), v in verdicts.items()), verdicts
    assert {(c, v[1]) for (c, _), v in verdicts.items() if v[0] == "FAIL"} <= {("tls-verify", "tls-intercepted")}, \
        [(k, v) for k, v in verdicts.items() if v[0] == "FAIL"]
    saved = yaml.safe_load(box.read_file(FINAL_PLAN))
    assert saved["topology"] == "isolated", saved
    assert saved["machine_network"] == {"interfaces": ["eno1"], "address": f"{T.EDGE_MACHINE}/{T.PREFIX}"}, saved
    assert saved["uplink"] == {"interface": "enp2s0", "ipv4": "static", "address": f"{T.EDGE_UPLINK}/{T.PREFIX}",
                               "gateway": T.GATEWAY}, saved
    assert box.sh(f"stat -c %a {FINAL_PLAN}").strip() == "600"
    assert "90-edge-installer.yaml" in box.sh("ls /etc/netplan")
    for name in ("edge-installer-serial.service", "edge-installer-firstboot.service"):
        assert unit(box, name)["ActiveState"] == "inactive", name
    assert unit(box, "serial-getty@ttyS0.service")["ActiveState"] == "active"
    assert unit(box, "getty@tty1.service")["ActiveState"] == "active"
    assert "login:" in P.wait_until(lambda: (lambda t: t if "login:" in t else None)(vcs1(box)), 30, "tty1 login")

    # --- every byte of the wizard session on the serial line ------------------------------------
    clean_bytes(wizard_bytes)
    assert non_ascii_count(after) == 0, after[-300:]
    assert b"\x1b[?1049l" in wizard_bytes[-200:] + after[:400]  # the terminal restored on leaving

    # --- the next power-on: the box is set up, the consoles keep their login prompts ---------------
    print(f"first boot: {timings}; checks {passed} passed, {warned} warnings, {failed} failed, {skipped} "
          f"skipped; wizard session {len(wizard_bytes)} bytes on ttyS0, kernel messages among them: "
          f"{[m.strip().decode('ascii', 'replace') for m in con.kernel]}; non-ASCII bytes on the console while "
          f"booting (systemd's, before the wizard): {non_ascii_count(boot_log)}", flush=True)
    power_cycle(box)
    serial = box.serial(0)
    box.wait_ready(timeout=BOOT_TIMEOUT)
    lap("rebooted")
    # The Done step's plan stops both units: whether systemd skips them (a condition) or they
    # end at once, neither offers the wizard nor runs it.
    for name in ("edge-installer-serial.service", "edge-installer-firstboot.service"):
        def ended(name: str = name) -> dict[str, str] | None:
            u = unit(box, name)
            return u if u["ActiveState"] in ("inactive", "failed") else None

        u = P.wait_until(ended, 30, f"{name} ended")
        assert u["ActiveState"] == "inactive" and (u["ConditionResult"] == "no" or u["ExecMainStatus"] == "0"), \
            (name, u)
    assert box.exec(["pgrep", "-f", "edge-installer"]).returncode != 0
    rec = unit(box, "edge-installer-recover.service")
    assert rec["ConditionResult"] == "yes" and rec["Result"] == "success", rec  # a backup set exists now
    st2 = P.state(box)
    assert st2["addresses"].get(T.UPLINK_IF) == [f"{T.EDGE_UPLINK}/{T.PREFIX}"], st2
    assert st2["addresses"].get(T.MACHINE_IF) == [f"{T.EDGE_MACHINE}/{T.PREFIX}"], st2
    # README: "from then on both units are skipped and the consoles keep their usual login prompts".
    try:
        serial.read_until(LOGIN, timeout=30)
    except BoxTimeout:
        gettys = {g: unit(box, g) for g in ("serial-getty@ttyS0.service", "getty@tty1.service")}
        journal = box.exec(["journalctl", "-b", "--no-pager", "-u", "edge-installer-serial", "-u",
                            "edge-installer-firstboot", "-u", "serial-getty@ttyS0", "-u", "getty@tty1"]).stdout
        pytest.fail("no login prompt on ttyS0 after setup: the enabled edge-installer units Conflict= with the "
                    "gettys, so the boot transaction drops the gettys' start jobs; the units' "
                    "ConditionPathExists=!plan.yaml then skips them, and a skipped unit runs no ExecStopPost to "
                    f"start the getty again.\n{gettys}\n{journal}", pytrace=False)
    assert PROMPT not in serial.received, serial.received[-600:]
    assert unit(box, "serial-getty@ttyS0.service")["ActiveState"] == "active"
    assert unit(box, "getty@tty1.service")["ActiveState"] == "active"
    tty1 = P.wait_until(lambda: (lambda t: t if "login:" in t else None)(vcs1(box)), 30, "tty1 login")
    assert PROMPT.decode() not in tty1, tty1


def test_the_zipapp_runs_on_debians_python3_alone(boot_box, pyz):
    box = boot_box("networkd")
    # Debian's python3 and nothing else: no pip, no venv module, no Textual. (netplan.io brings
    # Debian's PyYAML, netifaces and Rich 13 into dist-packages; `-S` keeps them off sys.path.)
    assert box.exec(["/usr/bin/python3", "-c", "import pip"]).returncode != 0
    assert box.exec(["/usr/bin/python3", "-c", "import ensurepip"]).returncode != 0
    for module in ("textual", "cryptography", "dns", "ntplib"):
        assert box.exec(["/usr/bin/python3", "-c", f"import {module}"]).returncode != 0, module
    assert box.exec(["test", "-e", "/usr/lib/python3/dist-packages/textual"]).returncode != 0
    assert box.exec(["sh", "-c", "command -v pip pip3"]).returncode != 0
    assert box.exec(["sh", "-c", "ls -d /usr/lib/python3*/venv /usr/lib/python3*/ensurepip/_bundled/*.whl"]
                    ).returncode != 0
    version = box.exec(["/usr/bin/python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).stdout.strip()
    assert version == "3.11", version

    install_as_readme(box, pyz, units=False)
    box.write_file(P.CA, box.lab.public_ca_file.read_bytes(), 0o644)
    plan = P.plan_for(box.lab)
    P.put_plan(box, plan)
    run = ["/usr/bin/python3", "-I", "-S", P.BIN]
    # The first run unpacks the payload (as root, into /var/cache/edge-installer/<build>).
    done = box.exec([*run, "validate", P.PLAN], timeout=300)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert box.exec(["sh", "-c", "ls /var/cache/edge-installer/*/.complete"]).returncode == 0
    # A plan with a problem: exit 2, one line naming the field.
    bad = dict(plan, machine_network={**plan["machine_network"], "address": "198.51.100.300/24"})
    P.put_plan(box, bad, "/root/bad.yaml")
    done = box.exec([*run, "validate", "/root/bad.yaml"], timeout=120)
    assert done.returncode == 2 and "machine_network.address" in done.stdout + done.stderr, (done.stdout, done.stderr)
    done = box.exec([*run, "interfaces", "--json"], timeout=120)
    assert done.returncode == 0, (done.stdout, done.stderr)
    found = json.loads(done.stdout)
    names = {i["name"]: i for i in found["interfaces"]}
    assert {"eno1", "enp2s0"} <= set(names), names
    assert names["eno1"]["kind"] == names["enp2s0"]["kind"] == "wired", names
    assert found["stack"]["networkd_running"] is True, found["stack"]
