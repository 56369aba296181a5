"""WiFi scan and signal: the parsers of iw's output, the list a person picks from, the
`wifi scan` command, the `wifi-signal` check's verdicts and where its findings land.

Every iw output here (tests/wifi_iw/) was captured from `iw` 5.19 on a Debian 12 box of the
real-box lab (tests/box: kernel 6.1, mac80211_hwsim radios, hostapd 2.10 access points in a
guest namespace):
- scan-psk-sae-transition-hidden.txt: WPA2-PSK (ch 1), WPA3-SAE (ch 6), WPA2/WPA3 transition
  (ch 11) and a hidden WPA2 network on 5 GHz (ch 36), `iw dev wlan0 scan`;
- scan-eap-hostile-wep.txt: WPA2-Enterprise (WPA-EAP), WPA3-Enterprise (WPA-EAP-SHA256, MFP
  required), an open network whose SSID holds ESC [31m, a backslash, a 0xff byte and a newline
  (hostapd ssid2=1b5b33316d5245445c20ff0a41), WEP on 5 GHz, and stale entries of the kernel's cache;
- link-*.txt / sta-*.txt: `iw dev wlan0 link` and `iw dev wlan0 station dump` while associated,
  with the received signal set to -67 .. -77 dBm by the lab's medium (tests/box/hwsim_medium.py);
  link-none.txt: not associated. link-connected.txt / station-dump.txt: without the medium
  (txpower 5 dBm at the access point: hwsim's "txpower - 50" = -45 dBm).
The AKM names not produced by hostapd here (FT, SUITE-B, OWE) are those iw's scan.c prints
(print_auth), in the same layout.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from installer.box import wifi
from installer.checks import findings, report
from installer.checks import wifi as wifi_check
from installer.checks.base import Context, Result
from installer.checks.planner import plan_checks
from installer.checks.runner import Report
from installer.planning.plan import MachineNetwork, Plan, Uplink, Wifi
from installer.vendors.profiles import load_catalog

IW = Path(__file__).parent / "wifi_iw"
HOSTILE = b"\x1b[31mRED\\ \xff\nA"


def iw(name: str) -> str:
    return (IW / name).read_text()


def link_at(dbm: int) -> wifi.Link:
    """The Link signal() makes of the captured outputs at `dbm`."""
    outputs = {("iw", "dev", "wlan0", "link"): iw(f"link{dbm}.txt"),
               ("iw", "dev", "wlan0", "station", "dump"): iw(f"sta{dbm}.txt")}
    link = wifi.signal("wlan0", run=lambda argv: subprocess.CompletedProcess(argv, 0, outputs[tuple(argv)], ""))
    assert link is not None
    return link


# --- scan output -------------------------------------------------------------------------

def test_scan_reads_security_band_channel_and_hidden_from_real_iw_output():
    found = {n.ssid or f"hidden {n.bssid}": n for n in wifi.parse_scan(iw("scan-psk-sae-transition-hidden.txt"))}
    assert set(found) == {"Plant-WPA2", "Plant-WPA3", "Plant Mixed", "hidden 82:5f:d0:09:20:31"}
    wpa2 = found["Plant-WPA2"]
    assert (wpa2.security, wpa2.channel, wpa2.frequency) == ("wpa2", 1, 2412)
    assert (found["Plant-WPA3"].security, found["Plant-WPA3"].channel) == ("wpa3", 6)
    assert (found["Plant Mixed"].security, found["Plant Mixed"].channel) == ("wpa2-wpa3", 11)
    hidden = found["hidden 82:5f:d0:09:20:31"]
    assert hidden.hidden and hidden.ssid == "" and hidden.security == "wpa2"
    assert (hidden.band, hidden.channel, hidden.frequency, hidden.signal_dbm) == ("5 GHz", 36, 5180, -20.0)
    assert all(n.band == "2.4 GHz" and n.signal_dbm == -30.0 and not n.hidden
               for k, n in found.items() if not k.startswith("hidden"))
    assert found["Plant-WPA3"].bssid == "3e:f7:8e:cc:8f:8b"


def test_enterprise_wep_open_and_a_hostile_ssid_from_real_iw_output():
    entries = wifi.parse_scan(iw("scan-eap-hostile-wep.txt"))
    by_ssid = {wifi.ssid_bytes(n.ssid): n for n in entries if not n.hidden}
    assert by_ssid[b"Plant-EAP"].security == "wpa2-enterprise"
    assert by_ssid[b"Plant-EAP3"].security == "wpa3-enterprise"
    assert by_ssid[b"Old WEP"].security == "wep" and by_ssid[b"Old WEP"].band == "5 GHz"
    hostile = by_ssid[HOSTILE]  # every byte back, exactly as it went through the air
    assert hostile.security == "open" and hostile.channel == 11
    # The kernel's cache still holds the previous network of the same BSSID (seen 19 s before).
    assert {n.ssid for n in entries if n.bssid == "96:ea:7e:04:71:f3"} == {"Plant-WPA2", "Plant-EAP"}


def test_hostile_ssid_prints_harmlessly_everywhere():
    hostile = next(n for n in wifi.parse_scan(iw("scan-eap-hostile-wep.txt")) if wifi.ssid_bytes(n.ssid) == HOSTILE)
    for shown in (wifi.printable(hostile.ssid), wifi.ascii_printable(hostile.ssid),
                  json.dumps(hostile.to_json()), wifi.printable("Caf\u00e9 \u202eevil\u202c \x07")):
        assert not any(ord(c) < 32 or ord(c) == 127 or 0x80 <= ord(c) < 0xA0 or 0xD800 <= ord(c) <= 0xDFFF
                       or c in "\u202e\u202c" for c in shown), shown
    assert wifi.printable(hostile.ssid) == r"\x1b[31mRED\x5c \xff\x0aA"
    assert wifi.printable("Caf\u00e9") == "Caf\u00e9"  # valid UTF-8 letters stay readable
    assert wifi.ascii_printable("Caf\u00e9") == r"Caf\xc3\xa9"
    assert hostile.to_json()["ssid_hex"] == HOSTILE.hex()


def test_iw_escapes_round_trip():
    # iw escapes a space at either end, the backslash and every non-printable byte as \xNN.
    assert wifi._unescape(r"\x20lead and trail\x20") == " lead and trail "
    assert wifi._unescape(r"back\x5cslash") == "back\\slash"
    assert wifi.ssid_bytes(wifi._unescape(r"\xe6\x97\xa5\xff")) == b"\xe6\x97\xa5\xff"
    assert wifi._unescape(r"\x00\x00\x00") == "\0\0\0"


def _rsn(akms: str, caps: str = "1-PTKSA-RC 1-GTKSA-RC (0x0000)", ssid: str = "N", privacy: bool = True) -> str:
    return ("BSS 02:00:00:00:01:00(on wlan0)\n\tfreq: 5955\n"
            f"\tcapability: ESS{' Privacy' if privacy else ''} (0x0011)\n"
            f"\tsignal: -61.00 dBm\n\tSSID: {ssid}\n"
            + (f"\tRSN:\t * Version: 1\n\t\t * Group cipher: CCMP\n\t\t * Pairwise ciphers: CCMP\n"
               f"\t\t * Authentication suites: {akms}\n\t\t * Capabilities: {caps}\n" if akms else ""))


@pytest.mark.parametrize("akms,caps,expected", [
    ("PSK", "", "wpa2"), ("FT/PSK PSK", "", "wpa2"), ("PSK/SHA-256", "", "wpa2"),
    ("SAE", "MFP-required MFP-capable (0x00c0)", "wpa3"), ("FT/SAE SAE", "", "wpa3"), ("00-0f-ac:24", "", "wpa3"),
    ("PSK SAE", "MFP-capable (0x0080)", "wpa2-wpa3"), ("PSK FT/PSK SAE FT/SAE", "", "wpa2-wpa3"),
    ("IEEE 802.1X", "", "wpa2-enterprise"), ("IEEE 802.1X FT/IEEE 802.1X", "", "wpa2-enterprise"),
    # WPA3-Enterprise transition (802.1X beside SHA-256, MFP optional) is joined as WPA2-Enterprise.
    ("IEEE 802.1X IEEE 802.1X/SHA-256", "MFP-capable (0x0080)", "wpa2-enterprise"),
    ("IEEE 802.1X/SHA-256", "MFP-required MFP-capable (0x00c0)", "wpa3-enterprise"),
    ("IEEE 802.1X/SUITE-B-192", "MFP-required MFP-capable (0x00c0)", "wpa3-enterprise"),
    ("OWE", "MFP-required (0x00c0)", "open"),
])
def test_security_from_the_akm_suites(akms, caps, expected):
    (net,) = wifi.parse_scan(_rsn(akms, caps or "1-PTKSA-RC (0x0000)"))
    assert net.security == expected
    assert (net.band, net.channel) == ("6 GHz", 1)


def test_wep_open_and_hidden_all_zero_ssid():
    assert wifi.parse_scan(_rsn("", privacy=True))[0].security == "wep"
    assert wifi.parse_scan(_rsn("", privacy=False))[0].security == "open"
    (zeros,) = wifi.parse_scan(_rsn("PSK", ssid=r"\x00\x00\x00\x00"))
    assert zeros.hidden and zeros.ssid == ""


def test_one_row_per_ssid_and_band_strongest_first_hidden_kept():
    def n(ssid, bssid, dbm, freq):
        return wifi.Network(ssid, bssid, dbm, "wpa2", wifi.band_of(freq), wifi.channel_of(freq), freq, ssid == "")
    rows = wifi.networks([n("Plant", "aa:00:00:00:00:01", -70, 2412), n("Plant", "aa:00:00:00:00:02", -55, 2437),
                          n("Plant", "aa:00:00:00:00:03", -60, 5180), n("", "bb:00:00:00:00:01", -50, 2462),
                          n("", "bb:00:00:00:00:02", -80, 2412), n("Office", "cc:00:00:00:00:01", -40, 5745)])
    assert [(r.ssid, r.bssid, r.signal_dbm) for r in rows] == [
        ("Office", "cc:00:00:00:00:01", -40), ("", "bb:00:00:00:00:01", -50), ("Plant", "aa:00:00:00:00:02", -55),
        ("Plant", "aa:00:00:00:00:03", -60), ("", "bb:00:00:00:00:02", -80)]
    assert rows[0].channel == 149 and rows[0].band == "5 GHz"


def test_bars():
    assert [wifi.bars(d) for d in (-30, -55, -56, -67, -68, -75, -76, -85, -86, -100)] == [4, 4, 3, 3, 2, 2, 1, 1, 0, 0]


# --- link and station dump ---------------------------------------------------------------

def test_link_and_station_dump_from_real_iw_output():
    link = wifi.parse_link(iw("link-connected.txt"), "wlan0")
    assert (link.ssid, link.bssid, link.signal_dbm, link.frequency) == ("Plant-WPA2", "96:ea:7e:04:71:f3", -45.0, 2412)
    assert (link.band, link.channel, link.tx_bitrate_mbps) == ("2.4 GHz", 1, 6.0)
    assert wifi.parse_station(iw("station-dump.txt"), link.bssid) == {
        "signal": -45.0, "signal avg": -45.0, "tx bitrate": 6.0, "rx bitrate": 1.0}
    assert wifi.parse_station(iw("station-dump.txt"), "00:11:22:33:44:55") == {}
    assert wifi.parse_link(iw("link-none.txt")) is None


@pytest.mark.parametrize("dbm,avg,status,diagnosis", [
    # mac80211's running average settles 1 dB short of a steady signal: -68 reads -67 on average.
    (-67, -67, "pass", "ok"), (-68, -67, "pass", "ok"), (-69, -69, "warn", "wifi-signal-weak"),
    (-75, -74, "warn", "wifi-signal-weak"), (-76, -75, "warn", "wifi-signal-weak"),
    (-77, -76, "fail", "wifi-signal-poor"),
])
def test_signal_verdicts_at_the_thresholds_on_real_iw_output(dbm, avg, status, diagnosis, monkeypatch):
    link = link_at(dbm)
    assert (link.signal_dbm, link.signal_avg_dbm, link.judged_dbm) == (dbm, avg, avg)
    assert wifi_check.judge(link.judged_dbm) == (status, diagnosis)
    monkeypatch.setattr(wifi, "signal", lambda interface: link)
    out = asyncio.run(wifi_check.wifi_signal(None, {}, interface="wlan0", ssid="Plant-Floor"))
    assert (out.status, out.diagnosis) == (status, diagnosis)
    assert f"signal {avg} dBm average, last {dbm} dBm" in out.evidence and "Plant-Floor" in out.evidence
    assert "channel 6 (2437 MHz)" in out.evidence
    if status != "pass":
        assert 'MachineMetrics, Network Requirements: "Option 4: Fully Wireless"' in out.remediation
        assert '"Strong WiFi signal at Edge location"' in out.remediation
        assert '"Verify WiFi signal strength (if wireless)"' in out.remediation
        assert "seed" not in out.remediation and ".txt" not in out.remediation


def test_not_associated_and_unreadable(monkeypatch):
    monkeypatch.setattr(wifi, "signal", lambda interface: wifi.parse_link(iw("link-none.txt")))
    out = asyncio.run(wifi_check.wifi_signal(None, {}, interface="wlan0", ssid="Plant\x1bFloor"))
    assert (out.status, out.diagnosis) == ("fail", "wifi-not-associated")
    assert "\x1b" not in out.evidence and r"Plant\x1bFloor" in out.evidence
    before = asyncio.run(wifi_check.wifi_signal(None, {}, interface="wlan0", ssid="Plant", expect_applied=False))
    assert (before.status, before.diagnosis) == ("warn", "wifi-not-associated")
    assert "writing the configuration joins it" in before.evidence

    def broken(interface):
        raise wifi.ScanError("WiFi scan on wlan0: no such wireless device")
    monkeypatch.setattr(wifi, "signal", broken)
    out = asyncio.run(wifi_check.wifi_signal(None, {}, interface="wlan0"))
    assert (out.status, out.diagnosis) == ("fail", "wifi-unreadable")



def test_no_such_interface_is_left_to_link_state(tmp_path):
    plan = _plan("wifi")
    ctx = Context(plan=plan, catalog=load_catalog(), sys_class_net=str(tmp_path))
    out = asyncio.run(wifi_check.wifi_signal(ctx, {}, interface="wlan0"))
    assert (out.status, out.diagnosis) == ("skip", "link-missing")


# --- scan(): what it does when the radio is busy, blocked, not ours -----------------------

class FakeIw:
    """Answers iw/ip as the box's did (stderr lines captured from the VM)."""

    def __init__(self, answers):
        self.answers, self.calls = answers, []

    def __call__(self, argv):
        self.calls.append(" ".join(argv))
        for prefix, (code, out, err) in self.answers:
            if " ".join(argv).startswith(prefix):
                if isinstance(code, list):
                    code, out, err = code.pop(0) if len(code) > 1 else code[0]
                return subprocess.CompletedProcess(argv, code, out, err)
        raise AssertionError(argv)


