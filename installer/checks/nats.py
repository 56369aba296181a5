"""The NATS check (`nats-info`): does the port speak NATS, and does a session get through?

A NATS server (seed 000: port 7422, tool monitoring and Edge health) sends one line as soon
as a client connects: `INFO {json}`. An open port that says anything else, or nothing, has
a proxy, appliance or port redirect in the way: that is a warning, not a pass (SPEC).

The INFO line alone proves little: an inspecting firewall (IPS, application control) can let
the connection and the server's greeting through and cut the session as soon as the client
speaks. So the check then does what a client does: upgrades to TLS when the server requires
it (verifying the certificate against the box's trust store, the host name too when the
endpoint has one; the seed gives the standard cloud's NATS by address only), sends
`CONNECT {...}` and `PING`, and expects `PONG`. An authorization error also proves that the
server processed the session (the Edge has its own credentials; the check has none). A reset,
close or silence after CONNECT is `nats-session-cut`.

The INFO's `client_ip` (the address the server saw) is kept in the facts beside the socket's
local address, for the NAT check.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from typing import Any

from installer.checks.base import Context, Outcome, Result
from installer.checks.net import Dest, NetError, Stream, open_dest
from installer.checks.tls import (
    Budget,
    dispose,
    failure_outcome,
    handshake,
    inspecting_context,
    judge,
    read_leaf,
    server_name,
    where,
)
from installer.planning.fields import is_ip
from installer.vendors.profiles import Endpoint, Profile

# An INFO line is a few hundred bytes; a server that sends more than the stream reader's
# buffer (asyncio's default limit) without a line end is not NATS.
_MAX_LINE = 2 ** 16
# What the check says about itself in CONNECT (a server logs it).
_CONNECT = {"verbose": False, "pedantic": False, "name": "edge-installer-check", "lang": "python",
            "version": "1", "protocol": 1, "echo": False}
# -ERR texts that mean "the server refused this client's credentials": the session got through.
_AUTH_WORDS = ("authorization", "authentication", "permissions", "user authentication")


def describe_bytes(data: bytes) -> str:
    """What a non-NATS first answer looks like, in ASCII-safe words."""
    if data[:1] == b"\x16" and data[1:2] == b"\x03":
        return "a TLS handshake record (a TLS server, not NATS)"
    if data[:1] == b"\x15" and data[1:2] == b"\x03":
        return "a TLS alert (a TLS server, not NATS)"
    text = data[:60].decode("ascii", "backslashreplace").replace("\r", "\\r").replace("\n", "\\n")
    return repr(text) + (" ..." if len(data) > 60 else "")


def parse_info(line: bytes) -> dict[str, Any] | None:
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


def nats_targets(profile: Profile, port: int) -> str:
    """The profile's NATS destinations on `port`, for the remediation: host names and addresses."""
    names: list[str] = []
    for e in profile.endpoints:
        if e.service == "nats" and e.port == port and e.protocol == "tcp":
            for n in ((e.host,) if e.host else ()) + tuple(e.addresses):
                if n not in names:
                    names.append(n)
    return ", ".join(names)


async def nats_info(ctx: Context, prereqs: Mapping[str, Result], *, dest: Dest, endpoint: Endpoint,
                    profile: Profile) -> Outcome:
    """`nats-info`: connect (through the proxy when the plan has one), read `INFO`, upgrade to
    TLS when the server requires it, send CONNECT and PING, and expect PONG."""
    budget = Budget(ctx.timeout)
    opened = await _open(ctx, prereqs, dest, endpoint, profile, budget)
    if isinstance(opened, Outcome):
        return opened
    stream, info, label = opened
    try:
        facts = _facts(info, stream, dest)
        facts["vendor_port"] = endpoint.port
        head = _describe(info, label)
        if info.get("tls_required"):
            try:
                sslobj = await handshake(stream, server_name(dest), _client_tls(ctx, dest), budget.next())
            except ssl.SSLCertVerificationError as e:
                dispose(stream)
                return await _judge_tls(ctx, prereqs, dest, endpoint, profile, budget, e, label)
            except NetError as e:
                out = failure_outcome(e, dest, endpoint, profile)
                return Outcome(out.status, out.diagnosis, f"{label}: INFO arrived (server {_name(info)}, TLS "
                                                          f"required), then {e.evidence}", facts, out.remediation)
            facts["tls_version"] = sslobj.version()
            head += f", {sslobj.version()} verified"
        return await _session(ctx, stream, info, facts, head, label, dest, profile, budget)
    finally:
        dispose(stream)


