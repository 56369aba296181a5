"""The TLS check (`tls-verify`) and the TLS plumbing the HTTPS and CoAP checks share.

A plant's network usually breaks TLS in one of a few ways, and each needs a different fix
from IT: a security appliance re-signs the traffic with its own CA (DPI: exempt the
domains), a firewall cuts the handshake once it sees the host name (VPN-blocking or SNI
rules: seed 000's ECONNRESET), something else answers (a captive portal: wrong name), or
the box's clock is wrong. `judge` tells these apart from the verification error and the
server's leaf certificate, and names the issuer so IT knows which appliance to look at. An
untrusted certificate that is not even for the name asked for is another server altogether
(`tls-wrong-server`: a block page, a captive portal, a DNS filter), not an appliance re-signing.
A handshake that stalls on a direct connection is retried beside with a small MSS: when only
that one completes, large packets are lost on the way (`path-mtu-blackhole`), not filtered by
name. A profile with a certificate-pin parameter (the Siemens IEM's self-generated
certificates) accepts exactly the pinned certificate (`tls-pin-mismatch` otherwise).

Python's ssl (before 3.13) gives no access to the peer's certificate once verification has
failed: the handshake is aborted and `getpeercert()` raises "handshake not done yet". So a
failed verification is followed by a second handshake on a fresh connection that does not
verify, only to read the leaf.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from installer.checks.base import Context, Outcome, Result
from installer.checks.net import (
    PROXY_CODES,
    Dest,
    NetError,
    Stream,
    connect_small_mss,
    open_dest,
    proxy_facts,
    proxy_remediation,
)
from installer.vendors.profiles import Endpoint, Profile, normalize_fingerprint

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

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the DER certificate, as openssl prints it ("AB:CD:...")."""
        return fingerprint(self.der)

    def facts(self, tls_version: str | None = None) -> dict[str, Any]:
        """The facts dependent checks and the findings may use: who issued it, for which
        names, and its fingerprint (one server seen behind many host names has one)."""
        return {"issuer": self.issuer, "issuer_dn": self.issuer_dn, "subject": self.subject,
                "not_before": self.not_before, "not_after": self.not_after,
                "certificate_der": self.der, "tls_version": tls_version,
                "fingerprint": self.fingerprint, "names": list(self.names), "self_signed": self.self_signed}


def fingerprint(der: bytes) -> str:
    """SHA-256 of `der`, colon-separated upper-case hex as `openssl x509 -fingerprint -sha256`."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def covers(names: tuple[str, ...] | list[str], host: str) -> bool:
    """True when a certificate for `names` is valid for `host`, as a TLS client checks it
    (RFC 6125): exact names case-insensitively, a "*." wildcard for exactly one leftmost
    label (never a bare "*.tld"), IP addresses by value."""
    host = host.strip().rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for name in names:
        name = name.strip().rstrip(".").lower()
        if ip is not None:
            try:
                if ipaddress.ip_address(name) == ip:
                    return True
            except ValueError:
                pass
            continue
        if name == host:
            return True
        if name.startswith("*.") and name.count(".") >= 2 and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == name[2:]:
                return True
    return False


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
    except TimeoutError:
        raise NetError("tls-timeout", f"TCP connected, but the TLS handshake got no answer within {timeout:g} s "
                                      "(a firewall that drops the traffic once it sees the host name)") from None
    except ssl.SSLError as e:
        reason = e.reason or str(e)
        if reason == "WRONG_VERSION_NUMBER":
            raise NetError("tls-handshake-failed", "the answer was not TLS (OpenSSL: wrong version number): a "
                                                   "proxy, captive portal or firewall block page answered in plain "
                                                   "text") from None
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
    sslobj: ssl.SSLObject = stream.writer.get_extra_info("ssl_object")  # what start_tls left there
    return sslobj


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


async def open_for_tls(ctx: Context, prereqs: Mapping[str, Result], dest: Dest, endpoint: Endpoint, profile: Profile
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
    text for the codes the profiles have none for (tls-reset, tls-timeout, ...).
    Codes the profile does cover get None, so the runner uses the profile's text; the proxy's
    refusals always get `net.proxy_remediation` (the CONNECT ports to allow)."""
    code = err.diagnosis
    if code in PROXY_CODES:  # one text for every check kind: the CONNECT ports to allow
        return Outcome("fail", code, f"{dest.label}: {err.evidence}", proxy_facts(dest, err),
                       remediation=proxy_remediation(code, dest, profile, endpoint, proxy_facts(dest, err)))
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
    return Outcome("fail", code, f"{dest.label}: {err.evidence}", remediation=text.strip() or None)


