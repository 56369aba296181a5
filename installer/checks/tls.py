"""The TLS check (`tls-verify`) and the TLS plumbing the HTTPS and CoAP checks share.

A plant's network usually breaks TLS in one of a few ways, and each needs a different fix
from IT: a security appliance re-signs the traffic with its own CA (DPI: exempt the
domains), a firewall cuts the handshake once it sees the host name (VPN-blocking or SNI
rules: seed 000's ECONNRESET), something else answers (a captive portal: wrong name), or
the box's clock is wrong. `judge` tells these apart from the verification error and the
server's leaf certificate, and names the issuer so IT knows which appliance to look at.

Python's ssl (before 3.13) gives no access to the peer's certificate once verification has
failed: the handshake is aborted and `getpeercert()` raises "handshake not done yet". So a
failed verification is followed by a second handshake on a fresh connection that does not
verify, only to read the leaf.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from installer.checks.base import Context, Outcome
from installer.checks.net import Dest, NetError, Stream, open_dest
from installer.profiles import Endpoint, Profile

# OpenSSL verification errors (X509_V_ERR_*) that mean "no trusted CA above this leaf".
_UNTRUSTED_ISSUER = {2, 19, 20, 21, 27, 28}
_SELF_SIGNED_LEAF = 18
_NOT_YET_VALID = 9
_EXPIRED = 10
_NAME_MISMATCH = {62, 64}  # host name, IP address


@dataclass(frozen=True)
class Leaf:
    """What the report needs from a server's leaf certificate."""

    subject: str            # the subject CN, else the first name it covers, else its DN
    issuer_cn: str          # "" when the issuer has no CN
    issuer_dn: str          # most significant RDN first, as openssl and the seeds print it
    not_before: datetime
    not_after: datetime
    names: tuple[str, ...]  # subjectAltName DNS names and IPs, else the subject CN
    self_signed: bool
    der: bytes

    @property
    def issuer(self) -> str:
        """The issuer's CN, or its whole DN when it has no CN."""
        return self.issuer_cn or self.issuer_dn

    def facts(self, tls_version: str | None = None) -> dict[str, Any]:
        """The facts dependent checks may use (never shown)."""
        return {"issuer": self.issuer, "issuer_dn": self.issuer_dn, "subject": self.subject,
                "not_before": self.not_before, "not_after": self.not_after,
                "certificate_der": self.der, "tls_version": tls_version}


def format_dn(name: x509.Name) -> str:
    """A DN as "C=GB, ST=..., CN=...": DER order, most significant first, as seed 002 writes it
    (rfc4514_string() would reverse it)."""
    rdns = []
    for rdn in name.rdns:
        rdns.append("+".join(f"{a.rfc4514_attribute_name}={_text(a.value)}" for a in rdn))
    return ", ".join(rdns)


def same_dn(seen: str, expected: str) -> bool:
    """True when two DNs written as "K=V, K=V" name the same issuer: keys case-insensitive,
    values compared case- and space-insensitively (as RFC 5280 name matching does). Either
    order is accepted, so a DN copied in RFC 4514 order (least significant first) matches."""
    a, b = _dn_parts(seen), _dn_parts(expected)
    return bool(a) and (a == b or a == b[::-1])


def _dn_parts(dn: str) -> list[tuple[str, str]]:
    parts = []
    for piece in dn.split(","):
        if "=" not in piece:
            return []
        key, value = piece.split("=", 1)
        parts.append((key.strip().upper(), " ".join(value.split()).casefold()))
    return parts


def _text(value: Any) -> str:
    return value if isinstance(value, str) else value.hex() if isinstance(value, bytes) else str(value)


