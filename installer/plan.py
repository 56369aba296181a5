"""The plan: the one description of a box's network that everything else reads.

Format version 1 is public (SPEC, "The plan file"): technicians and IT teams edit it by
hand and bundles carry it, so the key names here are the format and never change within
a version. This module knows the *shape* of a plan (which keys, which types); whether the
values make sense together is `installer.validate`'s job.

Loading never raises anything but `PlanError`, whose lines each name a key (``uplink.gateway``,
``machines[2].address``) or the file and say what would be valid.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from installer.yamlfile import YamlProblem, describe, dump, load_strict

FORMAT_VERSION = 1
MAX_PLAN_BYTES = 1_000_000  # a plan is a few KB; anything this large is not a plan

TOPOLOGIES = ("single", "isolated", "wifi", "wireless-bridge", "cellular")
RENDERERS = ("netplan", "networkmanager")
WIFI_SECURITY = ("wpa2-psk", "wpa3-sae", "wpa2-wpa3")
DNS_MODES = ("google", "dhcp", "custom")
NTP_MODES = ("pool", "dhcp", "custom")
IPV4_MODES = ("dhcp", "static")

# The seed's defaults (000, "DNS Configuration" and "NTP Configuration").
GOOGLE_DNS = ("8.8.8.8", "8.8.4.4")
POOL_NTP = ("0.pool.ntp.org", "1.pool.ntp.org", "2.pool.ntp.org", "3.pool.ntp.org")

SECRET_FIELDS = ("wifi.passphrase", "cellular.password", "proxy.password")
REDACTED = "********"


@dataclass(frozen=True)
class FieldError:
    """One problem with a plan: the key it concerns and what would be valid."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class PlanError(Exception):
    """A plan file that cannot be read as a plan. Holds every problem found, not just the first."""

    def __init__(self, source: str, errors: list[FieldError]):
        self.source = source
        self.errors = list(errors)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(f"{self.source}: {e}" for e in self.errors)


@dataclass(frozen=True)
class MachineNetwork:
    """The wired network the machines are on: always static, never a gateway."""

    interfaces: tuple[str, ...] = ()
    address: str | None = None


@dataclass(frozen=True)
class Uplink:
    """The interface that reaches the company network and the internet."""

    interface: str | None = None
    ipv4: str = "dhcp"
    address: str | None = None
    gateway: str | None = None


@dataclass(frozen=True)
class Wifi:
    """The wireless network the uplink joins (topologies wifi and wireless-bridge)."""

    ssid: str | None = None
    security: str = "wpa2-psk"
    passphrase: str | None = None
    hidden: bool = False


@dataclass(frozen=True)
class Cellular:
    """The modem's data connection (topology cellular, the seed's least preferred option)."""

    apn: str | None = None
    username: str | None = None
    password: str | None = None
    acknowledge_unsupported: bool = False
    data_cap_mb: int | None = None


@dataclass(frozen=True)
class Dns:
    """Resolvers: Google with DHCP as fallback (the seed's default), DHCP only, or custom."""

    mode: str = "google"
    servers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ntp:
    """Time servers: pool.ntp.org (the seed's default), DHCP-provided, or internal ones."""

    mode: str = "pool"
    servers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Proxy:
    """An HTTP/HTTPS proxy the plant requires, with optional credentials."""

    url: str | None = None
    username: str | None = None
    password: str | None = None
    no_proxy: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tls:
    """Trust anchors beyond the system store (a private PKI, the IEM's CA)."""

    extra_ca_file: str | None = None


@dataclass(frozen=True)
class Machine:
    """A machine on the machine network to check: its address and controller type."""

    name: str | None = None
    address: str | None = None
    controller: str | None = None


