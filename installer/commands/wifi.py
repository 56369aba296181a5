"""`edge-installer wifi scan [--interface IF] [--json]`: the WiFi networks this box hears.

A table for the technician (SSID made safe for the terminal, signal in dBm and as bars,
security, band and channel), strongest first; --json for scripts. Exit 0 with the list (an
empty one too: "no networks"), 1 when the radio cannot scan (one line saying why: no radio,
not root, rfkill, ...), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from installer.box.wifi import Network

JSON_VERSION = 1


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("wifi", help="WiFi: scan for networks",
                       description="WiFi tools for the technician at the box.")
    verbs = p.add_subparsers(dest="wifi_verb", metavar="ACTION")
    s = verbs.add_parser("scan", help="list the WiFi networks in the air, strongest first",
                         description="Scan for WiFi networks with the box's radio (iw) and list them, "
                                     "strongest first: SSID, signal (dBm and bars), security, band and "
                                     "channel. A fresh scan needs root; otherwise the radio's last scan "
                                     "is shown. Exit 0 listed, 1 the radio cannot scan, 2 bad arguments.")
    s.add_argument("--interface", "-i", metavar="IF", help="the wireless interface (default: the first one)")
    s.add_argument("--json", action="store_true", help="print JSON (stable schema) instead of a table")
    s.set_defaults(run=run)
    p.set_defaults(run=_no_action)


def _no_action(args: argparse.Namespace) -> int:
    from installer.commands import UsageError

    raise UsageError("edge-installer wifi: say what to do: `edge-installer wifi scan [--json]` "
                     "(see edge-installer wifi --help)")


def run(args: argparse.Namespace) -> int:
    from installer.box import wifi

    try:
        interface = wifi.choose_interface(args.interface)
        found = wifi.scan(interface)
    except wifi.ScanError as e:
        print(f"edge-installer: {e}", file=sys.stderr)
        return 1
    if args.json:
        json.dump({"version": JSON_VERSION, "interface": interface,
                   "networks": [n.to_json() for n in found]}, sys.stdout, indent=2)
        print()
    else:
        print(format_table(found, interface))
    return 0


def format_table(found: list[Network], interface: str) -> str:
    """The technician's table: ASCII only, at most 80 columns, one network per line."""
    from installer.box.wifi import ascii_printable

    if not found:
        return f"No WiFi networks heard on {ascii_printable(interface)}."
    head = f"{'SSID':32}  {'SIGNAL':>8}  {'BARS':4}  {'SECURITY':15}  {'BAND/CH':>11}"
    lines = [head]
    for n in found:
        name = "(hidden network)" if n.hidden else ascii_printable(n.ssid, 32)
        if len(name) > 32:
            name = name[:29] + "..."
        meter = "#" * _bars(n.signal_dbm) + "." * (4 - _bars(n.signal_dbm))
        where = f"{n.band.split()[0]}/{n.channel}"
        lines.append(f"{name:32}  {n.signal_dbm:>4.0f} dBm  {meter:4}  {n.security:15}  {where:>11}".rstrip())
    lines.append(f"{len(found)} network{'s' if len(found) != 1 else ''} on {ascii_printable(interface)}, "
                 "strongest first; a hidden one is joined by its name.")
    return "\n".join(lines)


def _bars(dbm: float) -> int:
    from installer.box.wifi import bars

    return bars(dbm)
