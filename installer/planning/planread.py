"""Reading a plan's data: a small declarative schema, so every type error names its key.

This is the shape of format version 1 (which keys, which types); `installer.planning.validate`
judges whether the values make sense together. Everything here raises nothing but
`PlanError`, whose lines each name a key and say what would be valid.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from installer.planning.model import (
    FORMAT_VERSION,
    Cellular,
    Dns,
    FieldError,
    Machine,
    MachineNetwork,
    Ntp,
    Plan,
    PlanError,
    Port,
    Proxy,
    Tls,
    Uplink,
    Wifi,
)
from installer.planning.yamlfile import describe

_Parser = Callable[[Any, str, list[FieldError]], Any]
# What validation finds in a plan (installer.planning.validate.validate with its default context).
Judge = Callable[[Plan], list[FieldError]]
_INVALID = object()


def _text(optional: bool = True, secret: bool = False) -> _Parser:
    def parse(value: Any, path: str, errors: list[FieldError]) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, str):
            return value
        hint = " (put it in quotes)" if isinstance(value, (int, float, bool)) else ""
        # A secret's value is never repeated (a numeric password would be shown): its kind only.
        got = _kind(value) if secret else describe(value)
        errors.append(FieldError(path, f"must be text{hint}, got {got}"))
        return _INVALID

    return parse


def _kind(value: Any) -> str:
    """What a value is, without the value: for secrets."""
    if isinstance(value, bool):
        return "a yes/no value"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a value of another kind"


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
    "internet access (MachineMetrics, Network Requirements, isolated networks); remove this key",
    ("machine_network", "ipv4"): "the machine network is always static (MachineMetrics, Network Requirements: "
    "LAN Port 1 'Static IP required'); remove this key and give machine_network.address",
}


def _section(cls: Callable[..., Any], spec: Mapping[str, _Parser], name: str) -> _Parser:
    """A parser for a section whose keys `spec` reads; `cls` builds the section from them."""
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
                if isinstance(parsed, _Partial):  # a nested section read in part
                    ok, parsed = False, parsed.value
                if parsed is _INVALID:
                    ok = False
                elif parsed is not None or key not in _NONE_MEANS_DEFAULT:
                    kwargs[key] = parsed
        # With a problem (already in `errors`) the keys that could be read still make a section:
        # validation judges them in the same pass (from_data), so one run shows every problem.
        return cls(**kwargs) if ok else _Partial(cls(**kwargs))

    return parse


# In these keys `null` means "use the default" rather than "no value".
_NONE_MEANS_DEFAULT = {"interfaces", "servers", "no_proxy", "hidden", "acknowledge_unsupported",
                       "ipv4", "security", "mode"}


class _Partial:
    """A section read in part (its problems are in the error list): unusable as the plan's
    value, but what validation judges so that every problem is found in one pass."""

    def __init__(self, value: Any):
        self.value = value


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
        errors.append(FieldError(path, "must be a list of machines ({name, address, controller}), "
                                       f"got {describe(value)}"))
        return _INVALID
    out = []
    parse_one = _section(Machine, _MACHINE, "machines")
    ok = True
    for i, item in enumerate(value):
        if item is None:
            errors.append(FieldError(f"{path}[{i}]", "is empty; give name, address and controller"))
            return _INVALID
        parsed = parse_one(item, f"{path}[{i}]", errors)
        if parsed is _INVALID:
            return _INVALID
        if isinstance(parsed, _Partial):
            ok, parsed = False, parsed.value
        out.append(parsed)
    return tuple(out) if ok else _Partial(tuple(out))


def _mac(value: Any, path: str, errors: list[FieldError]) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        # YAML 1.1 reads an all-digit MAC such as 52:54:00:12:34:56 as a base-60 number.
        parts = []
        while value:
            value, part = divmod(value, 60)
            parts.append(f"{part:02d}")
        shown = ":".join(reversed(parts)) or "0"
        errors.append(FieldError(path, f"put the MAC address in quotes, mac: '{shown}' (YAML reads it as a "
                                       "number without them)"))
        return _INVALID
    return _text()(value, path, errors)


def _data_cap(value: Any, path: str, errors: list[FieldError]) -> Any:
    """The cellular data cap: a number of MB, or text with its unit ("2 GB", "500 MB")."""
    from installer.planning.fields import parse_data_cap

    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value  # a number of MB; whether it is positive is validation's to say
    mb, problem = parse_data_cap(value)
    if problem:
        errors.append(FieldError(path, problem))
        return _INVALID
    return mb


_PORT = {"mac": _mac, "driver": _text(), "path": _text()}
_PORT_EXAMPLE = "{eno1: {mac: '52:54:00:12:34:56'}}"


def _ports(value: Any, path: str, errors: list[FieldError]) -> Any:
    """`ports`: the plan's port name -> how to find that port on any box (mac, driver or path)."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        errors.append(FieldError(path, f"must be a mapping of port name to one of mac, driver or path, e.g. "
                                       f"{_PORT_EXAMPLE}, got {describe(value)}"))
        return _INVALID
    out = []
    ok = True
    for name, spec in value.items():
        sub = f"{path}.{name}"
        if not isinstance(name, str):
            errors.append(FieldError(sub, "a port is named by text, as machine_network.interfaces and "
                                          "uplink.interface name it, e.g. eno1"))
            ok = False
            continue
        if not isinstance(spec, dict):
            errors.append(FieldError(sub, f"must be a mapping with one of mac, driver or path, e.g. "
                                          f"{{mac: '52:54:00:12:34:56'}}, got {describe(spec)}"))
            ok = False
            continue
        parsed = _section(lambda _n=name, **kw: Port(name=_n, **kw), _PORT, "ports")(spec, sub, errors)
        if isinstance(parsed, _Partial):
            ok, parsed = False, parsed.value
        out.append(parsed)
    return tuple(out) if ok else _Partial(tuple(out))


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
            errors.append(FieldError(sub, "must be a mapping such as {iem_host: iem.plant.local}, "
                                          f"got {describe(params)}"))
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
_WIFI = {"ssid": _text(), "security": _text(), "passphrase": _text(secret=True), "hidden": _boolean,
         "country": _text(), "eap_method": _text(), "identity": _text(), "anonymous_identity": _text(),
         "eap_password": _text(secret=True), "ca_certificate": _text(), "client_certificate": _text(),
         "private_key": _text(), "private_key_password": _text(secret=True)}
