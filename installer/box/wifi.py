"""WiFi as the box's radio sees it: the networks in the air (`scan`) and the signal of the
network the uplink has joined (`signal`), read with the kernel's own tool, `iw` (nl80211).

    for net in scan():                      # the first wireless interface, strongest first
        print(printable(net.ssid), net.signal_dbm, bars(net.signal_dbm), net.security, net.band)
    link = signal("wlan0")                  # None when wlan0 has joined nothing

Why iw and not NetworkManager: iw reports the received signal in dBm for every BSS (nmcli
only a 0-100 "quality" percentage), works the same on a box run by networkd, by
NetworkManager or by nothing, and names every key management suite (AKM) an access point
offers, which is what tells WPA2 from WPA3 and from their transition mode.

How a scan is taken (measured on Debian 12 boxes with simulated radios, tests/box):
- `iw dev IF scan` triggers a fresh scan and prints what it found (needs root: CAP_NET_ADMIN).
- When the radio is busy (EBUSY: NetworkManager or wpa_supplicant is scanning at that moment)
  it is retried for a few seconds, then the kernel's cache of the last scan, whoever took it,
  is read with `iw dev IF scan dump` (no root needed); an empty cache is an error then.
- An interface that is down (nothing manages it yet) is brought up for the scan, and left up
  (as nmcli does): putting it down again could fight a stack that brought it up meanwhile.
- iw has been seen to wait forever for a scan that NetworkManager disturbed as the radio
  appeared: after SCAN_TIMEOUT_S the kernel's cache is read, and the scan tried once more.
- Without root, the cache is what can be read; when it is empty the error says to run as root.

Text from the air is hostile: an SSID is up to 32 arbitrary bytes. iw prints every byte that
is not printable ASCII (and a space at either end, and the backslash) as \\xNN; `Network.ssid`
holds the bytes decoded as UTF-8 with surrogateescape (no information lost, nothing
executable), and `printable()` is what a terminal may show.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer.text import ascii_safe, unicode_safe

SECURITIES = ("wpa2", "wpa3", "wpa2-wpa3", "wpa2-enterprise", "wpa3-enterprise", "open", "wep")
BANDS = ("2.4 GHz", "5 GHz", "6 GHz")

# How long `scan` keeps retrying a busy radio before it reads the kernel's cache instead.
BUSY_RETRY_S = 6.0
# A scan of every channel takes 3-5 s; iw has been seen to wait forever for the end of a scan
# that the network stack disturbed (NetworkManager changing the radio's MAC address for its
# own scans as the radio appears): past this, the kernel's cache is read instead.
SCAN_TIMEOUT_S = 15.0

# What iw prints for the key management suites (iw's scan.c, print_auth; IEEE 802.11-2020
# Table 9-151), by what a plan can join with.
_PSK = frozenset({"PSK", "FT/PSK", "PSK/SHA-256"})
_SAE = frozenset({"SAE", "FT/SAE", "00-0f-ac:24", "00-0f-ac:25"})  # 24, 25: SAE-EXT-KEY (WPA3, GCMP-256)
_EAP = frozenset({"IEEE 802.1X", "FT/IEEE 802.1X"})
_EAP_SHA256 = frozenset({"IEEE 802.1X/SHA-256"})
_EAP_SUITE_B = frozenset({"IEEE 802.1X/SUITE-B", "IEEE 802.1X/SUITE-B-192", "FT/IEEE 802.1X/SHA-384"})


class ScanError(Exception):
    """The radio could not be asked: str() is one line for the technician (no radio, not root,
    radio busy, blocked by rfkill, ...)."""


class ScanTimeout(ScanError):
    """iw gave no answer in time."""


@dataclass(frozen=True)
class Network:
    """One network in the air: the strongest access point (BSS) of an SSID in one band."""

    ssid: str           # decoded UTF-8 with surrogateescape; "" for a hidden network. Show printable(ssid).
    bssid: str          # the access point's MAC, lower case
    signal_dbm: float   # received signal, dBm (-30 excellent ... -90 unusable)
    security: str       # one of SECURITIES
    band: str           # one of BANDS
    channel: int
    frequency: int      # MHz
    hidden: bool        # the access point does not broadcast its name (empty or all-zero SSID)

    def to_json(self) -> dict[str, Any]:
        """The stable shape of `edge-installer wifi scan --json`. `ssid` is printable() text
        (escapes \\xNN, never a raw control byte); `ssid_hex` gives the exact bytes."""
        return {"ssid": printable(self.ssid), "ssid_hex": ssid_bytes(self.ssid).hex(), "hidden": self.hidden,
                "bssid": self.bssid, "signal_dbm": self.signal_dbm, "bars": bars(self.signal_dbm),
                "security": self.security, "band": self.band, "channel": self.channel,
                "frequency": self.frequency}


@dataclass(frozen=True)
class Link:
    """The network an interface has joined, as the radio reads it now."""

    interface: str
    ssid: str                        # as Network.ssid
    bssid: str
    signal_dbm: float                # the last frame's signal (`iw dev IF link`)
    frequency: int
    signal_avg_dbm: float | None = None   # the driver's running average (`station dump`), if any
    tx_bitrate_mbps: float | None = None
    rx_bitrate_mbps: float | None = None
    tx_bitrate: str | None = None         # as iw says it: "54.0 MBit/s MCS 7 40MHz short GI"

    @property
    def band(self) -> str:
        return band_of(self.frequency)

    @property
    def channel(self) -> int:
        return channel_of(self.frequency)

    @property
    def judged_dbm(self) -> float:
        """What a verdict is based on: the average when the driver keeps one (one frame's
        signal jumps by several dB), else the last frame's."""
        return self.signal_avg_dbm if self.signal_avg_dbm is not None else self.signal_dbm


