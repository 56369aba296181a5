"""The plan's model: its sections as frozen dataclasses, the format's vocabularies and the
error type every reader and rule speaks.

A module of its own so that reading (`installer.planning.planread`) and judging
(`installer.planning.validate`) share the types without importing `installer.planning.plan`, the
face that loads and dumps plan files (and re-exports every name here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

FORMAT_VERSION = 1
TOPOLOGIES = ("single", "isolated", "wifi", "wireless-bridge", "cellular")
RENDERERS = ("netplan", "networkmanager")
WIFI_SECURITY = ("wpa2-psk", "wpa3-sae", "wpa2-wpa3", "wpa2-enterprise", "wpa3-enterprise")
# 802.1X: the box proves who it is to the plant's RADIUS server instead of sharing a passphrase.
WIFI_ENTERPRISE = ("wpa2-enterprise", "wpa3-enterprise")
EAP_METHODS = ("peap", "tls")  # PEAP with MSCHAPv2 inside; EAP-TLS with a client certificate
DNS_MODES = ("google", "dhcp", "custom")
NTP_MODES = ("pool", "dhcp", "custom")
IPV4_MODES = ("dhcp", "static")

# The seed's defaults (000, "DNS Configuration" and "NTP Configuration").
GOOGLE_DNS = ("8.8.8.8", "8.8.4.4")
POOL_NTP = ("0.pool.ntp.org", "1.pool.ntp.org", "2.pool.ntp.org", "3.pool.ntp.org")

SECRET_FIELDS = ("wifi.passphrase", "cellular.password", "proxy.password", "wifi.eap_password",
                 "wifi.private_key_password")
REDACTED = "********"


class _Record:
    """What every part of the plan shares: one `__repr__` for all (each is a dataclass with
    repr=False), written as a dataclass writes it but with the secrets (`_SECRETS`, the
    SECRET_FIELDS of its section) masked: a plan in a log, a traceback or a test's diff never
    shows a password. One method instead of one generated per class: generating them was
    nearly half of this module's import, which every command and the wizard's first frame wait for."""

    __slots__ = ()
    _SECRETS: ClassVar[tuple[str, ...]] = ()

    def __repr__(self) -> str:
        shown = (f"{f.name}={REDACTED!r}" if f.name in self._SECRETS and getattr(self, f.name) is not None
                 else f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self))  # type: ignore[arg-type]
        return f"{type(self).__qualname__}({', '.join(shown)})"


@dataclass(frozen=True, repr=False)
class FieldError(_Record):
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


@dataclass(frozen=True, repr=False)
class MachineNetwork(_Record):
    """The wired network the machines are on: always static, never a gateway."""

    interfaces: tuple[str, ...] = ()
    address: str | None = None


@dataclass(frozen=True, repr=False)
class Uplink(_Record):
    """The interface that reaches the company network and the internet."""

    interface: str | None = None
    ipv4: str = "dhcp"
    address: str | None = None
    gateway: str | None = None


@dataclass(frozen=True, repr=False)
class Wifi(_Record):
    """The wireless network the uplink joins (topologies wifi and wireless-bridge)."""

    _SECRETS = ("passphrase", "eap_password", "private_key_password")

    ssid: str | None = None
    security: str = "wpa2-psk"
    passphrase: str | None = None
    hidden: bool = False
    # The radio's regulatory domain: ISO 3166-1 alpha-2 ("DE"), or "00" for the world domain.
    country: str | None = None
    # WPA2/WPA3-Enterprise (802.1X) only:
    eap_method: str | None = None          # peap | tls
    identity: str | None = None
    anonymous_identity: str | None = None  # the outer identity sent before the tunnel is up
    eap_password: str | None = None        # peap
    ca_certificate: str | None = None      # absolute paths of PEM files on the box
    client_certificate: str | None = None  # tls
    private_key: str | None = None         # tls
    private_key_password: str | None = None  # tls, when the key is encrypted


@dataclass(frozen=True, repr=False)
class Cellular(_Record):
    """The modem's data connection (topology cellular, the seed's least preferred option)."""

    _SECRETS = ("password",)

    apn: str | None = None
    username: str | None = None
    password: str | None = None
    acknowledge_unsupported: bool = False
    data_cap_mb: int | None = None


@dataclass(frozen=True, repr=False)
class Dns(_Record):
    """Resolvers: Google with DHCP as fallback (the seed's default), DHCP only, or custom."""

    mode: str = "google"
    servers: tuple[str, ...] = ()


@dataclass(frozen=True, repr=False)
class Ntp(_Record):
    """Time servers: pool.ntp.org (the seed's default), DHCP-provided, or internal ones."""

    mode: str = "pool"
    servers: tuple[str, ...] = ()


@dataclass(frozen=True, repr=False)
class Proxy(_Record):
    """An HTTP/HTTPS proxy the plant requires, with optional credentials."""

    _SECRETS = ("password",)

    url: str | None = None
    username: str | None = None
    password: str | None = None
    no_proxy: tuple[str, ...] = ()


@dataclass(frozen=True, repr=False)
class Tls(_Record):
    """Trust anchors beyond the system store (a private PKI, the IEM's CA)."""

    extra_ca_file: str | None = None


@dataclass(frozen=True, repr=False)
class Machine(_Record):
    """A machine on the machine network to check: its address and controller type."""

    name: str | None = None
    address: str | None = None
    controller: str | None = None


@dataclass(frozen=True, repr=False)
class Port(_Record):
    """How to find a port the plan names (in machine_network.interfaces or uplink.interface)
    on any box, whatever the kernel calls it there: exactly one of its permanent MAC address
    (this box only), its kernel driver, or its udev ID_PATH (the socket on this box model,
    e.g. pci-0000:02:00.0). The plan's name is then given to the port found."""

    name: str
    mac: str | None = None
    driver: str | None = None
    path: str | None = None

    @property
    def binding(self) -> tuple[str, str] | None:
        """(kind, value) of the one binding given: ("mac", "52:54:00:12:34:56"); None if none."""
        for kind in PORT_BINDINGS:
            value = getattr(self, kind)
            if value is not None:
                return kind, value
        return None


PORT_BINDINGS = ("mac", "driver", "path")


@dataclass(frozen=True, repr=False)
class Plan(_Record):
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
    # Ports bound to the hardware rather than to a kernel name (absent: names are kernel names).
    ports: tuple[Port, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain data in the format's key order, ready for `yaml.safe_dump`."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in _OPTIONAL_TOP:
                continue
            if f.name == "ports":
                if value:  # a mapping in the file: {eno1: {mac: ...}}, only the binding given
                    out["ports"] = {p.name: {k: v for k, v in _plain(p).items() if k != "name" and v is not None}
                                    for p in value}
                continue
            out[f.name] = _plain(value)
        return out

    def port(self, name: str | None) -> Port | None:
        """The hardware binding of the port the plan calls `name`, or None (a kernel name)."""
        return next((p for p in self.ports if p.name == name), None)

    def field(self, path: str) -> Any:
        """The value at a field path: "hostname", "uplink.address", "ports.eno1.mac"; None where
        the section or the port is absent."""
        head, _, rest = path.partition(".")
        if head == "ports":
            name, _, kind = rest.rpartition(".")
            port = self.port(name)
            return None if port is None else getattr(port, kind)
        value = getattr(self, head)
        if not rest:
            return value
        return None if value is None else getattr(value, rest)

    def with_field(self, path: str, value: Any) -> Plan:
        """A copy with the value at a field path replaced (see `field`). An absent section stays
        absent; a port binding replaces the port's binding (None removes the port's entry)."""
        head, _, rest = path.partition(".")
        if head == "ports":
            name, _, kind = rest.rpartition(".")
            ports = [p for p in self.ports if p.name != name]
            if value is not None:
                at = next((i for i, p in enumerate(self.ports) if p.name == name), len(self.ports))
                ports.insert(at, Port(name=name, **{kind: value}))
            return dataclasses.replace(self, ports=tuple(ports))
        if not rest:
            return dataclasses.replace(self, **{head: value})
        section = getattr(self, head)
        if section is None:
            return self
        return dataclasses.replace(self, **{head: dataclasses.replace(section, **{rest: value})})

    def redacted(self) -> Plan:
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


# The keys of each section, for editors (the wizard, `--set`) that address fields by path.
SECTION_KEYS: dict[str, tuple[str, ...]] = {
    name: tuple(f.name for f in dataclasses.fields(cls))
    for name, cls in (("machine_network", MachineNetwork), ("uplink", Uplink), ("wifi", Wifi),
                      ("cellular", Cellular), ("dns", Dns), ("ntp", Ntp), ("proxy", Proxy), ("tls", Tls),
                      ("machines", Machine))
}
