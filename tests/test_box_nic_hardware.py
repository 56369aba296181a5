"""Ports on a NIC that is not virtio (issue 12, parts 2 and 4), proven on a booted box whose
eno1 is QEMU's Intel 82574L, driven by Linux's e1000e, beside the lab's virtio-net enp2s0:

- identify: the wizard's interfaces step, run in the box from the installed edge-installer (its
  own Textual screens, headless at 80x24, on the box's own ports), gets I on eno1: `ethtool -p`
  succeeds and the step says the LED blinked. The LED itself is seen from outside the guest:
  QEMU traces every register the guest writes to the 82574L (`-trace e1000e_core_write`), and
  the LED control register (LEDCTL, offset 0x0E00) is written over and over while I blinks, one
  LED's mode switched between "on" and "off" (e1000e cycles it for the 82574, measured: a write
  every 250 ms), and put back to what it held before when the blink ends.
  I on the virtio port still says its driver cannot;
- a role bound by driver (`ports: {lan0: {driver: e1000e}}`): unique on this box, so apply gives
  the e1000e port the plan's name and address, and the link check finds it by its driver.

One VM of its own (the session's networkd box has two virtio NICs; the VM's snapshots are kept
apart by its device set, tests.box.vm), booted cold once for the module: ~1-2 min under TCG.
How the VM's command line carries the NIC model and the trace, and why a snapshot of another
device set is never loaded, is tested without a VM.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import tempfile
import time
from pathlib import Path

import pytest

from tests.box import product as P
from tests.box.fixtures import BoxSession, box_session, nics_for, pyz  # noqa: F401  (fixtures)
from tests.box.image import ImageSet
from tests.box.net import BoxLab, lab_name, sweep_stale_boxlabs
from tests.box.qmp import BoxError
from tests.box.vm import Box, Nic
from tests.lab import topology as T
from tests.test_box_ports import apply_bound, check_json, link_results

DRIVER = "e1000e"
# Every register the guest writes, and reads (the driver reads LEDCTL's value at probe: what it
# puts back after a blink).
TRACE = ("e1000e_core_write", "e1000e_core_read")
# The 82574L's LED control register (Intel 82574 datasheet, 10.2.2.13): byte offset 0x0E00,
# which is what QEMU's trace line prints ("Write to register 0xe00": index << 2).
LEDCTL = 0x0E00
# An LED's mode (the low 4 bits of its byte in LEDCTL): 0xE "LED on", 0xF "LED off".
LED_ON, LED_OFF = 0xE, 0xF
IDENTIFY_S = 4
LAN = "lan0"
_TRACED = re.compile(r"^\d+@(\d+\.\d+):e1000e_core_(read|write) (?:Read from|Write to) register "
                     r"0x([0-9a-f]+), \d+ byte\(s\), value: 0x([0-9a-f]+)", re.M)

# Runs in the box, on the edge-installer the box has (unpacked by its first run under
# /var/cache/edge-installer) and the wizard test helpers (tests/wizard_helpers.py, copied in):
# the interfaces step on the box's own ports; I on each port named in argv[2:], one after the
# other. Prints one JSON object: the note each port got.
IN_BOX = r'''
import asyncio, glob, json, sys, time
from pathlib import Path
sys.path[:0] = sorted(glob.glob("/var/cache/edge-installer/*/site-packages"))[-1:] + ["/root/wizard-helpers"]
from installer.box.discover import discover
from installer.planning.plan import MachineNetwork, Plan, Uplink
from tests.wizard_helpers import focus, keys, new_wizard, until

SECONDS, NAMES = int(sys.argv[1]), sys.argv[2:]
seen = {}

async def main():
    plan = Plan(topology="isolated", machine_network=MachineNetwork(("eno1",)), uplink=Uplink("enp2s0"))
    app = new_wizard(Path("/root/wizard-root"), plan=plan, start_step="interfaces", inventory=discover())
    app.context.extras.update(sys_class_net="/sys/class/net", identify_s=SECONDS)
    async with app.run_test(size=(80, 24)) as pilot:
        ports = app.screen.query_one("#detected")
        await focus(pilot, ports)
        for name in NAMES:
            while ports.chosen_name != name:
                await keys(pilot, "down")
            n = ports.chosen
            note = ports.query_one(f"#note-{n}")
            await keys(pilot, "i")
            started = time.time()
            await until(pilot, lambda: note.text and not note.text.startswith("Blinking"), SECONDS + 30)
            seen[name] = {"note": note.text, "pressed": started, "answered": time.time()}
    print(json.dumps(seen))

asyncio.run(main())
'''


@pytest.fixture(scope="module")
def hardware_box(box_session: BoxSession, pyz: Path, variant: str):
    """The variant's image on a VM of its own whose eno1 is an e1000e (QEMU traces its register
    writes), on a lab of the session's (torn down with it), edge-installer installed."""
    image = box_session.image(variant)
    key = f"{variant}-{DRIVER}"
    if key not in box_session.boxes:
        if not box_session.labs:
            sweep_stale_boxlabs()
        name = lab_name(len(box_session.labs))
        workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        lab = box_session.labs[key] = BoxLab(name, workdir)
        lab.up()
        nics = [dataclasses.replace(n, model=DRIVER) if n.name == T.MACHINE_IF else n
                for n in nics_for(variant, lab)]
        box = box_session.boxes[key] = Box(image, workdir / "box", netns=lab.edge_ns, nics=nics,
                                           name=f"box-{key}", lab=lab, trace=TRACE)
        box.start()
        box.wait_ready()
        P.install(box, pyz, timeout=300)
    return box_session.boxes[key]


