"""Zero-touch first boot (issue 13, item 2): `edge-installer firstboot` finds the setup medium,
its own row of devices.csv by MAC, applies the signed bundle with that row as `apply
--keep-if-healthy` does, writes the report back to the medium and shows the result.

Here under --root (a staged tree: nothing is mounted, applied or checked; the box itself is
tests/test_box_firstboot_usb.py): the row matching, the devices list's errors, the medium's
discovery by label on real FAT and ext4 filesystem images (mkfs.vfat/mcopy, mkfs.ext4 -d; read
by blkid, no mount), the refusal of an untrusted bundle, the stamp, and secrets never shown.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from installer import cli
from installer.fleet import bundle as B
from installer.fleet import firstboot as fb
from installer.fleet import keys as K
from tests import hostile_bundles as H

MAC = "52:54:00:aa:00:07"
OTHER = "52:54:00:aa:00:08"
HEADER = "hostname,ports.eno1.mac,machine_network.address,uplink.address,wifi.passphrase,proxy.password\n"


def row(host: str, mac: str, n: int, wifi: str = "wifi-pass-1234", proxy: str = "proxy-pw") -> str:
    return f"{host},{mac},192.168.50.{n}/24,10.20.0.{n}/24,{wifi},{proxy}\n"


def devices(*rows: str) -> str:
    return HEADER + "".join(rows)


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """A staged box: one port eno1 with MAC, a trust file holding the signer's key."""
    root = tmp_path / "box"
    (root / "sys/class/net/eno1").mkdir(parents=True)
    (root / "sys/class/net/eno1/address").write_text(MAC.upper() + "\n")
    (root / "sys/class/net/lo").mkdir()
    (root / "sys/class/net/lo/address").write_text("00:00:00:00:00:00\n")
    (root / "etc/edge-installer").mkdir(parents=True)
    (root / K.TRUST_FILE).write_text(K.public_key_line(_raw(H.signing_key(1))) + "\n")
    return root


def _raw(key) -> bytes:
    return K.raw_public_key(key)


def bundle(seed: int = 1, plan=None) -> bytes:
    """The base plan (WiFi behind a proxy), secrets left out (each row gives them), signed."""
    return B.build_bundle(plan or H.base_plan(), None, created=1_700_000_000, version="test",
                          scrypt_n=H.SCRYPT_N, sign_key=H.signing_key(seed))


def medium(root: Path, csv_text: str, data: bytes | None = None, boot: str = "boot/firmware") -> Path:
    folder = root / boot / fb.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plant.bundle").write_bytes(bundle() if data is None else data)
    (folder / "devices.csv").write_text(csv_text)
    return folder


def firstboot(root: Path, console: Path, *more: str) -> int:
    """The command under root; the consoles' text is appended to `console` (a stand-in tty)."""
    console.touch()
    return cli.main(["firstboot", "--root", str(root), "--console", str(console), *more])


# ---------------------------------------------------------------------------------------
# Row matching and the devices list's errors

def test_row_is_found_by_any_mac_column_case_and_dashes_aside():
    text = ("hostname,ports.eno1.mac,ports.enp2s0.mac\n"
            f"a,{OTHER},\n"
            f"b,,{MAC.upper().replace(':', '-')}\n")
    found, reduced = fb.find_row(text, [MAC])
    assert (found.line, found.mac, found.hostname) == (3, MAC, "b")
    # The reduced list keeps the row at its own line (read_devices names lines).
    assert reduced.splitlines()[0] == "hostname,ports.eno1.mac,ports.enp2s0.mac"
    assert reduced.splitlines()[2].startswith("b,")


@pytest.mark.parametrize("text,expected", [
    (devices(row("a", OTHER, 3)), (f"devices.csv: no row for this box (its MACs: {MAC}); add a line with one of "
                                   "them in ports.eno1.mac")),
    (devices(row("a", MAC, 3), row("b", OTHER, 4), row("c", MAC.upper(), 5)),
     f"devices.csv: lines 2, 4 all name this box (MAC {MAC}); keep one"),
    ("hostname,uplink.address\na,10.0.0.2/24\n", ("devices.csv: has no MAC column; name one ports.NAME.mac "
                                                  "(e.g. ports.eno1.mac) so each box finds its own row")),
    ("", "devices.csv: is empty; the first line names the fields, e.g. hostname,ports.eno1.mac,uplink.address"),
    ('hostname,ports.eno1.mac\n"a"b,' + MAC + "\n", "devices.csv line 2: ',' expected after '\"'"),
])
def test_devices_list_errors_are_one_line(text, expected):
    with pytest.raises(fb.FirstbootError) as e:
        fb.find_row(text, [MAC])
    assert e.value.line == expected