PIN_KIND = "sha256-fingerprint"


def pin_param(profile: Profile) -> str | None:
    """The profile's certificate-pin parameter (kind sha256-fingerprint), if it has one."""
    return next((name for name, spec in profile.params.items() if spec.kind == PIN_KIND), None)


def pins(ctx: Context, profile: Profile) -> tuple[str, ...]:
    """The fingerprints the plan pins for this profile's servers (normalised), or ()."""
    name = pin_param(profile)
    if name is None:
        return ()
    value = (ctx.plan.profile_params.get(profile.id) or {}).get(name)
    pinned = normalize_fingerprint(value) if isinstance(value, str) else None
    return (pinned,) if pinned else ()


def judge(leaf: Leaf | None, error: ssl.SSLCertVerificationError | None, *, dest: Dest, endpoint: Endpoint,
          profile: Profile, ctx: Context, tls_version: str | None = None, via: str = "",
          address: str | None = None) -> Outcome:
    """The verdict on a server's certificate: `error` is the verifying handshake's failure
    (None when it verified), `leaf` what the server presented (None when it could not be
    read), `address` the server's address:port when connected directly. No I/O but the
    clock: every TLS check that verifies ends here."""
    host = server_name(dest)
    label = f"{dest.label}{via}"
    facts: dict[str, Any] = dict(leaf.facts(tls_version) if leaf else {})
    facts.update({"host": host, "port": dest.port,
                  "address": address.rpartition(":")[0] if address else None})
    pinned = pins(ctx, profile)
    if leaf is not None and pinned:
        return _judge_pinned(leaf, pinned, dest=dest, label=label, facts=facts, profile=profile)
    # For a private PKI (an IEM's self-generated certificates) the technician compares the
    # fingerprint with the server's own page: show it whenever the certificate is not accepted.
    fp = f"; SHA-256 fingerprint {leaf.fingerprint}" if leaf is not None and profile.tls_trust == "private-ca" else ""
    untrusted = error is not None and (error.verify_code in _UNTRUSTED_ISSUER
                                       or error.verify_code == _SELF_SIGNED_LEAF)
    if leaf is not None and untrusted and not covers(leaf.names, host):
        # An inspecting appliance forges a certificate for the name asked for; a certificate
        # for another name from an unknown CA is another server altogether.
        return wrong_server(leaf, dest, endpoint, profile, label, facts, fp)
    expected = endpoint.expected_issuer
    if leaf is not None and expected and leaf.issuer_cn != expected:
        # The vendor names its CA: any other issuer is someone re-signing the traffic, even
        # one the box trusts (IT may have put the appliance's CA in the system store).
        return intercepted(leaf, dest, endpoint, profile, label,
                           f'certificate issued by "{leaf.issuer}", expected "{expected}"', facts)
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
                                          "(the certificate could not be fetched for details)", facts)
    by = f'issued by "{leaf.issuer}"'
    if code in _NAME_MISMATCH:
        return Outcome("fail", "tls-hostname-mismatch",
                       f"{label}: the certificate is for {_names(leaf)}, not {host} ({by}){fp}", facts)
    now = datetime.now(UTC)
    if code == _EXPIRED:
        return Outcome("fail", "tls-expired", f"{label}: the certificate expired on {_date(leaf.not_after)}, and "
                                              f"this box's clock says {_date(now)} ({by})", facts)
    if code == _NOT_YET_VALID:
        # A certificate is used within minutes of its issue, so "not yet valid" nearly always
        # means the box's clock is behind (an edge box without RTC battery boots in 1970).
        return Outcome("fail", "clock-skew", f"{label}: the certificate is valid only from "
                                             f"{_date(leaf.not_before)}, but this box's clock says {_date(now)}: "
                                             f"the clock is behind ({by})", facts)
    pin_hint = _pin_hint(leaf, profile)
    if code == _SELF_SIGNED_LEAF or (leaf.self_signed and code in _UNTRUSTED_ISSUER):
        return Outcome("fail", "tls-untrusted", f"{label}: a self-signed certificate for {leaf.subject} "
                                                f"(no CA vouches for it){fp}", facts,
                       remediation=(profile.remediation_for("tls-untrusted", endpoint) + pin_hint).strip()
                       if pin_hint else None)
    if code in _UNTRUSTED_ISSUER:
        if profile.tls_trust == "private-ca":
            # A private PKI (the IEM's own CA) is the normal case here: the fix is to trust
            # it, not to hunt for an appliance.
            where_ca = (f"the plan's tls.extra_ca_file ({ctx.extra_ca_file}) does not hold it"
                        if ctx.extra_ca_file else "the plan sets no tls.extra_ca_file")
            return Outcome("fail", "tls-untrusted", f"{label}: certificate {by} ({leaf.issuer_dn}), a CA this box "
                                                    f"does not trust: {where_ca}{fp}", facts,
                           remediation=f'The certificate of {host} is issued by "{leaf.issuer}". '
                                       + profile.remediation_for("tls-untrusted", endpoint) + pin_hint)
        return intercepted(leaf, dest, endpoint, profile, label,
                           f"certificate {by}, not a public CA ({message})", facts)
    return Outcome("fail", "tls-untrusted", f"{label}: certificate verification failed: {message} ({by}){fp}",
                   facts)