@dataclass(frozen=True)
class Plan:
    """A whole plan. Sections absent from the file are None (optional ones) or their defaults."""

    version: int = FORMAT_VERSION
    hostname: str | None = None
    topology: str | None = None
    renderer: str = "netplan"
    machine_network: MachineNetwork | None = None
    uplink: Uplink | None = None
    wifi: Wifi | None = None
    cellular: Cellular | None = None
    dns: Dns = field(default_factory=Dns)
    ntp: Ntp = field(default_factory=Ntp)
    proxy: Proxy | None = None
    tls: Tls = field(default_factory=Tls)
    profiles: tuple[str, ...] = ()
    profile_params: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    machines: tuple[Machine, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain data in the format's key order, ready for `yaml.safe_dump`."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in _OPTIONAL_TOP:
                continue
            out[f.name] = _plain(value)
        return out

    def redacted(self) -> "Plan":
        """A copy with every secret replaced by asterisks, for logs, reports and screens."""
        plan = self
        for path in SECRET_FIELDS:
            section, key = path.split(".")
            sec = getattr(plan, section)
            if sec is not None and getattr(sec, key):
                plan = dataclasses.replace(plan, **{section: dataclasses.replace(sec, **{key: REDACTED})})
        return plan

    def secrets(self) -> list[str]:
        """The secret values this plan holds (for tests and redaction filters)."""
        found = []
        for path in SECRET_FIELDS:
            section, key = path.split(".")
            sec = getattr(self, section)
            if sec is not None and getattr(sec, key):
                found.append(getattr(sec, key))
        return found


_OPTIONAL_TOP = {"hostname", "machine_network", "uplink", "wifi", "cellular", "proxy", "topology"}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------
# Reading: a small declarative schema, so every type error names its key.

_Parser = Callable[[Any, str, list[FieldError]], Any]
_INVALID = object()


def _text(optional: bool = True) -> _Parser:
    def parse(value: Any, path: str, errors: list[FieldError]) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, str):
            return value
        hint = " (put it in quotes)" if isinstance(value, (int, float, bool)) else ""
        errors.append(FieldError(path, f"must be text{hint}, got {describe(value)}"))
        return _INVALID

    return parse


def _boolean(value: Any, path: str, errors: list[FieldError]) -> Any:
    if isinstance(value, bool):
        return value
    errors.append(FieldError(path, f"must be true or false, got {describe(value)}"))
    return _INVALID


def _integer(optional: bool) -> _Parser:
    def parse(value: Any, path: str, errors: list[FieldError]) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        errors.append(FieldError(path, f"must be a whole number, got {describe(value)}"))
        return _INVALID

    return parse


def _text_list(value: Any, path: str, errors: list[FieldError]) -> Any:
    if value is None:
        return ()
    if isinstance(value, str):
        # A single value where a list is expected is the commonest hand-editing slip.
        errors.append(FieldError(path, f"must be a list such as [{value}], got {describe(value)}"))
        return _INVALID
    if not isinstance(value, list):
        errors.append(FieldError(path, f"must be a list of text values, got {describe(value)}"))
        return _INVALID
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            hint = " (put it in quotes)" if isinstance(item, (int, float, bool)) else ""
            errors.append(FieldError(f"{path}[{i}]", f"must be text{hint}, got {describe(item)}"))
            return _INVALID
        out.append(item)
    return tuple(out)


# Keys that people reach for but the format deliberately lacks, with the reason.
_FORBIDDEN = {
    ("machine_network", "gateway"): "the machine network never has a gateway: machines have no "
    "internet access (seed 000, isolated networks); remove this key",
    ("machine_network", "ipv4"): "the machine network is always static (seed 000: LAN Port 1 "
    "'Static IP required'); remove this key and give machine_network.address",
}


def _section(cls: type, spec: Mapping[str, _Parser], name: str) -> _Parser:
    def parse(value: Any, path: str, errors: list[FieldError]) -> Any:
        if value is None:
            return None
        if not isinstance(value, dict):
            errors.append(FieldError(path, f"must be a mapping of {', '.join(spec)}, got {describe(value)}"))
            return _INVALID
        kwargs = {}
        ok = True
        for key, item in value.items():
            sub = f"{path}.{key}"
            if (name, key) in _FORBIDDEN:
                errors.append(FieldError(sub, _FORBIDDEN[(name, key)]))
                ok = False
            elif key not in spec:
                errors.append(FieldError(sub, _unknown_key(key, spec)))
                ok = False
            else:
                parsed = spec[key](item, sub, errors)
                if parsed is _INVALID:
                    ok = False
                elif parsed is not None or key not in _NONE_MEANS_DEFAULT:
                    kwargs[key] = parsed
        return cls(**kwargs) if ok else _INVALID

    return parse