BUSY = (240, "", "command failed: Device or resource busy (-16)\n")
SCAN = iw("scan-psk-sae-transition-hidden.txt")


@pytest.fixture
def wlan0(tmp_path, monkeypatch):
    """A /sys/class/net with wlan0 up, and wireless_interfaces reading it."""
    node = tmp_path / "wlan0"
    node.mkdir()
    (node / "flags").write_text("0x1003\n")
    monkeypatch.setattr(wifi, "wireless_interfaces", lambda sys_class_net=None: ["wlan0"])
    return tmp_path


def test_busy_radio_is_retried_then_read_from_the_cache(wlan0):
    fake = FakeIw([("iw dev wlan0 scan dump", (0, SCAN, "")), ("iw dev wlan0 scan", BUSY)])
    found = wifi.scan(None, run=fake, sys_class_net=wlan0, busy_retry_s=0.6)
    assert len(found) == 4 and found[0].signal_dbm == -20.0
    assert fake.calls[-1] == "iw dev wlan0 scan dump" and fake.calls.count("iw dev wlan0 scan") >= 2


def test_busy_then_free_scans_fresh(wlan0):
    fake = FakeIw([("iw dev wlan0 scan", ([BUSY, (0, SCAN, "")], None, None))])
    assert len(wifi.scan("wlan0", run=fake, sys_class_net=wlan0, busy_retry_s=5)) == 4
    assert "iw dev wlan0 scan dump" not in fake.calls