@pytest.fixture
def hw_box(hardware_box: Box):
    """The module's e1000e box, running (the session pauses its VMs between tests)."""
    hardware_box.resume()
    try:
        yield hardware_box
    finally:
        hardware_box.pause()


def ledctl(box: Box, access: str = "write") -> list[tuple[float, int]]:
    """(host time, value) of every `access` ("read" or "write") the guest made to the e1000e's
    LEDCTL, from QEMU's trace."""
    text = (box.dir / "qemu.log").read_text(errors="replace")
    return [(float(t), int(v, 16)) for t, kind, reg, v in _TRACED.findall(text)
            if kind == access and int(reg, 16) == LEDCTL]


def trace_tail(box: Box, lines: int = 25) -> str:
    text = (box.dir / "qemu.log").read_text(errors="replace").splitlines()
    return f"--- {box.dir / 'qemu.log'} ({len(text)} lines; last {lines}):\n" + "\n".join(text[-lines:])


def identify_in_box(box: Box, *names: str) -> dict:
    """The wizard's interfaces step in the box, I pressed on each port of `names`; the notes."""
    helpers = P.REPO / "tests" / "wizard_helpers.py"
    box.sh("mkdir -p /root/wizard-helpers/tests /root/wizard-root")
    box.write_file("/root/wizard-helpers/tests/__init__.py", "")
    box.write_file("/root/wizard-helpers/tests/wizard_helpers.py", helpers.read_bytes())
    done = box.exec(["python3", "-c", IN_BOX, str(IDENTIFY_S), *names], timeout=240)
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.box
@pytest.mark.parametrize("variant", ["networkd"], scope="module")
def test_identify_blinks_the_e1000e_ports_led_and_says_the_virtio_port_cannot(hw_box, variant):
    box = hw_box
    assert box.exec(["cat", f"/sys/class/net/{T.MACHINE_IF}/device/uevent"]).stdout.count(f"DRIVER={DRIVER}") == 1
    # What the LED register held before: as the driver read it at probe (its "default", which it
    # puts back after identifying), or as it last wrote it.
    before = sorted(ledctl(box, "read") + ledctl(box, "write"))
    assert before, f"no LEDCTL (0x{LEDCTL:x}) access traced while the e1000e driver set the port up\n{trace_tail(box)}"
    idle = before[-1][1]
    start = time.time()
    seen = identify_in_box(box, T.MACHINE_IF, T.UPLINK_IF)
    end = time.time()
    print("notes:", seen)
    eno1, virtio = seen[T.MACHINE_IF], seen[T.UPLINK_IF]
    assert eno1["note"] == (f"{T.MACHINE_IF}'s LED blinked for {IDENTIFY_S} s: the socket that blinked "
                            f"is {T.MACHINE_IF}."), eno1
    assert virtio["note"] == f"{T.UPLINK_IF}: its driver cannot blink the LED (Operation not supported).", virtio

    during = [(t, v) for t, v in ledctl(box) if start <= t <= end]
    print(f"LEDCTL before I: 0x{idle:08x}; written during the {end - start:.1f} s of the wizard:",
          [(round(t - start, 2), f"0x{v:08x}") for t, v in during])
    assert len(during) >= 2, f"LEDCTL (0x{LEDCTL:x}) not written while the LED should blink\n{trace_tail(box)}"
    # While it blinks: one LED (one byte of LEDCTL) switched between on and off, over and over
    # (at least once a second), nothing else of the register touched.
    blink = [v for _, v in during[:-1]]
    leds = {(v ^ idle).bit_length() - 1 >> 3 for v in blink}
    assert len(leds) == 1, f"not one LED's byte changed: {[hex(v) for v in blink]} (idle 0x{idle:08x})"
    led = leds.pop()
    assert all(v & ~(0xF << 8 * led) == idle & ~(0xF << 8 * led) for v in blink), [hex(v) for v in blink]
    modes = [v >> 8 * led & 0xF for v in blink]
    switches = sum(a != b for a, b in itertools.pairwise(modes))
    print(f"LED{led}: {len(blink)} writes, modes {''.join(f'{m:x}' for m in modes)}, {switches} switches")
    assert set(modes) == {LED_ON, LED_OFF} and switches >= IDENTIFY_S, (modes, during)
    # Back as it was when the blink ended, which lasted as long as the step asked.
    assert during[-1][1] == idle, f"LEDCTL left at 0x{during[-1][1]:08x}, was 0x{idle:08x}\n{during}"
    lasted = during[-1][0] - during[0][0]
    assert IDENTIFY_S - 0.5 <= lasted <= IDENTIFY_S + 10, (lasted, during)


