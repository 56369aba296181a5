"""The CoAP-over-TCP TLS check (`coap-tls-issuer`): seed 002's test for intrusive firewalls.

Izuma's CoAP services (port 5684) do not send full certificate chains, so verifying the chain
fails even when all is well (seed 002: "these are expected"). What tells a TLS-intercepting
firewall apart is the leaf's issuer: the bootstrap server's certificate must be issued by
"ARM Bootstrap CA". So the handshake here does not verify; it reads the issuer and compares.
"""

from __future__ import annotations

from collections.abc import Mapping

from installer.checks.base import Context, Outcome, Result
from installer.checks.net import Dest, NetError
from installer.checks.tls import (
    Leaf,
    dispose,
    failure_outcome,
    handshake,
    inspecting_context,
    open_for_tls,
    read_leaf,
    same_dn,
)
from installer.vendors.profiles import Endpoint, Profile


async def coap_tls_issuer(ctx: Context, prereqs: Mapping[str, Result], *, dest: Dest, endpoint: Endpoint,
                          profile: Profile) -> Outcome:
    """`coap-tls-issuer`: TLS handshake without verification (SNI = host), then the leaf's
    issuer CN must equal `endpoint.expected_issuer` (and its DN `expected_issuer_dn` when the
    profile states one); otherwise `tls-intercepted`, naming the issuer."""
    opened = await open_for_tls(ctx, prereqs, dest, endpoint, profile)
    if isinstance(opened, Outcome):
        return opened
    budget, host, stream, via = opened
    try:
        sslobj = await handshake(stream, host, inspecting_context(), budget.next())
        der = sslobj.getpeercert(binary_form=True)
        version = sslobj.version()
    except NetError as e:
        return failure_outcome(e, dest, endpoint, profile)
    finally:
        dispose(stream)
    label = f"{dest.label}{via}"
    if not der:
        return Outcome("fail", "tls-untrusted", f"{label}: the server presented no certificate")
    try:
        leaf = read_leaf(der)
    except ValueError as e:
        return Outcome("fail", "tls-untrusted", f"{label}: the certificate cannot be parsed: {e}")
    return issuer_verdict(leaf, version, label=label, host=host, port=dest.port, endpoint=endpoint, profile=profile)


def issuer_verdict(leaf: Leaf, version: str | None, *, label: str, host: str, port: int, endpoint: Endpoint,
                   profile: Profile) -> Outcome:
    """The verdict on a CoAP server's leaf (over TLS here, over DTLS in `installer.checks.dtls`):
    its issuer against the endpoint's expected issuer CN and DN."""
    facts = leaf.facts(version)
    expected, expected_dn = endpoint.expected_issuer, endpoint.expected_issuer_dn
    if not expected and not expected_dn:
        return Outcome("pass", "ok", f'{label}: certificate for {leaf.subject} issued by "{leaf.issuer}" '
                                     f"({leaf.issuer_dn}); the vendor states no issuer for this host, so the "
                                     f"bootstrap server's check decides whether TLS is intercepted", facts)
    cn_ok = not expected or leaf.issuer_cn == expected
    # The DN as well as the CN: an appliance can name its CA "ARM Bootstrap CA" too, but
    # rarely copies the whole name.
    dn_ok = not expected_dn or same_dn(leaf.issuer_dn, expected_dn)
    if cn_ok and dn_ok:
        return Outcome("pass", "ok", f'{label}: issued by "{leaf.issuer}" ({leaf.issuer_dn}), as the vendor '
                                     f"states: the TLS traffic is not intercepted; {version}", facts)
    wanted = f'"{expected}"' if expected else expected_dn
    if cn_ok:
        why = f"issuer {leaf.issuer_dn}, expected {expected_dn}"
    else:
        why = f'certificate issued by "{leaf.issuer}" ({leaf.issuer_dn}), expected {wanted}'
    evidence = f"{label}: {why}: a TLS-inspecting firewall replaced the certificate"
    remediation = (f'The certificate of {host} is issued by "{leaf.issuer}", not by {wanted}: a firewall is '
                   f"inspecting TLS (a man in the middle). Ask the network owner to whitelist this device for "
                   f"untampered traffic to {host} port {port}. "
                   + profile.remediation_for("tls-intercepted", endpoint))
    return Outcome("fail", "tls-intercepted", evidence, facts, remediation=remediation.strip())
