"""The plan: the one description of a box's network that everything else reads.

Format version 1 is public (SPEC, "The plan file"): technicians and IT teams edit it by
hand and bundles carry it, so the key names here are the format and never change within
a version. The plan's types and vocabularies live in `installer.planning.model` and are
re-exported here; this module loads and dumps plan files. Whether the values make sense
together is `installer.planning.validate`'s job.

Loading never raises anything but `PlanError`, whose lines each name a key (``uplink.gateway``,
``machines[2].address``) or the file and say what would be valid.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from installer.planning.model import (
    DNS_MODES,
    EAP_METHODS,
    FORMAT_VERSION,
    GOOGLE_DNS,
    IPV4_MODES,
    NTP_MODES,
    POOL_NTP,
    PORT_BINDINGS,
    REDACTED,
    RENDERERS,
    SECRET_FIELDS,
    SECTION_KEYS,
    TOPOLOGIES,
    WIFI_ENTERPRISE,
    WIFI_SECURITY,
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
from installer.planning.yamlfile import YamlProblem, dump, load_strict, read_regular

__all__ = [
    "DNS_MODES",
    "EAP_METHODS",
    "FORMAT_VERSION",
    "GOOGLE_DNS",
    "IPV4_MODES",
    "MAX_PLAN_BYTES",
    "NTP_MODES",
    "POOL_NTP",
    "PORT_BINDINGS",
    "REDACTED",
    "RENDERERS",
    "SECRET_FIELDS",
    "SECTION_KEYS",
    "TOPOLOGIES",
    "WIFI_ENTERPRISE",
    "WIFI_SECURITY",
    "Cellular",
    "Dns",
    "FieldError",
    "Machine",
    "MachineNetwork",
    "Ntp",
    "Plan",
    "PlanError",
    "Port",
    "Proxy",
    "Tls",
    "Uplink",
    "Wifi",
    "dumps",
    "from_dict",
    "load",
    "loads",
]

MAX_PLAN_BYTES = 1_000_000  # a plan is a few KB; anything this large is not a plan


def from_dict(data: Any, source: str = "plan") -> Plan:
    """Build a Plan from parsed YAML data; raise PlanError listing every structural problem
    and, in the same pass, what validation finds in the parts that could be read."""
    from installer.planning.planread import from_data
    from installer.planning.validate import validate

    return from_data(data, source, judge=validate)


def loads(text: str | bytes, source: str = "plan") -> Plan:
    """Parse plan text (YAML, safe loading only) into a Plan, or raise PlanError."""
    if isinstance(text, bytes):
        if len(text) > MAX_PLAN_BYTES:
            raise PlanError(source, [FieldError("", f"is {len(text)} bytes; a plan is at most {MAX_PLAN_BYTES}")])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise PlanError(source, [FieldError("", f"is not UTF-8 text (byte {e.start}); a plan is a YAML text "
                                                    "file")]) from None
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
        # A FIFO, a device or a link to /dev/zero is refused, never waited on or read forever.
        data = read_regular(p, MAX_PLAN_BYTES)
    except OSError as e:
        if e.errno == errno.EISDIR:
            raise PlanError(str(p), [FieldError("", "is a directory; give the path of a plan file (YAML)")]) from None
        if e.errno == errno.ENOENT:
            raise PlanError(str(p), [FieldError("", "does not exist")]) from None
        if e.errno == errno.EFBIG:
            raise PlanError(str(p), [FieldError("", f"is larger than {MAX_PLAN_BYTES} bytes, the most a plan may "
                                                    "be")]) from None
        raise PlanError(str(p), [FieldError("", f"cannot be read: {e.strerror}")]) from None
    return loads(data, str(p))


def dumps(plan: Plan) -> str:
    """The plan as YAML text; `loads(dumps(p)) == p` and the text is stable for the same plan."""
    return dump(plan.to_dict())
