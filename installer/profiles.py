"""Vendor requirement profiles and the machine-protocol table, loaded from `assets/`.

A profile (assets/profiles/<id>.yaml) says what one vendor cloud needs from the site's
network: the endpoints to reach, which live checks apply to each, the vendor's default DNS
and NTP servers, and remediation texts keyed by diagnosis code. The machine-protocol table
(assets/machine-protocols.yaml) lists controller types with their port and upload bandwidth.

Both are data cited to the vendor documents (every entry has a `seed:`), validated strictly
on load: anything malformed raises `ProfileError` naming the file and the key path, never a
traceback from deep inside. No Textual or Rich here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from installer.fields import is_ip
from installer.yamlfile import YamlProblem, describe, load_strict

CHECKS = ("dns", "tcp", "tls", "https", "nats", "coap-tls")
SERVICES = ("https", "nats", "coap", "ssh", "grpc", "dns", "ntp")
PROTOCOLS = ("tcp", "udp")
TLS_TRUST = ("public", "private-ca")
PARAM_KINDS = ("host",)
PROBES = ("tcp", "mtconnect-probe")
DIAGNOSIS_CODES = (
    "dns-nxdomain", "dns-servfail", "dns-timeout", "dns-refused",
    "tcp-refused", "tcp-timeout", "tcp-unreachable",
    "tls-intercepted", "tls-untrusted", "tls-hostname-mismatch", "tls-expired",
    "http-status", "proxy-auth-required", "proxy-unreachable",
    "ntp-timeout", "clock-skew", "nats-not-nats",
)
# A check that needs another one to have passed first, so a profile cannot ask for it alone.
_CHECK_NEEDS = {"tls": "tcp", "https": "tls", "nats": "tcp", "coap-tls": "tcp"}
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
    kind: str  # "host": a host name or an IP address

    def validate(self, value: str) -> str | None:
        """Return why `value` is not acceptable for this parameter, or None when it is."""
        from installer.fields import check_host_or_ip

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


def load_catalog(assets_dir: Path | None = None) -> Catalog:
    """Load every profile and the machine-protocol table from `assets_dir`.

    Without `assets_dir`, the packaged `assets` package is read once and cached. Raises
    ProfileError naming the file and key of the first problem found.
    """
    if assets_dir is None:
        return _default_catalog()
    return _load_catalog(assets_dir)


def load_profile(path: Path) -> Profile:
    """Load and validate one profile file; its `id` must equal the file name without .yaml."""
    return _build_profile(_read_yaml(path), path.name, _stem(path.name))


@functools.lru_cache(maxsize=1)
def _default_catalog() -> Catalog:
    return _load_catalog(resources.files("assets"))


def _load_catalog(root: Path | Traversable) -> Catalog:
    profiles_dir = root / "profiles"
    if not profiles_dir.is_dir():
        raise ProfileError(str(profiles_dir), "", "no such directory of profiles")
    profiles: dict[str, Profile] = {}
    for entry in sorted(profiles_dir.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        profile = _build_profile(_read_yaml(entry), entry.name, _stem(entry.name))
        if profile.id in profiles:
            raise ProfileError(entry.name, "id", f"duplicate profile id {profile.id!r}")
        profiles[profile.id] = profile
    if not profiles:
        raise ProfileError(str(profiles_dir), "", "no profile (*.yaml) found")
    table = root / "machine-protocols.yaml"
    controllers, download = _build_machine_table(_read_yaml(table), table.name)
    return Catalog(MappingProxyType(profiles), MappingProxyType(controllers), download)


def _stem(name: str) -> str:
    return name[: -len(".yaml")] if name.endswith(".yaml") else name


# --- reading -------------------------------------------------------------------------------

def _read_yaml(path: Path | Traversable) -> dict[str, Any]:
    """Parse one file with yaml.safe_load; refuse duplicate keys and non-mapping documents."""
    name = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError(name, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(name, "", f"cannot be read as UTF-8 text: {exc}") from None
    try:
        data = load_strict(text)
    except YamlProblem as exc:
        raise ProfileError(name, "", f"not valid YAML: {exc}") from None
    if data is None:
        raise ProfileError(name, "", "must be a YAML mapping, the file is empty")
    if not isinstance(data, dict):
        raise ProfileError(name, "", f"must be a YAML mapping, got {describe(data)}")
    return data


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Reader:
    """Typed access to one mapping of one file; every failure names file and key path."""

    def __init__(self, file: str, path: str, value: Any,
                 required: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
        self.file, self.path = file, path
        if not isinstance(value, dict):
            raise self.error("", f"must be a mapping, got {describe(value)}")
        valid = required + optional
        for key in value:
            if key not in valid:
                raise self.error(str(key), f"unknown key; valid keys are {', '.join(sorted(valid))}")
        for key in required:
            if key not in value:
                raise self.error(key, "missing required key")
        self.data = value

    def error(self, key: str, message: str) -> ProfileError:
        return ProfileError(self.file, _join(self.path, key) if key else self.path, message)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def text(self, key: str, *, choices: tuple[str, ...] = (), default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string, got {describe(value)}")
        if choices and value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def opt_text(self, key: str) -> str | None:
        return self.text(key) if self.has(key) else None

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {describe(value)}")
        return value

    def port(self, key: str) -> int:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise self.error(key, f"must be an integer 1-65535, got {describe(value)}")
        return value

    def positive(self, key: str) -> float:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise self.error(key, f"must be a number above 0, got {describe(value)}")
        return float(value)

    def seed(self, key: str = "seed") -> str:
        value = self.text(key)
        if not _SEED_RE.match(value):
            raise self.error(key, "must cite a seed as 'NNN_<16 hex>.txt#<section heading>', "
                                  f"got {value!r}")
        return value

    def items(self, key: str) -> list[Any]:
        value = self.data.get(key, [])
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(key, f"must be a list, got {describe(value)}")
        return value

    def sub(self, key: str, value: Any, required: tuple[str, ...],
            optional: tuple[str, ...] = ()) -> _Reader:
        return _Reader(self.file, _join(self.path, key), value, required, optional)



# --- profiles ------------------------------------------------------------------------------

_PROFILE_KEYS = ("id", "title", "seed", "tls_trust", "endpoints", "remediation")
_PROFILE_OPTIONAL = ("params", "dns_servers", "ntp_servers", "notes")
_ENDPOINT_KEYS = ("port", "protocol", "service", "purpose", "checks", "seed")
_ENDPOINT_OPTIONAL = ("host", "param", "addresses", "https_path", "expected_issuer",
                      "expected_issuer_dn", "remediation")


def _build_profile(data: dict[str, Any], file: str, stem: str) -> Profile:
    r = _Reader(file, "", data, _PROFILE_KEYS, _PROFILE_OPTIONAL)
    profile_id = r.text("id")
    if profile_id != stem:
        raise r.error("id", f"must equal the file name {stem!r}, got {profile_id!r}")
    params = _build_params(r)
    endpoints = tuple(_build_endpoint(r.sub(f"endpoints[{i}]", e, _ENDPOINT_KEYS, _ENDPOINT_OPTIONAL), params)
                      for i, e in enumerate(r.items("endpoints")))
    if not endpoints:
        raise r.error("endpoints", "must list at least one endpoint")
    seen: dict[tuple[Any, ...], int] = {}
    for i, e in enumerate(endpoints):
        key = (e.host, e.param, e.addresses, e.port, e.protocol)
        if key in seen:
            raise r.error(f"endpoints[{i}]", f"duplicate of endpoints[{seen[key]}] "
                                             "(same host, param, addresses, port and protocol)")
        seen[key] = i
    dns_servers = []
    for i, item in enumerate(r.items("dns_servers")):
        s = r.sub(f"dns_servers[{i}]", item, ("address", "seed"))
        s.seed()
        if not is_ip(s.text("address")):
            raise s.error("address", f"must be an IP address, got {s.data['address']!r}")
        dns_servers.append(s.data["address"])
    ntp_servers = []
    for i, item in enumerate(r.items("ntp_servers")):
        s = r.sub(f"ntp_servers[{i}]", item, ("host", "seed"))
        s.seed()
        ntp_servers.append(_host_or_ip(s, "host"))
    notes = []
    for i, item in enumerate(r.items("notes")):
        s = r.sub(f"notes[{i}]", item, ("text", "seed"))
        s.seed()
        notes.append(s.text("text"))
    return Profile(
        id=profile_id, title=r.text("title"), seed=r.seed(), params=MappingProxyType(params),
        endpoints=endpoints, dns_servers=tuple(dns_servers), ntp_servers=tuple(ntp_servers),
        tls_trust=r.text("tls_trust", choices=TLS_TRUST),
        remediation=_build_remediation(r, "remediation"), notes=tuple(notes))


def _build_params(r: _Reader) -> dict[str, ParamSpec]:
    raw = r.data.get("params") or {}
    if not isinstance(raw, dict):
        raise r.error("params", f"must be a mapping of parameter name to its description, "
                                f"got {describe(raw)}")
    params = {}
    for name, spec in raw.items():
        if not isinstance(name, str) or not _PARAM_RE.match(name):
            raise r.error(f"params.{name}", "parameter names are lower case letters, digits "
                                            "and underscores, starting with a letter")
        s = r.sub(f"params.{name}", spec, ("description", "required", "kind", "seed"))
        s.seed()
        params[name] = ParamSpec(name, s.text("description"), s.flag("required"),
                                 s.text("kind", choices=PARAM_KINDS))
    return params


def _build_remediation(r: _Reader, key: str) -> Mapping[str, str]:
    raw = r.data.get(key) or {}
    if not isinstance(raw, dict):
        raise r.error(key, f"must be a mapping of diagnosis code to {{text, seed}}, got {describe(raw)}")
    texts = {}
    for code, entry in raw.items():
        if code not in DIAGNOSIS_CODES:
            raise r.error(f"{key}.{code}", "unknown diagnosis code; valid codes are "
                                           + ", ".join(DIAGNOSIS_CODES))
        s = r.sub(f"{key}.{code}", entry, ("text", "seed"))
        s.seed()
        texts[code] = " ".join(s.text("text").split())
    return MappingProxyType(texts)


def _host_or_ip(s: _Reader, key: str) -> str:
    value = s.text(key)
    if not (is_ip(value) or _HOST_RE.match(value)):
        raise s.error(key, "must be a lower-case host name, a '*.domain' wildcard or an IP "
                           f"address, got {value!r}")
    return value


def _build_endpoint(r: _Reader, params: Mapping[str, ParamSpec]) -> Endpoint:
    host = param = None
    if r.has("host") and r.has("param"):
        raise r.error("param", "give either host or param, not both")
    if r.has("host"):
        host = r.text("host")
        if is_ip(host):
            raise r.error("host", f"is an IP address ({host}); list IPs under addresses")
        if not _HOST_RE.match(host):
            raise r.error("host", "must be a lower-case host name or a '*.domain' wildcard, "
                                  f"got {host!r}")
    if r.has("param"):
        param = r.text("param")
        if param not in params:
            declared = ", ".join(sorted(params)) or "none"
            raise r.error("param", f"{param!r} is not a parameter of this profile "
                                   f"(declared: {declared})")
    addresses = []
    for i, value in enumerate(r.items("addresses")):
        if not isinstance(value, str) or not is_ip(value):
            raise r.error(f"addresses[{i}]", f"must be an IP address, got {describe(value)}")
        addresses.append(value)
    checks = r.items("checks")
    for i, check in enumerate(checks):
        if check not in CHECKS:
            raise r.error(f"checks[{i}]", f"must be one of {', '.join(CHECKS)}, got {describe(check)}")
        if check in checks[:i]:
            raise r.error(f"checks[{i}]", f"{check!r} is listed twice")
    protocol = r.text("protocol", choices=PROTOCOLS)
    _check_consistency(r, checks, host, param, addresses, protocol)
    https_path = r.opt_text("https_path")
    if https_path is not None and "https" not in checks:
        raise r.error("https_path", "only for an endpoint with the 'https' check")
    if https_path is not None and not https_path.startswith("/"):
        raise r.error("https_path", f"must start with '/', got {https_path!r}")
    if "https" in checks and https_path is None:
        raise r.error("https_path", "the 'https' check needs the path to GET, e.g. /ping")
    issuer, issuer_dn = r.opt_text("expected_issuer"), r.opt_text("expected_issuer_dn")
    if (issuer or issuer_dn) and not {"tls", "coap-tls"} & set(checks):
        raise r.error("expected_issuer" if issuer else "expected_issuer_dn",
                      "only for an endpoint with the 'tls' or 'coap-tls' check")
    return Endpoint(
        host=host, param=param, addresses=tuple(addresses), port=r.port("port"),
        protocol=protocol, service=r.text("service", choices=SERVICES), purpose=r.text("purpose"),
        checks=tuple(checks), https_path=https_path, expected_issuer=issuer,
        expected_issuer_dn=issuer_dn, remediation=_build_remediation(r, "remediation"),
        seed=r.seed())


def _check_consistency(r: _Reader, checks: list[str], host: str | None, param: str | None,
                       addresses: list[str], protocol: str) -> None:
    if not checks:
        return
    if protocol == "udp":
        raise r.error("checks", "must be empty for a UDP endpoint (firewall rule only)")
    if host is not None and host.startswith("*."):
        raise r.error("checks", "must be empty for a wildcard host (firewall rule only)")
    if host is None and param is None and not addresses:
        raise r.error("checks", "must be empty for a general rule with no host, param or "
                                "addresses (nothing to check)")
    if "dns" in checks and host is None and param is None:
        raise r.error("checks", "'dns' needs a host or a param to resolve")
    if "tls" in checks and "coap-tls" in checks:
        raise r.error("checks", "'tls' and 'coap-tls' are alternatives; list one")
    for check in checks:
        need = _CHECK_NEEDS.get(check)
        if need and need not in checks:
            raise r.error("checks", f"{check!r} needs {need!r} in the same list")


# --- machine-protocol table ----------------------------------------------------------------

def _build_machine_table(data: dict[str, Any], file: str
                         ) -> tuple[dict[str, Controller], DownloadFigures]:
    r = _Reader(file, "", data, ("seed", "upload_classes", "download", "controllers"))
    r.seed()
    raw_classes = r.data["upload_classes"]
    if not isinstance(raw_classes, dict) or not raw_classes:
        raise r.error("upload_classes", f"must be a mapping of class name to {{label, kbps, "
                                        f"seed}}, got {describe(raw_classes)}")
    classes = {}
    for name, spec in raw_classes.items():
        s = r.sub(f"upload_classes.{name}", spec, ("label", "kbps", "seed"))
        s.text("label")
        s.seed()
        classes[name] = s.positive("kbps")
    d = r.sub("download", r.data["download"],
              ("dashboard_bps_per_machine", "workcenter_view_bps_per_machine", "seed"))
    download = DownloadFigures(d.positive("dashboard_bps_per_machine"),
                               d.positive("workcenter_view_bps_per_machine"), d.seed())
    controllers: dict[str, Controller] = {}
    first: dict[str, int] = {}
    rows = r.items("controllers")
    if not rows:
        raise r.error("controllers", "must list at least one controller")
    for i, row in enumerate(rows):
        s = r.sub(f"controllers[{i}]", row,
                  ("id", "label", "port", "protocol", "upload", "probe", "seed"))
        cid = s.text("id")
        if not _ID_RE.match(cid):
            raise s.error("id", f"must be kebab-case (a-z, 0-9, '-'), got {cid!r}")
        if cid in first:
            raise s.error("id", f"duplicate id {cid!r} (first at controllers[{first[cid]}])")
        first[cid] = i
        upload = s.text("upload")
        if upload not in classes:
            raise s.error("upload", f"must be one of the upload_classes "
                                    f"({', '.join(classes)}), got {upload!r}")
        controllers[cid] = Controller(
            id=cid, label=s.text("label"), port=s.port("port"),
            protocol=s.text("protocol", choices=PROTOCOLS), upload_kbps=classes[upload],
            probe=s.text("probe", choices=PROBES), seed=s.seed())
    return controllers, download