# ---------------------------------------------------------------- small pure helpers


def bars(signal_dbm: float) -> int:
    """0-4 bars, as a phone shows them: 4 from -55 dBm, 3 from -67 (the design minimum for
    reliable data, installer.checks.wifi), 2 from -75 (the floor), 1 from -85, else 0."""
    for limit, n in ((-55, 4), (-67, 3), (-75, 2), (-85, 1)):
        if signal_dbm >= limit:
            return n
    return 0


def band_of(frequency: int) -> str:
    if frequency >= 5925 or frequency == 5935:
        return "6 GHz"
    if frequency >= 4900:
        return "5 GHz"
    return "2.4 GHz"


def channel_of(frequency: int) -> int:
    """The channel number of a centre frequency (IEEE 802.11 channel numbering)."""
    f = int(frequency)
    if f == 2484:
        return 14
    if 2407 < f < 2484:
        return (f - 2407) // 5
    if f == 5935:
        return 2
    if 5950 < f <= 7115:
        return (f - 5950) // 5
    if 4910 <= f <= 4980:
        return (f - 4000) // 5
    if 5000 <= f <= 5925:
        return (f - 5000) // 5
    return 0


def ssid_bytes(ssid: str) -> bytes:
    """The SSID's bytes as they went through the air."""
    return ssid.encode("utf-8", "surrogateescape")


def printable(text: str, limit: int = 64) -> str:
    """An SSID (or any text from the air) made safe for a full terminal: letters and symbols of
    valid UTF-8 as they are, everything else (control characters, ESC, text-direction marks,
    bytes that are not UTF-8, the backslash) as \\xNN of its bytes (installer.text)."""
    return unicode_safe(text, limit, backslash=True)


def ascii_printable(text: str, limit: int = 64) -> str:
    """As printable(), and every non-ASCII byte as \\xNN too (serial consoles, reports)."""
    return ascii_safe(text, limit, backslash=True)


def _unescape(text: str) -> str:
    """iw's escaped SSID (print_ssid_escaped: \\xNN for every byte that is not printable ASCII,
    for the backslash and for a space at either end) back to the SSID."""
    raw = bytearray()
    i = 0
    data = text.encode("utf-8", "surrogateescape")  # iw's own output is ASCII; be lenient anyway
    while i < len(data):
        if data[i] == 0x5C and i + 3 < len(data) and data[i + 1:i + 2] == b"x" \
                and re.fullmatch(rb"[0-9a-fA-F]{2}", data[i + 2:i + 4]):
            raw.append(int(data[i + 2:i + 4], 16))
            i += 4
        else:
            raw.append(data[i])
            i += 1
    return bytes(raw).decode("utf-8", "surrogateescape")


# ---------------------------------------------------------------- parsing iw's output


@dataclass
class _Bss:
    bssid: str
    frequency: int = 0
    signal_dbm: float | None = None
    ssid: str | None = None
    privacy: bool = False
    rsn_akms: list[str] = field(default_factory=list)
    wpa_akms: list[str] = field(default_factory=list)
    mfp_required: bool = False
    associated: bool = False