def _names(leaf: Leaf) -> str:
    listed = ", ".join(leaf.names[:8]) + (f" and {len(leaf.names) - 8} more" if len(leaf.names) > 8 else "")
    return listed or "no name"


def _pin_hint(leaf: Leaf, profile: Profile) -> str:
    """How to pin this certificate, for a profile that takes a pin."""
    name = pin_param(profile)
    if name is None:
        return ""
    return (f" Or, when the server's own page shows the same SHA-256 fingerprint for its certificate "
            f"({leaf.fingerprint}), pin it in the plan: profile_params: {{{profile.id}: {{{name}: "
            f'"{leaf.fingerprint}"}}}}; the check then accepts exactly that certificate.')


def _judge_pinned(leaf: Leaf, pinned: tuple[str, ...], *, dest: Dest, label: str, facts: dict[str, Any],
                  profile: Profile) -> Outcome:
    """With a pinned fingerprint, the certificate is that one or it is not: no CA decides."""
    host = server_name(dest)
    facts["pinned"] = list(pinned)
    if leaf.fingerprint not in pinned:
        evidence = (f'{label}: the certificate (for {_names(leaf)}, issued by "{leaf.issuer}") has the SHA-256 '
                    f"fingerprint {leaf.fingerprint}, not the pinned {' or '.join(pinned)}")
        param = pin_param(profile)
        remediation = (f"The server that answered as {host} is not the one whose certificate was pinned. Either "
                       f"something other than the IEM answered (another device at that address, a proxy or an "
                       f"inspecting firewall): check the address and the path; or the IEM's certificate was "
                       f"regenerated: open the IEM's own page, compare the SHA-256 fingerprint of its certificate "
                       f"with the one above, and if they match, update profile_params.{profile.id}.{param} in the "
                       f"plan.")
        return Outcome("fail", "tls-pin-mismatch", evidence, facts, remediation=remediation)
    now = datetime.now(UTC)
    if now < leaf.not_before:
        return Outcome("fail", "clock-skew", f"{label}: the pinned certificate matches, but it is valid only from "
                                             f"{_date(leaf.not_before)} and this box's clock says {_date(now)}: "
                                             f"the clock is behind", facts)
    if now > leaf.not_after:
        return Outcome("fail", "tls-expired", f"{label}: the pinned certificate matches, but it expired on "
                                              f"{_date(leaf.not_after)} (this box's clock says {_date(now)})", facts)
    return Outcome("pass", "ok", f"{label}: pinned certificate matches (SHA-256 {leaf.fingerprint}, for "
                                 f'{_names(leaf)}, issued by "{leaf.issuer}", valid until {leaf.not_after:%Y-%m-%d})',
                   facts)


def wrong_server(leaf: Leaf, dest: Dest, endpoint: Endpoint, profile: Profile, label: str,
                 facts: dict[str, Any], fp: str = "") -> Outcome:
    """`tls-wrong-server`: an untrusted certificate that is not even for the name asked for."""
    host = server_name(dest)
    kind = "self-signed" if leaf.self_signed else "untrusted"
    evidence = (f'{label}: another server answered: its certificate is for {_names(leaf)} issued by '
                f'"{leaf.issuer}" ({kind}), not for {host}: a block page, a captive portal or a DNS filter '
                f"sent the box elsewhere{fp}")
    at = f" at {facts['address']}" if facts.get("address") else ""
    remediation = (f"The box asked for {host} but reached a different server{at}, one that holds a certificate for "
                   f"{_names(leaf)} that no trusted CA vouches for. This is not TLS inspection (an inspecting "
                   f"appliance forges a certificate for the name asked for): the connection was sent elsewhere, by "
                   f"a web filter's block page, a captive portal (a guest network asking for a login) or a DNS "
                   f"filter. Check what {host} resolves to on this network, and ask IT to let the box resolve and "
                   f"reach {host} port {dest.port} unfiltered.")
    if profile.tls_trust == "private-ca":
        remediation += (f" If this is the server's own certificate (compare the fingerprint with its page), enter "
                        f"the name or address the certificate is for ({_names(leaf)}) in the plan instead of "
                        f"{host}.")
    return Outcome("fail", "tls-wrong-server", evidence, facts, remediation=remediation)