def test_enobufs_is_passed_like_a_busy_radio(wlan0):
    """ENOBUFS, iw's netlink socket overflowing while the kernel hands over the results (seen
    in a box under load, with NetworkManager scanning too), is tried again, then the cache."""
    enobufs = (234, "", "command failed: No buffer space available (-105)\n")
    fake = FakeIw([("iw dev wlan0 scan", ([enobufs, (0, SCAN, "")], None, None))])
    assert len(wifi.scan("wlan0", run=fake, sys_class_net=wlan0, busy_retry_s=5)) == 4
    fake = FakeIw([("iw dev wlan0 scan dump", (0, SCAN, "")), ("iw dev wlan0 scan", enobufs)])
    assert len(wifi.scan("wlan0", run=fake, sys_class_net=wlan0, busy_retry_s=0.6)) == 4


def test_a_scan_that_never_ends_is_read_from_the_cache_or_tried_again(wlan0):
    def hang(argv):
        if argv[-1] == "scan":
            raise wifi.ScanTimeout("`iw dev wlan0 scan` gave no answer within 15 s")
        return subprocess.CompletedProcess(argv, 0, SCAN, "")
    assert len(wifi.scan("wlan0", run=hang, sys_class_net=wlan0)) == 4
    calls = []

    def hang_empty(argv):
        calls.append(" ".join(argv))
        if argv[-1] == "scan":
            raise wifi.ScanTimeout("`iw dev wlan0 scan` gave no answer within 15 s")
        return subprocess.CompletedProcess(argv, 0, "", "")
    with pytest.raises(wifi.ScanError, match=r"^WiFi scan on wlan0: `iw dev wlan0 scan` gave no answer within 15 s$"):
        wifi.scan("wlan0", run=hang_empty, sys_class_net=wlan0)
    assert calls.count("iw dev wlan0 scan") == 2


