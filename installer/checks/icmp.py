"""ICMP echo (ping) for the checks, and the two checks built on it.

`echo()` is the one implementation: a raw ICMP socket (the installer runs as root), else an
unprivileged ICMP datagram socket (Linux's "ping socket", where net.ipv4.ping_group_range
allows it); requests spaced evenly, replies matched by identifier and sequence, every round
trip timed on the monotonic clock, the whole series bounded in time.

- `link-quality` (kind "link"): latency and loss of the uplink, measured concurrently with the
  other checks and briefly (20 echo requests 10 ms apart to the uplink's gateway, ~0.2 s on a
  healthy link). Only when a request is lost, a second and different probe confirms it: 20
  DNS queries to the resolver (a gateway that rate-limits ping is not a poor link). Where the
  gateway does not answer ping, or ICMP cannot be sent, the DNS queries are the measure. A
  poor link makes every other check fail at random, each failure looking like a firewall
  rule: this check names it once, with the figures (`poor-link`).
- `icmp-reference` (kind "icmp"): MachineMetrics' diagnostic step 4 ("ping 8.8.8.8 - if ping
  succeeds but curl to CloudLink fails, a firewall is specifically blocking the domain"), run
  only when a cloud host failed.

Thresholds (`judge_link`), from common practice for data links: loss of 2 % or more (two
packets at least) or a median round trip above 300 ms is a warning (TCP throughput falls
steeply with loss: Mathis et al.; ITU-T G.114 puts 150 ms one way, ~300 ms round trip, at
the limit of interactive use); loss of 10 % or more or a median round trip above 1000 ms is
a failure (TLS handshakes and DNS queries then time out regularly).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import statistics
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from installer.checks.base import NOT_NEEDED, Context, Outcome, Result
from installer.checks.tls import Budget

ECHO_REQUEST, ECHO_REPLY = 8, 0
_PAYLOAD = b"edge-installer link probe"

WARN_LOSS_PCT, FAIL_LOSS_PCT = 2.0, 10.0
WARN_RTT_MS, FAIL_RTT_MS = 300.0, 1000.0
LINK_COUNT, LINK_INTERVAL_S = 20, 0.01
REFERENCE = "8.8.8.8"


class IcmpUnavailable(Exception):
    """Neither a raw nor a datagram ICMP socket could be opened (or used) here."""


@dataclass
class Series:
    """What one series of probes saw."""

    target: str
    method: str                     # "ICMP echo" or "DNS query"
    sent: int = 0
    rtts: list[float] = field(default_factory=list)  # seconds, one per answered probe
    error: str | None = None        # an error the network reported (no route, ...)

    @property
    def received(self) -> int:
        return len(self.rtts)

    @property
    def lost(self) -> int:
        return self.sent - self.received

    @property
    def loss_pct(self) -> float:
        return round(100.0 * self.lost / self.sent, 1) if self.sent else 0.0

    def ms(self, which: str) -> float | None:
        """"min", "median" or "max" round trip in ms (None without an answer)."""
        if not self.rtts:
            return None
        fns: dict[str, Callable[[list[float]], float]] = {"min": min, "median": statistics.median, "max": max}
        fn = fns[which]
        return round(fn(self.rtts) * 1000, 1)

    def add(self, other: Series) -> Series:
        return Series(self.target, self.method, self.sent + other.sent, self.rtts + other.rtts,
                      self.error or other.error)

    def figures(self) -> str:
        """"20/20 answered, RTT min/median/max 0.1/0.2/0.4 ms"."""
        words = f"{self.received}/{self.sent} answered"
        if self.lost:
            words += f" ({self.loss_pct:g}% lost)"
        if self.rtts:
            words += f", RTT min/median/max {self.ms('min'):g}/{self.ms('median'):g}/{self.ms('max'):g} ms"
        return words


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int) -> bytes:
    """An ICMP echo request (type 8) with its checksum."""
    head = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, _checksum(head + _PAYLOAD), ident, seq) + _PAYLOAD


def parse_reply(data: bytes, ident: int | None, raw: bool) -> int | None:
    """The sequence number of an echo reply for us, else None. A raw socket's data starts with
    the IP header; a datagram socket's with ICMP, and the kernel owns its identifier."""
    if raw:
        if len(data) < 20:
            return None
        data = data[(data[0] & 0x0F) * 4:]
    if len(data) < 8:
        return None
    kind, _, _, their_ident, seq = struct.unpack("!BBHHH", data[:8])
    if kind != ECHO_REPLY or (ident is not None and their_ident != ident):
        return None
    return int(seq)