def intercepted(leaf: Leaf, dest: Dest, endpoint: Endpoint, profile: Profile, label: str, why: str,
                facts: dict[str, Any] | None = None) -> Outcome:
    """`tls-intercepted`, naming the issuer in the evidence and the remediation, and the
    domains to exempt (the host, and the profile's list)."""
    host = server_name(dest)
    evidence = (f"{label}: {why}: a security appliance is re-signing this traffic (TLS inspection); "
                f"issuer {leaf.issuer_dn}")
    remediation = (f'Traffic to {host} is inspected and re-signed by "{leaf.issuer}". Exempt {host} (port '
                   f"{dest.port}) from TLS inspection on that appliance. "
                   + profile.remediation_for("tls-intercepted", endpoint))
    return Outcome("fail", "tls-intercepted", evidence, facts if facts is not None else leaf.facts(),
                   remediation=remediation.strip())


@dataclass
class _Seen:
    """What one connection and handshake showed."""

    leaf: Leaf | None
    version: str | None
    error: ssl.SSLCertVerificationError | None
    via: str             # how it was reached, for evidence (see `where`)
    address: str | None  # the server's address:port when connected directly, else None


def _seen(stream: Stream, dest: Dest, sslobj: ssl.SSLObject | None,
          error: ssl.SSLCertVerificationError | None = None) -> _Seen:
    address = None if stream.via_proxy else stream.address
    if sslobj is None:
        return _Seen(None, None, error, where(stream, dest), address)
    der = sslobj.getpeercert(binary_form=True)
    return _Seen(read_leaf(der) if der else None, sslobj.version(), None, where(stream, dest), address)


async def _look(dest: Dest, prereqs: Mapping[str, Result], context: ssl.SSLContext, budget: Budget) -> _Seen:
    """One connection and handshake."""
    stream = await open_dest(dest, prereqs, budget.next())
    try:
        try:
            sslobj = await handshake(stream, server_name(dest), context, budget.next())
        except ssl.SSLCertVerificationError as e:
            return _seen(stream, dest, None, e)
        return _seen(stream, dest, sslobj)
    finally:
        dispose(stream)


class _BlackHole(Exception):
    """The verifying handshake stalled while one with a small MSS completed."""

    def __init__(self, stalled: NetError, address: str, waited: float, small: _Seen, small_s: float) -> None:
        super().__init__(stalled.evidence)
        self.stalled, self.address, self.waited, self.small, self.small_s = stalled, address, waited, small, small_s


def stall_after(timeout: float) -> float:
    """How long a handshake may go unanswered before the small-MSS probe starts."""
    return min(1.0, timeout / 3)


async def _small_mss_look(address: str, dest: Dest, budget: Budget) -> tuple[_Seen, float]:
    """A second handshake to the same address, its SYN announcing MSS 536, not verifying."""
    host, _, port = address.rpartition(":")
    t0 = time.monotonic()
    stream = await connect_small_mss(host, int(port), budget.next())
    try:
        sslobj = await handshake(stream, server_name(dest), inspecting_context(), budget.next())
        return _seen(stream, dest, sslobj), time.monotonic() - t0
    finally:
        dispose(stream)