# In these keys `null` means "use the default" rather than "no value".
_NONE_MEANS_DEFAULT = {"interfaces", "servers", "no_proxy", "hidden", "acknowledge_unsupported",
                       "ipv4", "security", "mode"}


def _unknown_key(key: Any, allowed: Mapping[str, Any] | tuple[str, ...]) -> str:
    import difflib

    names = list(allowed)
    close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key{hint} (valid keys here: {', '.join(names)})"


def _machines(value: Any, path: str, errors: list[FieldError]) -> Any:
    if value is None:
        return ()
    if not isinstance(value, list):
        errors.append(FieldError(path, f"must be a list of machines ({{name, address, controller}}), got {describe(value)}"))
        return _INVALID
    out = []
    parse_one = _section(Machine, _MACHINE, "machines")
    for i, item in enumerate(value):
        if item is None:
            errors.append(FieldError(f"{path}[{i}]", "is empty; give name, address and controller"))
            return _INVALID
        parsed = parse_one(item, f"{path}[{i}]", errors)
        if parsed is _INVALID:
            return _INVALID
        out.append(parsed)
    return tuple(out)


def _profile_params(value: Any, path: str, errors: list[FieldError]) -> Any:
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(FieldError(path, f"must be a mapping of profile id to its parameters, got {describe(value)}"))
        return _INVALID
    out: dict[str, dict[str, str]] = {}
    for pid, params in value.items():
        sub = f"{path}.{pid}"
        if not isinstance(pid, str):
            errors.append(FieldError(sub, "profile ids are text such as siemens-industrial-edge"))
            return _INVALID
        if params is None:
            params = {}
        if not isinstance(params, dict):
            errors.append(FieldError(sub, f"must be a mapping such as {{iem_host: iem.plant.local}}, got {describe(params)}"))
            return _INVALID
        inner = {}
        for k, v in params.items():
            if not isinstance(k, str) or not isinstance(v, str):
                errors.append(FieldError(f"{sub}.{k}", f"must be text (put it in quotes), got {describe(v)}"))
                return _INVALID
            inner[k] = v
        out[pid] = inner
    return out


def _version(value: Any, path: str, errors: list[FieldError]) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(FieldError(path, f"must be the number {FORMAT_VERSION}, got {describe(value)}"))
        return _INVALID
    if value > FORMAT_VERSION:
        errors.append(FieldError(path, f"this plan is format version {value}; this edge-installer reads "
                                       f"format version {FORMAT_VERSION}: use a newer edge-installer"))
        return _INVALID
    if value < 1:
        errors.append(FieldError(path, f"format version {value} does not exist; the current one is {FORMAT_VERSION}"))
        return _INVALID
    return value


_MACHINE_NETWORK = {"interfaces": _text_list, "address": _text()}
_UPLINK = {"interface": _text(), "ipv4": _text(), "address": _text(), "gateway": _text()}
_WIFI = {"ssid": _text(), "security": _text(), "passphrase": _text(), "hidden": _boolean}
_CELLULAR = {"apn": _text(), "username": _text(), "password": _text(),
             "acknowledge_unsupported": _boolean, "data_cap_mb": _integer(optional=True)}
_DNS = {"mode": _text(), "servers": _text_list}
_NTP = {"mode": _text(), "servers": _text_list}
_PROXY = {"url": _text(), "username": _text(), "password": _text(), "no_proxy": _text_list}
_TLS = {"extra_ca_file": _text()}
_MACHINE = {"name": _text(), "address": _text(), "controller": _text()}

