"""Opening connections the way the checks need them, and naming what went wrong.

One place decides how a TCP stream to an endpoint is opened (directly to the addresses DNS
gave, or through the plan's proxy with CONNECT) and turns every failure into a diagnosis
code the report understands: refused (a REJECT rule), timed out (a DROP rule), unreachable
(no route), or the proxy's own refusals.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from installer.checks.base import Proxy, Result
from installer.planning.plan import Plan
from installer.vendors.profiles import Endpoint, Profile


class NetError(Exception):
    """A connection that failed, with its diagnosis code and the evidence in words."""

    def __init__(self, diagnosis: str, evidence: str, facts: Mapping[str, Any] | None = None):
        super().__init__(evidence)
        self.diagnosis = diagnosis
        self.evidence = evidence
        self.facts: Mapping[str, Any] = facts or {}  # e.g. the proxy's HTTP status for a refused CONNECT


@dataclass
class Stream:
    """An open stream and how it was reached (for the evidence)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    address: str          # the address connected to (the proxy's, when proxied)
    via_proxy: bool
    connect_s: float

    def describe(self) -> str:
        """How the stream was reached, in words."""
        how = f"through the proxy at {self.address}" if self.via_proxy else f"to {self.address}"
        return f"connected {how} in {self.connect_s * 1000:.0f} ms"

    async def close(self) -> None:
        """Close without waiting long for a peer that does not answer."""
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 0.5)
        except (TimeoutError, OSError, ValueError):
            pass


def proxy_from_plan(plan: Plan) -> Proxy | None:
    """The plan's proxy as the checks use it (credentials as a Basic header), or None."""
    p = plan.proxy
    if p is None or not p.url:
        return None
    parts = urlsplit(p.url)
    auth = None
    if p.username is not None:
        token = f"{p.username}:{p.password or ''}".encode()
        auth = "Basic " + base64.b64encode(token).decode("ascii")
    shown = f"{parts.scheme}://{parts.hostname}:{parts.port}"
    return Proxy(parts.hostname or "", parts.port or 3128, auth, shown)


def bypasses_proxy(plan: Plan, host: str) -> bool:
    """True when `host` is in the plan's no_proxy list (a name, a .domain, an IP or a network)."""
    if plan.proxy is None:
        return True
    host = host.lower().rstrip(".")
    for entry in plan.proxy.no_proxy:
        e = entry.lower().split(":")[0] if entry.count(":") == 1 else entry.lower()
        if e in ("*",):
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(e, strict=False):
                return True
            continue
        except ValueError:
            pass
        e = e.removeprefix("*.").lstrip(".")
        if host == e or host.endswith("." + e):
            return True
    return False


def classify_oserror(e: BaseException) -> tuple[str, str]:
    """(diagnosis, words) for a failed connect."""
    if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
        return "tcp-timeout", "no answer (the packets are dropped on the way: a DROP rule or a dead host)"
    code = getattr(e, "errno", None)
    if code == errno.ECONNREFUSED:
        return "tcp-refused", "connection refused (a firewall REJECT rule, or nothing listens on that port)"
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
        return "tcp-unreachable", f"no route to the destination ({errno.errorcode.get(code, code)})"
    if code in (errno.ECONNRESET, errno.EPIPE):
        return "tcp-reset", "the connection was reset while opening"
    return "tcp-error", f"{type(e).__name__}: {e}"


async def connect_direct(addresses: list[str] | tuple[str, ...], port: int, timeout: float) -> Stream:
    """Connect to the first address that answers; every address shares the one timeout."""
    if not addresses:
        raise NetError("dns-no-address", "no address to connect to")
    loop_deadline = time.monotonic() + timeout
    last: tuple[str, str] | None = None
    for address in addresses:
        remaining = loop_deadline - time.monotonic()
        if remaining <= 0:
            break
        t0 = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), remaining)
        except (TimeoutError, OSError) as e:
            diagnosis, words = classify_oserror(e)
            last = (diagnosis, f"{address}:{port}: {words}")
            continue
        return Stream(reader, writer, f"{address}:{port}", False, time.monotonic() - t0)
    assert last is not None or not addresses
    diagnosis, words = last or ("tcp-timeout", f"no answer within {timeout:g} s")
    raise NetError(diagnosis, words)


SMALL_MSS = 536  # the minimum every IPv4 host must accept (RFC 879): 576-byte packets


async def connect_small_mss(address: str, port: int, timeout: float, mss: int = SMALL_MSS) -> Stream:
    """Connect to one address with TCP_MAXSEG set before connect(), so the SYN announces a
    small MSS and the server sends only small segments (the path-MTU black-hole probe).
    Raises NetError like connect_direct."""
    import socket

    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    t0 = time.monotonic()
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        sock.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(sock, (address, port)), timeout)
        reader, writer = await asyncio.open_connection(sock=sock)
    except (TimeoutError, OSError) as e:
        sock.close()
        diagnosis, words = classify_oserror(e)
        raise NetError(diagnosis, f"{address}:{port}: {words}") from None
    except BaseException:
        sock.close()
        raise
    return Stream(reader, writer, f"{address}:{port}", False, time.monotonic() - t0)