def _open_icmp(target: str) -> tuple[socket.socket, bool]:
    """A non-blocking ICMP socket connected to `target` (raw when allowed) and whether raw."""
    errors = []
    for kind, raw in ((socket.SOCK_RAW, True), (socket.SOCK_DGRAM, False)):
        try:
            sock = socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP)
        except OSError as e:
            errors.append(f"{'raw' if raw else 'datagram'} ICMP socket: {e.strerror or e}")
            continue
        try:
            sock.setblocking(False)
            sock.connect((target, 0))
        except OSError:
            sock.close()
            raise
        return sock, raw
    raise IcmpUnavailable("; ".join(errors))


async def _series(sock: socket.socket, make: Callable[[int], bytes], match: Callable[[bytes], int | None],
                  count: int, interval: float, wait: float, end: float, result: Series) -> Series:
    """Send count probes `interval` apart on a connected socket, match the answers, and stop
    when all are answered, `wait` seconds after the last was sent, or at `end` (monotonic)."""
    loop = asyncio.get_running_loop()
    sent_at: dict[int, float] = {}
    answered: set[int] = set()
    all_sent = asyncio.Event()
    done = asyncio.Event()

    async def sender() -> None:
        try:
            for seq in range(count):
                if time.monotonic() >= end:
                    break
                sent_at[seq] = time.monotonic()
                try:
                    sock.send(make(seq))
                except BlockingIOError:
                    del sent_at[seq]
                except OSError as e:
                    del sent_at[seq]
                    result.error = result.error or _words(e)
                    if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EPERM, errno.EACCES):
                        break
                if seq < count - 1:
                    await asyncio.sleep(interval)
        finally:
            result.sent += len(sent_at)
            all_sent.set()

    async def receiver() -> None:
        while True:
            try:
                data = await loop.sock_recv(sock, 4096)
            except OSError as e:  # an ICMP error reported on the socket (datagram socket)
                result.error = result.error or _words(e)
                continue
            now = time.monotonic()
            seq = match(data)
            if seq is not None and seq in sent_at and seq not in answered:
                answered.add(seq)
                result.rtts.append(now - sent_at[seq])
                if all_sent.is_set() and answered >= set(sent_at):
                    done.set()

    send_task = asyncio.create_task(sender())
    recv_task = asyncio.create_task(receiver())
    try:
        await asyncio.wait_for(all_sent.wait(), max(0.0, end - time.monotonic()) + 0.05)
        if answered >= set(sent_at):
            return result
        limit = min(end, time.monotonic() + wait)
        try:
            await asyncio.wait_for(done.wait(), max(0.0, limit - time.monotonic()))
        except TimeoutError:
            pass
        return result
    except TimeoutError:
        return result
    finally:
        for task in (send_task, recv_task):
            task.cancel()
        await asyncio.gather(send_task, recv_task, return_exceptions=True)


def _words(e: OSError) -> str:
    name = errno.errorcode.get(e.errno or 0, "")
    return f"{e.strerror or e}{f' ({name})' if name else ''}"


