"""`--set KEY=VALUE`: change one field of a plan by the path validation reports it under.

KEY is a field path exactly as `installer.planning.validate` names fields in its errors: `hostname`,
`uplink.gateway`, `dns.servers` (a comma-separated list), `dns.servers[1]`,
`machines[2].address`, `profile_params.siemens-industrial-edge.iem_host`. An empty VALUE
clears the field (back to its default). This is how the next box of a fleet differs from
the first (SPEC, "Apply, bundles, CLI"), so a set changes exactly the named field and
nothing else, and its value is judged by the same rules as the wizard's field.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from installer.planning import plan as planmod
from installer.planning.plan import FieldError, Plan

if TYPE_CHECKING:
    from installer.planning.validate import Context

# The sections a key can name, and the dataclass each one holds.
_SECTIONS: dict[str, type] = {
    "machine_network": planmod.MachineNetwork, "uplink": planmod.Uplink, "wifi": planmod.Wifi,
    "cellular": planmod.Cellular, "dns": planmod.Dns, "ntp": planmod.Ntp, "proxy": planmod.Proxy,
    "tls": planmod.Tls,
}
_TOP_TEXT = ("hostname", "topology", "renderer")
_PART = re.compile(r"^(?P<name>[A-Za-z0-9_-]+)(?:\[(?P<index>[^\]]*)\])?$")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class SetError(Exception):
    """One or more `--set` items that cannot be applied; each error names its key."""

    def __init__(self, errors: list[FieldError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class _Bad(Exception):
    pass


class _BadKey(_Bad):
    """The key itself is wrong (unknown field, bad index), whatever the value."""


# A secret's file holds one value: a passphrase, a password (WPA: 63 characters at most).
MAX_SECRET_FILE = 4096


def secret_key(key: str) -> bool:
    """True when KEY names a secret field (wifi.passphrase, proxy.password, ...): its value is
    never taken on the command line, where `ps` and the shell history would keep it."""
    return key.strip() in planmod.SECRET_FIELDS


def secret_refusals(sets: Iterable[str]) -> list[FieldError]:
    """One error per `--set KEY=VALUE` of a secret field, saying how to give it instead.
    The value itself is never repeated."""
    errors = []
    for item in sets:
        key, sep, _ = item.partition("=")
        if sep and secret_key(key):
            key = key.strip()
            errors.append(FieldError(key, f"is a secret and is not taken on the command line (ps and the shell "
                                          f"history would keep it); give --set-file {key}=FILE (the value on its "
                                          f"first line, the file mode 0600), or --set {key} alone to be asked "
                                          "at the terminal"))
    return errors


def read_secret_file(key: str, path: str) -> str:
    """The secret in FILE for `--set-file KEY=FILE`: a regular file, read bounded, its trailing
    line break removed. Raises SetError naming the key and the file, never the value."""
    import os
    import stat

    def bad(message: str) -> SetError:
        return SetError([FieldError(key, f"--set-file {path}: {message}")])

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise bad(e.strerror or "cannot be read") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise bad("is not a regular file (a FIFO, device or directory); write the secret to a file")
        if st.st_size > MAX_SECRET_FILE:
            raise bad(f"is larger than {MAX_SECRET_FILE} bytes; it holds one secret on one line")
        data = os.read(fd, MAX_SECRET_FILE + 1)
    except OSError as e:
        raise bad(e.strerror or "cannot be read") from None
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_FILE:
        raise bad(f"is larger than {MAX_SECRET_FILE} bytes; it holds one secret on one line")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("is not UTF-8 text") from None
    if text.endswith("\n"):
        text = text[:-1].removesuffix("\r")
    if not text:
        raise bad("is empty; write the secret on its first line")
    if "\n" in text:
        raise bad("holds more than one line; a secret is one line")
    return text


def settable_keys() -> list[str]:
    """Every key `--set` takes (list items and machines by index), for help and error hints."""
    keys = list(_TOP_TEXT) + ["profiles"]
    for section, cls in _SECTIONS.items():
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(cls)]
    keys += [f"machines[N].{name}" for name in planmod.SECTION_KEYS["machines"]]
    keys.append("profile_params.PROFILE.PARAMETER")
    keys += [f"ports.PORT.{kind}" for kind in planmod.PORT_BINDINGS]
    return keys


def apply_sets(plan: Plan, sets: Iterable[str], ctx: Context | None = None) -> Plan:
    """The plan with each "KEY=VALUE" applied, judged by validation; raise SetError otherwise.

    Problems the sets cause are reported, including on fields they did not name (a new
    uplink.address leaving the old uplink.gateway outside its subnet); problems the plan
    already had are left to whoever validates the whole plan (a bundle's missing secret).
    """
    return apply_sets_judged(plan, sets, ctx)[0]


def apply_sets_judged(plan: Plan, sets: Iterable[str], ctx: Context | None = None,
                      before: set[FieldError] | None = None,
                      ) -> tuple[Plan, list[FieldError]]:
    """`apply_sets`, and every validation problem of the new plan. `before`: the plan's own
    problems when already known (a fleet applies every row to one plan: validated once)."""
    from installer.planning.validate import validate

    errors: list[FieldError] = []
    new = plan
    touched: list[str] = []
    for item in sets:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            errors.append(FieldError(item, "give KEY=VALUE, e.g. machine_network.address=192.168.50.3/24"))
            continue
        if key in touched:
            errors.append(FieldError(key, "is set twice; give each key once"))
            continue
        try:
            new = _set_one(new, key, value)
            touched.append(key)
        except _Bad as e:
            errors.append(FieldError(key, str(e)))
    if errors:
        raise SetError(errors)
    if before is None:
        before = set(validate(plan, ctx))
    found = validate(new, ctx)
    problems = [e for e in found if e not in before or _names(e.field, touched)]
    if problems:
        raise SetError(problems)
    return new, found


def check_key(plan: Plan, key: str) -> str | None:
    """What is wrong with KEY itself for this plan (unknown field, bad index), or None."""
    try:
        _set_one(plan, key.strip(), "x")
    except _BadKey as e:
        return str(e)
    except _Bad:
        pass  # a value problem: the key is fine
    return None


def _names(field: str, keys: list[str]) -> bool:
    return any(field == k or field.startswith((k + ".", k + "[")) or k.startswith(field + ".")
               for k in keys)


def _parse_key(key: str) -> list[tuple[str, int | None]]:
    parts: list[tuple[str, int | None]] = []
    for raw in key.split("."):
        m = _PART.match(raw)
        if not m:
            raise _BadKey(f"{raw!r} is not a field name; keys look like uplink.gateway or machines[0].address")
        index = m.group("index")
        if index is None:
            parts.append((m.group("name"), None))
        elif not index.isdigit() or (len(index) > 1 and index.startswith("0")) or len(index) > 6:
            raise _BadKey(f"[{index}] is not an index; use a whole number from 0, e.g. {m.group('name')}[0]")
        else:
            parts.append((m.group("name"), int(index)))
    return parts


def _unknown(name: str, valid: list[str]) -> _BadKey:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return _BadKey(f"unknown key{hint} (settable here: {', '.join(valid)})")


def _set_one(plan: Plan, key: str, value: str) -> Plan:
    parts = _parse_key(key)
    (head, index), rest = parts[0], parts[1:]
    if head == "version":
        raise _BadKey("the plan's format version is not a field to set")
    if head in _TOP_TEXT:
        _no_index(head, index)
        _no_rest(head, rest)
        default = _default(next(f for f in dataclasses.fields(Plan) if f.name == head))
        return plan.with_field(head, value if value != "" else default)
    if head == "profiles":
        _no_rest(head, rest)
        return dataclasses.replace(plan, profiles=_list_value(plan.profiles, "profiles", index, value))
    if head == "machines":
        return _set_machine(plan, index, rest, value)
    if head == "profile_params":
        return _set_profile_param(plan, index, rest, value)
    if head == "ports":
        return _set_port(plan, index, rest, value)
    if head in _SECTIONS:
        _no_index(head, index)
        cls = _SECTIONS[head]
        names = [f.name for f in dataclasses.fields(cls)]
        if not rest:
            raise _BadKey(f"is a section; set one of its fields: {', '.join(f'{head}.{n}' for n in names)}")
        if len(rest) > 1:
            raise _BadKey(f"{head}.{rest[0][0]} has no fields below it")
        name, sub_index = rest[0]
        if name not in names:
            raise _unknown(f"{head}.{name}", [f"{head}.{n}" for n in names])
        section = getattr(plan, head) or cls()
        current = getattr(section, name)
        new_value = _typed(cls, name, current, f"{head}.{name}", sub_index, value)
        return dataclasses.replace(plan, **{head: dataclasses.replace(section, **{name: new_value})})
    raise _unknown(head, list(_TOP_TEXT) + ["profiles", "machines[N]", "profile_params", "ports"] + list(_SECTIONS))


def _no_index(name: str, index: int | None) -> None:
    if index is not None:
        raise _BadKey(f"{name} is not a list; drop the [{index}]")


def _no_rest(name: str, rest: list[tuple[str, int | None]]) -> None:
    if rest:
        raise _BadKey(f"{name} has no fields below it")


def _default(f: dataclasses.Field[Any]) -> Any:
    """A field's default value (every field of a plan and of its sections has one)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _typed(cls: type, name: str, current: Any, path: str, index: int | None, value: str) -> Any:
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    kind = str(f.type)
    if "tuple" in kind:
        return _list_value(current, path, index, value)
    _no_index(path, index)
    default = _default(f)
    if value == "":
        return default
    if kind == "bool":
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise _Bad(f"must be true or false, got {value!r}")
    if path == "cellular.data_cap_mb":
        from installer.planning.fields import parse_data_cap

        mb, problem = parse_data_cap(value)
        if problem:
            raise _Bad(problem)
        return mb
    if kind.startswith("int"):
        text = value.strip()
        if not re.fullmatch(r"-?[0-9]{1,12}", text):
            raise _Bad(f"must be a whole number, e.g. 5000, got {value!r}")
        return int(text)
    return value


def _list_value(current: tuple[str, ...], path: str, index: int | None, value: str) -> tuple[str, ...]:
    if index is None:
        # Items are addresses, host names and profile ids: none contains a comma or needs spaces.
        items = [v.strip() for v in value.split(",")]
        if value.strip() and any(not v for v in items):
            raise _Bad(f"has an empty item in {value!r}; separate items with single commas, e.g. 10.0.0.53,10.0.0.54")
        return tuple(v for v in items if v)
    if index >= len(current):
        valid = f"{path}[0] to {path}[{len(current) - 1}]" if current else f"none (the list is empty; set {path}=a,b)"
        raise _BadKey(f"index {index} is out of range; the plan has {len(current)} item(s): {valid}")
    if value.strip() == "":
        raise _Bad(f"give a value; to remove items set the whole list, e.g. {path}=a,b")
    return current[:index] + (value.strip(),) + current[index + 1:]


def _set_machine(plan: Plan, index: int | None, rest: list[tuple[str, int | None]], value: str) -> Plan:
    names = list(planmod.SECTION_KEYS["machines"])
    if index is None:
        raise _BadKey(f"name one machine by its index, e.g. machines[0].address (fields: {', '.join(names)})")
    if index >= len(plan.machines):
        valid = (f"machines[0] to machines[{len(plan.machines) - 1}]" if plan.machines
                 else "none: the plan lists no machines")
        raise _BadKey(f"index {index} is out of range; the plan has {len(plan.machines)} machine(s): {valid}")
    if len(rest) != 1 or rest[0][1] is not None:
        raise _BadKey(f"name one field of the machine: {', '.join(f'machines[{index}].{n}' for n in names)}")
    name = rest[0][0]
    if name not in names:
        raise _unknown(f"machines[{index}].{name}", [f"machines[{index}].{n}" for n in names])
    machine = dataclasses.replace(plan.machines[index], **{name: value if value != "" else None})
    return dataclasses.replace(plan, machines=plan.machines[:index] + (machine,) + plan.machines[index + 1:])


def _set_port(plan: Plan, index: int | None, rest: list[tuple[str, int | None]], value: str) -> Plan:
    """`ports.PORT.mac|driver|path=VALUE`: bind the port the plan calls PORT to that hardware
    (replacing its earlier binding: a port has one); an empty VALUE removes the binding."""
    kinds = planmod.PORT_BINDINGS
    if index is not None or len(rest) != 2 or any(i is not None for _, i in rest):
        raise _BadKey("give ports.PORT.mac, ports.PORT.driver or ports.PORT.path, e.g. ports.eno1.mac")
    (name, _), (kind, _) = rest
    if kind not in kinds:
        raise _unknown(f"ports.{name}.{kind}", [f"ports.{name}.{k}" for k in kinds])
    ports = [p for p in plan.ports if p.name != name]
    current = plan.port(name)
    if value.strip() == "":
        if current is not None and getattr(current, kind) is None:
            ports.append(current)  # clearing a binding the port does not have changes nothing
    else:
        ports.append(planmod.Port(name=name, **{kind: value.strip()}))
    order = [p.name for p in plan.ports]
    ports.sort(key=lambda p: order.index(p.name) if p.name in order else len(order))
    return dataclasses.replace(plan, ports=tuple(ports))


def _set_profile_param(plan: Plan, index: int | None, rest: list[tuple[str, int | None]],
                       value: str) -> Plan:
    if index is not None or len(rest) != 2 or any(i is not None for _, i in rest):
        raise _BadKey("give profile_params.PROFILE.PARAMETER, e.g. profile_params.siemens-industrial-edge.iem_host")
    (pid, _), (name, _) = rest
    params = {k: dict(v) for k, v in plan.profile_params.items()}
    inner = params.setdefault(pid, {})
    if value == "":
        inner.pop(name, None)
        if not inner:
            params.pop(pid)
    else:
        inner[name] = value
    return dataclasses.replace(plan, profile_params=params)