_BSS = re.compile(r"^BSS ([0-9a-fA-F:]{17})")


def parse_scan(text: str) -> list[Network]:
    """Every BSS of `iw dev IF scan` (or `scan dump`) output as a Network, unsorted, one per
    BSS (see networks() for the list a person reads)."""
    found: list[_Bss] = []
    section = None  # "RSN" | "WPA" | other IE name
    for line in text.splitlines():
        m = _BSS.match(line)
        if m:
            found.append(_Bss(m.group(1).lower(), associated="-- associated" in line))
            section = None
            continue
        if not found:
            continue
        bss = found[-1]
        stripped = line.strip()
        # An IE's own line is indented by one tab; its details (" * Version: 1") by more.
        depth = len(line) - len(line.lstrip("\t"))
        if depth <= 1 and not stripped.startswith("*"):
            key, _, value = stripped.partition(":")
            section = key
            value_raw = line.split(":", 1)[1] if ":" in line else ""
            if key == "freq":
                try:
                    bss.frequency = int(float(value.strip()))
                except ValueError:
                    pass
            elif key == "signal":
                m2 = re.match(r"\s*(-?\d+(?:\.\d+)?) dBm", value)
                if m2:
                    bss.signal_dbm = float(m2.group(1))
            elif key == "SSID" and bss.ssid is None:
                bss.ssid = _unescape(value_raw[1:] if value_raw.startswith(" ") else value_raw)
            elif key == "capability":
                bss.privacy = " Privacy" in f" {value}"
            if key in ("RSN", "WPA") and "*" in value:  # "RSN:\t * Version: 1" on one line
                _ie_detail(bss, key, value.split("*", 1)[1])
            continue
        if section in ("RSN", "WPA") and stripped.startswith("*"):
            _ie_detail(bss, section, stripped[1:])
    nets = []
    for b in found:
        if b.frequency <= 0 or b.signal_dbm is None:
            continue  # a BSS iw has no measurement for is not one a technician can pick
        ssid = b.ssid or ""
        hidden = ssid == "" or set(ssid) == {"\0"}
        nets.append(Network("" if hidden else ssid, b.bssid, b.signal_dbm, _security(b), band_of(b.frequency),
                            channel_of(b.frequency), b.frequency, hidden))
    return nets


def _ie_detail(bss: _Bss, section: str, detail: str) -> None:
    key, _, value = detail.strip().partition(":")
    if key.strip() == "Authentication suites":
        akms = _akms(value)
        (bss.rsn_akms if section == "RSN" else bss.wpa_akms).extend(akms)
    elif key.strip() == "Capabilities" and section == "RSN":
        bss.mfp_required = "MFP-required" in value


def _akms(value: str) -> list[str]:
    """iw's suite list ("PSK SAE", "IEEE 802.1X FT/IEEE 802.1X") as names: names hold
    spaces, so known names are matched longest first."""
    names = sorted(_PSK | _SAE | _EAP | _EAP_SHA256 | _EAP_SUITE_B | {"OWE", "TDLS/TPK"}, key=len, reverse=True)
    rest = value.strip()
    out = []
    while rest:
        for n in names:
            if rest.startswith(n) and (len(rest) == len(n) or rest[len(n)] == " "):
                out.append(n)
                rest = rest[len(n):].lstrip()
                break
        else:
            word, _, rest = rest.partition(" ")
            out.append(word)
            rest = rest.lstrip()
    return out


def _security(b: _Bss) -> str:
    """The plan's words for what an access point offers (RSN first; WPA (1) only where there
    is no RSN: its PSK is joined as a plan's wpa2-psk, wpa_supplicant's default proto)."""
    akms = set(b.rsn_akms or b.wpa_akms)
    if akms:
        if akms & _EAP_SUITE_B or (akms & _EAP_SHA256 and b.mfp_required and not akms & _EAP):
            return "wpa3-enterprise"
        if akms & (_EAP | _EAP_SHA256):
            return "wpa2-enterprise"
        psk, sae = bool(akms & _PSK), bool(akms & _SAE)
        if psk and sae:
            return "wpa2-wpa3"
        if sae:
            return "wpa3"
        if psk:
            return "wpa2"
        if "OWE" in akms:
            return "open"  # Enhanced Open: encrypted without a key, joined as an open network
        return "wpa2"
    if b.privacy:
        return "wep"
    return "open"


