"""The Ansible rollout (packaging/ansible/rollout.yml), proven with the real ansible-playbook
against three Debian 12 VMs of the real-box lab, over SSH, from a controller namespace inside
the lab (tests/box/fleetlab.py).

One signed bundle, a devices CSV with each box's own values (host name, static uplink and
machine addresses) and the address it has now (a static one of its own) as `ansible_host`; `bundle fleet
--ansible` writes the inventory. Two boxes get addresses the controller reaches: they must be
applied, reached again on their new address, confirmed and checked. The third gets a static
address on a subnet the controller cannot reach (203.0.113.216/29, its gateway absent): it is
cut off, is never confirmed, must revert by itself and be reached again on its old address,
and the fleet report must say "reverted". The lab refuses NATS (7422): the report must show it
once, as a cause both checked boxes share. Then a serial rollout (one box per batch, stop on
failure) with the cut-off box in the first batch: it stops there, the others are not-run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.box.fleetlab import CA_ON_BOX, CONTROLLER, FleetLab
from tests.box.net import lab_name

pytestmark = pytest.mark.box

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = REPO / "packaging" / "ansible" / "rollout.yml"
ANSIBLE = Path(sys.executable).parent / "ansible-playbook"
# The rollout's confirmation timeout and the margin the controller keeps before it (its window
# to reach a box again and confirm it is the difference). Ansible runs each task on every box
# of a batch before the next task, so the reachable boxes are confirmed only when the cut-off
# box's window has run out (the test prints when): the window must cover a reachable box's
# apply up to its question (netplan apply, the re-check: 30-80 s under TCG on a loaded
# machine), and the cut-off box waits out the whole timeout. 150 - 40 leaves 110 s.
CONFIRM_TIMEOUT = 150
CONFIRM_MARGIN = 40
# The serial rollout's: its only batch that runs holds the cut-off box alone, which nothing
# can confirm, yet it is not made shorter than 90 s: the window (the timeout less
# the margin) must outlast the box's own switch to its new address (its apply, probes, netplan
# apply: 15-30 s under load), or the controller could reach it on its old address before it
# ever left it and give its apply too little time to end (the role waits the timeout plus its
# revert grace from there, the box needs its re-check, the timeout and the revert).
SERIAL_CONFIRM_TIMEOUT = 90
NEW = {0: "203.0.113.61", 1: "203.0.113.62"}
CUT = "203.0.113.217"  # /29: .216-.223, gateway .222 (absent); the controller (.205) is outside

# In a box: seconds from the backup set's stamp (its files written) to the question (the revert
# timer armed for the wait) and to the confirmation request (`edge-installer confirm` records
# the time in it).
CONFIRMED_AFTER = """
import calendar, glob, json, subprocess, time
d = sorted(glob.glob("/var/lib/edge-installer/backups/*/"))[-1]
written = calendar.timegm(time.strptime(json.load(open(d + "manifest.json"))["stamp"][:15], "%Y%m%dT%H%M%S"))
out = subprocess.run(["journalctl", "-o", "json", "-u", "edge-installer-revert-*-wait.timer"],
                     capture_output=True, text=True).stdout