@pytest.mark.box
@pytest.mark.parametrize("variant", ["networkd"], scope="module")
def test_a_role_bound_by_driver_takes_the_e1000e_port(hw_box, variant):
    box = hw_box
    mac = next(n.mac for n in box.nics if n.model == DRIVER)
    plan = P.plan_for(box.lab, renderer="netplan", uplink="static", dns="custom", ntp="custom")
    plan["machine_network"]["interfaces"] = [LAN]
    plan["ports"] = {LAN: {"driver": DRIVER}}
    named = apply_bound(box, plan)
    assert named.get(LAN) == mac and T.MACHINE_IF not in named, named
    assert box.exec(["cat", f"/sys/class/net/{LAN}/device/uevent"]).stdout.count(f"DRIVER={DRIVER}") == 1
    st = P.wait_until(lambda: (s := P.state(box))["addresses"].get(LAN) == [f"{T.EDGE_MACHINE}/{T.PREFIX}"]
                      and s, 60, f"the machine network's address on {LAN}")
    print("addresses:", st["addresses"])
    machine = T.MACHINES[0]
    assert P.wait_until(lambda: P.reaches(box, machine.address, machine.port) == "ok", 30,
                        f"the box reaching its plant machine over {LAN}")
    found = link_results(check_json(box))
    print("link-state:", {k: (v["status"], v["evidence"]) for k, v in found.items()})
    assert found[LAN]["status"] == "pass" and T.EDGE_MACHINE in found[LAN]["evidence"], found
    assert f"driver {DRIVER}" in found[LAN]["evidence"], found  # found by its binding


def test_nic_models_trace_events_and_snapshots_kept_to_their_device_set(tmp_path):
    image = ImageSet("networkd", tmp_path / "vmlinuz", tmp_path / "initrd.img", tmp_path / "disk.qcow2", "k")
    e1000e = [Nic("eno1", "52:54:00:0e:09:01", model=DRIVER), Nic("enp2s0", "52:54:00:0e:09:02")]
    traced = Box(image, tmp_path / "box", nics=e1000e, trace=TRACE)
    argv = traced.qemu_argv()
    assert "e1000e,id=dev-eno1,mac=52:54:00:0e:09:01,acpi-index=1" in argv  # still eno1 in the guest
    assert "virtio-net-pci,id=dev-enp2s0,mac=52:54:00:0e:09:02,bus=pb2,addr=0x0" in argv
    assert argv[-6:] == ["-trace", TRACE[0], "-trace", TRACE[1], "-msg", "timestamp=on"]
    untraced = Box(image, tmp_path / "box", nics=e1000e)
    assert "-trace" not in untraced.qemu_argv() and "-msg" not in untraced.qemu_argv()
    virtio = Box(image, tmp_path / "box", nics=[dataclasses.replace(n, model="virtio-net-pci") for n in e1000e])
    # Tracing changes no device; a NIC model does.
    assert traced.device_set() == untraced.device_set() != virtio.device_set()
    traced.dir.mkdir()  # (start() makes it)
    traced._snapshot_devices({"booted": traced.device_set()})  # what snapshot_save records beside the overlay
    with pytest.raises(BoxError, match="snapshot booted was saved with another device set"):
        virtio.snapshot_load("booted")
    with pytest.raises(BoxError, match="not running"):  # past the check: the same devices may load it
        untraced.snapshot_load("booted")
    with pytest.raises(BoxError, match="model 'rtl8139'"):
        Box(image, tmp_path / "box", nics=[Nic("eno1", "52:54:00:0e:09:01", model="rtl8139")])