# ---------------------------------------------------------------------------------------
# The medium: found by its label on real filesystem images (blkid reads them; no mount)

def _vfat(path: Path, label: str, files: dict[str, bytes]) -> Path:
    if not (shutil.which("mkfs.vfat") and shutil.which("mcopy")):
        pytest.fail("mkfs.vfat and mcopy are needed (Debian packages dosfstools, mtools)", pytrace=False)
    subprocess.run(["mkfs.vfat", "-C", "-n", label, str(path), "4096"], check=True, capture_output=True)
    for name, data in files.items():
        src = path.parent / f"src-{name}"
        src.write_bytes(data)
        subprocess.run(["mcopy", "-i", str(path), str(src), f"::{name}"], check=True, capture_output=True)
    return path


def _ext4(path: Path, label: str, tree: Path) -> Path:
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", label, "-d", str(tree), str(path), "4M"], check=True,
                   capture_output=True)
    return path


def test_medium_is_found_by_its_label_on_a_fat_stick(tmp_path):
    stick = _vfat(tmp_path / "stick.img", "EDGE-SETUP", {"plant.bundle": bundle(), "devices.csv": b"x"})
    links = tmp_path / "by-label"
    links.mkdir()
    (links / "EDGE-SETUP").symlink_to(stick)
    found = fb.find_medium(tmp_path / "box", by_label=links, ask_blkid=False)
    assert found == fb.Medium("device", stick.resolve())
    # The label is read from the filesystem itself: a stale link to a stick labelled otherwise
    # is passed over, and the boot partition's folder is used.
    other = _vfat(tmp_path / "other.img", "PHOTOS", {})
    (links / "EDGE-SETUP").unlink()
    (links / "EDGE-SETUP").symlink_to(other)
    assert fb.find_medium(tmp_path / "box", by_label=links, ask_blkid=False) is None
    folder = tmp_path / "box/boot/firmware" / fb.FOLDER
    folder.mkdir(parents=True)
    assert fb.find_medium(tmp_path / "box", by_label=links, ask_blkid=False) == fb.Medium("folder", folder)


def test_medium_on_ext4_and_two_media_are_refused(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "devices.csv").write_text("x")
    a = _ext4(tmp_path / "a.img", "EDGE-SETUP", tree)
    b = _vfat(tmp_path / "b.img", "EDGE-SETUP", {})
    assert fb._probe_label(a) == "EDGE-SETUP" and fb._probe_label(b) == "EDGE-SETUP"
    links = tmp_path / "by-label"
    links.mkdir()
    (links / "EDGE-SETUP").symlink_to(a)
    assert fb.find_medium(tmp_path, by_label=links, ask_blkid=False) == fb.Medium("device", a.resolve())
    # Two filesystems with the label (udev's link names one, blkid finds the other).
    orig = fb._blkid_devices
    fb._blkid_devices = lambda label: [a, b]
    try:
        with pytest.raises(fb.FirstbootError) as e:
            fb.find_medium(tmp_path, by_label=links, ask_blkid=True)
    finally:
        fb._blkid_devices = orig
    assert e.value.line.startswith("2 filesystems are labelled EDGE-SETUP (")
    assert "keep one setup medium" in e.value.line


def test_no_medium_is_one_line_and_exit_0(box, tmp_path, capsys):
    console = tmp_path / "console"
    assert firstboot(box, console) == 0
    text = console.read_text()
    assert text.splitlines() == [
        f"edge-installer first boot: {MAC}: NO-MEDIUM",
        ("  no setup medium (a filesystem labelled EDGE-SETUP, or a folder edge-setup/ in /boot/firmware, "
         "/boot/efi, /boot): nothing to do")]
    assert not (box / "etc/netplan").exists()