async def _open(ctx: Context, prereqs: Mapping[str, Result], dest: Dest, endpoint: Endpoint, profile: Profile,
                budget: Budget) -> tuple[Stream, Mapping[str, Any], str] | Outcome:
    """Connect and read the INFO line: (stream, info, label), or the Outcome that ends the check."""
    try:
        stream = await open_dest(dest, prereqs, budget.next())
    except NetError as e:
        return failure_outcome(e, dest, endpoint, profile)
    label = f"{dest.label}{where(stream, dest)}"
    try:
        line = await asyncio.wait_for(stream.reader.readuntil(b"\n"), budget.next() or 0.01)
    except TimeoutError:
        dispose(stream)
        return _not_nats(label, f"the port is open but said nothing within {ctx.timeout:g} s "
                                "(a NATS server sends INFO at once)")
    except asyncio.IncompleteReadError as e:
        dispose(stream)
        if not e.partial:
            return _not_nats(label, "the port is open but closed the connection without a word")
        return _not_nats(label, f"the first answer was {describe_bytes(e.partial)}, then the connection closed")
    except asyncio.LimitOverrunError:
        dispose(stream)
        return _not_nats(label, f"the answer ran past {_MAX_LINE} bytes without a line end")
    except OSError:
        dispose(stream)
        return _not_nats(label, "the port is open but reset the connection before saying anything")
    info = parse_info(line)
    if info is None:
        dispose(stream)
        return _not_nats(label, f"the first answer was {describe_bytes(line)}, not a NATS INFO line")
    return stream, info, label


def _client_tls(ctx: Context, dest: Dest) -> ssl.SSLContext:
    """The context a NATS client verifies with: the box's trust store (and the plan's extra CA);
    the host name is checked when the endpoint has one, not for an address-only endpoint."""
    if dest.host and not is_ip(dest.host):
        return ctx.trust()
    context = ssl.create_default_context()
    if ctx.extra_ca_file:
        context.load_verify_locations(cafile=ctx.extra_ca_file)
    context.check_hostname = False
    return context


async def _judge_tls(ctx: Context, prereqs: Mapping[str, Result], dest: Dest, endpoint: Endpoint, profile: Profile,
                     budget: Budget, error: ssl.SSLCertVerificationError, label: str) -> Outcome:
    """The server's certificate failed verification: fetch it on a second session (without
    verifying) and judge it like tls-verify does (interception, expiry, wrong name)."""
    leaf, version = None, None
    opened = await _open(ctx, prereqs, dest, endpoint, profile, budget)
    if not isinstance(opened, Outcome):
        stream = opened[0]
        try:
            sslobj = await handshake(stream, server_name(dest), inspecting_context(), budget.next())
            der = sslobj.getpeercert(binary_form=True)
            leaf, version = (read_leaf(der) if der else None), sslobj.version()
        except (NetError, ValueError, ssl.SSLError):
            pass
        finally:
            dispose(stream)
    out = judge(leaf, error, dest=dest, endpoint=endpoint, profile=profile, ctx=ctx, tls_version=version)
    return Outcome(out.status, out.diagnosis, out.evidence.replace(dest.label, f"{label}: NATS over TLS", 1),
                   out.facts, out.remediation)