_TOP: dict[str, _Parser] = {
    "version": _version,
    "hostname": _text(),
    "topology": _text(),
    "renderer": _text(),
    "machine_network": _section(MachineNetwork, _MACHINE_NETWORK, "machine_network"),
    "uplink": _section(Uplink, _UPLINK, "uplink"),
    "wifi": _section(Wifi, _WIFI, "wifi"),
    "cellular": _section(Cellular, _CELLULAR, "cellular"),
    "dns": _section(Dns, _DNS, "dns"),
    "ntp": _section(Ntp, _NTP, "ntp"),
    "proxy": _section(Proxy, _PROXY, "proxy"),
    "tls": _section(Tls, _TLS, "tls"),
    "profiles": _text_list,
    "profile_params": _profile_params,
    "machines": _machines,
}
# These sections fall back to their defaults when absent or null.
_DEFAULTED = {"dns", "ntp", "tls", "renderer", "profiles", "profile_params", "machines"}

# The keys of each section, for editors (the wizard, `--set`) that address fields by path.
SECTION_KEYS: dict[str, tuple[str, ...]] = {
    "machine_network": tuple(_MACHINE_NETWORK), "uplink": tuple(_UPLINK), "wifi": tuple(_WIFI),
    "cellular": tuple(_CELLULAR), "dns": tuple(_DNS), "ntp": tuple(_NTP), "proxy": tuple(_PROXY),
    "tls": tuple(_TLS), "machines": tuple(_MACHINE),
}


def from_dict(data: Any, source: str = "plan") -> Plan:
    """Build a Plan from parsed YAML data; raise PlanError listing every structural problem."""
    errors: list[FieldError] = []
    if not isinstance(data, dict):
        raise PlanError(source, [FieldError("", "the top level must be a mapping of keys such as "
                                                 f"version, topology and uplink; found {describe(data)}")])
    if "version" not in data:
        raise PlanError(source, [FieldError("version", f"missing; add 'version: {FORMAT_VERSION}' as the first line")])
    if _version(data["version"], "version", errors) is _INVALID:
        # A newer format may have keys we do not know: report the version alone.
        raise PlanError(source, errors)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str) or key not in _TOP:
            errors.append(FieldError(str(key), _unknown_key(key, _TOP)))
            continue
        parsed = _TOP[key](value, key, errors)
        if parsed is _INVALID:
            continue
        if parsed is None and key in _DEFAULTED:
            continue
        kwargs[key] = parsed
    if errors:
        raise PlanError(source, errors)
    return Plan(**kwargs)


def loads(text: str | bytes, source: str = "plan") -> Plan:
    """Parse plan text (YAML, safe loading only) into a Plan, or raise PlanError."""
    if isinstance(text, bytes):
        if len(text) > MAX_PLAN_BYTES:
            raise PlanError(source, [FieldError("", f"is {len(text)} bytes; a plan is at most {MAX_PLAN_BYTES}")])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise PlanError(source, [FieldError("", f"is not UTF-8 text (byte {e.start}); a plan is a YAML text file")])
    if len(text) > MAX_PLAN_BYTES:
        raise PlanError(source, [FieldError("", f"is {len(text)} characters; a plan is at most {MAX_PLAN_BYTES}")])
    if not text.strip():
        raise PlanError(source, [FieldError("", "is empty; a plan starts with 'version: 1'")])
    try:
        data = load_strict(text)
    except YamlProblem as e:
        raise PlanError(source, [FieldError("", f"is not valid YAML: {e}")]) from None
    return from_dict(data, source)


def load(path: str | os.PathLike[str]) -> Plan:
    """Read a plan file, or raise PlanError naming the file."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_PLAN_BYTES + 1)
    except IsADirectoryError:
        raise PlanError(str(p), [FieldError("", "is a directory; give the path of a plan file (YAML)")]) from None
    except FileNotFoundError:
        raise PlanError(str(p), [FieldError("", "does not exist")]) from None
    except OSError as e:
        raise PlanError(str(p), [FieldError("", f"cannot be read: {e.strerror}")]) from None
    return loads(data, str(p))


def dumps(plan: Plan) -> str:
    """The plan as YAML text; `loads(dumps(p)) == p` and the text is stable for the same plan."""
    return dump(plan.to_dict())