async def _first_look(dest: Dest, prereqs: Mapping[str, Result], ctx: Context, budget: Budget) -> _Seen:
    """The verifying handshake. On a direct connection whose handshake gets no answer for
    `stall_after(timeout)`, a second attempt with a small MSS runs beside it: when only that
    one completes, large packets from the server are lost on the way (raises _BlackHole)."""
    stream = await open_dest(dest, prereqs, budget.next())
    started = time.monotonic()
    shake = asyncio.ensure_future(handshake(stream, server_name(dest), ctx.trust(), budget.next()))
    probe: asyncio.Future[tuple[_Seen, float]] | None = None
    try:
        if not stream.via_proxy:
            done, _ = await asyncio.wait({shake}, timeout=stall_after(ctx.timeout))
            if not done:
                probe = asyncio.ensure_future(_small_mss_look(stream.address, dest, budget))
        try:
            sslobj = await shake
        except ssl.SSLCertVerificationError as e:
            return _seen(stream, dest, None, e)
        except NetError as e:
            if e.diagnosis != "tls-timeout" or probe is None:
                raise
            also = NetError(e.diagnosis, f"{e.evidence}; a second attempt with a small TCP segment size (MSS 536) "
                                         "got no answer either, so it is not a path-MTU problem")
            try:
                small, small_s = await probe
            except NetError as p:
                if p.diagnosis == "tls-timeout":
                    raise also from None
                raise e from None
            except (ValueError, ssl.SSLError, OSError):
                raise e from None
            if small.leaf is None and small.version is None:
                raise e from None
            raise _BlackHole(e, stream.address, time.monotonic() - started, small, small_s) from None
        return _seen(stream, dest, sslobj)
    finally:
        for task in (shake, probe):
            if task is not None and not task.done():
                task.cancel()
        if probe is not None:
            await asyncio.gather(probe, return_exceptions=True)
        dispose(stream)


async def tls_verify(ctx: Context, prereqs: Mapping[str, Result], *, dest: Dest, endpoint: Endpoint,
                     profile: Profile) -> Outcome:
    """`tls-verify`: handshake with SNI, verify against the system store and the plan's extra
    CA file with host name checking, and judge the leaf (see `judge`). A handshake that stalls
    on a direct connection is told apart from a name filter by a small-MSS retry (see
    `_first_look`)."""
    budget = Budget(ctx.timeout)
    try:
        seen = await _first_look(dest, prereqs, ctx, budget)
    except _BlackHole as hole:
        return black_hole_outcome(hole, dest, endpoint, profile)
    except NetError as e:
        return failure_outcome(e, dest, endpoint, profile)
    except ValueError as e:
        return Outcome("fail", "tls-untrusted", f"{dest.label}: the certificate cannot be parsed: {e}")
    error = seen.error
    if error is not None:
        try:
            seen = await _look(dest, prereqs, inspecting_context(), budget)
        except (NetError, ValueError):
            seen = _Seen(None, None, None, seen.via, seen.address)  # the error alone still gives a diagnosis
    return judge(seen.leaf, error, dest=dest, endpoint=endpoint, profile=profile, ctx=ctx,
                 tls_version=seen.version, via=seen.via, address=seen.address)


def black_hole_outcome(hole: _BlackHole, dest: Dest, endpoint: Endpoint, profile: Profile) -> Outcome:
    """`path-mtu-blackhole`: the full-size handshake stalled, the small-MSS one completed."""
    host = server_name(dest)
    leaf = hole.small.leaf
    got = (f'its certificate for {leaf.subject} issued by "{leaf.issuer}"' if leaf is not None
           else "the server's certificate")
    evidence = (f"{dest.label}: TCP connected to {hole.address}, but the TLS handshake got no answer within "
                f"{hole.waited:.1f} s; a second attempt announcing a small TCP segment size (MSS 536) received "
                f"{got} in {hole.small_s * 1000:.0f} ms: large packets from the server are lost on the way and no "
                f'ICMP "fragmentation needed" comes back (a path-MTU black hole)')
    facts: dict[str, Any] = dict(leaf.facts(hole.small.version) if leaf is not None else {})
    facts.update({"host": host, "port": dest.port, "address": hole.address.rpartition(":")[0],
                  "mss": 536, "stalled_s": round(hole.waited, 3), "small_mss_s": round(hole.small_s, 3)})
    remediation = (f"This is not a rule about {host} or the vendor's name: every connection that carries large "
                   f"packets is affected. A link between the box and {host} (a VPN, PPPoE or other tunnel) has a "
                   f"smaller MTU than the server's packets, and a firewall drops the ICMP type 3 code 4 "
                   f'("fragmentation needed") messages that path-MTU discovery relies on (RFC 1191, RFC 2923). Ask '
                   f"IT to allow ICMP type 3 code 4 through every firewall between the box and the internet, or to "
                   f"clamp the TCP MSS on the router or tunnel interface (e.g. to 1360) so both sides send smaller "
                   f"segments.")
    return Outcome("fail", "path-mtu-blackhole", evidence, facts, remediation=remediation)