entries = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
asked = round(int(entries[0]["__REALTIME_TIMESTAMP"]) / 1e6 - written) if entries else "?"
print(f"asked at {asked} s, confirmed at {round(float(open(d + 'confirm-request').read()) - written)} s")
"""


@pytest.fixture(scope="module")
def fleet():
    from tests.box.fixtures import _preflight
    from tests.box.image import build_image
    from tests.box.product import zipapp

    _preflight()
    if not ANSIBLE.exists():
        pytest.fail(f"{ANSIBLE} missing: pip install ansible-core (the test extra)", pytrace=False)
    pyz = zipapp()
    image = build_image("networkd")
    name = lab_name(90)
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))  # swept with the lab if this session is killed
    lab = FleetLab(name, workdir, boxes=3)
    try:
        lab.up()
        lab.boot(image)
        lab.pyz = pyz
        lab.old = {i: lab.old_address(i) for i in range(3)}
        yield lab
    finally:
        lab.down()
        if not os.environ.get("EDGE_LAB_KEEP_WORKDIR"):
            shutil.rmtree(workdir, ignore_errors=True)


def _bundle(fleet: FleetLab) -> tuple[Path, Path]:
    """A bundle of the lab's plan, signed; (bundle, signer's public key)."""
    from installer.fleet.bundle import export_bundle
    from installer.fleet.keys import generate_signing_key, load_signing_key
    from installer.planning import plan as P
    from installer.render import Target
    from tests.box.product import plan_for

    d = fleet.workdir
    if (d / "plant.bundle.tar.gz").exists():
        return d / "plant.bundle.tar.gz", d / "signer.pub"
    generate_signing_key(d / "signer")
    data = plan_for(fleet.lab, hostname="edge-00")
    data["tls"] = {"extra_ca_file": CA_ON_BOX}
    plan_file = d / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(data, sort_keys=False))
    export_bundle(P.load(plan_file), d / "plant.bundle.tar.gz", None, target=Target(),
                  sign_key=load_signing_key(d / "signer"))
    return d / "plant.bundle.tar.gz", d / "signer.pub"


def _inventory(fleet: FleetLab, out: Path, order: list[int]) -> Path:
    """devices.csv (rows in `order`) -> `bundle fleet --ansible` -> OUT/inventory.yml."""
    bundle, pub = _bundle(fleet)
    rows = {0: f"edge-61,{fleet.old[0]},{NEW[0]}/24,203.0.113.1,198.51.100.61/24",
            1: f"edge-62,{fleet.old[1]},{NEW[1]}/24,203.0.113.1,198.51.100.62/24",
            2: f"edge-63,{fleet.old[2]},{CUT}/29,203.0.113.222,198.51.100.63/24"}
    csv = out.parent / f"{out.name}.csv"
    csv.write_text("hostname,ansible_host,uplink.address,uplink.gateway,machine_network.address\n"
                   + "".join(rows[i] + "\n" for i in order))
    done = subprocess.run([sys.executable, "-m", "installer", "bundle", "fleet", str(bundle), "--devices", str(csv),
                           "--out", str(out), "--ansible", "--trust-key", str(pub)],
                          capture_output=True, text=True, timeout=120, cwd=REPO, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    return out / "inventory.yml"


def _rollout(fleet: FleetLab, inventory: Path, *extra: str,
             timeout: float = 1500) -> tuple[subprocess.CompletedProcess, float]:
    argv = [str(ANSIBLE), "-i", str(inventory), str(PLAYBOOK), "-e", f"edge_installer_zipapp={fleet.pyz}",
            "-e", f"edge_installer_confirm_timeout={CONFIRM_TIMEOUT}",
            "-e", f"edge_installer_confirm_margin={CONFIRM_MARGIN}", *extra]
    started = time.monotonic()
    done = fleet.ctl(argv, timeout=timeout)
    took = time.monotonic() - started
    (inventory.parent / "ansible.log").write_text(done.stdout + "\n--- stderr\n" + done.stderr)
    return done, took


def _state(box) -> tuple[list[str], str]:
    out = json.loads(box.exec(["ip", "-j", "-4", "addr", "show", "dev", "enp2s0"], check=True).stdout)
    return sorted(a["local"] for a in out[0].get("addr_info", [])), box.exec(["hostname"]).stdout.strip()


def test_rollout_confirms_the_reachable_boxes_and_the_cut_off_one_reverts(fleet):
    assert os.path.realpath("/proc/self/ns/net") != os.path.realpath(f"/run/netns/{fleet.ctl_ns}")
    out = fleet.workdir / "fleet"
    inventory = _inventory(fleet, out, [0, 1, 2])
    inv = yaml.safe_load(inventory.read_text())["all"]["children"]["edge_boxes"]["hosts"]
    assert inv["edge-63"]["ansible_host"] == fleet.old[2] and inv["edge-63"]["edge_installer_new_host"] == CUT

    # The plant's firewall refuses NATS (7422): every box's check must say so, and the fleet
    # report must show it once, as a cause the checked boxes share.
    fleet.lab.block(7422, action="reject")
    done, took = _rollout(fleet, inventory)
    fleet.lab.reset()
    log = done.stdout + done.stderr
    print(f"\nAnsible rollout of {len(fleet.boxes)} VMs (TCG, one lab segment, confirm timeout "
          f"{CONFIRM_TIMEOUT} s): {took:.1f} s wall time")
    # The cut-off box fails the play at its very end, after its result is recorded.
    assert done.returncode == 2, log[-6000:]
    assert "edge-63: reverted: cut off on 203.0.113.217: reverting by itself; reverted" in log, log[-6000:]

    report = json.loads((out / "results" / "fleet-report.json").read_text())
    boxes = {b["box"]: b for b in report["boxes"]}
    assert {n: b["outcome"] for n, b in boxes.items()} == {"edge-61": "confirmed", "edge-62": "confirmed",
                                                          "edge-63": "reverted"}, json.dumps(report, indent=1)[:4000]
    for name in ("edge-61", "edge-62"):
        b = boxes[name]
        assert b["summary"] is not None and sum(b["summary"].values()) > 5, b  # check --json ran there
        assert b["summary"]["pass"] > 5, json.dumps(b, indent=1)[:3000]
        assert b["status"] == "fail" and any(":7422" in c["target"] for c in b["failing_checks"]), b
    nats = [g for g in report["shared"] if g["kind"] == "finding" and 7422 in g["ports"]]
    assert len(nats) == 1 and nats[0]["boxes"] == ["edge-61", "edge-62"], json.dumps(report["shared"], indent=1)
    print(f"Fleet report: {report['summary']}; shared: "
          + "; ".join(f"{g['cause']} on {g['count']} boxes" for g in report["shared"]))
    cut = boxes["edge-63"]
    assert cut["status"] == "fail" and cut["old_address"] == fleet.old[2] and cut["new_address"] == CUT
    assert "Restored" in cut["apply_output"] and fleet.old[2] in cut["revert_evidence"]
    page = (out / "results" / "fleet-report.html").read_text()
    assert "edge-63" in page and "reverted" in page

    # What is in effect on the boxes, seen through their agents, not through Ansible.
    assert _state(fleet.boxes[0]) == ([NEW[0]], "edge-61")
    assert _state(fleet.boxes[1]) == ([NEW[1]], "edge-62")
    addresses, hostname = _state(fleet.boxes[2])
    assert addresses == [fleet.old[2]] and hostname != "edge-63"
    for box in fleet.boxes[:2]:
        states = box.sh("cat /var/lib/edge-installer/backups/*/manifest.json | python3 -c "
                        "'import json,sys; print(json.load(sys.stdin)[\"state\"])'")
        assert states.split() == ["confirmed"]
    # When the reachable boxes asked and were confirmed: the margin CONFIRM_TIMEOUT leaves is
    # judged from it (printed).
    after = [box.exec(["python3", "-c", CONFIRMED_AFTER], check=True).stdout.strip() for box in fleet.boxes[:2]]
    print(f"Reachable boxes, from their files written: {'; '.join(after)} "
          f"(the window: {CONFIRM_TIMEOUT - CONFIRM_MARGIN} s from the start of the apply)")
    # The controller never saw the cut-off box on its new address, and sees it on its old one.
    reach = fleet.ctl(["python3", "-c", "import socket,sys\nfor a in sys.argv[1:]:\n    try:\n"
                       "        socket.create_connection((a, 22), timeout=3).close(); print(a, 'open')\n"
                       "    except OSError as e:\n        print(a, type(e).__name__)", CUT, fleet.old[2]], timeout=30)
    assert reach.stdout.split("\n")[:2] == [f"{CUT} TimeoutError", f"{fleet.old[2]} open"], reach.stdout
    assert CONTROLLER not in (fleet.old[0], fleet.old[1], fleet.old[2])



def test_serial_rollout_stops_after_the_batch_in_which_a_box_failed(fleet):
    """One box per batch, stop on failure, the cut-off box first: it reverts by itself, the
    play stops after its batch, and the boxes of later batches are never touched and are
    reported as not-run."""
    out = fleet.workdir / "fleet-serial"
    inventory = _inventory(fleet, out, [2, 0, 1])
    sets_before = {i: fleet.boxes[i].sh("ls /var/lib/edge-installer/backups 2>/dev/null | wc -l").strip()
                   for i in (0, 1)}
    # The cut-off box cannot be reached on its new path whatever the wait, and no box of this
    # batch is to be confirmed: a short timeout (SERIAL_CONFIRM_TIMEOUT) keeps the run short;
    # the revert follows it, and the controller waits for the old address far longer than that.
    done, took = _rollout(fleet, inventory, "-e", "edge_installer_serial=1",
                          "-e", "edge_installer_stop_on_failure=true",
                          "-e", f"edge_installer_confirm_timeout={SERIAL_CONFIRM_TIMEOUT}")
    log = done.stdout + done.stderr
    print(f"\nSerial rollout (1 box per batch, stop on failure; the cut-off box first): {took:.1f} s wall time")
    assert done.returncode != 0, log[-6000:]
    assert "edge-63: reverted: cut off on 203.0.113.217: reverting by itself; reverted" in log, log[-6000:]
    for name in ("edge-61", "edge-62"):  # later batches: not one task ran for them
        assert f"[{name}]" not in log, log[-6000:]
    report = json.loads((out / "results" / "fleet-report.json").read_text())
    assert {b["box"]: b["outcome"] for b in report["boxes"]} == {
        "edge-63": "reverted", "edge-61": "not-run", "edge-62": "not-run"}, json.dumps(report, indent=1)[:4000]
    # In effect on the boxes: the first is back on its old address; the others had no change.
    assert _state(fleet.boxes[2])[0] == [fleet.old[2]]
    for i in (0, 1):
        assert fleet.boxes[i].sh("ls /var/lib/edge-installer/backups 2>/dev/null | wc -l").strip() == sets_before[i]
