"""YAML text the fast way, byte for byte as PyYAML's own emitter writes it.

libyaml's emitter (PyYAML's C binding) writes what PyYAML's pure-Python one writes, ten times
faster. They are two implementations of one algorithm, and they differ at the edges: astral
characters, text ending in more than one line break (libyaml then adds a "..." line), where
long lines fold. So libyaml writes only "tame" data: printable ASCII and line feeds, at most
one line break at the end, no line longer than TAME_LINE (no folding at width 1000 whatever the
indentation), booleans, integers, None. Anything else goes through the pure-Python emitter.
tests/test_fleet.py and tests/test_render_yaml.py compare the two on every quoting hazard and
on generated plans.

`Resolved` remembers implicit-tag resolution: PyYAML asks it twice per scalar, by regular
expressions, and a fleet's files repeat the same keys and values box after box.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import yaml

WITH_LIBYAML: bool = bool(getattr(yaml, "__with_libyaml__", False))


class Resolved(yaml.resolver.BaseResolver):
    """A dumper mixin whose implicit-tag resolution is remembered. Without path resolvers (a
    SafeDumper has none) the answer depends on the value only.

    Put before a dumper class: BaseResolver, its base, comes after the dumper's own Resolver
    in the method order, so super().resolve is the dumper's."""

    # One cache for every dumper (a class attribute on purpose): (value, implicit) -> tag.
    _resolved: ClassVar[dict[tuple[Any, Any], Any]] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not yaml.ScalarNode or self.yaml_path_resolvers:
            return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]  # untyped in PyYAML's stubs
        key = (value, implicit)
        tag = self._resolved.get(key)
        if tag is None:
            if len(self._resolved) > 50_000:  # bounded: one fleet's distinct scalars are far fewer
                self._resolved.clear()
            tag = self._resolved[key] = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]  # as above
        return tag


Representer = Callable[[Any, Any], Any]


def dumpers(representers: Mapping[type, Representer] | None = None) -> tuple[type[Any], type[Any] | None]:
    """A pair of safe dumpers for dump(): PyYAML's emitter, and libyaml's (None where PyYAML
    was built without it), both remembering their resolution and both given `representers`
    (type -> function), so that they write the same YAML."""

    class Dumper(Resolved, yaml.SafeDumper):
        """yaml.safe_dump's dumper (PyYAML's emitter), its resolution remembered."""

    pair: list[type[Any]] = [Dumper]
    if WITH_LIBYAML:

        class CDumper(Resolved, yaml.CSafeDumper):
            """The same with libyaml's emitter, for tame data."""

        pair.append(CDumper)
    for kind, represent in (representers or {}).items():
        for dumper in pair:
            dumper.add_representer(kind, represent)
    return pair[0], (pair[1] if len(pair) > 1 else None)


TAME_LINE = 400
_TAME_TEXT = re.compile(rf"(?:[\x20-\x7e]{{0,{TAME_LINE}}}\n)*[\x20-\x7e]{{0,{TAME_LINE}}}")


def tame(data: Any) -> bool:
    """True when both emitters write `data` alike (see the module docstring)."""
    if isinstance(data, str):
        # Kept trailing line breaks (a block's "+" hint): libyaml then ends the document with "...".
        return _TAME_TEXT.fullmatch(data) is not None and not (data.endswith("\n\n") or data == "\n")
    if isinstance(data, dict):
        return all(tame(k) and tame(v) for k, v in data.items())
    if isinstance(data, list):
        return all(tame(v) for v in data)
    return data is None or isinstance(data, (bool, int))


def dump(data: Any, slow: type[Any], fast: type[Any] | None) -> str:
    """`data` as block-style YAML in insertion order (width 1000, Unicode as it is): through
    the libyaml dumper `fast` when the data is tame and there is one, else through `slow`.
    The two must share their representers and resolver."""
    dumper = fast if fast is not None and tame(data) else slow
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)
