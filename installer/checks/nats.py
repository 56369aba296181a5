"""The NATS check (`nats-info`): does the port speak NATS?

A NATS server (seed 000: port 7422, tool monitoring and Edge health) sends one line as soon
as a client connects: `INFO {json}`. An open port that says anything else, or nothing, has
a proxy, appliance or port redirect in the way: that is a warning, not a pass (SPEC).
"""

from __future__ import annotations

import asyncio
import json

from installer.checks.base import Context, Outcome
from installer.checks.net import Dest, NetError, open_dest
from installer.checks.tls import Budget, dispose, failure_outcome, where
from installer.profiles import Endpoint, Profile

# An INFO line is a few hundred bytes; a server that sends more than the stream reader's
# buffer (asyncio's default limit) without a line end is not NATS.
_MAX_LINE = 2 ** 16


def describe_bytes(data: bytes) -> str:
    """What a non-NATS first answer looks like, in ASCII-safe words."""
    if data[:1] == b"\x16" and data[1:2] == b"\x03":
        return "a TLS handshake record (a TLS server, not NATS)"
    if data[:1] == b"\x15" and data[1:2] == b"\x03":
        return "a TLS alert (a TLS server, not NATS)"
    text = data[:60].decode("ascii", "backslashreplace").replace("\r", "\\r").replace("\n", "\\n")
    return repr(text) + (" ..." if len(data) > 60 else "")


def parse_info(line: bytes) -> dict | None:
    """The JSON object of an `INFO {...}` line, or None when the line is not one."""
    text = line.decode("utf-8", "replace").strip()
    op, _, rest = text.partition(" ")
    if op.upper() != "INFO":  # NATS protocol operations are case-insensitive
        return None
    try:
        info = json.loads(rest)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


async def nats_info(ctx: Context, prereqs, *, dest: Dest, endpoint: Endpoint, profile: Profile) -> Outcome:
    """`nats-info`: connect (through the proxy when the plan has one) and read the first line;
    `INFO {json}` passes, anything else is a `nats-not-nats` warning."""
    budget = Budget(ctx.timeout)
    try:
        stream = await open_dest(dest, prereqs, budget.next())
    except NetError as e:
        return failure_outcome(e, dest, endpoint, profile)
    via = where(stream, dest)
    label = f"{dest.label}{via}"
    try:
        line = await asyncio.wait_for(stream.reader.readuntil(b"\n"), budget.next() or 0.01)
    except (asyncio.TimeoutError, TimeoutError):
        return _not_nats(label, f"the port is open but said nothing within {ctx.timeout:g} s "
                                "(a NATS server sends INFO at once)")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return _not_nats(label, "the port is open but closed the connection without a word")
        return _not_nats(label, f"the first answer was {describe_bytes(e.partial)}, then the connection closed")
    except asyncio.LimitOverrunError:
        return _not_nats(label, f"the answer ran past {_MAX_LINE} bytes without a line end")
    except ConnectionError:
        return _not_nats(label, "the port is open but reset the connection before saying anything")
    finally:
        dispose(stream)
    info = parse_info(line)
    if info is None:
        return _not_nats(label, f"the first answer was {describe_bytes(line)}, not a NATS INFO line")
    name = info.get("server_name") or info.get("server_id") or "?"
    parts = [f"NATS server {name}"]
    if info.get("server_name") and info.get("server_id") and info["server_name"] != info["server_id"]:
        parts.append(f"id {info['server_id']}")
    parts.append(f"version {info.get('version', '?')}")
    parts.append("TLS required" if info.get("tls_required") else "TLS not required")
    if info.get("auth_required"):
        parts.append("authentication required")
    facts = {k: info.get(k) for k in ("server_id", "server_name", "version", "tls_required", "auth_required")}
    return Outcome("pass", "ok", f"{label}: " + ", ".join(parts), facts)


def _not_nats(label: str, what: str) -> Outcome:
    return Outcome("warn", "nats-not-nats", f"{label}: {what}")
