"""The OpenVPN check (`openvpn-handshake`): does CloudLink's tunnel protocol get through?

CloudLink "uses OpenVPN to establish an outbound secure tunnel over TCP port 443 to
cloudlink.balena-cloud.com", and a firewall that blocks or inspects VPN traffic is "the most
common cause of Edge connectivity failures" (seed 000, CloudLink Blocked). Such a firewall
lets HTTPS to the same host through, so the TLS and HTTPS checks pass while the Edge stays
offline. This check speaks the tunnel's first words: the client's hard-reset packet
(P_CONTROL_HARD_RESET_CLIENT_V2 in OpenVPN's TCP framing), and reads the answer:

- P_CONTROL_HARD_RESET_SERVER_V2 acknowledging our session: an OpenVPN server answered (pass);
- a reset or close: something cut the tunnel's first packet (`openvpn-reset`, fail);
- an answer that is not OpenVPN (a TLS record, HTTP): an appliance or proxy answered in the
  server's place (`openvpn-not-openvpn`, fail);
- silence (`openvpn-silent`, warn): a firewall dropping OpenVPN, or a server that uses
  tls-auth/tls-crypt and ignores packets without its key. The check cannot tell those apart,
  so it warns instead of failing.

The check runs `after` the host's tls-verify, so a reset can be told as what it is: HTTPS to
the same host works, OpenVPN does not.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Mapping
from typing import NotRequired, TypedDict

from installer.checks.base import Context, Outcome, Result
from installer.checks.net import Dest, NetError, open_dest
from installer.checks.tls import Budget, dispose, failure_outcome, server_name, where
from installer.vendors.profiles import Endpoint, Profile

P_CONTROL_HARD_RESET_CLIENT_V2 = 7
P_CONTROL_HARD_RESET_SERVER_V2 = 8
# OpenVPN's opcodes (ssl_pkt.h), for an answer that is OpenVPN but not the expected reset.
_OPCODES = {1: "P_CONTROL_HARD_RESET_CLIENT_V1", 2: "P_CONTROL_HARD_RESET_SERVER_V1", 3: "P_CONTROL_SOFT_RESET_V1",
            4: "P_CONTROL_V1", 5: "P_ACK_V1", 6: "P_DATA_V1", 7: "P_CONTROL_HARD_RESET_CLIENT_V2",
            8: "P_CONTROL_HARD_RESET_SERVER_V2", 9: "P_DATA_V2", 10: "P_CONTROL_HARD_RESET_CLIENT_V3",
            11: "P_CONTROL_WKC_V1"}
_MAX_PACKET = 1600  # OpenVPN's control packets are well below a TCP MSS


class OpenvpnFacts(TypedDict):
    """What `openvpn-handshake` saw: where it went, whether HTTPS to the host worked, and the
    server's session id when it answered."""

    host: str
    port: int
    via_proxy: bool
    https_ok: bool
    server_session: NotRequired[str]


def hard_reset_client(session_id: bytes) -> bytes:
    """The client's first packet over TCP: 2-byte length, opcode 7 << 3 | key_id 0, the 8-byte
    session id, an empty ACK array and message packet-id 0 (no tls-auth HMAC, no payload)."""
    body = bytes([P_CONTROL_HARD_RESET_CLIENT_V2 << 3]) + session_id + b"\x00" + struct.pack("!I", 0)
    return struct.pack("!H", len(body)) + body


def parse_server_reset(packet: bytes, session_id: bytes) -> tuple[bool, bytes] | None:
    """For one TCP-framed packet body: (acknowledges our session, server session id) when it is
    P_CONTROL_HARD_RESET_SERVER_V2, else None."""
    if len(packet) < 1 + 8 + 1 or packet[0] >> 3 != P_CONTROL_HARD_RESET_SERVER_V2:
        return None
    server_session = packet[1:9]
    acks = packet[9]
    ours = False
    if acks and len(packet) >= 10 + 4 * acks + 8:
        ours = packet[10 + 4 * acks:18 + 4 * acks] == session_id
    return ours, server_session


def looks_like(data: bytes) -> str:
    """What a non-OpenVPN answer is, in ASCII-safe words."""
    if data[:1] in (b"\x15", b"\x16") and data[1:2] == b"\x03":
        return "a TLS record (a TLS server or an inspecting appliance, not OpenVPN)"
    if data[:5] == b"HTTP/":
        line = data.split(b"\r\n", 1)[0][:80].decode("ascii", "backslashreplace")
        return f"an HTTP answer ({line!r}: a proxy, web filter or block page)"
    text = data[:40].decode("ascii", "backslashreplace").replace("\r", "\\r").replace("\n", "\\n")
    return f"{len(data)} bytes that are not OpenVPN ({text!r})"