def networks(entries: Sequence[Network]) -> list[Network]:
    """The list a person picks from: one row per SSID and band (its strongest access point),
    every hidden access point kept (each may hide a different name), strongest first."""
    best: dict[tuple[str | bytes, str], Network] = {}
    for n in entries:
        key = ("hidden", n.bssid) if n.hidden else (ssid_bytes(n.ssid), n.band)
        if key not in best or n.signal_dbm > best[key].signal_dbm:
            best[key] = n
    return sorted(best.values(), key=lambda n: (-n.signal_dbm, n.hidden, ssid_bytes(n.ssid), n.bssid))


def parse_link(text: str, interface: str = "") -> Link | None:
    """`iw dev IF link` as a Link; None for "Not connected."."""
    m = re.search(r"^Connected to ([0-9a-fA-F:]{17})", text, re.M)
    if not m:
        return None
    values: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        key, sep, _ = line.strip().partition(":")
        if sep and key not in values:
            values[key.strip()] = line.split(":", 1)[1]
    sig = re.match(r"\s*(-?\d+(?:\.\d+)?)", values.get("signal", ""))
    freq = re.match(r"\s*(\d+)", values.get("freq", ""))
    if sig is None or freq is None:
        return None
    ssid_raw = values.get("SSID", "")
    tx = values.get("tx bitrate", "").strip() or None
    return Link(interface, _unescape(ssid_raw[1:] if ssid_raw.startswith(" ") else ssid_raw), m.group(1).lower(),
                float(sig.group(1)), int(freq.group(1)), tx_bitrate_mbps=_mbps(tx),
                rx_bitrate_mbps=_mbps(values.get("rx bitrate")), tx_bitrate=tx)


def parse_station(text: str, bssid: str) -> dict[str, float]:
    """The figures `iw dev IF station dump` gives for the access point `bssid`: signal,
    signal avg (dBm), tx/rx bitrate (MBit/s), where present."""
    out: dict[str, float] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^Station ([0-9a-fA-F:]{17})", line)
        if m:
            current = m.group(1).lower()
            continue
        if current != bssid.lower():
            continue
        key, sep, value = line.strip().partition(":")
        key = key.strip()
        if not sep:
            continue
        if key in ("signal", "signal avg"):
            v = re.match(r"\s*(-?\d+(?:\.\d+)?)", value)
            if v:
                out[key] = float(v.group(1))
        elif key in ("tx bitrate", "rx bitrate"):
            mb = _mbps(value)
            if mb is not None:
                out[key] = mb
    return out


def _mbps(text: str | None) -> float | None:
    m = re.match(r"\s*(\d+(?:\.\d+)?) MBit/s", text or "")
    return float(m.group(1)) if m else None


# ---------------------------------------------------------------- running iw

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, errors="surrogateescape",
                              timeout=SCAN_TIMEOUT_S, stdin=subprocess.DEVNULL,
                              env={**os.environ, "LC_ALL": "C"})
    except FileNotFoundError:
        raise ScanError(f"{argv[0]} is not installed: install the Debian package iw") from None
    except subprocess.TimeoutExpired:
        raise ScanTimeout(f"`{' '.join(argv)}` gave no answer within {SCAN_TIMEOUT_S:g} s") from None


def _errno(text: str) -> int | None:
    """iw's "command failed: Device or resource busy (-16)" -> 16."""
    m = re.search(r"\((-\d+)\)\s*$", text.strip())
    return -int(m.group(1)) if m else None


_WORDS = {
    1: "scanning needs root (CAP_NET_ADMIN): run as root (sudo)",
    19: "no such wireless device",
    95: "the driver does not support scanning",
    100: "the interface is down",
    132: "the radio is blocked by rfkill (a WiFi switch, a BIOS setting or `rfkill block`): "
         "unblock it with `rfkill unblock wifi`",
    16: "the radio is busy (another program is scanning or connecting); try again in a few seconds",
    105: "the kernel sent more scan results than iw could take in (a busy box); try again in a few seconds",
}


def _fail(interface: str, done: subprocess.CompletedProcess[str]) -> ScanError:
    code = _errno(done.stderr or done.stdout)
    words = _WORDS.get(code or 0)
    if words is None:
        said = " ".join((done.stderr or done.stdout or f"exit {done.returncode}").split())[:160]
        words = f"iw failed: {said}"
    return ScanError(f"WiFi scan on {interface}: {words}")