async def echo(target: str, *, count: int, interval: float, wait: float, end: float) -> Series:
    """ICMP echo requests to `target` (an IPv4 address). Raises IcmpUnavailable when no ICMP
    socket can be opened; a send the network refuses is the Series' `error`."""
    try:
        sock, raw = _open_icmp(target)
    except IcmpUnavailable:
        raise
    except OSError as e:  # connect() of a datagram socket: no route, ...
        return Series(target, "ICMP echo", error=_words(e))
    ident = (os.getpid() ^ id(sock)) & 0xFFFF
    try:
        return await _series(sock, lambda seq: echo_request(ident, seq),
                             lambda data: parse_reply(data, ident if raw else None, raw),
                             count, interval, wait, end, Series(target, "ICMP echo"))
    finally:
        sock.close()


async def dns_probe(resolver: str, *, count: int, interval: float, wait: float, end: float) -> Series:
    """DNS queries (". NS") over UDP to `resolver`: any answer with our ID is a reply, whatever
    its rcode: what is measured is the path, not the resolver."""
    import dns.message

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    base = int.from_bytes(os.urandom(2), "big")
    try:
        sock.setblocking(False)
        try:
            sock.connect((resolver, 53))
        except OSError as e:
            return Series(resolver, "DNS query", error=_words(e))

        def make(seq: int) -> bytes:
            query = dns.message.make_query(".", "NS")
            query.id = (base + seq) & 0xFFFF
            return query.to_wire()

        def match(data: bytes) -> int | None:
            if len(data) < 12:
                return None
            return (int.from_bytes(data[:2], "big") - base) & 0xFFFF

        return await _series(sock, make, match, count, interval, wait, end, Series(resolver, "DNS query"))
    finally:
        sock.close()


# --- link quality ------------------------------------------------------------------------

def default_gateway(proc_net_route: Path) -> str | None:
    """The IPv4 default gateway from /proc/net/route (the first default route's), or None."""
    try:
        lines = proc_net_route.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 4 and fields[1] == "00000000" and int(fields[3], 16) & 0x2:
            return socket.inet_ntoa(struct.pack("<I", int(fields[2], 16)))
    return None


def judge_link(series: Series) -> tuple[str, str]:
    """(status, why) for a measured series: "pass", "warn" or "fail" by the module's thresholds."""
    loss, lost = series.loss_pct, series.lost
    median = series.ms("median") or 0.0
    if loss >= FAIL_LOSS_PCT and lost >= 2:
        return "fail", f"{loss:g}% of the probes lost (failure from {FAIL_LOSS_PCT:g}%)"
    if median > FAIL_RTT_MS:
        return "fail", f"median round trip {median:g} ms (failure above {FAIL_RTT_MS:g} ms)"
    if loss >= WARN_LOSS_PCT and lost >= 2:
        return "warn", f"{loss:g}% of the probes lost (warning from {WARN_LOSS_PCT:g}%)"
    if median > WARN_RTT_MS:
        return "warn", f"median round trip {median:g} ms (warning above {WARN_RTT_MS:g} ms)"
    return "pass", ""


def _link_remediation(interface: str | None, wireless: bool) -> str:
    where = f"the uplink ({interface})" if interface else "the uplink"
    first = (f"Check the WiFi signal strength of {where} (move the box or the access point, or use a wired "
             "uplink)" if wireless else
             f"Check the cable and the switch port of {where}: reseat or replace the cable, and look at the "
             f"port's error counters and speed/duplex on the switch (`ip -s link show {interface or 'IFACE'}` "
             "shows the box's side)")
    return (f"The link itself loses packets or is slow, so other checks may fail at random, each looking like "
            f"a firewall rule: fix the link before changing firewall rules. {first}; check the network for "
            "congestion (MachineMetrics network requirements, Intermittent Connectivity: check for network "
            "congestion, verify WiFi signal strength, review firewall logs for blocked traffic, check NTP "
            "synchronization). Then re-run the checks.")