def test_not_root_reads_the_cache_or_says_so(wlan0):
    eperm = (255, "", "command failed: Operation not permitted (-1)\n")
    fake = FakeIw([("iw dev wlan0 scan dump", (0, "", "")), ("iw dev wlan0 scan", eperm)])
    with pytest.raises(wifi.ScanError) as e:
        wifi.scan("wlan0", run=fake, sys_class_net=wlan0)
    assert str(e.value) == "WiFi scan on wlan0: scanning needs root (CAP_NET_ADMIN): run as root (sudo)"


def test_down_interface_is_brought_up_and_rfkill_is_named(wlan0):
    (wlan0 / "wlan0" / "flags").write_text("0x1002\n")
    fake = FakeIw([("ip link set wlan0 up", (0, "", "")), ("iw dev wlan0 scan", (0, SCAN, ""))])
    assert len(wifi.scan("wlan0", run=fake, sys_class_net=wlan0)) == 4
    assert fake.calls == ["ip link set wlan0 up", "iw dev wlan0 scan"]
    blocked = FakeIw([("ip link set wlan0 up", (2, "", "RTNETLINK answers: Operation not possible due to RF-kill\n"))])
    with pytest.raises(wifi.ScanError, match=r"blocked by rfkill.*rfkill unblock wifi"):
        wifi.scan("wlan0", run=blocked, sys_class_net=wlan0)
    assert "\n" not in str(wifi._fail("wlan0", subprocess.CompletedProcess([], 156, "", "command failed: "
                                                                            "Network is down (-100)\n")))