def wireless_interfaces(sys_class_net: Path = Path("/sys/class/net")) -> list[str]:
    """The box's wireless interfaces, in the kernel's order (installer.box.discover)."""
    from installer.box.discover import discover

    return [i.name for i in discover(sys_class_net).interfaces if i.kind == "wireless"]


def choose_interface(interface: str | None, sys_class_net: Path = Path("/sys/class/net")) -> str:
    """`interface` when it is a wireless interface of this box, else the first one; ScanError
    when there is none (or the named one is not wireless)."""
    found = wireless_interfaces(sys_class_net)
    if interface is None:
        if not found:
            raise ScanError("this box has no WiFi interface (no wireless adapter detected)")
        return found[0]
    if interface not in found:
        others = ", ".join(found) or "none"
        raise ScanError(f"{ascii_safe(interface)} is not a WiFi interface of this box (wireless: {others})")
    return interface


def _is_down(interface: str, sys_class_net: Path) -> bool:
    try:
        flags = int((sys_class_net / interface / "flags").read_text().strip(), 16)
    except (OSError, ValueError):
        return False
    return not flags & 0x1  # IFF_UP


def scan(interface: str | None = None, *, run: Runner = _run, sys_class_net: Path = Path("/sys/class/net"),
         busy_retry_s: float = BUSY_RETRY_S) -> list[Network]:
    """The networks `interface` (default: the box's first wireless interface) hears now, one
    row per SSID and band, strongest first. ScanError (one line) when the radio cannot scan.

    An interface that is down (nothing manages it yet) is brought up and left up, as nmcli
    does: putting it down again could fight a network stack that brought it up meanwhile."""
    interface = choose_interface(interface, sys_class_net)
    if _is_down(interface, sys_class_net):
        up = run(["ip", "link", "set", interface, "up"])
        if up.returncode != 0:
            if _errno(up.stderr) == 132 or "RF-kill" in up.stderr:
                raise ScanError(f"WiFi scan on {interface}: {_WORDS[132]}")
            if "Operation not permitted" in up.stderr:
                raise ScanError(f"WiFi scan on {interface}: the interface is down and bringing it up "
                                "needs root: run as root (sudo)")
            raise ScanError(f"WiFi scan on {interface}: cannot bring it up: {' '.join(up.stderr.split())[:160]}")

    def cached() -> list[Network]:
        dump = run(["iw", "dev", interface, "scan", "dump"])
        return networks(parse_scan(dump.stdout)) if dump.returncode == 0 else []

    deadline = time.monotonic() + busy_retry_s
    timeouts = 0
    while True:
        try:
            done = run(["iw", "dev", interface, "scan"])
        except ScanTimeout as e:
            found = cached()
            if found:
                return found
            timeouts += 1
            if timeouts < 2:
                continue
            raise ScanError(f"WiFi scan on {interface}: {e}") from None
        if done.returncode == 0:
            return networks(parse_scan(done.stdout))
        code = _errno(done.stderr or done.stdout)
        # Busy, or ENOBUFS: iw's netlink socket overflowed while the kernel delivered the
        # results (seen under load in the VMs with NetworkManager scanning): both pass.
        if code in (16, 105) and time.monotonic() < deadline:
            time.sleep(0.5)
            continue
        if code in (16, 105, 1):
            # Busy (NetworkManager's or wpa_supplicant's own scan), or not root: the
            # kernel's cache of the last scan is as good, when there is one.
            found = cached()
            if found:
                return found
        raise _fail(interface, done)


def signal(interface: str, *, run: Runner = _run) -> Link | None:
    """The network `interface` has joined and its signal now (`iw dev IF link`), with the
    driver's average and bit rates (`iw dev IF station dump`); None when not associated.
    ScanError when iw cannot tell (no such device, no iw)."""
    done = run(["iw", "dev", interface, "link"])
    if done.returncode != 0:
        raise _fail(interface, done)
    link = parse_link(done.stdout, interface)
    if link is None:
        return None
    dump = run(["iw", "dev", interface, "station", "dump"])
    figures = parse_station(dump.stdout, link.bssid) if dump.returncode == 0 else {}
    return Link(link.interface, link.ssid, link.bssid, link.signal_dbm, link.frequency,
                signal_avg_dbm=figures.get("signal avg"),
                tx_bitrate_mbps=figures.get("tx bitrate", link.tx_bitrate_mbps),
                rx_bitrate_mbps=figures.get("rx bitrate", link.rx_bitrate_mbps), tx_bitrate=link.tx_bitrate)
