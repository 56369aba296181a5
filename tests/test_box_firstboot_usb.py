"""Zero-touch first boot on a real Debian 12 box (issue 13, item 2): a VM of the real-box lab
with a second virtual disk, the "USB stick": a FAT filesystem labelled EDGE-SETUP holding a
bundle signed by a key the box trusts and a devices list with rows for several boxes.

One cold boot, then one reboot:
- with the unit installed and the stick holding a devices list without this box's MAC, the
  unit (started by hand) says so in one line on the serial console, applies nothing and
  leaves the report on the stick; no stamp, so the next boot tries again;
- the stick then gets a devices list with a row for this box's uplink MAC, and at the reboot
  the unit applies that row headless, as `apply --keep-if-healthy` does: the row's host name
  and static address are in effect (`hostname`, `ip -j addr`), the checks ran against the lab
  (its cloud answers), the result is on ttyS0, the plan is saved, the stamp written;
- after the VM stops, the stick (its overlay, converted to raw) holds both reports, read with
  mtools: no mount.

NETWORK SAFETY: the VM has `-nic none` plus taps inside its own lab's namespaces (tests/box/vm.py,
net.py); it reaches only the lab's 198.51.100.0/24 and 203.0.113.0/24.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from installer.fleet import bundle as B
from installer.fleet import keys as K
from installer.planning import plan as planmod
from tests.box import product as P
from tests.box.fixtures import box_session, nics_for, pyz  # noqa: F401  (fixtures)
from tests.box.net import BoxLab, lab_name
from tests.box.vm import Box
from tests.lab import topology as T

pytestmark = pytest.mark.box

ROW_ADDRESS = "203.0.113.7"   # the row's; the bundle's own plan says 203.0.113.2
HOST = "edge-zt-07"
STAMP = "/var/lib/edge-installer/firstboot.done"


def _tools() -> None:
    missing = [t for t in ("mkfs.vfat", "mcopy", "mdir", "mtype", "qemu-img") if not shutil.which(t)]
    if missing:
        pytest.fail(f"missing {', '.join(missing)} (Debian packages dosfstools, mtools, qemu-utils)", pytrace=False)


def _mtools(*argv: str) -> str:
    done = subprocess.run(list(argv), check=False, capture_output=True, text=True, timeout=60,
                          env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def _csv(rows: list[tuple[str, str, str]]) -> str:
    return "hostname,ports.enp2s0.mac,uplink.address\n" + "".join(f"{h},{m},{a}/{T.PREFIX}\n" for h, m, a in rows)


def test_a_box_sets_itself_up_from_a_usb_stick(box_session, pyz, tmp_path):
    _tools()
    t0 = time.monotonic()
    image = box_session.image("networkd")
    name = lab_name(90)
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    lab = BoxLab(name, workdir)
    box = None
    try:
        lab.up()
        nics = nics_for("zerotouch", lab)
        mac = next(n.mac for n in nics if n.name == T.UPLINK_IF)
        first_mac = min(n.mac for n in nics)  # what a box without its row is called by
        # The bundle: the lab's plan for a box (static uplink .2), signed by the IT desk's key.
        K.generate_signing_key(tmp_path / "desk.key")
        key = K.load_signing_key(tmp_path / "desk.key")
        plan = planmod.from_dict(P.plan_for(lab, hostname="edge-template"))
        data = B.build_bundle(plan, None, sign_key=key)
        others = [("edge-zt-05", "52:54:00:0e:77:05", "203.0.113.5"),
                  ("edge-zt-06", "52:54:00:0e:77:06", "203.0.113.6")]
        stick = tmp_path / "stick.img"
        subprocess.run(["mkfs.vfat", "-C", "-n", "EDGE-SETUP", str(stick), "16384"], check=True, capture_output=True)
        (tmp_path / "plant.bundle").write_bytes(data)
        (tmp_path / "devices.csv").write_text(_csv(others))
        for f in ("plant.bundle", "devices.csv"):
            _mtools("mcopy", "-i", str(stick), str(tmp_path / f), f"::{f}")

        box = Box(image, workdir / "box", netns=lab.edge_ns, nics=nics, extra_disk=stick, name="box-zerotouch",
                  lab=lab)
        box.start()
        box.wait_ready(timeout=900)
        cold_s = time.monotonic() - t0
        P.install(box, pyz, zerotouch=True, timeout=900)  # a loaded machine: minutes
        box.sh("mkdir -p /etc/edge-installer")
        box.write_file("/etc/edge-installer/trusted-keys", K.public_key_line(K.raw_public_key(key)) + "\n", 0o644)
        assert box.exec(["systemctl", "is-enabled", "edge-installer-zerotouch.service"]).stdout.strip() == "enabled"
        # The lab's machine runs several VMs under TCG at once: the checks get more time than the
        # unit's default 3 s (a drop-in, as a plant would change it).
        box.sh("mkdir -p /etc/systemd/system/edge-installer-zerotouch.service.d; printf '[Service]\\nExecStart=\\n"
               "ExecStart=/usr/local/bin/edge-installer firstboot --wait 15 --check-timeout 10\\n' "
               ">/etc/systemd/system/edge-installer-zerotouch.service.d/lab.conf; systemctl daemon-reload")
        before = P.config_files(box)
        hostname_before = box.exec(["hostname"]).stdout.strip()

        # 1. No row for this box: one line on the serial console, nothing applied, no stamp.
        mark = box.console_log.stat().st_size
        box.exec(["systemctl", "start", "edge-installer-zerotouch.service"], timeout=900)
        serial = P.wait_until(lambda: box.console_log.read_bytes()[mark:].decode("ascii", "replace")
                              if b"edge-installer first boot" in box.console_log.read_bytes()[mark:] else "",
                              60, "the result on ttyS0")
        shown = [ln.strip() for ln in serial.splitlines() if ln.strip()]
        i = next(k for k, ln in enumerate(shown) if ln.startswith("edge-installer first boot:"))
        assert shown[i] == f"edge-installer first boot: {first_mac}: FAILED", serial
        assert shown[i + 1] == (f"devices.csv: no row for this box (its MACs: "
                                f"{', '.join(sorted(n.mac for n in nics))}); add a line with one of them in "
                                "ports.enp2s0.mac"), serial
        assert "Traceback" not in serial
        # The same on tty1, read from the virtual console's screen memory (/dev/vcs1: the text a
        # monitor on the box would show; the VM has no display, the console exists all the same).
        tty1 = box.exec(["cat", "/dev/vcs1"]).stdout
        assert f"edge-installer first boot: {first_mac}: FAILED" in tty1, tty1.strip()[-2000:]
        assert box.exec(["systemctl", "is-failed", "edge-installer-zerotouch.service"]).stdout.strip() == "failed"
        assert P.config_files(box) == before and box.exec(["hostname"]).stdout.strip() == hostname_before
        assert box.exec(["test", "-e", STAMP]).returncode != 0

        # 2. The stick gets this box's row (as a technician would, on the box itself).
        rows = others[:1] + [(HOST, mac.upper(), ROW_ADDRESS)] + others[1:]
        box.sh("mkdir -p /mnt/stick && mount /dev/disk/by-label/EDGE-SETUP /mnt/stick")
        box.write_file("/mnt/stick/devices.csv", _csv(rows))
        box.sh("sync; umount /mnt/stick")
        mark = box.console_log.stat().st_size
        t_boot = time.monotonic()
        box.reboot(timeout=1200)  # is-system-running --wait: the oneshot unit has finished
        boot_s = time.monotonic() - t_boot
        serial = box.console_log.read_bytes()[mark:].decode("ascii", "replace")
        report = box.exec(["sh", "-c", f"cat /var/lib/edge-installer/firstboot/{HOST}-*.txt"]).stdout
        assert f"edge-installer first boot: {HOST}: KEPT" in serial, report + serial[-2000:]
        assert f"row: devices.csv line 3 (MAC {mac})" in serial
        assert "checks: " in serial and " pass, " in serial
        # In effect: the row's host name and static address (not the bundle's .2, not DHCP's).
        st = P.state(box)
        assert st["hostname"] == HOST
        assert st["addresses"][T.UPLINK_IF] == [f"{ROW_ADDRESS}/{T.PREFIX}"], st
        assert ("203.0.113.1", T.UPLINK_IF) in st["default_routes"]
        # The checks ran against the lab: its cloud answered over the new address.
        stamp = json.loads(box.read_file(STAMP))
        assert stamp["outcome"] == "kept"
        local = box.exec(["sh", "-c", "ls /var/lib/edge-installer/firstboot/*.json"]).stdout.split()
        doc = json.loads(box.read_file(local[-1]))
        assert doc["outcome"] == "kept" and doc["row"] == {"line": 3, "mac": mac, "hostname": HOST}
        checks = doc["checks"]
        assert checks["summary"]["pass"] > 0 and checks["box"]["hostname"] == HOST
        cloud = [c for c in checks["checks"] if c["id"] in ("https-ping", "tcp-connect") and c["status"] == "pass"]
        assert cloud, json.dumps(checks["checks"], indent=1)[:3000]
        assert box.exec(["test", "-s", "/var/lib/edge-installer/plan.yaml"]).returncode == 0
        assert P.reaches(box, T.CLOUD, 443) == "ok"
        box.stop(keep_disk=True)

        # 3. The stick, read back without mounting it: both reports, JSON and text.
        after = tmp_path / "stick-after.img"
        subprocess.run(["qemu-img", "convert", "-O", "raw", str(workdir / "box" / "extra.qcow2"), str(after)],
                       check=True, capture_output=True, timeout=120)
        names = _mtools("mdir", "-b", "-i", str(after), "::reports").split()
        names = [n.rsplit("/", 1)[-1] for n in names]
        mine = sorted(n for n in names if n.startswith(HOST + "-"))
        failed = sorted(n for n in names if n.startswith(first_mac.replace(":", "-")))
        assert [Path(n).suffix for n in mine] == [".json", ".txt"], names
        assert [Path(n).suffix for n in failed] == [".json", ".txt"], names
        text = _mtools("mtype", "-i", str(after), f"::reports/{mine[1]}")
        assert text.startswith(f"edge-installer first boot: {HOST}: KEPT"), text[:500]
        on_stick = json.loads(_mtools("mtype", "-i", str(after), f"::reports/{mine[0]}"))
        assert on_stick["outcome"] == "kept" and on_stick["checks"]["summary"] == checks["summary"]
        print(f"\nzero-touch box test: cold boot {cold_s:.0f} s, reboot with first boot {boot_s:.0f} s, "
              f"total {time.monotonic() - t0:.0f} s")
    finally:
        if box is not None:
            box.stop()
        lab.down()
        shutil.rmtree(workdir, ignore_errors=True)