async def openvpn_handshake(ctx: Context, prereqs: Mapping[str, Result], *, dest: Dest, endpoint: Endpoint,
                            profile: Profile, tls_key: str | None = None) -> Outcome:
    """`openvpn-handshake`: send the client's hard reset over TCP (direct or through the proxy's
    CONNECT tunnel) and judge the answer (see the module's doc string)."""
    budget = Budget(ctx.timeout)
    host = server_name(dest)
    try:
        stream = await open_dest(dest, prereqs, budget.next())
    except NetError as e:
        return failure_outcome(e, dest, endpoint, profile)
    label = f"{dest.label}{where(stream, dest)}"
    https_ok = tls_key is not None and tls_key in prereqs and prereqs[tls_key].status == "pass"
    facts: OpenvpnFacts = {"host": host, "port": dest.port, "via_proxy": stream.via_proxy, "https_ok": https_ok}
    session_id = os.urandom(8)
    try:
        stream.writer.write(hard_reset_client(session_id))
        head = await asyncio.wait_for(stream.reader.readexactly(2), budget.next() or 0.01)
        (length,) = struct.unpack("!H", head)
        if head[:1] in (b"\x15", b"\x16", b"H") or not 10 <= length <= _MAX_PACKET:
            more = b""
            try:
                more = await asyncio.wait_for(stream.reader.read(64), 0.2)
            except (TimeoutError, OSError):
                pass
            return _not_openvpn(label, head + more, facts, dest, endpoint, profile)
        body = await asyncio.wait_for(stream.reader.readexactly(length), budget.next() or 0.01)
    except TimeoutError:
        return _silent(label, ctx.timeout, facts, dest, endpoint, profile, https_ok)
    except asyncio.IncompleteReadError as e:
        if e.partial:
            return _not_openvpn(label, e.partial, facts, dest, endpoint, profile)
        return _reset(label, "closed (FIN)", facts, dest, endpoint, profile, https_ok)
    except OSError as e:
        return _reset(label, "reset (RST)" if getattr(e, "errno", None) else "closed", facts, dest, endpoint,
                      profile, https_ok)
    finally:
        dispose(stream)
    parsed = parse_server_reset(body, session_id)
    if parsed is None:
        if len(body) >= 9 and body[0] >> 3 in _OPCODES and body[0] & 7 == 0:  # key id 0 at the start
            # Another control packet (an ACK first, a server of another version): OpenVPN all the same.
            return Outcome("pass", "ok", f"{label}: an OpenVPN server answered the client's hard reset "
                                         f"({_OPCODES[body[0] >> 3]}): the tunnel's protocol gets through", facts)
        return _not_openvpn(label, head + body, facts, dest, endpoint, profile)
    ours, server_session = parsed
    facts["server_session"] = server_session.hex()
    acked = "acknowledging this session" if ours else "(not acknowledging this session yet)"
    return Outcome("pass", "ok", f"{label}: an OpenVPN server answered the client's hard reset with "
                                 f"P_CONTROL_HARD_RESET_SERVER_V2 {acked}: the tunnel's protocol gets through",
                   facts)


def _advice(dest: Dest, endpoint: Endpoint, profile: Profile) -> str:
    """The seed's CloudLink resolution for this host (the endpoint's own text when it has one)."""
    own = endpoint.remediation.get("tcp-refused") or profile.remediation_for("tls-intercepted", endpoint)
    return own


def _reset(label: str, how: str, facts: OpenvpnFacts, dest: Dest, endpoint: Endpoint, profile: Profile,
           https_ok: bool) -> Outcome:
    host = server_name(dest)
    beside = (f", while HTTPS to the same host works (tls-verify of {host} passed)" if https_ok else "")
    evidence = (f"{label}: the connection opened, then was {how} as soon as the box sent OpenVPN's first packet "
                f"(the client's hard reset){beside}: a firewall recognises OpenVPN and cuts it (a VPN-blocking "
                "rule or deep packet inspection)")
    remediation = (f"A firewall blocks the OpenVPN tunnel to {host}:{dest.port} by recognising the protocol"
                   f"{' while letting HTTPS to it through' if https_ok else ''}. Exempt {host} from VPN-blocking "
                   f"rules and from DPI on every firewall between the box and the internet (both the OT/plant-floor "
                   f"and the corporate firewall). {_advice(dest, endpoint, profile)}")
    return Outcome("fail", "openvpn-reset", evidence, facts, remediation=remediation.strip())


def _silent(label: str, timeout: float, facts: OpenvpnFacts, dest: Dest, endpoint: Endpoint,
            profile: Profile, https_ok: bool) -> Outcome:
    host = server_name(dest)
    beside = (" HTTPS to the same host works (tls-verify passed), so the port is open;" if https_ok else "")
    evidence = (f"{label}: the connection opened but the box's OpenVPN hard reset got no answer within "
                f"{timeout:g} s.{beside} a firewall that silently drops OpenVPN does this, and so does a server "
                "that requires a tls-auth key the check does not have")
    remediation = (f"If the Edge also shows no CloudLink heartbeat, a firewall is dropping the OpenVPN tunnel to "
                   f"{host}:{dest.port}: exempt {host} from VPN-blocking rules and DPI on every firewall between the "
                   f"box and the internet (both OT and corporate). {_advice(dest, endpoint, profile)}")
    return Outcome("warn", "openvpn-silent", evidence, facts, remediation=remediation.strip())


def _not_openvpn(label: str, data: bytes, facts: OpenvpnFacts, dest: Dest, endpoint: Endpoint,
                 profile: Profile) -> Outcome:
    host = server_name(dest)
    through = " (the proxy's tunnel reached something else)" if dest.proxy is not None else ""
    evidence = (f"{label}: the answer to OpenVPN's hard reset was {looks_like(data)}{through}: a proxy or "
                "security appliance answered instead of the CloudLink server")
    remediation = (f"Something other than CloudLink's OpenVPN server answers on {host}:{dest.port}: let the box "
                   f"reach {host} port {dest.port} directly and untouched (no DPI, no VPN-blocking rule, no "
                   f"redirection). {_advice(dest, endpoint, profile)}")
    return Outcome("fail", "openvpn-not-openvpn", evidence, facts, remediation=remediation.strip())
