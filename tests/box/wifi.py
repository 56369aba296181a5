"""WiFi inside a box: the kernel's simulated radios (mac80211_hwsim), an access point in a guest
namespace, and what the box's station did, read from both ends of the air.

    ap = AccessPoint("Plant-Floor", "wpa3-sae", "correct horse battery")
    wifi.access_point(box, ap, wired="enp2s0")  # radios, AP in namespace "ap" bridged to enp2s0
    ... edge-installer apply ...
    wifi.wait_associated(box, "Plant-Floor")
    wifi.stations(box)                      # hostapd's view: who joined, with which AKM
    wifi.medium(box, -40)                   # a medium: the station hears -40 dBm ...
    wifi.set_signal(box, -71)               # ... then -71 (wait_signal: until the average follows)
    bssids = wifi.air(box, [ap1, ap2, ...]) # several access points to scan (2.4 and 5 GHz), no bridge

hwsim alone gives a received signal of (the transmitter's txpower - 50) dBm, and mac80211
takes only 0..20 dBm of fixed txpower (`iw set txpower fixed -1000` is refused, EOPNOTSUPP):
-50..-30 dBm, never weak. The medium (hwsim_medium.py, wmediumd's job; Debian 12 has no
wmediumd) delivers every frame itself with the signal it is told, which iw reads back as from
a real driver.

The access point lives in the guest's network namespace `ap`, so every frame between the
station (wlan0, the box's uplink) and the AP really crosses the simulated air. The AP is a
bridge `br-ap` of the AP radio and one of the guest's wired NICs (moved into `ap`), so the
station reaches whatever that NIC is wired to: the lab's cloud segment (gateway 203.0.113.1,
DNS .53, the cloud .10, DHCP 203.0.113.100-199), as a plant's access point reaches the site
network. Nothing here leaves the VM except through its taps, which live in lab namespaces.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

AP_NS = "ap"
AP_BRIDGE = "br-ap"
STATION = "wlan0"
AP_IF = "wlan1"
HOSTAPD_CONF = "/run/ap-hostapd.conf"
HOSTAPD_LOG = "/run/ap-hostapd.log"
HOSTAPD_CTRL = "/run/ap-hostapd"
MEDIUM = "/run/hwsim-medium.py"
MEDIUM_CONF = "/run/hwsim-medium.json"
MEDIUM_LOG = "/run/hwsim-medium.log"
# hostapd's AKM suite selectors (IEEE 802.11 Table 9-151): what the station negotiated.
AKM_NAMES = {"000fac-1": "WPA-EAP", "000fac-2": "WPA-PSK", "000fac-5": "WPA-EAP-SHA256",
             "000fac-6": "WPA-PSK-SHA256", "000fac-8": "SAE"}
# 802.1X (security wpa2-enterprise): hostapd's own EAP server, its certificates and its users.
EAP_USERS = "/run/ap-eap-users"
AP_PKI = "/run/ap-pki"


@dataclass(frozen=True)
class Eap:
    """hostapd's internal EAP server (an access point and RADIUS server in one): the CA it
    checks client certificates against, its own certificate and key (PEM), and the lines of its
    eap_user file (phase 1 `* PEAP`, phase 2 `"user" MSCHAPV2 "password" [2]`, or `"user" TLS`)."""

    users: tuple[str, ...]
    ca_cert: bytes
    server_cert: bytes
    server_key: bytes


@dataclass(frozen=True)
class AccessPoint:
    """An access point as a plant runs one: SSID, security (the plan's words), passphrase."""

    ssid: str
    security: str  # "wpa2-psk" | "wpa3-sae" | "wpa2-wpa3" | "wpa2-enterprise" | "wpa3-enterprise"
    passphrase: str
    hidden: bool = False
    channel: int = 6
    eap: Eap | None = None  # security "wpa2/wpa3-enterprise": the EAP server (passphrase unused)

    def hostapd_conf(self, interface: str = AP_IF, bridge: str | None = AP_BRIDGE) -> str:
        lines = [f"interface={interface}", "driver=nl80211", f"ctrl_interface={HOSTAPD_CTRL}",
                 f"ssid={self.ssid}", f"hw_mode={'a' if self.channel > 14 else 'g'}", f"channel={self.channel}",
                 "wpa=2", "rsn_pairwise=CCMP"]
        if bridge:
            lines.append(f"bridge={bridge}")
        if self.security not in ("wpa2-enterprise", "wpa3-enterprise"):
            lines.append(f"wpa_passphrase={self.passphrase}")
        if self.security == "wpa2-psk":
            lines.append("wpa_key_mgmt=WPA-PSK")
        elif self.security in ("wpa2-enterprise", "wpa3-enterprise") and self.eap:
            # WPA3-Enterprise (not the 192-bit mode): 802.1X with management-frame protection
            # required; this AP offers only the SHA-256 AKM (00-0f-ac-5), so a station that would
            # join as plain WPA-EAP, or without PMF, is turned away.
            akm = ["wpa_key_mgmt=WPA-EAP"] if self.security == "wpa2-enterprise" else [
                "wpa_key_mgmt=WPA-EAP-SHA256", "ieee80211w=2"]
            lines += [*akm, "ieee8021x=1", "eap_server=1", f"eap_user_file={EAP_USERS}",
                      f"ca_cert={AP_PKI}/ca.pem", f"server_cert={AP_PKI}/server.pem",
                      f"private_key={AP_PKI}/server.key"]
        elif self.security == "wpa3-sae":
            lines += ["wpa_key_mgmt=SAE", "ieee80211w=2", "sae_pwe=2"]
        elif self.security == "wpa2-wpa3":
            lines += ["wpa_key_mgmt=WPA-PSK SAE", "ieee80211w=1", "sae_pwe=2"]
        else:
            raise ValueError(f"security {self.security!r}")
        if self.hidden:
            lines.append("ignore_broadcast_ssid=1")
        return "\n".join(lines) + "\n"

    def plan_section(self) -> dict[str, Any]:
        """The plan's `wifi` section for joining this access point."""
        return {"ssid": self.ssid, "security": self.security, "passphrase": self.passphrase,
                "hidden": self.hidden}


def _wait_for(timeout: float) -> str:
    """A shell function `wait_for CONDITION`: poll every 0.2 s, fail after `timeout` seconds."""
    return (f'wait_for() {{ i=0; until eval "$1"; do i=$((i+1)); '
            f'[ $i -lt {int(timeout * 5)} ] || {{ echo "not within {timeout:g} s: $1" >&2; exit 1; }}; '
            f'sleep 0.2; done; }}')


def access_point(box, ap: AccessPoint, wired: str | None = None, timeout: float = 30) -> None:
    """The whole access point in one go: two simulated radios, the one that is not wlan0 moved
    into namespace `ap` (wlan0 stays the box's), the guest's wired NIC `wired` (if given) moved
    there too and bridged with the radio as br-ap, and hostapd for `ap` running there. Returns
    once hostapd says AP-ENABLED (beaconing, or answering probes for its name when hidden)."""
    box.write_file(HOSTAPD_CONF, ap.hostapd_conf(bridge=AP_BRIDGE if wired else None), 0o600)
    if ap.eap:
        box.exec(["mkdir", "-p", "-m", "0700", AP_PKI], check=True)
        box.write_file(EAP_USERS, "\n".join(ap.eap.users) + "\n", 0o600)
        for name, data in (("ca.pem", ap.eap.ca_cert), ("server.pem", ap.eap.server_cert),
                           ("server.key", ap.eap.server_key)):
            box.write_file(f"{AP_PKI}/{name}", data, 0o600)
    wire = (f"ip link set {wired} netns {AP_NS}\n"
            f"ip -n {AP_NS} link add {AP_BRIDGE} type bridge forward_delay 0 stp_state 0\n"
            f"ip -n {AP_NS} addr flush dev {wired}\n"
            f"ip -n {AP_NS} link set {wired} master {AP_BRIDGE}\n"
            f"ip -n {AP_NS} link set {wired} up\n"
            f"ip -n {AP_NS} link set {AP_BRIDGE} up\n") if wired else ""
    script = f"""
        {_wait_for(timeout)}
        modprobe mac80211_hwsim radios=2
        wait_for 'test -e /sys/class/net/{STATION}/phy80211 && test -e /sys/class/net/{AP_IF}/phy80211'
        ip netns add {AP_NS}
        ip -n {AP_NS} link set lo up
        iw phy "$(cat /sys/class/net/{AP_IF}/phy80211/name)" set netns name {AP_NS}
        wait_for 'ip -n {AP_NS} link show {AP_IF} >/dev/null 2>&1'
        {wire}
        rm -f {HOSTAPD_LOG}
        ip netns exec {AP_NS} hostapd -B -t -P /run/ap-hostapd.pid -f {HOSTAPD_LOG} {HOSTAPD_CONF}
        wait_for 'grep -q AP-ENABLED {HOSTAPD_LOG}'
        """
    done = box.exec(["sh", "-ec", script], timeout=timeout * 3)
    if done.returncode != 0:
        raise AssertionError(f"access point {ap} did not start: {done.stderr.strip()}\n" + diagnostics(box))


def link(box) -> dict[str, str]:
    """`iw dev wlan0 link` as {"bssid": .., "SSID": .., "freq": .., ...}; {} when not connected."""
    out = box.exec(["iw", "dev", STATION, "link"]).stdout
    m = re.search(r"Connected to ([0-9a-f:]{17})", out)
    if not m:
        return {}
    info = {"bssid": m.group(1)}
    for line in out.splitlines()[1:]:
        key, sep, value = line.strip().partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


def wait_associated(box, ssid: str, timeout: float = 90) -> dict[str, str]:
    """wlan0's link once it is associated to `ssid`; AssertionError with both ends' logs if not."""
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    while time.monotonic() < deadline:
        last = link(box)
        if last.get("SSID") == ssid:
            return last
        time.sleep(1)
    raise AssertionError(f"wlan0 not associated to {ssid!r} within {timeout:g} s (iw: {last})\n"
                         + diagnostics(box))


def stations(box) -> list[dict[str, str]]:
    """hostapd's stations (`hostapd_cli all_sta`), each a dict with "addr" and hostapd's keys,
    plus "akm": the negotiated key management by name (WPA-PSK, SAE, ...)."""
    out = box.exec(["ip", "netns", "exec", AP_NS, "hostapd_cli", "-p", HOSTAPD_CTRL, "-i", AP_IF,
                    "all_sta"]).stdout
    found: list[dict[str, str]] = []
    for line in out.splitlines():
        line = line.strip()
        if re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", line):
            found.append({"addr": line})
        elif found and "=" in line:
            key, _, value = line.partition("=")
            found[-1][key] = value
    for sta in found:
        selector = sta.get("AKMSuiteSelector", "").lower().replace("-", "")
        sta["akm"] = next((n for s, n in AKM_NAMES.items() if s.replace("-", "") == selector),
                          sta.get("AKMSuiteSelector", "?"))
    return found


def station_mac(box) -> str:
    return box.read_file(f"/sys/class/net/{STATION}/address").decode().strip()


def route_dev(box, address: str) -> str:
    """The device the box routes `address` through."""
    out = box.exec(["ip", "-4", "route", "get", address]).stdout
    m = re.search(r"\bdev (\S+)", out)
    return m.group(1) if m else out.strip()


def diagnostics(box, lines: int = 60) -> str:
    """What both ends said: hostapd's log, and the station side's logs (wpa_supplicant,
    netplan's wpa unit, NetworkManager, networkd), for an assertion message."""
    parts = []
    for title, cmd in (
            ("hostapd", f"tail -n {lines} {HOSTAPD_LOG}"),
            ("iw dev", "iw dev; ip -br addr; ip route"),
            ("station units", "systemctl --no-pager list-units --all 'netplan-wpa*' 'wpa_supplicant*' "
                              "NetworkManager.service systemd-networkd.service || true"),
            ("journal", f"journalctl -b --no-pager -o short-monotonic -n {lines * 2} "
                        "-u 'netplan-wpa*' -u wpa_supplicant.service -u NetworkManager.service "
                        "-u systemd-networkd.service || true"),
            ("files", "ls -l /run/netplan /run/NetworkManager/system-connections "
                      "/etc/NetworkManager/system-connections 2>&1 || true"),
    ):
        try:
            out = box.exec(["sh", "-c", cmd], timeout=30).stdout
        except Exception as exc:  # diagnostics must not hide the failure they explain
            out = f"({type(exc).__name__}: {exc})"
        parts.append(f"--- {title}:\n{out.rstrip()}")
    return "\n".join(parts)


# --- several access points, and a medium that sets the received signal -------------------

def air(box, aps: list[AccessPoint], timeout: float = 60) -> dict[str, str]:
    """Several access points at once, for scans: len(aps) + 1 simulated radios (wlan0 stays
    the box's), each access point's radio in namespace `ap`, one hostapd serving them all
    (none bridged: a scan needs only their beacons and probe responses). The radios follow
    hwsim's custom world regulatory domain (regtest=5), which lets an access point beacon on
    5 GHz channels (36-48, 149-165) as well as 2.4 GHz 1-11. Returns SSID -> BSSID."""
    confs = []
    for i, ap in enumerate(aps, 1):
        text = ap.hostapd_conf(interface=f"wlan{i}", bridge=None).replace(
            f"ctrl_interface={HOSTAPD_CTRL}", f"ctrl_interface={HOSTAPD_CTRL}-{i}")
        box.write_file(f"/run/ap-hostapd-{i}.conf", text, 0o600)
        confs.append(f"/run/ap-hostapd-{i}.conf")
    moves = "\n".join(f'iw phy "$(cat /sys/class/net/wlan{i}/phy80211/name)" set netns name {AP_NS}'
                      for i in range(1, len(aps) + 1))
    script = f"""
        {_wait_for(timeout)}
        modprobe mac80211_hwsim radios={len(aps) + 1} regtest=5
        wait_for 'test -e /sys/class/net/wlan{len(aps)}/phy80211'
        ip netns add {AP_NS}
        {moves}
        wait_for 'ip -n {AP_NS} link show wlan{len(aps)} >/dev/null 2>&1'
        rm -f {HOSTAPD_LOG}
        ip netns exec {AP_NS} hostapd -B -t -P /run/ap-hostapd.pid -f {HOSTAPD_LOG} {' '.join(confs)}
        wait_for 'test "$(grep -c AP-ENABLED {HOSTAPD_LOG})" -ge {len(aps)}'
        for i in $(seq 1 {len(aps)}); do ip netns exec {AP_NS} cat /sys/class/net/wlan$i/address; done
        """
    done = box.exec(["sh", "-ec", script], timeout=timeout * 3)
    if done.returncode != 0:
        raise AssertionError(f"access points did not start: {done.stderr.strip()}\n" + diagnostics(box))
    return dict(zip((ap.ssid for ap in aps), done.stdout.split(), strict=True))


def medium(box, signal_dbm: int) -> None:
    """Start the wireless medium (tests/box/hwsim_medium.py) for the box's hwsim radios, every
    frame heard at `signal_dbm`: from then on the station reads that signal (hwsim alone gives
    only -50..-30 dBm). Call after the radios exist; set_signal() changes it."""
    from pathlib import Path

    box.write_file(MEDIUM, (Path(__file__).parent / "hwsim_medium.py").read_bytes(), 0o700)
    set_signal(box, signal_dbm)
    box.sh(f"radios=$(cat /sys/module/mac80211_hwsim/parameters/radios); "
           f"setsid -f sh -c \"echo \\$\\$ >/run/hwsim-medium.pid; exec python3 {MEDIUM} {MEDIUM_CONF} "
           f"$radios >{MEDIUM_LOG} 2>&1\"; i=0; until grep -q registered {MEDIUM_LOG} 2>/dev/null; do "
           f"i=$((i+1)); [ $i -lt 100 ] || {{ cat {MEDIUM_LOG} >&2; exit 1; }}; sleep 0.2; done")


def set_signal(box, signal_dbm: int) -> None:
    """Every radio's frames are heard at `signal_dbm` from now on (the medium re-reads it)."""
    box.write_file(MEDIUM_CONF + ".new", json.dumps({"default": int(signal_dbm)}))
    box.exec(["mv", MEDIUM_CONF + ".new", MEDIUM_CONF], check=True)


def station_signal(box) -> dict[str, float]:
    """`iw dev wlan0 station dump`'s signal and signal avg (dBm) for the access point."""
    out = box.exec(["iw", "dev", STATION, "station", "dump"]).stdout
    found = {}
    for key in ("signal", "signal avg"):
        m = re.search(rf"^\s*{key}:\s*(-?\d+)", out, re.M)
        if m:
            found[key] = float(m.group(1))
    return found


def wait_signal(box, signal_dbm: int, timeout: float = 60) -> dict[str, float]:
    """Once the station's running average has come to within 1 dB of `signal_dbm` (mac80211's
    average settles 1 dB short of a steady signal)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        seen = station_signal(box)
        if seen.get("signal") == signal_dbm and abs(seen.get("signal avg", 0) - signal_dbm) <= 1:
            return seen
        time.sleep(1)
    raise AssertionError(f"the station's signal did not settle at {signal_dbm} dBm in {timeout:g} s: {seen}\n"
                         + box.exec(["tail", "-n", "20", MEDIUM_LOG]).stdout)
