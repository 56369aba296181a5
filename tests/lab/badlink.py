"""A poor uplink for the lab (Lab.poor_link): packets lost and delayed between edge and cloud.

This machine's kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is off), so the link is made
poor with what it has:

- loss: an nftables rule in the *receiving* namespace's prerouting hook (the cloud's for what
  the edge sends, the edge's for what comes back) drops each packet with probability
  loss_pct (`numgen random`). Dropping at the receiver keeps the sender unaware, as a lossy
  wire does: a drop in the sender's own output hook would fail its send() with EPERM.
- delay and jitter: every packet the edge sends on its uplink is queued (NFQUEUE, through
  iptables-nft: this kernel has the xtables NFQUEUE target but not nft's `queue`) to a small
  process in the cloud namespace (`delayer`, run by the lab as a service) that releases each one
  delay_ms (+- jitter_ms) later; the round trip grows by delay_ms.

Everything lives in a table of its own (`edgelink`) and is removed when the link is healthy.
"""

from __future__ import annotations

import heapq
import os
import random
import select
import socket
import struct
import sys
import time
from pathlib import Path

from tests.lab import topology as T

TABLE = "edgelink"
QUEUE = 7
READY_PORT = 9797  # the delayer binds 127.0.0.1:9797/udp once its queue is bound (readiness)


def loss_table(iface: str, loss_pct: float) -> str:
    """The nft script for one receiving namespace: drop `loss_pct` % of what arrives on `iface`
    (an empty table when there is no loss)."""
    rule = ""
    if loss_pct > 0:
        per_million = round(loss_pct * 10000)
        rule = f'        iifname "{iface}" numgen random mod 1000000 < {per_million} drop\n'
    return (f"add table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n"
            f"    chain pre {{\n        type filter hook prerouting priority -300; policy accept;\n"
            f"{rule}    }}\n}}\n")


def delay_rules(on: bool) -> list[list[str]]:
    """iptables-nft commands (run in the cloud) that queue what arrives from the edge, or that
    remove it. --queue-bypass: without the delayer, packets pass instead of vanishing."""
    # The raw table: before conntrack. Queued after it, a ping's later echo requests (one
    # conntrack tuple) would each carry an unconfirmed entry, and all but the first to leave
    # the queue would be dropped as insert clashes.
    base = ["iptables-nft", "-w", "-t", "raw"]
    rule = ["PREROUTING", "-i", T.CLOUD_IF, "-j", "NFQUEUE", "--queue-num", str(QUEUE), "--queue-bypass"]
    return [[*base, "-A" if on else "-D", *rule]]


# --- the delayer: NFQUEUE over raw netlink (no library needed) ----------------------------

_NETLINK_NETFILTER = 12
_NFNL_SUBSYS_QUEUE = 3
_MSG_PACKET, _MSG_VERDICT, _MSG_CONFIG = 0, 1, 2
_NLM_F_REQUEST, _NLM_F_ACK = 1, 4
_NLMSG_ERROR = 2
_CFG_CMD, _CFG_PARAMS = 1, 2
_CMD_BIND = 1
_COPY_META = 1
_PACKET_HDR = 1
_VERDICT_HDR = 2
_NF_ACCEPT = 1


def _attr(kind: int, data: bytes) -> bytes:
    head = struct.pack("=HH", 4 + len(data), kind)
    return head + data + b"\0" * ((4 - len(data) % 4) % 4)


def _message(msg: int, queue: int, attrs: bytes, flags: int = _NLM_F_REQUEST, seq: int = 0) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
    return struct.pack("=IHHII", 16 + len(body), (_NFNL_SUBSYS_QUEUE << 8) | msg, flags, seq, 0) + body


def _attrs(data: bytes) -> dict[int, bytes]:
    found = {}
    while len(data) >= 4:
        length, kind = struct.unpack("=HH", data[:4])
        if length < 4:
            break
        found[kind & 0x7FFF] = data[4:length]
        data = data[(length + 3) & ~3:]
    return found


def _config(sock: socket.socket, queue: int, attrs: bytes) -> None:
    sock.send(_message(_MSG_CONFIG, queue, attrs, _NLM_F_REQUEST | _NLM_F_ACK, seq=1))
    reply = sock.recv(65536)
    length, kind = struct.unpack("=IH", reply[:6])
    if kind == _NLMSG_ERROR:
        err = struct.unpack("=i", reply[16:20])[0]
        if err:
            raise OSError(-err, os.strerror(-err))


def delayer(queue: int, delay_s: float, jitter_s: float) -> None:
    """Release every packet of `queue` delay_s (+- jitter_s, uniform) after it arrived, in the
    order of their release times, as a line with variable delay does."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_NETFILTER)
    sock.bind((0, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    _config(sock, queue, _attr(_CFG_CMD, struct.pack("!BBH", _CMD_BIND, 0, 0)))
    _config(sock, queue, _attr(_CFG_PARAMS, struct.pack("!IB", 0, _COPY_META) + b"\0\0\0"))
    ready = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ready.bind(("127.0.0.1", READY_PORT))
    pending: list[tuple[float, int]] = []
    while True:
        timeout = max(0.0, pending[0][0] - time.monotonic()) if pending else None
        readable, _, _ = select.select([sock], [], [], timeout)
        if readable:
            data = sock.recv(65536)
            now = time.monotonic()
            while len(data) >= 16:
                length, kind = struct.unpack("=IH", data[:6])
                if kind & 0xFF == _MSG_PACKET and kind >> 8 == _NFNL_SUBSYS_QUEUE:
                    attrs = _attrs(data[20:length])
                    if _PACKET_HDR in attrs:
                        packet_id = struct.unpack("!I", attrs[_PACKET_HDR][:4])[0]
                        due = now + max(0.0, delay_s + random.uniform(-jitter_s, jitter_s))
                        heapq.heappush(pending, (due, packet_id))
                data = data[(length + 3) & ~3:]
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, packet_id = heapq.heappop(pending)
            sock.send(_message(_MSG_VERDICT, queue, _attr(_VERDICT_HDR, struct.pack("!II", _NF_ACCEPT, packet_id))))


def service(d: Path, delay_ms: int, jitter_ms: int):
    """The delayer as a lab Service (in the cloud namespace)."""
    from tests.lab.servers import Service

    repo = Path(__file__).resolve().parents[2]
    run = f"from tests.lab.badlink import delayer; delayer({QUEUE}, {delay_ms / 1000!r}, {jitter_ms / 1000!r})"
    return Service("badlink", "cloud", (sys.executable, "-c", run),
                   (("udp", "127.0.0.1", READY_PORT),), env={"PYTHONPATH": str(repo)})