def test_a_device_medium_is_mounted_only_on_the_box_itself(box, tmp_path):
    stick = _vfat(tmp_path / "stick.img", "EDGE-SETUP", {})
    console = tmp_path / "console"
    assert firstboot(box, console, "--device", str(stick)) == 2
    assert "a device is mounted only on the box itself" in console.read_text()


# ---------------------------------------------------------------------------------------
# The whole run, staged

def test_box_applies_its_own_row_writes_the_report_back_and_stamps(box, tmp_path, capsys):
    folder = medium(box, devices(row("edge-a", OTHER, 3), row("edge-b", MAC, 4, wifi="Wifi-S3cret-77",
                                                               proxy="Pr0xy-S3cret")))
    console = tmp_path / "console"
    assert firstboot(box, console) == 0
    out = capsys.readouterr()
    # Its own row: host name and addresses of line 3, not line 2's.
    assert (box / "etc/hostname").read_text().strip() == "edge-b"
    netplan = next((box / "etc/netplan").glob("*.yaml")).read_text()
    assert "192.168.50.4/24" in netplan and "10.20.0.4/24" in netplan and MAC in netplan
    assert "192.168.50.3/24" not in netplan
    shown = console.read_text()
    assert shown.splitlines()[:2] == ["edge-installer first boot: edge-b: STAGED",
                                      f"  row: devices.csv line 3 (MAC {MAC})"]
    # The report, JSON and text, on the medium, named by host and time; and on the box.
    reports = sorted((folder / "reports").iterdir())
    assert [p.suffix for p in reports] == [".json", ".txt"]
    assert reports[0].name.startswith("edge-b-") and reports[0].stem == reports[1].stem
    doc = json.loads(reports[0].read_text())
    assert doc["outcome"] == "staged" and doc["row"] == {"line": 3, "mac": MAC, "hostname": "edge-b"}
    assert doc["bundle_sha256"] and doc["box_macs"] == [MAC]
    local = sorted((box / "var/lib/edge-installer/firstboot").iterdir())
    assert [p.name for p in local] == [p.name for p in reports]
    assert oct(local[0].stat().st_mode & 0o777) == "0o600"
    # Secrets (the row's WiFi passphrase and proxy password) are never shown or reported.
    for text in (shown, out.out, out.err, reports[0].read_text(), reports[1].read_text()):
        assert "Wifi-S3cret-77" not in text and "Pr0xy-S3cret" not in text
    # The stamp: the same files at the next boot do nothing, and say so.
    stamp = json.loads((box / fb.STAMP.lstrip("/")).read_text())
    assert stamp["outcome"] == "staged"
    before = {p: p.stat().st_mtime_ns for p in (box / "etc").rglob("*") if p.is_file()}
    console.write_text("")
    assert firstboot(box, console) == 0
    assert "DONE-BEFORE" in console.read_text() and "nothing to do" in console.read_text()
    assert {p: p.stat().st_mtime_ns for p in (box / "etc").rglob("*") if p.is_file()} == before
    assert len(list((folder / "reports").iterdir())) == 2
    # A newer devices list (another address for this box) is applied.
    (folder / "devices.csv").write_text(devices(row("edge-b", MAC, 9)))
    console.write_text("")
    assert firstboot(box, console) == 0
    assert "10.20.0.9/24" in next((box / "etc/netplan").glob("*.yaml")).read_text()


def test_no_row_for_this_mac_applies_nothing(box, tmp_path):
    folder = medium(box, devices(row("edge-a", OTHER, 3)))
    console = tmp_path / "console"
    assert firstboot(box, console) == 2
    lines = console.read_text().splitlines()
    assert lines == [f"edge-installer first boot: {MAC}: FAILED",
                     (f"  devices.csv: no row for this box (its MACs: {MAC}); add a line with one of them in "
                      "ports.eno1.mac"),
                     f"  report: reports/{next((folder / 'reports').glob('*.txt')).name} on the setup medium"]
    assert not (box / "etc/netplan").exists() and not (box / "etc/hostname").exists()
    assert not (box / fb.STAMP.lstrip("/")).exists()  # fixed files are tried again at the next boot
    doc = json.loads(next((folder / "reports").glob("*.json")).read_text())
    assert doc["outcome"] == "failed" and doc["error"].startswith("devices.csv: no row for this box")