async def link_quality(ctx: Context, prereqs: Mapping[str, Result], *, gateway: str | None = None,
                       interface: str | None = None, wireless: bool = False) -> Outcome:
    """`link-quality`: latency and loss to the uplink's gateway (the plan's, else the default
    route's), else to the first resolver; by ICMP echo, else by DNS queries to the resolver."""
    budget = Budget(ctx.timeout)
    proc_route = Path(ctx.proc_sys).parent / "net" / "route"
    target, role = gateway, "the uplink's gateway"
    if target is None:
        target = default_gateway(proc_route)
        role = "the default gateway"
    resolver = next((r for r in ctx.resolvers if ":" not in r), None)
    if target is None:
        target, role = resolver, "the resolver"
    if target is None:
        return Outcome("skip", "link-unmeasured", "no gateway and no resolver to measure the link with")
    tried: list[str] = []
    first: Series | None = None
    try:
        first = await _probe(echo, target, budget, 1.0)
        tried.append(f"ICMP echo to {target}: " + (first.error or f"{first.received}/{first.sent} answered"))
    except IcmpUnavailable as e:
        tried.append(f"ICMP not possible here ({e})")
    second: Series | None = None
    if (first is None or first.lost or not first.sent) and budget.next() > 0.3:
        # Before blaming the link, a second and different probe: DNS queries to the resolver
        # (another protocol, maybe another host: a gateway that rate-limits or filters ping is
        # not a poor link). Without a resolver, a second ICMP series.
        if resolver is not None:
            second = await _probe(dns_probe, resolver, budget, _window(first))
            tried.append(f"DNS to {resolver}: " + (second.error or f"{second.received}/{second.sent} answered"))
        elif first is not None and first.received:
            second = await _probe(echo, target, budget, _window(first))
    series, label, note = _combine(first, second, role)
    if series is None:
        return Outcome("skip", "link-unmeasured", "nothing answered to measure the link with: " + "; ".join(tried)
                       + " (the DNS and connection checks say what is unreachable)",
                       {"target": target, "sent": sum(s.sent for s in (first, second) if s), "received": 0})
    status, why = judge_link(series)
    facts = {"target": series.target, "method": series.method, "sent": series.sent, "received": series.received,
             "loss_pct": series.loss_pct, "rtt_min_ms": series.ms("min"), "rtt_median_ms": series.ms("median"),
             "rtt_max_ms": series.ms("max"), "interface": interface}
    if status == "pass":
        return Outcome("pass", "ok", f"{label}: {series.figures()}{note}", facts)
    return Outcome(status, "poor-link", f"{label}: {series.figures()}: {why}{note}; expect other checks to fail "
                                        "at random while the link is this poor",
                   facts, remediation=_link_remediation(interface, wireless))


def _window(seen: Series | None) -> float:
    """How long to wait for late answers after the last probe: three times the slowest round
    trip seen so far, at least 0.3 s, at most 1 s."""
    slowest = max(seen.rtts) if seen is not None and seen.rtts else 0.4
    return min(1.0, max(0.3, 3 * slowest))


class _Prober(Protocol):
    """`echo` or `dns_probe`: a series of probes to one target."""

    async def __call__(self, target: str, /, *, count: int, interval: float, wait: float, end: float) -> Series: ...


async def _probe(probe: _Prober, target: str, budget: Budget, wait: float) -> Series:
    return await probe(target, count=LINK_COUNT, interval=LINK_INTERVAL_S, wait=wait,
                       end=time.monotonic() + budget.next())


def _combine(first: Series | None, second: Series | None, role: str) -> tuple[Series | None, str, str]:
    """(the series to judge, how it was measured, a note) from the ICMP series and the
    confirming one: a probe with no answer at all says nothing about the link; a DNS series
    without loss beside a lossy ping means the gateway limits ICMP, not a poor link."""
    def label(s: Series, who: str) -> str:
        return f"{s.target} ({who}, {s.method})"

    have_first = first is not None and first.received > 0
    have_second = second is not None and second.received > 0
    if not have_first and not have_second:
        return None, "", ""
    if not have_second:
        assert first is not None
        return first, label(first, role), ""
    assert second is not None
    second_role = "the resolver" if second.method == "DNS query" else role
    if not have_first:
        why = "; the gateway does not answer ping" if first is not None and first.target != second.target else ""
        return second, label(second, second_role), why
    assert first is not None
    if second.method != first.method and not second.lost:
        return second, label(second, second_role), (
            f"; {first.target} lost {first.loss_pct:g}% of its ICMP echo requests meanwhile, with no DNS query "
            "lost: it limits ICMP, the link is not at fault")
    both = first.add(second)
    if second.method == first.method:
        return both, label(first, role), ""
    return both, f"{first.target} ({role}, ICMP echo) and {second.target} (the resolver, DNS query)", ""


