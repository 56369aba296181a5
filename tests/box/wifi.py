"""WiFi inside a box: the kernel's simulated radios (mac80211_hwsim), an access point in a guest
namespace, and what the box's station did, read from both ends of the air.

    ap = AccessPoint("Plant-Floor", "wpa3-sae", "correct horse battery")
    wifi.access_point(box, ap, wired="enp2s0")  # radios, AP in namespace "ap" bridged to enp2s0
    ... edge-installer apply ...
    wifi.wait_associated(box, "Plant-Floor")
    wifi.stations(box)                      # hostapd's view: who joined, with which AKM

The access point lives in the guest's network namespace `ap`, so every frame between the
station (wlan0, the box's uplink) and the AP really crosses the simulated air. The AP is a
bridge `br-ap` of the AP radio and one of the guest's wired NICs (moved into `ap`), so the
station reaches whatever that NIC is wired to: the lab's cloud segment (gateway 203.0.113.1,
DNS .53, the cloud .10, DHCP 203.0.113.100-199), as a plant's access point reaches the site
network. Nothing here leaves the VM except through its taps, which live in lab namespaces.
"""

from __future__ import annotations

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
# hostapd's AKM suite selectors (IEEE 802.11 Table 9-151): what the station negotiated.
AKM_NAMES = {"000fac-2": "WPA-PSK", "000fac-6": "WPA-PSK-SHA256", "000fac-8": "SAE"}


@dataclass(frozen=True)
class AccessPoint:
    """An access point as a plant runs one: SSID, security (the plan's words), passphrase."""

    ssid: str
    security: str  # "wpa2-psk" | "wpa3-sae" | "wpa2-wpa3"
    passphrase: str
    hidden: bool = False
    channel: int = 6

    def hostapd_conf(self, interface: str = AP_IF, bridge: str | None = AP_BRIDGE) -> str:
        lines = [f"interface={interface}", "driver=nl80211", f"ctrl_interface={HOSTAPD_CTRL}",
                 f"ssid={self.ssid}", "hw_mode=g", f"channel={self.channel}", "wpa=2",
                 f"wpa_passphrase={self.passphrase}", "rsn_pairwise=CCMP"]
        if bridge:
            lines.append(f"bridge={bridge}")
        if self.security == "wpa2-psk":
            lines.append("wpa_key_mgmt=WPA-PSK")
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


def access_point(box, ap: AccessPoint, wired: str | None = None, timeout: float = 30) -> None:
    """The whole access point in one go: two simulated radios, the one that is not wlan0 moved
    into namespace `ap` (wlan0 stays the box's), the guest's wired NIC `wired` (if given) moved
    there too and bridged with the radio as br-ap, and hostapd for `ap` running there. Returns
    once hostapd says AP-ENABLED (beaconing, or answering probes for its name when hidden)."""
    box.write_file(HOSTAPD_CONF, ap.hostapd_conf(bridge=AP_BRIDGE if wired else None), 0o600)
    wire = (f"ip link set {wired} netns {AP_NS}\n"
            f"ip -n {AP_NS} link add {AP_BRIDGE} type bridge forward_delay 0 stp_state 0\n"
            f"ip -n {AP_NS} addr flush dev {wired}\n"
            f"ip -n {AP_NS} link set {wired} master {AP_BRIDGE}\n"
            f"ip -n {AP_NS} link set {wired} up\n"
            f"ip -n {AP_NS} link set {AP_BRIDGE} up\n") if wired else ""
    script = f"""
        wait_for() {{
            i=0
            until eval "$1"; do
                i=$((i+1))
                [ $i -lt {int(timeout * 5)} ] || {{ echo "not within {timeout:g} s: $1" >&2; exit 1; }}
                sleep 0.2
            done
        }}
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