def test_untrusted_bundle_is_refused_before_its_devices_list_is_read(box, tmp_path):
    folder = medium(box, "not even, a devices list\n", data=bundle(seed=2))
    console = tmp_path / "console"
    assert firstboot(box, console) == 2
    text = console.read_text()
    assert text.splitlines()[1].startswith("  the bundle: refused: is signed by SHA256:"), text
    assert text.splitlines()[1].endswith(f"which is not a trusted key: add the signer's public key (KEY.pub) to "
                                         f"{box / K.TRUST_FILE} or give --trust-key KEY.pub"), text
    assert "Traceback" not in text and not (box / "etc/netplan").exists()
    assert json.loads(next((folder / "reports").glob("*.json")).read_text())["outcome"] == "failed"


def test_bad_row_values_are_named_by_line_and_field(box, tmp_path):
    medium(box, devices(row("edge-a", OTHER, 3), f"edge-b,{MAC},192.168.50.300/24,10.20.0.4/24,w-12345678,p\n"))
    console = tmp_path / "console"
    assert firstboot(box, console) == 2
    text = console.read_text()
    assert "devices.csv line 3: machine_network.address" in text, text
    assert not (box / "etc/netplan").exists()


def test_medium_that_cannot_take_the_report_keeps_it_on_the_box(box, tmp_path):
    folder = medium(box, devices(row("edge-b", MAC, 4)))
    (folder / "reports").write_text("a file where the reports folder goes")
    console = tmp_path / "console"
    assert firstboot(box, console) == 0
    assert [p.suffix for p in sorted((box / "var/lib/edge-installer/firstboot").iterdir())] == [".json", ".txt"]
    txt = next((box / "var/lib/edge-installer/firstboot").glob("*.txt")).read_text()
    assert "the report could not be written to the setup medium" in txt
    assert "report: /var/lib/edge-installer/firstboot/edge-b-" in console.read_text()


def test_two_bundles_or_no_devices_list_are_one_line(box, tmp_path):
    folder = medium(box, devices(row("edge-b", MAC, 4)))
    (folder / "old.bundle").write_bytes(bundle())
    console = tmp_path / "console"
    assert firstboot(box, console) == 2
    assert "the setup medium holds 2 bundles (old.bundle, plant.bundle); keep one" in console.read_text()
    (folder / "old.bundle").unlink()
    (folder / "devices.csv").unlink()
    console.write_text("")
    assert firstboot(box, console) == 2
    assert "the setup medium holds no devices.csv" in console.read_text()


# ---------------------------------------------------------------------------------------
# The boot unit (systemd's own parser judges it: tests/test_packaging.py verifies every unit)

def test_zerotouch_unit_runs_firstboot_after_the_network_daemons_before_the_wizard():
    from tests.test_packaging import unit, values

    name = "edge-installer-zerotouch.service"
    assert values(name, "ExecStart") == ["/usr/local/bin/edge-installer firstboot --wait 15"]
    assert values(name, "Type") == ["oneshot"]
    after = " ".join(values(name, "After")).split()
    for other in ("edge-installer-recover.service", "network.target", "systemd-networkd.service",
                  "NetworkManager.service"):
        assert other in after
    assert "network-online.target" not in after  # a box with no configuration yet may never be online
    before = " ".join(values(name, "Before")).split()
    assert {"edge-installer-firstboot.service", "edge-installer-serial.service"} <= set(before)
    # No Condition on the stamp: a newer bundle on the medium must be seen (the command decides).
    assert not [k for _, k, _ in unit(name) if k.startswith("Condition")]
    assert values(name, "WantedBy") == ["multi-user.target"]
    # The stamp and the plan it saves are where the command and the wizard units look.
    assert fb.STAMP == "/var/lib/edge-installer/firstboot.done"
    assert f"[ ! -e {fb.PLAN_FILE} ] || exit 0;" in values("edge-installer-firstboot.service", "ExecStart")[0]
    assert fb.PLAN_FILE == "/var/lib/edge-installer/plan.yaml"


def test_a_devices_list_bundle_fleet_would_refuse_is_refused_the_same_way(box, tmp_path):
    medium(box, f"ports.eno1.mac,uplink.address\n{MAC},10.20.0.4/24\n")
    console = tmp_path / "console"
    assert firstboot(box, console) == 2
    assert "  devices.csv line 1: needs a hostname column: each box needs its own host name;" in console.read_text()
    assert not (box / "etc/netplan").exists()