_CELLULAR = {"apn": _text(), "username": _text(), "password": _text(secret=True),
             "acknowledge_unsupported": _boolean, "data_cap_mb": _data_cap}
_DNS = {"mode": _text(), "servers": _text_list}
_NTP = {"mode": _text(), "servers": _text_list}
_PROXY = {"url": _text(), "username": _text(), "password": _text(secret=True), "no_proxy": _text_list}
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
    "ports": _ports,
}
# These sections fall back to their defaults when absent or null.
_DEFAULTED = {"dns", "ntp", "tls", "renderer", "profiles", "profile_params", "machines", "ports"}

def from_data(data: Any, source: str = "plan", judge: Judge | None = None) -> Plan:
    """Build a Plan from parsed YAML data; raise PlanError listing every structural problem.

    `judge` (`installer.planning.validate.validate`, which `installer.planning.plan.from_dict`
    passes) is also asked about the parts that could be read, so that one run shows every
    problem; it is given rather than imported because validation reads plans through here."""
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
        if isinstance(parsed, _Partial):
            parsed = parsed.value
        if parsed is None and key in _DEFAULTED:
            continue
        kwargs[key] = parsed
    if errors:
        judged = _judged_in_part(Plan(**kwargs), errors, judge) if judge is not None else []
        raise PlanError(source, errors + judged)
    return Plan(**kwargs)


_DID_YOU_MEAN = re.compile(r"did you mean '([^']+)'")


def _judged_in_part(partial: Plan, shape: list[FieldError], judge: Judge) -> list[FieldError]:
    """What validation (`judge`) finds in the parts of a plan that could be read, less what the
    shape problems already say: every problem is then reported in one pass instead of
    stopping at a misspelt key. A field that has a shape problem (or that a misspelt key's
    suggestion names) is left to that problem's line."""
    covered = set()
    for e in shape:
        covered.add(e.field)
        m = _DID_YOU_MEAN.search(e.message)
        if m:
            parent = e.field.rpartition(".")[0] if "." in e.field else ""
            covered.add(f"{parent}.{m.group(1)}" if parent else m.group(1))

    def shadowed(name: str) -> bool:
        return any(name == c or name.startswith((c + ".", c + "[")) or c.startswith((name + ".", name + "["))
                   for c in covered)

    try:
        found = judge(partial)
    except Exception:
        return []
    return [e for e in found if not shadowed(e.field)]
