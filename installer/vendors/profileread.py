"""Reading profile and machine-protocol files: strict, every problem a ProfileError that
names the file and the key path and says what would be valid."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from installer.planning.fields import is_ip
from installer.planning.yamlfile import YamlProblem, describe, load_strict
from installer.vendors.profilemodel import (
    _CHECK_NEEDS,
    _HOST_RE,
    _ID_RE,
    _PARAM_RE,
    _SEED_RE,
    CHECKS,
    DIAGNOSIS_CODES,
    PARAM_KINDS,
    PROBES,
    PROTOCOLS,
    SERVICES,
    TLS_TRUST,
    Controller,
    DownloadFigures,
    Endpoint,
    ParamSpec,
    Profile,
    ProfileError,
)


def read_yaml(path: Path | Traversable) -> dict[str, Any]:
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


def build_profile(data: dict[str, Any], file: str, stem: str) -> Profile:
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
    if (issuer or issuer_dn) and not {"tls", "coap-tls", "dtls"} & set(checks):
        raise r.error("expected_issuer" if issuer else "expected_issuer_dn",
                      "only for an endpoint with the 'tls', 'coap-tls' or 'dtls' check")
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
    if protocol == "udp" and set(checks) - {"dns", "dtls"}:
        raise r.error("checks", "a UDP endpoint takes only 'dns' and 'dtls' (a DTLS handshake); "
                                f"got {', '.join(c for c in checks if c not in ('dns', 'dtls'))}")
    if protocol == "tcp" and "dtls" in checks:
        raise r.error("checks", "'dtls' is for a UDP endpoint; over TCP use 'tcp' and 'coap-tls'")
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

def build_machine_table(data: dict[str, Any], file: str
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