def test_interface_choice(wlan0):
    with pytest.raises(wifi.ScanError, match=r"eno1 is not a WiFi interface of this box \(wireless: wlan0\)"):
        wifi.choose_interface("eno1")
    with pytest.raises(wifi.ScanError, match=r"wl\\x1b\[0m is not a WiFi"):
        wifi.choose_interface("wl\x1b[0m")


def test_no_radio(tmp_path):
    (tmp_path / "eno1").mkdir()
    with pytest.raises(wifi.ScanError, match=r"^this box has no WiFi interface"):
        wifi.choose_interface(None, tmp_path)


# --- the command -------------------------------------------------------------------------

def test_wifi_scan_table_and_json(monkeypatch, capsys):
    from installer.cli import main

    found = wifi.networks(wifi.parse_scan(iw("scan-eap-hostile-wep.txt")))
    monkeypatch.setattr(wifi, "choose_interface", lambda interface, sys_class_net=None: interface or "wlan0")
    monkeypatch.setattr(wifi, "scan", lambda interface=None: found)
    assert main(["wifi", "scan"]) == 0
    table = capsys.readouterr().out
    assert all(len(line) <= 80 and all(32 <= ord(c) < 127 for c in line) for line in table.splitlines()), table
    assert r"\x1b[31mRED\x5c \xff\x0aA" in table and "(hidden network)" in table
    lines = table.splitlines()
    assert lines[0].split() == ["SSID", "SIGNAL", "BARS", "SECURITY", "BAND/CH"]
    row = next(line for line in lines if line.startswith("Plant-EAP3 "))
    assert row.split() == ["Plant-EAP3", "-30", "dBm", "####", "wpa3-enterprise", "2.4/6"]
    row = next(line for line in lines if line.startswith("Plant-EAP "))
    assert row.split() == ["Plant-EAP", "-45", "dBm", "####", "wpa2-enterprise", "2.4/1"]
    assert main(["wifi", "scan", "--json", "--interface", "wlan0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == 1 and doc["interface"] == "wlan0"
    signals = [n["signal_dbm"] for n in doc["networks"]]
    assert signals == sorted(signals, reverse=True)
    assert set(doc["networks"][0]) == {"ssid", "ssid_hex", "hidden", "bssid", "signal_dbm", "bars", "security",
                                       "band", "channel", "frequency"}


def test_wifi_scan_errors_are_one_line_exit_1(monkeypatch, capsys):
    from installer.cli import main

    def no_radio(interface, sys_class_net=None):
        raise wifi.ScanError("this box has no WiFi interface (no wireless adapter detected)")
    monkeypatch.setattr(wifi, "choose_interface", no_radio)
    assert main(["wifi", "scan", "--json"]) == 1
    err = capsys.readouterr().err
    assert err == "edge-installer: this box has no WiFi interface (no wireless adapter detected)\n"
    assert main(["wifi"]) == 2
    assert "edge-installer wifi scan" in capsys.readouterr().err


def test_wifi_scan_in_a_namespace_without_radio_says_so():
    """The real command, in a fresh network namespace (only lo): no radio, exit 1, one line."""
    import os
    import shutil
    import sys

    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root for a network namespace")
    done = subprocess.run(["unshare", "--net", "--mount", "sh", "-c",
                           f"mount -t sysfs sysfs /sys && exec {sys.executable} -m installer wifi scan"],
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[1])
    assert (done.returncode, done.stdout) == (1, ""), done
    assert done.stderr == "edge-installer: this box has no WiFi interface (no wireless adapter detected)\n"


# --- planned, grouped, reported ----------------------------------------------------------

def _plan(topology: str) -> Plan:
    wireless = topology in ("wifi", "wireless-bridge")
    wifi_section = Wifi("Plant-Floor", "wpa2-psk", "correct horse battery") if wireless else None
    return Plan(topology=topology, machine_network=MachineNetwork(("eno1",), "192.168.50.2/24"),
                uplink=Uplink("wlan0" if wifi_section else "enp2s0", "dhcp"), wifi=wifi_section)


@pytest.mark.parametrize("topology,planned", [("wifi", True), ("wireless-bridge", True), ("isolated", False),
                                              ("single", False)])
def test_wifi_signal_is_planned_for_wifi_uplinks(topology, planned):
    plan = _plan(topology)
    checks = plan_checks(plan, Context(plan=plan, catalog=load_catalog()))
    wifi_checks = [c for c in checks if c.id == "wifi-signal"]
    assert bool(wifi_checks) == planned
    if planned:
        assert wifi_checks[0].target == "wlan0" and wifi_checks[0].kind == "link"


def R(id, target, status, diagnosis, evidence="seen", remediation="", kind="link", **facts):
    return Result(id, kind, target, status, diagnosis, evidence, remediation, 0.01, None, f"{id}:{target}", facts)


def test_findings_group_the_signal_and_the_report_shows_it():
    weak = R("wifi-signal", "wlan0", "warn", "wifi-signal-weak", "signal -71 dBm average, last -72 dBm ...",
             wifi_check._remediation("wlan0", weak=True), signal_dbm=-71.0)
    found, of = findings.group([R("link-state", "wlan0", "pass", "ok"), weak])
    assert [(f.cause, f.status) for f in found] == [("wifi-signal", "warn")]
    assert found[0].title.startswith("Weak WiFi signal on the uplink wlan0: signal -71 dBm")
    assert of["wifi-signal:wlan0"] == "F1"
    md = report.markdown(Report([weak], 0.1), _plan("wifi"), when=0)
    assert "Weak WiFi signal on the uplink wlan0" in md
    assert "| WARN | wifi-signal | wlan0 | wifi-signal-weak | F1 |" in md
    assert '"Strong WiFi signal at Edge location"' in md

    # With a poor link measured too, the signal is that poor link's cause: one finding.
    poor = R("link-quality", "wlan0", "fail", "poor-link", "40% lost", "fix the link", loss_pct=40, sent=10,
             rtt_median_ms=80, rtt_max_ms=900)
    found, _ = findings.group([poor, dataclass_replace(weak, status="fail", diagnosis="wifi-signal-poor"),
                               R("tcp-connect", "api.example.com:443", "fail", "tcp-timeout", kind="tcp")])
    assert [f.cause for f in found] == ["poor-link"]
    assert "the WiFi signal of wlan0 is poor (-71.0 dBm)" in found[0].title
    assert "1 timeout on it (api.example.com:443)" in found[0].title

    # Not associated: the same finding as the uplink's missing carrier.
    down = R("link-state", "wlan0", "fail", "link-down", "wlan0 (uplink): no carrier")
    gone = R("wifi-signal", "wlan0", "fail", "wifi-not-associated", "wlan0 is not associated")
    found, _ = findings.group([down, gone])
    assert len(found) == 1 and set(found[0].checks) == {"link-state:wlan0", "wifi-signal:wlan0"}


def dataclass_replace(result, **changes):
    import dataclasses

    return dataclasses.replace(result, key=result.key, **changes)


def test_post_apply_recheck_includes_wifi_signal(monkeypatch):
    """apply's re-check (installer.writing.apply.recheck) runs the plan's own checks: for a WiFi uplink,
    wifi-signal must be among them (the checks are captured, not run)."""
    from installer.checks import runner
    from installer.writing import apply

    kept = []

    async def capture(checks, ctx, **kwargs):
        kept.extend(c.id for c in checks)
        return Report([], 0.0)
    monkeypatch.setattr(runner, "run_checks", capture)
    apply.recheck(_plan("wifi"), 0.1)
    assert "link-state" in kept and "wifi-signal" in kept
