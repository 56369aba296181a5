"""Vendor requirement profiles and the machine-protocol table, loaded from `assets/`.

A profile (assets/profiles/<id>.yaml) says what one vendor cloud needs from the site's
network: the endpoints to reach, which live checks apply to each, the vendor's default DNS
and NTP servers, and remediation texts keyed by diagnosis code. The machine-protocol table
(assets/machine-protocols.yaml) lists controller types with their port and upload bandwidth.

Both are data cited to the vendor documents (every entry has a `seed:`), validated strictly
on load: anything malformed raises `ProfileError` naming the file and the key path, never a
traceback from deep inside. No Textual or Rich here.

The types are defined in `installer.vendors.profilemodel` and imported from here; the reading itself is
`installer.vendors.profileread`.
"""

from __future__ import annotations

import functools
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType

from installer.vendors.profilemodel import (
    CHECKS,
    DIAGNOSIS_CODES,
    PARAM_KINDS,
    PROBES,
    PROTOCOLS,
    SERVICES,
    TLS_TRUST,
    Catalog,
    Controller,
    DownloadFigures,
    Endpoint,
    ParamSpec,
    Profile,
    ProfileError,
    normalize_fingerprint,
    param_error,
)

__all__ = [
    "CHECKS",
    "DIAGNOSIS_CODES",
    "PARAM_KINDS",
    "PROBES",
    "PROTOCOLS",
    "SERVICES",
    "TLS_TRUST",
    "Catalog",
    "Controller",
    "DownloadFigures",
    "Endpoint",
    "ParamSpec",
    "Profile",
    "ProfileError",
    "load_catalog",
    "load_profile",
    "normalize_fingerprint",
    "param_error",
]


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
    from installer.vendors.profileread import build_profile, read_yaml

    return build_profile(read_yaml(path), path.name, _stem(path.name))


@functools.lru_cache(maxsize=1)
def _default_catalog() -> Catalog:
    return _load_catalog(resources.files("assets"))


def _load_catalog(root: Path | Traversable) -> Catalog:
    from installer.vendors.profileread import build_machine_table, build_profile, read_yaml

    profiles_dir = root / "profiles"
    if not profiles_dir.is_dir():
        raise ProfileError(str(profiles_dir), "", "no such directory of profiles")
    profiles: dict[str, Profile] = {}
    for entry in sorted(profiles_dir.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        profile = build_profile(read_yaml(entry), entry.name, _stem(entry.name))
        if profile.id in profiles:
            raise ProfileError(entry.name, "id", f"duplicate profile id {profile.id!r}")
        profiles[profile.id] = profile
    if not profiles:
        raise ProfileError(str(profiles_dir), "", "no profile (*.yaml) found")
    table = root / "machine-protocols.yaml"
    controllers, download = build_machine_table(read_yaml(table), table.name)
    return Catalog(MappingProxyType(profiles), MappingProxyType(controllers), download)


def _stem(name: str) -> str:
    return name[: -len(".yaml")] if name.endswith(".yaml") else name
