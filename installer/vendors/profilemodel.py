"""The vocabulary of the vendor profiles: what a profile, an endpoint, a controller type and
the catalog are, the values their fields may take, and `ProfileError`.

Only the types and their rules live here, so that the reader (`installer.vendors.profileread`) and
the loader (`installer.vendors.profiles`, which everything else imports them from) both depend on
this module and not on each other. No Textual or Rich here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

CHECKS = ("dns", "tcp", "tls", "https", "nats", "coap-tls", "dtls", "openvpn")
SERVICES = ("https", "nats", "coap", "ssh", "grpc", "dns", "ntp")
PROTOCOLS = ("tcp", "udp")
TLS_TRUST = ("public", "private-ca")
PARAM_KINDS = ("host", "sha256-fingerprint")
_HEX = set("0123456789abcdef")


def normalize_fingerprint(value: object) -> str | None:
    """A SHA-256 certificate fingerprint as openssl prints it ("AB:CD:...", 32 bytes upper
    case), from hex with or without colons (or spaces), any case; None when it is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    for prefix in ("sha256:", "sha-256:", "sha256 fingerprint=", "sha256="):
        text = text.removeprefix(prefix)
    digits = "".join(c for c in text if c not in ": ")
    if len(digits) != 64 or not set(digits) <= _HEX:
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 64, 2)).upper()


def param_error(kind: str, value: object) -> str | None:
    """Why `value` is not acceptable for a parameter of `kind` other than "host" (a pin), or
    None when it is (a host is judged by installer.planning.fields.check_host_or_ip)."""
    if kind == "sha256-fingerprint" and normalize_fingerprint(value) is None:
        shown = value if isinstance(value, str) and len(value) <= 120 else "that value"
        return (f"must be the certificate's SHA-256 fingerprint: 64 hex digits, with or without colons "
                f"(e.g. AB:CD:...:EF as openssl x509 -noout -fingerprint -sha256 prints it), got {shown!r}")
    return None
PROBES = ("tcp", "mtconnect-probe")
DIAGNOSIS_CODES = (
    "dns-nxdomain", "dns-servfail", "dns-timeout", "dns-refused",
    "tcp-refused", "tcp-timeout", "tcp-unreachable",
    "tls-intercepted", "tls-untrusted", "tls-hostname-mismatch", "tls-expired",
    "http-status", "proxy-auth-required", "proxy-unreachable",
    "ntp-timeout", "clock-skew", "nats-not-nats",
    "dtls-timeout", "dtls-unreachable", "dtls-handshake-failed",
)
# A check that needs another one to have passed first, so a profile cannot ask for it alone.
# "dtls" (CoAP over UDP 5684) has no TCP step: it needs the name resolved only.
_CHECK_NEEDS = {"tls": "tcp", "https": "tls", "nats": "tcp", "coap-tls": "tcp", "dtls": "dns", "openvpn": "tcp"}
_SEED_RE = re.compile(r"^\d{3}_[0-9a-f]{16}\.txt#\S.*$")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_RE = re.compile(rf"^(?:\*\.)?{_LABEL}(?:\.{_LABEL})*$")
_ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_PARAM_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class ProfileError(Exception):
    """A profile or the machine-protocol table is malformed: which file, which key, why."""

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file, self.key, self.message = file, key, message
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")


@dataclass(frozen=True)
class ParamSpec:
    """A value the technician supplies for a profile, such as the Siemens IEM's address."""

    name: str
    description: str
    required: bool
    kind: str  # "host": a host name or an IP address; "sha256-fingerprint": a certificate pin

    def validate(self, value: str) -> str | None:
        """Return why `value` is not acceptable for this parameter, or None when it is."""
        from installer.planning.fields import check_host_or_ip

        if self.kind == "sha256-fingerprint":
            if not self.required and isinstance(value, str) and not value.strip():
                return None  # optional: nothing pinned
            return param_error(self.kind, value)
        if not isinstance(value, str) or not value.strip():
            return "must be a host name or an IP address, got nothing"
        if value.startswith("*") or check_host_or_ip(value) is not None:
            return f"must be a host name or an IP address, got {value!r}"
        return None


@dataclass(frozen=True)
class Endpoint:
    """One destination a profile needs: a firewall rule, and the live checks that apply to it.

    The destination is `host` (a DNS name or a "*.domain" wildcard), or the value of the
    profile parameter `param`, or, with neither, each of `addresses`; with no host, param or
    addresses it is a general outbound rule (DNS 53/udp, NTP 123/udp). `addresses` are the
    vendor's stated static IPs, for IP-based firewall rules and to compare with what DNS says.
    `expected_issuer_dn` is written as the seed writes it (most significant RDN first).
    """

    host: str | None
    param: str | None
    addresses: tuple[str, ...]
    port: int
    protocol: str
    service: str
    purpose: str
    checks: tuple[str, ...]
    https_path: str | None
    expected_issuer: str | None
    expected_issuer_dn: str | None
    remediation: Mapping[str, str] = field(hash=False)
    seed: str

    @property
    def wildcard(self) -> bool:
        """True for a "*.domain" host: a firewall rule only, nothing to check live."""
        return self.host is not None and self.host.startswith("*.")

    def target(self, params: Mapping[str, str]) -> str | None:
        """The host to check: `host`, else the value of `param` in `params`, else None."""
        if self.host is not None:
            return self.host
        if self.param is not None:
            value = params.get(self.param)
            return (value.strip() or None) if isinstance(value, str) else None
        return None


@dataclass(frozen=True)
class Profile:
    """What one vendor cloud needs from the network, and what to tell IT when it fails."""

    id: str
    title: str
    seed: str
    params: Mapping[str, ParamSpec] = field(hash=False)
    endpoints: tuple[Endpoint, ...]
    dns_servers: tuple[str, ...]
    ntp_servers: tuple[str, ...]
    tls_trust: str
    remediation: Mapping[str, str] = field(hash=False)
    notes: tuple[str, ...]

    def remediation_for(self, code: str, endpoint: Endpoint | None = None) -> str:
        """The text for diagnosis `code`: the endpoint's override, else the profile's, else ""."""
        if endpoint is not None and code in endpoint.remediation:
            return endpoint.remediation[code]
        return self.remediation.get(code, "")


@dataclass(frozen=True)
class Controller:
    """A machine controller type: the port the edge reaches it on and its upload bandwidth."""

    id: str
    label: str
    port: int
    protocol: str
    upload_kbps: float
    probe: str  # "tcp" (connect) or "mtconnect-probe" (HTTP GET /probe)
    seed: str


@dataclass(frozen=True)
class DownloadFigures:
    """Cloud-to-browser bandwidth per machine, for the bandwidth estimate."""

    dashboard_bps_per_machine: float
    workcenter_view_bps_per_machine: float
    seed: str

    def range_kbps(self, machines: int) -> tuple[float, float]:
        """(low, high) download in kbps for `machines`: dashboards only, up to workcenter views."""
        return (machines * self.dashboard_bps_per_machine / 1000,
                machines * self.workcenter_view_bps_per_machine / 1000)


@dataclass(frozen=True)
class Catalog:
    """Every profile by id, every controller type by id, and the download figures."""

    profiles: Mapping[str, Profile] = field(hash=False)
    controllers: Mapping[str, Controller] = field(hash=False)
    download: DownloadFigures
