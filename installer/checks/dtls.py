"""The CoAP-over-UDP check (`dtls-issuer`): a DTLS handshake on UDP 5684, as Izuma's devices
make it (seed 002: "Devices use port 5684 (UDP or TCP)"), and the bootstrap issuer test.

The handshake is OpenSSL's DTLS through pyOpenSSL, driven over memory BIOs: what OpenSSL
wants to send is read from its BIO and sent on a non-blocking, *connected* UDP socket; what
arrives is written back into it; its retransmission timer (DTLSv1_get_timeout) is honoured,
so a lost datagram is resent as a real client would. The socket is connected so that an ICMP
"port unreachable" (a firewall that rejects UDP) surfaces as ECONNREFUSED instead of silence.

Like the CoAP-over-TCP check, the chain is not verified (Izuma's CoAP servers do not send
full chains: seed 002), the leaf's issuer is compared with the vendor's ("ARM Bootstrap CA"):
see `installer.checks.coap.issuer_verdict`.

Diagnoses: `ok`; `dtls-timeout` (no answer at all: UDP 5684 dropped on the way);
`dtls-unreachable` (ICMP port unreachable: a firewall rejects UDP 5684, or nothing listens);
`tls-intercepted` (another issuer); `dtls-handshake-failed` (an answer that is not a DTLS
server's, or a handshake the server aborted).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from installer.checks.base import Context, Outcome, Result
from installer.checks.coap import issuer_verdict
from installer.checks.net import Dest
from installer.checks.tls import Budget, read_leaf, server_name
from installer.vendors.profiles import Endpoint, Profile

if TYPE_CHECKING:  # pyOpenSSL loads when a DTLS check runs, not at import
    from OpenSSL import SSL

# A DTLS handshake's datagrams stay well under any plant link's MTU at this size; OpenSSL
# fragments its handshake messages to fit.
_MTU = 1200
_MAX_DATAGRAM = 65535


class DtlsError(Exception):
    """A handshake that did not complete: its diagnosis code and the evidence in words."""

    def __init__(self, diagnosis: str, evidence: str) -> None:
        super().__init__(evidence)
        self.diagnosis = diagnosis
        self.evidence = evidence


def _client(host: str) -> SSL.Connection:
    """A pyOpenSSL DTLS client connection on memory BIOs that verifies nothing (only to read
    the certificate), with SNI = host (an address gets no SNI, as RFC 6066 says)."""
    from OpenSSL import SSL

    context = SSL.Context(SSL.DTLS_CLIENT_METHOD)
    context.set_verify(SSL.VERIFY_NONE, lambda *args: True)
    context.set_options(SSL.OP_NO_QUERY_MTU)
    conn = SSL.Connection(context, None)
    conn.set_connect_state()
    conn.set_ciphertext_mtu(_MTU)
    try:
        socket.inet_aton(host)
    except OSError:
        if host:
            conn.set_tlsext_host_name(host.encode("idna"))
    return conn


def _outgoing(conn: SSL.Connection) -> list[bytes]:
    """The datagrams OpenSSL has written into its memory BIO since the last call."""
    from OpenSSL import SSL

    out = []
    while True:
        try:
            data = conn.bio_read(_MAX_DATAGRAM)
        except SSL.WantReadError:
            break
        if not data:
            break
        out.append(data)
    return out


def _refused(e: OSError) -> bool:
    return getattr(e, "errno", None) == errno.ECONNREFUSED


async def dtls_handshake(address: str, port: int, host: str, budget: Budget) -> tuple[bytes, str | None, float]:
    """A DTLS handshake with address:port (SNI host) within the budget's time.

    Returns (leaf certificate DER, protocol version, seconds). Raises DtlsError:
    `dtls-unreachable` (ICMP unreachable: ECONNREFUSED, EHOSTUNREACH), `dtls-timeout`,
    `dtls-handshake-failed`.
    """
    from OpenSSL import SSL

    loop = asyncio.get_running_loop()
    conn = _client(host)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    t0 = time.monotonic()
    end = t0 + budget.next()
    answered = False
    foreign: bytes | None = None  # the first answer that is not a DTLS record, when all are such
    try:
        try:
            sock.connect((address, port))
        except OSError as e:
            raise DtlsError("dtls-unreachable", f"cannot send to {address}:{port}: {e.strerror or e}") from None
        while True:
            try:
                conn.do_handshake()
                done = True
            except SSL.WantReadError:
                done = False
            except SSL.Error as e:
                # An alert from the server, or datagrams that are not DTLS.
                raise DtlsError("dtls-handshake-failed", _ssl_words(e, answered)) from None
            for datagram in _outgoing(conn):
                try:
                    await loop.sock_sendall(sock, datagram)
                except OSError as e:
                    raise _socket_error(e, address, port) from None
            if done:
                break
            remaining = end - time.monotonic()
            if remaining <= 0:
                if foreign is not None and not answered:
                    raise _not_dtls(address, port, foreign)
                raise DtlsError("dtls-timeout", _silence(address, port, answered, end - t0))
            retransmit = conn.DTLSv1_get_timeout()
            wait = min(remaining, retransmit if retransmit is not None else remaining)
            try:
                datagram = await asyncio.wait_for(loop.sock_recv(sock, _MAX_DATAGRAM), max(wait, 0.001))
            except TimeoutError:
                if foreign is not None and not answered:
                    # DTLS discards what is not a record silently, so OpenSSL would only wait: a
                    # retransmission period with nothing but foreign answers is enough.
                    raise _not_dtls(address, port, foreign) from None
                try:
                    conn.DTLSv1_handle_timeout()  # OpenSSL queues the flight again
                except SSL.Error as e:  # too many retransmissions: OpenSSL gives up
                    raise DtlsError("dtls-timeout", _silence(address, port, answered, time.monotonic() - t0)
                                    + f" ({_ssl_words(e, answered)})") from None
                continue
            except OSError as e:
                raise _socket_error(e, address, port) from None
            if _is_dtls(datagram):
                answered, foreign = True, None
            elif not answered and foreign is None:
                foreign = datagram
            conn.bio_write(datagram)
        cert = conn.get_peer_certificate()
        version = conn.get_protocol_version_name()
        der = b""
        if cert is not None:
            from cryptography.hazmat.primitives.serialization import Encoding

            der = cert.to_cryptography().public_bytes(Encoding.DER)
        # A clean close (close_notify): the server is free for its next client at once.
        try:
            conn.shutdown()
        except SSL.Error:
            pass
        for datagram in _outgoing(conn):
            try:
                sock.send(datagram)
            except OSError:
                break
        return der, version, time.monotonic() - t0
    finally:
        sock.close()


def _not_dtls(address: str, port: int, foreign: bytes) -> DtlsError:
    return DtlsError("dtls-handshake-failed", f"{address}:{port}: the answer to the DTLS ClientHello is not DTLS "
                                              f"(it starts {_shown(foreign)}): something else answers on UDP {port}")


def _is_dtls(datagram: bytes) -> bool:
    """A DTLS record header: content type 20-25, version 254.x (DTLS 1.0 and 1.2 are 254.255
    and 254.253)."""
    return len(datagram) >= 13 and 20 <= datagram[0] <= 25 and datagram[1] == 0xFE


def _shown(data: bytes) -> str:
    text = data[:24]
    if all(32 <= b < 127 for b in text):
        return repr(text.decode("ascii"))
    return "0x" + text.hex()


def _ssl_words(e: Exception, answered: bool) -> str:
    reasons = []
    for item in (e.args[0] if e.args and isinstance(e.args[0], list) else []):
        if isinstance(item, tuple) and item:
            reasons.append(str(item[-1]))
    why = ", ".join(reasons) or str(e) or type(e).__name__
    if answered:
        return f"the DTLS handshake failed: {why}"
    return f"the DTLS handshake failed before any answer: {why}"


def _silence(address: str, port: int, answered: bool, waited: float) -> str:
    if answered:
        return (f"{address}:{port}: the DTLS handshake started but did not complete within {waited:.1f} s "
                f"(datagrams lost on the way)")
    return (f"{address}:{port}: no answer to the DTLS ClientHello on UDP within {waited:.1f} s, retransmitted "
            f"(UDP {port} is dropped on the way)")


def _socket_error(e: OSError, address: str, port: int) -> DtlsError:
    if _refused(e):
        return DtlsError("dtls-unreachable", f"{address}:{port}: ICMP port unreachable in answer to the DTLS "
                                             f"ClientHello (a firewall rejects UDP {port}, or nothing listens)")
    code = getattr(e, "errno", None)
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        # ICMP host/network unreachable, or "administratively prohibited" (also EHOSTUNREACH).
        return DtlsError("dtls-unreachable", f"{address}:{port}: ICMP unreachable ({errno.errorcode[code]}) in "
                                             f"answer to the DTLS ClientHello: a firewall rejects UDP {port} "
                                             "(administratively prohibited), or there is no route")
    if code in (errno.EPERM, errno.EACCES):
        return DtlsError("dtls-unreachable", f"{address}:{port}: this box's own firewall refuses to send UDP "
                                             f"{port} ({errno.errorcode[code]})")
    return DtlsError("dtls-handshake-failed", f"{address}:{port}: {type(e).__name__}: {e}")


async def dtls_issuer(ctx: Context, prereqs: Mapping[str, Result], *, dest: Dest, endpoint: Endpoint,
                      profile: Profile) -> Outcome:
    """`dtls-issuer`: a DTLS handshake on UDP (SNI = host) without verification, then the leaf's
    issuer as `coap-tls-issuer` judges it. Each address DNS gave is tried in turn while the
    previous one refused at once; a silent address ends the check (its budget is spent)."""
    budget = Budget(ctx.timeout)
    host = server_name(dest)
    addresses = dest.connect_addresses(prereqs)
    if not addresses:
        return Outcome("fail", "dns-no-address", f"{dest.label}/udp: no address to send to")
    note = " (UDP does not go through the plan's HTTP proxy: devices send it directly)" if ctx.proxy else ""
    facts = {"host": host, "port": dest.port, "protocol": "udp"}
    error: DtlsError | None = None
    for address in addresses:
        if budget.next() <= 0:
            break
        try:
            der, version, took = await dtls_handshake(address, dest.port, host, budget)
        except DtlsError as e:
            error = e
            if e.diagnosis == "dtls-unreachable":
                continue
            break
        label = f"{dest.label}/udp" + ("" if address == dest.host else f" (at {address})")
        if not der:
            return Outcome("fail", "dtls-handshake-failed", f"{label}: the server presented no certificate",
                           {**facts, "address": address})
        try:
            leaf = read_leaf(der)
        except ValueError as e:
            return Outcome("fail", "dtls-handshake-failed", f"{label}: the certificate cannot be parsed: {e}",
                           {**facts, "address": address})
        verdict = issuer_verdict(leaf, version, label=label, host=host, port=dest.port, endpoint=endpoint,
                                 profile=profile)
        evidence = verdict.evidence
        if verdict.status == "pass":
            evidence += f"; DTLS handshake in {took * 1000:.0f} ms"
        return Outcome(verdict.status, verdict.diagnosis, evidence + note,
                       {**verdict.facts, **facts, "address": address}, remediation=verdict.remediation)
    if error is None:
        error = DtlsError("dtls-timeout", f"no time was left for the DTLS handshake with {dest.label}")
    return Outcome("fail", error.diagnosis, f"{dest.label}/udp: {error.evidence}{note}", facts)