def read_leaf(der: bytes) -> Leaf:
    """Parse a DER leaf certificate with `cryptography`. Raises ValueError when it cannot."""
    cert = x509.load_der_x509_certificate(der)
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    issuer_cns = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName)) + tuple(
            str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        names = ()
    subject = _text(cns[0].value) if cns else (names[0] if names else format_dn(cert.subject))
    return Leaf(subject=subject, issuer_cn=_text(issuer_cns[0].value) if issuer_cns else "",
                issuer_dn=format_dn(cert.issuer), not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc, names=names or ((subject,) if cns else ()),
                self_signed=cert.issuer == cert.subject, der=der)


def inspecting_context() -> ssl.SSLContext:
    """A client context that does not verify: only to read what the server presents."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Budget:
    """One check's time: every wait gets at most `timeout`, and all of them together at most
    `total`, so a check with several round trips still ends before the runner gives up on it
    (it allows twice the timeout)."""

    def __init__(self, timeout: float, total: float | None = None) -> None:
        self.timeout = timeout
        self.end = time.monotonic() + (total if total is not None else 2 * timeout)

    def next(self) -> float:
        """The time the next wait may take (0 when the budget is spent)."""
        return max(0.0, min(self.timeout, self.end - time.monotonic()))


def server_name(dest: Dest) -> str:
    """The name for SNI and certificate checks (an address-only endpoint uses its address)."""
    return dest.host or (dest.addresses[0] if dest.addresses else "")


async def handshake(stream: Stream, host: str, context: ssl.SSLContext, timeout: float) -> ssl.SSLObject:
    """Upgrade an open stream to TLS (SNI = host) within `timeout`.

    A failed verification raises ssl.SSLCertVerificationError unchanged (the caller judges
    it); everything else raises NetError: `tls-reset` (the peer reset or closed the
    connection during the handshake), `tls-timeout`, `tls-handshake-failed`.
    """
    if timeout <= 0:
        raise NetError("tls-timeout", "no time was left for the TLS handshake")
    try:
        # asyncio's own handshake timeout (60 s by default) aborts with ConnectionAbortedError,
        # which would read as a reset: keep it just beyond ours so ours always fires first.
        await asyncio.wait_for(stream.writer.start_tls(context, server_hostname=host,
                                                       ssl_handshake_timeout=timeout + 1), timeout)
    except ssl.SSLCertVerificationError:
        raise
    except (asyncio.TimeoutError, TimeoutError):
        raise NetError("tls-timeout", f"TCP connected, but the TLS handshake got no answer within {timeout:g} s "
                                      "(a firewall that drops the traffic once it sees the host name)") from None
    except ssl.SSLError as e:
        reason = e.reason or str(e)
        if reason == "WRONG_VERSION_NUMBER":
            raise NetError("tls-handshake-failed", "the answer was not TLS (OpenSSL: wrong version number): a proxy, "
                                                   "captive portal or firewall block page answered in plain text") from None
        if "EOF" in reason:
            raise NetError("tls-reset", "the connection was closed during the TLS handshake") from None
        raise NetError("tls-handshake-failed", f"the TLS handshake failed: {reason}") from None
    except (ConnectionError, asyncio.IncompleteReadError) as e:
        # asyncio reports a RST as ConnectionResetError(104) and a plain close (FIN) as a
        # ConnectionResetError without errno: both are what a blocking firewall does.
        how = "reset (RST)" if getattr(e, "errno", None) else "closed"
        raise NetError("tls-reset", f"the connection was {how} right after the TLS ClientHello, "
                                    "before the server answered") from None
    except OSError as e:
        raise NetError("tls-handshake-failed", f"the TLS handshake failed: {type(e).__name__}: {e}") from None
    return stream.writer.get_extra_info("ssl_object")


def dispose(stream: Stream) -> None:
    """Drop a stream at once: a TLS close waits for the peer's close_notify (up to 30 s in
    asyncio), which a diagnostic has no use for."""
    try:
        stream.writer.transport.abort()
    except Exception:  # already closed by a failed handshake
        pass


def where(stream: Stream | None, dest: Dest | None = None) -> str:
    """How the stream was reached, for evidence: " (at 203.0.113.10:443)" (which of the
    host's addresses answered) or " (through the proxy at ...)"; "" when it adds nothing."""
    if stream is None:
        return ""
    if stream.via_proxy:
        return f" (through the proxy at {stream.address})"
    return "" if dest is not None and dest.label == stream.address else f" (at {stream.address})"


def _date(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


async def open_for_tls(ctx: Context, prereqs, dest: Dest, endpoint: Endpoint, profile: Profile
                       ) -> tuple[Budget, str, Stream, str] | Outcome:
    """The start every TLS check shares: its time budget, the server name, a stream to the
    destination (direct or through the proxy) and how it was reached; or the failure."""
    budget = Budget(ctx.timeout)
    try:
        stream = await open_dest(dest, prereqs, budget.next())
    except NetError as e:
        return failure_outcome(e, dest, endpoint, profile)
    return budget, server_name(dest), stream, where(stream, dest)


def failure_outcome(err: NetError, dest: Dest, endpoint: Endpoint, profile: Profile) -> Outcome:
    """The Outcome for a connection, proxy or handshake that failed (`err`), with remediation
    text for the codes the profiles have none for (tls-reset, tls-timeout, proxy-denied, ...).
    Codes the profile does cover get None, so the runner uses the profile's text."""
    code = err.diagnosis
    if profile.remediation_for(code, endpoint):
        return Outcome("fail", code, f"{dest.label}: {err.evidence}")
    host, port = server_name(dest), dest.port
    # The endpoint's own advice (CloudLink's procedure) applies to every way it is blocked.
    own = endpoint.remediation.get("tls-intercepted") or endpoint.remediation.get("tcp-refused", "")
    text = ""
    if code == "tls-reset":
        text = (f"The connection to {host}:{port} is cut as soon as the box asks for {host} by name: a firewall "
                f"blocks it (VPN-blocking or application rules) or an inspecting appliance refuses it. Exempt "
                f"{host}:{port} from VPN-blocking and TLS-inspection (DPI) rules on every firewall between the box "
                f"and the internet. {own}")
    elif code == "tls-timeout":
        text = (f"The TCP connection to {host}:{port} opens but the TLS handshake is silently dropped: a "
                f"firewall filters this destination by name (SNI). Allow {host}:{port} untouched. "
                f"{own or profile.remediation_for('tcp-timeout', endpoint)}")
    elif code == "tls-handshake-failed":
        text = (f"Something other than the vendor's TLS server answered on {host}:{port} (a proxy, captive portal "
                f"or security appliance). Let the box reach {host}:{port} directly and untouched. {own}")
    elif code == "proxy-denied":
        text = (f"The proxy refused to open a tunnel (CONNECT) to {host}:{port}. Ask IT to allow CONNECT from this "
                f"box to {host} port {port} on the proxy (many proxies allow CONNECT to port 443 only), or to let "
                f"the box reach it without the proxy and add it to the plan's proxy no_proxy list.")
    elif code == "proxy-timeout":
        text = ("The proxy accepted the connection but never answered the tunnel request: check with IT that "
                "the plan's proxy address and port are an HTTP proxy. "
                + profile.remediation_for("proxy-unreachable", endpoint))
    return Outcome("fail", code, f"{dest.label}: {err.evidence}", remediation=text.strip() or None)


def judge(leaf: Leaf | None, error: ssl.SSLCertVerificationError | None, *, dest: Dest, endpoint: Endpoint,
          profile: Profile, ctx: Context, tls_version: str | None = None, via: str = "") -> Outcome:
    """The verdict on a server's certificate: `error` is the verifying handshake's failure
    (None when it verified), `leaf` what the server presented (None when it could not be
    read). No I/O but the clock: every TLS check that verifies ends here."""
    host = server_name(dest)
    label = f"{dest.label}{via}"
    facts = leaf.facts(tls_version) if leaf else {}
    expected = endpoint.expected_issuer
    if leaf is not None and expected and leaf.issuer_cn != expected:
        # The vendor names its CA: any other issuer is someone re-signing the traffic, even
        # one the box trusts (IT may have put the appliance's CA in the system store).
        return intercepted(leaf, dest, endpoint, profile, label,
                           f'certificate issued by "{leaf.issuer}", expected "{expected}"')
    if error is None:
        if leaf is None:
            return Outcome("pass", "ok", f"{label}: the certificate verified", facts)
        return Outcome("pass", "ok", f'{label}: certificate for {leaf.subject} issued by "{leaf.issuer}", '
                                     f"valid until {leaf.not_after:%Y-%m-%d}, {tls_version or 'TLS'}", facts)
    code = error.verify_code
    message = error.verify_message or str(error)
    if leaf is None:
        # Nothing to name: report what OpenSSL said, without claiming interception.
        diagnosis = ("tls-hostname-mismatch" if code in _NAME_MISMATCH else "tls-expired" if code == _EXPIRED
                     else "clock-skew" if code == _NOT_YET_VALID else "tls-untrusted")
        return Outcome("fail", diagnosis, f"{label}: certificate verification failed: {message} "
                                          "(the certificate could not be fetched for details)")
    by = f'issued by "{leaf.issuer}"'
    if code in _NAME_MISMATCH:
        covered = ", ".join(leaf.names[:8]) + (f" and {len(leaf.names) - 8} more" if len(leaf.names) > 8 else "")
        return Outcome("fail", "tls-hostname-mismatch",
                       f"{label}: the certificate is for {covered or 'no name'}, not {host} ({by})", facts)
    now = datetime.now(timezone.utc)
    if code == _EXPIRED:
        return Outcome("fail", "tls-expired", f"{label}: the certificate expired on {_date(leaf.not_after)}, and "
                                              f"this box's clock says {_date(now)} ({by})", facts)
    if code == _NOT_YET_VALID:
        # A certificate is used within minutes of its issue, so "not yet valid" nearly always
        # means the box's clock is behind (an edge box without RTC battery boots in 1970).
        return Outcome("fail", "clock-skew", f"{label}: the certificate is valid only from "
                                             f"{_date(leaf.not_before)}, but this box's clock says {_date(now)}: "
                                             f"the clock is behind ({by})", facts)
    if code == _SELF_SIGNED_LEAF or (leaf.self_signed and code in _UNTRUSTED_ISSUER):
        return Outcome("fail", "tls-untrusted", f"{label}: a self-signed certificate for {leaf.subject} "
                                                "(no CA vouches for it)", facts)
    if code in _UNTRUSTED_ISSUER:
        if profile.tls_trust == "private-ca":
            # A private PKI (the IEM's own CA) is the normal case here: the fix is to trust
            # it, not to hunt for an appliance.
            where_ca = (f"the plan's tls.extra_ca_file ({ctx.extra_ca_file}) does not hold it"
                        if ctx.extra_ca_file else "the plan sets no tls.extra_ca_file")
            return Outcome("fail", "tls-untrusted", f"{label}: certificate {by} ({leaf.issuer_dn}), a CA this box "
                                                    f"does not trust: {where_ca}", facts,
                           remediation=f'The certificate of {host} is issued by "{leaf.issuer}". '
                                       + profile.remediation_for("tls-untrusted", endpoint))
        return intercepted(leaf, dest, endpoint, profile, label,
                           f"certificate {by}, not a public CA ({message})")
    return Outcome("fail", "tls-untrusted", f"{label}: certificate verification failed: {message} ({by})", facts)


def intercepted(leaf: Leaf, dest: Dest, endpoint: Endpoint, profile: Profile, label: str, why: str) -> Outcome:
    """`tls-intercepted`, naming the issuer in the evidence and the remediation, and the
    domains to exempt (the host, and the profile's list)."""
    host = server_name(dest)
    evidence = (f"{label}: {why}: a security appliance is re-signing this traffic (TLS inspection); "
                f"issuer {leaf.issuer_dn}")
    remediation = (f'Traffic to {host} is inspected and re-signed by "{leaf.issuer}". Exempt {host} (port '
                   f"{dest.port}) from TLS inspection on that appliance. "
                   + profile.remediation_for("tls-intercepted", endpoint))
    return Outcome("fail", "tls-intercepted", evidence, leaf.facts(), remediation=remediation.strip())


async def _look(dest: Dest, prereqs, context: ssl.SSLContext, budget: Budget
                ) -> tuple[Leaf | None, str | None, ssl.SSLCertVerificationError | None, str]:
    """One connection and handshake: (leaf, TLS version, verification error, where)."""
    stream = await open_dest(dest, prereqs, budget.next())
    try:
        try:
            sslobj = await handshake(stream, server_name(dest), context, budget.next())
        except ssl.SSLCertVerificationError as e:
            return None, None, e, where(stream, dest)
        der = sslobj.getpeercert(binary_form=True)
        return (read_leaf(der) if der else None), sslobj.version(), None, where(stream, dest)
    finally:
        dispose(stream)


async def tls_verify(ctx: Context, prereqs, *, dest: Dest, endpoint: Endpoint, profile: Profile) -> Outcome:
    """`tls-verify`: handshake with SNI, verify against the system store and the plan's extra
    CA file with host name checking, and judge the leaf (see `judge`)."""
    budget = Budget(ctx.timeout)
    try:
        leaf, version, error, via = await _look(dest, prereqs, ctx.trust(), budget)
    except NetError as e:
        return failure_outcome(e, dest, endpoint, profile)
    except ValueError as e:
        return Outcome("fail", "tls-untrusted", f"{dest.label}: the certificate cannot be parsed: {e}")
    if error is not None:
        try:
            leaf, version, _, via = await _look(dest, prereqs, inspecting_context(), budget)
        except (NetError, ValueError):
            leaf = None  # the verification error alone still gives a diagnosis
    return judge(leaf, error, dest=dest, endpoint=endpoint, profile=profile, ctx=ctx,
                 tls_version=version, via=via)
