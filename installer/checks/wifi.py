"""`wifi-signal`: how strongly the box's WiFi uplink hears the access point it has joined.

MachineMetrics asks for a "Strong WiFi signal at Edge location" (Option 4: Fully Wireless) and,
when connectivity is intermittent, to "Verify WiFi signal strength (if wireless)". This check
measures it on the uplink (`iw dev IF link`, and the driver's running average from
`iw dev IF station dump` where it keeps one) and judges it by the figures enterprise WLAN
design uses:

- -67 dBm or stronger: pass. -67 dBm is the design minimum for reliable data and voice at the
  cell edge (Cisco, Enterprise Mobility 4.1 Design Guide, ch. 9 "VoWLAN Design
  Recommendations", Cell Edge Design: "the most important RF design criteria are the -67 dBm
  cell radius"; WLAN survey practice uses the same -65/-67 dBm minimum for primary coverage).
- below -67 down to -75 dBm: warn (wifi-signal-weak): it works, at lower data rates, with more
  retries, and a little more distance, a closed door or a running machine tool drops it.
- below -75 dBm: fail (wifi-signal-poor): below the edge field strength WLAN planning guides
  require (Huawei's WLAN planning: edge field strength "generally higher than -75 dBm"), the
  link falls back to its lowest rates and drops out; the vendor's data gaps follow.
- not associated: fail (wifi-not-associated), since the uplink carries nothing.

The signal is judged on the average when the driver keeps one (one frame's reading jumps by
several dB), and the evidence gives both, with the access point, band, channel and bit rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from installer.checks.base import Context, Outcome, Result
from installer.vendors.sources import cite

if TYPE_CHECKING:  # installer.box.wifi loads when the check runs, not at import
    from installer.box.wifi import Link

PASS_DBM = -67.0   # design minimum for reliable data (the cell edge of enterprise WLAN design)
FAIL_DBM = -75.0   # below this: poor (the floor of WLAN planning's edge field strength)

_DOC = "000_d0122341ad91427d.txt"
STRONG = cite(f"{_DOC}#Option 4: Fully Wireless")          # "Strong WiFi signal at Edge location"
VERIFY = cite(f"{_DOC}#Intermittent Connectivity")         # "Verify WiFi signal strength (if wireless)"


def judge(dbm: float) -> tuple[str, str]:
    """(status, diagnosis) of a signal: pass ok, warn wifi-signal-weak, fail wifi-signal-poor."""
    if dbm >= PASS_DBM:
        return "pass", "ok"
    if dbm >= FAIL_DBM:
        return "warn", "wifi-signal-weak"
    return "fail", "wifi-signal-poor"


def _remediation(interface: str, weak: bool) -> str:
    how = ("Move the box or its antenna toward the access point (line of sight, away from metal cabinets and "
           "machine tools), add an access point or an external antenna near the box, or use a wired uplink")
    level = (f"aim for {PASS_DBM:g} dBm or stronger (the design minimum for reliable data); below "
             f"{FAIL_DBM:g} dBm the link drops out")
    return (f"{'Weak' if weak else 'Poor'} WiFi signal on {interface}: {how}; {level}. {STRONG} asks for "
            f"\"Strong WiFi signal at Edge location\"; {VERIFY}: \"Verify WiFi signal strength (if wireless)\". "
            f"Re-check with `edge-installer wifi scan` at the new place.")


def describe(link: Link) -> str:
    """The evidence: signal (average and last), access point, band, channel, bit rate."""
    from installer.box.wifi import ascii_printable, bars

    avg = f"{link.signal_avg_dbm:g} dBm average, last {link.signal_dbm:g} dBm" if link.signal_avg_dbm is not None \
        else f"{link.signal_dbm:g} dBm"
    rate = f", tx {link.tx_bitrate_mbps:g} Mbit/s" if link.tx_bitrate_mbps is not None else ""
    return (f"signal {avg} ({bars(link.judged_dbm)}/4 bars) from \"{ascii_printable(link.ssid, 32)}\" "
            f"{link.bssid}, {link.band} channel {link.channel} ({link.frequency} MHz){rate}")


async def wifi_signal(ctx: Context, prereqs: Mapping[str, Result], *, interface: str, ssid: str | None = None,
                      expect_applied: bool = True) -> Outcome:
    """`wifi-signal`: the uplink `interface`'s signal from the access point it joined. Before
    the plan is applied (the wizard's checks), not being associated yet is a warning."""
    from installer.box import wifi

    if ctx is not None and not Path(ctx.sys_class_net, interface).exists():
        # link-state fails for it already (link-missing): one cause, said once.
        return Outcome("skip", "link-missing", f"{interface} does not exist on this box: no signal to read")
    try:
        link = await asyncio.to_thread(wifi.signal, interface)
    except wifi.ScanError as e:
        return Outcome("fail", "wifi-unreadable", str(e),
                       remediation=f"Check that {interface} is the box's WiFi adapter (`edge-installer interfaces`) "
                                   "and that iw is installed.")
    if link is None:
        wanted = f" to \"{wifi.ascii_printable(ssid, 32)}\"" if ssid else ""
        if not expect_applied:
            wanted += " yet: writing the configuration joins it (the scan list shows each network's signal)"
        return Outcome("fail" if expect_applied else "warn", "wifi-not-associated",
                       f"{interface} is not associated{wanted}",
                       {"interface": interface},
                       remediation=(f"{interface} has joined no WiFi network: check the SSID and passphrase of the "
                                    "plan, that the access point is on and in range (`edge-installer wifi scan` "
                                    "lists what the box hears, with the signal), and the logs of the network "
                                    f"stack (journalctl -u NetworkManager or -u netplan-wpa-{interface})."))
    dbm = link.judged_dbm
    status, diagnosis = judge(dbm)
    facts = {"interface": interface, "signal_dbm": dbm, "signal_last_dbm": link.signal_dbm,
             "bssid": link.bssid, "frequency": link.frequency}
    evidence = describe(link)
    if ssid and wifi.ssid_bytes(link.ssid) != wifi.ssid_bytes(ssid):
        evidence += f" (the plan's network is \"{wifi.ascii_printable(ssid, 32)}\")"
    if status == "pass":
        return Outcome("pass", "ok", evidence, facts)
    limit = f"weaker than {PASS_DBM:g} dBm" if status == "warn" else f"below {FAIL_DBM:g} dBm"
    return Outcome(status, diagnosis, f"{evidence}: {limit}", facts,
                   remediation=_remediation(interface, weak=status == "warn"))