async def connect_via_proxy(proxy: Proxy, host: str, port: int, timeout: float) -> Stream:
    """Open a CONNECT tunnel to host:port through the proxy; the stream is the tunnel."""
    t0 = time.monotonic()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(proxy.host, proxy.port), timeout)
    except (TimeoutError, OSError) as e:
        _, words = classify_oserror(e)
        raise NetError("proxy-unreachable", f"the proxy {proxy.url_redacted}: {words}") from None
    request = f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    if proxy.authorization:
        request += f"Proxy-Authorization: {proxy.authorization}\r\n"
    request += "\r\n"
    try:
        writer.write(request.encode("ascii"))
        status_line, _ = await asyncio.wait_for(read_http_head(reader),
                                                max(0.1, timeout - (time.monotonic() - t0)))
    except (TimeoutError, OSError, ValueError) as e:
        writer.close()
        if isinstance(e, asyncio.TimeoutError):
            raise NetError("proxy-timeout", f"the proxy {proxy.url_redacted} accepted the connection but did not "
                                            f"answer CONNECT {host}:{port} within {timeout:g} s") from None
        raise NetError("proxy-unreachable", f"the proxy {proxy.url_redacted} broke the connection: {e}") from None
    code = status_code(status_line)
    if code == 407:
        writer.close()
        given = "with the plan's credentials" if proxy.authorization else "without credentials"
        raise NetError("proxy-auth-required", f"the proxy {proxy.url_redacted} answered 407 Proxy Authentication "
                                              f"Required {given}", {"proxy_status": 407})
    if code is None or not 200 <= code < 300:
        writer.close()
        raise NetError("proxy-denied", f"the proxy {proxy.url_redacted} refused CONNECT {host}:{port}: "
                                       f"{status_line.strip()[:120] or 'no status line'}", {"proxy_status": code})
    return Stream(reader, writer, f"{proxy.host}:{proxy.port}", True, time.monotonic() - t0)