# --- the reference probe: MachineMetrics' diagnostic step 4 -------------------------------

def _host_port(target: str) -> str:
    """A check's target as host:port ("https://h/ping" -> "h:443")."""
    if "://" in target:
        rest = target.split("://", 1)[1].split("/", 1)[0]
        return rest if ":" in rest else f"{rest}:443"
    return target


async def icmp_reference(ctx: Context, prereqs: Mapping[str, Result], *, watched: tuple[str, ...],
                         target: str = REFERENCE, link_key: str | None = None) -> Outcome:
    """`icmp-reference`: when a watched cloud check failed, three echo requests to `target`.
    An answer means the internet is reachable and the failing hosts are blocked specifically
    (unless the link-quality check, `link_key`, found the link itself poor: then the failures
    may be the link's); silence (`icmp-blocked`) means no internet path at all, or ICMP
    filtered. Nothing failed: not needed (left out of the report)."""
    failing = sorted({_host_port(prereqs[k].target) for k in watched
                      if k in prereqs and prereqs[k].status == "fail"})
    if not failing:
        return Outcome("skip", NOT_NEEDED, "no cloud host failed")
    shown = ", ".join(failing[:6]) + (f" and {len(failing) - 6} more" if len(failing) > 6 else "")
    budget = Budget(ctx.timeout)
    facts = {"target": target, "failing": failing}
    try:
        series = await echo(target, count=3, interval=0.05, wait=min(1.5, ctx.timeout),
                            end=time.monotonic() + budget.next())
    except IcmpUnavailable as e:
        return Outcome("skip", "icmp-unavailable", f"cannot send ICMP from here to compare with {target}: {e}",
                       {**facts, "reachable": None})
    link = prereqs.get(link_key) if link_key else None
    poor = link is not None and link.diagnosis == "poor-link"
    if series.received:
        if poor:
            return Outcome("pass", "ok", f"{target} answers ping ({series.ms('median'):g} ms) while {shown} fail, but "
                                         "the uplink itself is poor (see link-quality): these failures may be the "
                                         "link's, not a firewall's; fix the link, then re-run the checks",
                           {**facts, "reachable": True, "rtt_ms": series.ms("median"), "poor_link": True})
        return Outcome("pass", "ok", f"{target} answers ping ({series.ms('median'):g} ms) while {shown} fail: the "
                                     "internet is reachable, a firewall is blocking these destinations specifically "
                                     "(MachineMetrics network requirements, CloudLink diagnostic step 4)",
                       {**facts, "reachable": True, "rtt_ms": series.ms("median"), "poor_link": False})
    extra = f" ({series.error})" if series.error else ""
    return Outcome("warn", "icmp-blocked",
                   f"ICMP to {target} gets no answer either{extra}: the box may have no internet path at all, "
                   f"or ICMP is filtered ({shown} fail)",
                   {**facts, "reachable": False},
                   remediation=(f"Neither {shown} nor a ping to {target} get through. Check that the site network "
                                "routes the box to the internet at all (the uplink's gateway, the site's internet "
                                "router, the plan's proxy if the site allows only proxied traffic); if the network "
                                "only filters ICMP, this says nothing: follow the failing checks' advice "
                                "(MachineMetrics network requirements, CloudLink diagnostic step 4: ping 8.8.8.8)."))