async def _session(ctx: Context, stream: Stream, info: Mapping[str, Any], facts: dict[str, Any], head: str,
                   label: str, dest: Dest, profile: Profile, budget: Budget) -> Outcome:
    """CONNECT and PING, then read until PONG (pass), an -ERR, or the end of the session."""
    hello = dict(_CONNECT, tls_required=bool(info.get("tls_required")))
    try:
        stream.writer.write(b"CONNECT " + json.dumps(hello, separators=(",", ":")).encode() + b"\r\nPING\r\n")
        await asyncio.wait_for(stream.writer.drain(), budget.next() or 0.01)
        while True:
            line = await asyncio.wait_for(stream.reader.readuntil(b"\n"), budget.next() or 0.01)
            op = line.decode("utf-8", "replace").strip()
            word = op.split(" ", 1)[0].upper()
            if word == "PONG":
                facts["session"] = "completed"
                return Outcome("pass", "ok", f"{label}: {head}; the session completed (CONNECT, PING, PONG)", facts)
            if word == "PING":  # the server's keep-alive: answer it as a client must
                stream.writer.write(b"PONG\r\n")
            elif word == "-ERR":
                said = op[4:].strip()[:120]
                if any(w in said.lower() for w in _AUTH_WORDS):
                    facts["session"] = "auth-error"
                    return Outcome("pass", "ok", f"{label}: {head}; the server processed the session and refused "
                                                 f"the check's anonymous CONNECT ({said}): the Edge connects with "
                                                 "its own credentials", facts)
                facts["session"] = "error"
                return Outcome("warn", "nats-error", f"{label}: {head}; the server answered CONNECT with -ERR {said}",
                               facts, remediation=f"The NATS server refused the session: {said}. If it names a "
                                                  "limit or a protocol error, a device in the path may be altering "
                                                  "the traffic: exempt NATS services from DPI.")
            elif word not in ("INFO", "+OK"):
                facts["session"] = "cut"
                return _cut(info, facts, label, dest, profile,
                            f"something else answered after CONNECT: {describe_bytes(line)}")
    except TimeoutError:
        facts["session"] = "silent"  # silence, unlike a reset, is also what a lossy link does
        return _cut(info, facts, label, dest, profile,
                    f"no answer to CONNECT and PING within {ctx.timeout:g} s (the session went silent)")
    except asyncio.IncompleteReadError as e:
        facts["session"] = "cut"
        what = f" after {describe_bytes(e.partial)}" if e.partial else ""
        return _cut(info, facts, label, dest, profile, f"the connection was closed after CONNECT{what}")
    except asyncio.LimitOverrunError:
        facts["session"] = "cut"
        return _cut(info, facts, label, dest, profile, f"the answer ran past {_MAX_LINE} bytes without a line end")
    except (OSError, ssl.SSLError) as e:
        facts["session"] = "cut"
        how = "reset (RST)" if getattr(e, "errno", None) else "closed"
        return _cut(info, facts, label, dest, profile, f"the connection was {how} after CONNECT")


def _cut(info: Mapping[str, Any], facts: dict[str, Any], label: str, dest: Dest, profile: Profile,
         what: str) -> Outcome:
    """`nats-session-cut`: the greeting got through, the session did not."""
    port = facts.get("vendor_port") or dest.port
    targets = nats_targets(profile, port) or dest.label
    through = (" (the proxy, or a firewall behind it, may be the one cutting it)" if dest.proxy is not None
               else "")
    remediation = (f"A firewall or IPS inspecting port {port} lets the connection open and the NATS server's "
                   f"greeting through, then cuts the session once the box speaks{through}. Ask IT to exempt the "
                   f"NATS destinations ({targets}, TCP {port}) from inspection (DPI, IPS, application "
                   f"control) on every firewall between the box and the internet, and to allow outbound TCP "
                   f"{port} to them untouched.")
    return Outcome("fail", "nats-session-cut", f"{label}: INFO arrived (server {_name(info)}), then {what}",
                   facts, remediation=remediation)


def _name(info: Mapping[str, Any]) -> str:
    return str(info.get("server_name") or info.get("server_id") or "?")[:80]


def _describe(info: Mapping[str, Any], label: str) -> str:
    parts = [f"NATS server {_name(info)}"]
    if info.get("server_name") and info.get("server_id") and info["server_name"] != info["server_id"]:
        parts.append(f"id {info['server_id']}")
    parts.append(f"version {info.get('version', '?')}")
    parts.append("TLS required" if info.get("tls_required") else "TLS not required")
    if info.get("auth_required"):
        parts.append("authentication required")
    return ", ".join(str(p) for p in parts)


def _facts(info: Mapping[str, Any], stream: Stream, dest: Dest) -> dict[str, Any]:
    facts = {k: info.get(k) for k in ("server_id", "server_name", "version", "tls_required", "auth_required")}
    facts.update(host=dest.host or (dest.addresses[0] if dest.addresses else None), port=dest.port,
                 via_proxy=stream.via_proxy)
    seen = info.get("client_ip")
    if isinstance(seen, str) and is_ip(seen):
        facts["public_ip"] = seen  # the address the server saw this connection come from
    if not stream.via_proxy:
        sock = stream.writer.get_extra_info("sockname")
        if sock:
            facts["local_ip"] = sock[0]
    return facts


def _not_nats(label: str, what: str) -> Outcome:
    return Outcome("warn", "nats-not-nats", f"{label}: {what}")