async def read_http_head(reader: asyncio.StreamReader, limit: int = 16384) -> tuple[str, dict[str, str]]:
    """Read an HTTP status line and headers (up to the blank line)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise ValueError(f"response head larger than {limit} bytes") from None
    except asyncio.IncompleteReadError as e:
        raise ValueError(f"the connection closed after {len(e.partial)} bytes, before a complete response") from None
    text = head.decode("iso-8859-1")
    lines = text.split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return lines[0], headers


def status_code(status_line: str) -> int | None:
    """The numeric status of an HTTP status line, or None when it is not one."""
    parts = status_line.split()
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None


@dataclass(frozen=True)
class Dest:
    """Where a network check goes: a host (for SNI, Host and CONNECT) and port, the addresses
    to use when connecting directly, and the proxy when the plan routes it through one."""

    host: str | None               # None: an endpoint the seed gives by address only
    port: int
    addresses: tuple[str, ...] = ()  # stated addresses; used when no DNS check supplies them
    resolve_key: str | None = None  # the dns-resolve check whose facts["addresses"] to use
    proxy: Proxy | None = None

    @property
    def label(self) -> str:
        """host:port, or address:port for an address-only endpoint."""
        return f"{self.host or (self.addresses[0] if self.addresses else '?')}:{self.port}"

    def connect_addresses(self, prereqs: Mapping[str, Result]) -> tuple[str, ...]:
        """The addresses to connect to: what DNS gave, else the stated ones."""
        if self.resolve_key and self.resolve_key in prereqs:
            found = tuple(prereqs[self.resolve_key].facts.get("addresses", ()))
            if found:
                return found
        return self.addresses


async def open_dest(dest: Dest, prereqs: Mapping[str, Result], timeout: float) -> Stream:
    """Open a stream to a Dest (through its proxy when it has one). Raises NetError."""
    if dest.proxy is not None:
        return await connect_via_proxy(dest.proxy, dest.host or dest.addresses[0], dest.port, timeout)
    return await connect_direct(dest.connect_addresses(prereqs), dest.port, timeout)


# --- what IT must change when the plan's proxy is in the way ---------------------------------
# One text for every check kind (tcp-connect, tls-verify, https-ping, nats-info, coap, openvpn):
# which CONNECT ports the proxy must allow, or which destinations to exempt (seed 000: the Edge
# supports an HTTP/HTTPS proxy; ports 443 and 7422 must be open).

PROXY_CODES = ("proxy-denied", "proxy-auth-required", "proxy-unreachable", "proxy-timeout")
_SERVICE_NAMES = {"https": "HTTPS", "nats": "NATS", "coap": "CoAP", "ssh": "SSH", "grpc": "gRPC"}


def proxy_facts(dest: Dest, err: NetError | None = None) -> dict[str, Any]:
    """The facts of a failure through the proxy: destination host and port, the proxy (its URL
    without credentials), and what the proxy answered (`proxy_status`, `proxy_allows_443`)."""
    facts: dict[str, Any] = {"host": dest.host or (dest.addresses[0] if dest.addresses else None), "port": dest.port,
                             "via_proxy": True, "proxy": dest.proxy.url_redacted if dest.proxy else None}
    if err is not None:
        facts.update(err.facts)
    return facts


def proxy_remediation(code: str, dest: Dest, profile: Profile | None, endpoint: Endpoint | None,
                      facts: Mapping[str, Any] | None = None) -> str:
    """What to ask IT for when the proxy refused, demanded credentials for, or never opened a
    tunnel to `dest` (code in PROXY_CODES): the CONNECT ports the proxy must allow for the
    profile, or the destinations to exempt in no_proxy and open on the firewall. `facts` may
    carry `proxy_status` (the proxy's HTTP status) and `proxy_allows_443` (True/False: a
    CONNECT to the same host on 443 was let through / refused too; absent: not tried)."""
    facts = facts or {}
    host = dest.host or (dest.addresses[0] if dest.addresses else "?")
    port = dest.port
    proxy = dest.proxy.url_redacted if dest.proxy else "the proxy"
    service = getattr(endpoint, "service", None)
    what = _SERVICE_NAMES.get(service or "", (service or "").upper() or "TCP")
    endpoints = profile.endpoints if profile is not None else ()
    needed = sorted({e.port for e in endpoints if e.protocol == "tcp"} | {port})
    ports = " and ".join(str(p) for p in needed)
    if endpoint is not None and endpoint.host is None and endpoint.addresses:
        # Address-only endpoints (the NATS IPs): every address of that service and port.
        peers = [a for e in endpoints if e.service == service and e.port == port and e.host is None
                 for a in e.addresses]
        exempt = f"the {what} addresses ({', '.join(peers or [host])})"
    else:
        exempt = host
    bypass = (f"or let the box reach {exempt} without the proxy: add {'them' if exempt != host else 'it'} to "
              f"the plan's proxy no_proxy list and open outbound TCP {port} to {'them' if exempt != host else 'it'} "
              "on the firewall.")
    allow = f"allow CONNECT from this box to {host} port {port} ({what})"
    status = facts.get("proxy_status")
    if code == "proxy-denied":
        if isinstance(status, int) and status >= 500:
            return (f"The proxy {proxy} accepted CONNECT to {host}:{port} but could not connect there itself "
                    f"(HTTP {status}): a firewall between the proxy and the internet blocks outbound TCP {port}, "
                    f"or the host is down. Ask IT to let the proxy reach {host} on TCP {port}, {bypass}")
        if facts.get("proxy_allows_443") is True and port != 443:
            return (f"The proxy {proxy} allows CONNECT to port 443 but refuses port {port}: ask IT to {allow} "
                    f"on the proxy (this profile needs CONNECT to ports {ports}), {bypass}")
        if facts.get("proxy_allows_443") is False and port != 443:
            return (f"The proxy {proxy} refuses CONNECT to {host} on port 443 as well as {port}: it blocks this "
                    f"destination, not only the port. Ask IT to whitelist {host} on the proxy for CONNECT to "
                    f"ports {ports}, {bypass}")
        return (f"The proxy {proxy} refused CONNECT to {host}:{port}. Many proxies allow CONNECT to port 443 "
                f"only: ask IT to {allow} on the proxy (this profile needs CONNECT to ports {ports}), {bypass}")
    if code == "proxy-auth-required":
        own = (profile.remediation_for("proxy-auth-required", endpoint) if profile is not None else "") or (
            "The proxy refused the credentials (HTTP 407): enter the proxy username and password IT issued for "
            "the box.")
        return (f"{own} With working credentials the proxy {proxy} must also allow CONNECT to ports {ports} for this "
                "box.").strip()
    if code == "proxy-timeout":
        return (f"The proxy {proxy} accepted the connection but never answered the tunnel request (CONNECT "
                f"{host}:{port}): check with IT that the plan's proxy address and port are an HTTP proxy that "
                f"allows CONNECT to ports {ports}, {bypass}")
    own = profile.remediation_for("proxy-unreachable", endpoint) if profile is not None else ""
    return (f"{own or 'The proxy did not answer: check the proxy address and port with IT.'} Every connection "
            f"of this profile goes through the proxy {proxy} (CONNECT to ports {ports}); if the site has no "
            f"proxy for this box, remove it from the plan.").strip()
