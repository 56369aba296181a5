"""Machines: can the Edge reach each listed machine's protocol port on the machine network,
and does an MTConnect agent answer its /probe.

Always a direct connection from the box: the machine network never goes through the plan's
proxy (seed 000, "Option 2: Isolated Networks": the machines have no internet access, the Edge
bridges). Failures are explained with seed 000's "Machines Not Reporting Data" steps (local
connectivity, protocol ports, the machine's IP address, VLAN and switch) and its "Machine
Protocol Ports" rule (a firewall between the Edge and the machines must allow the port).
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from installer.checks.base import Context, Outcome, Result
from installer.checks.net import NetError, Stream, connect_direct, read_http_head, status_code
from installer.planning.plan import Machine
from installer.vendors.profiles import Controller

if TYPE_CHECKING:  # neighbours loads when a failed port calls for an ARP probe
    from installer.checks.neighbours import ProbeFacts

# An agent's probe document lists every data item of every device: tens to hundreds of KB for
# a real shop. Enough to see the root and a good many devices; the parser never sees more.
MAX_PROBE_BYTES = 1 << 20
_NOT_REPORTING = "MachineMetrics' Network Requirements, \"Machines Not Reporting Data\""
_PORTS = "MachineMetrics' Network Requirements, \"Machine Protocol Ports\""


def _who(machine: Machine, controller: Controller) -> str:
    name = f"{machine.name} at " if machine.name else ""
    return f"{name}{machine.address} ({controller.label})"


async def _connect(ctx: Context, address: str, machine: Machine, controller: Controller) -> Stream | Outcome:
    """A stream to the machine's controller port at `address`, or the Outcome that says why not."""
    try:
        return await connect_direct([address], controller.port, ctx.timeout)
    except NetError as e:
        return _connect_failed(e, machine, controller)


async def machine_port(ctx: Context, prereqs: Mapping[str, Result], *, machine: Machine,
                       controller: Controller, presence: bool = False) -> Outcome:
    """TCP connect to the machine's protocol port (machine.address:controller.port), directly.

    Diagnoses: ok; tcp-refused (nothing listens, or a REJECT rule); tcp-timeout (no answer: a
    DROP rule, a machine that is off or on another VLAN); tcp-unreachable (no route, or no
    device answers at that address); tcp-reset / tcp-error (anything else net.py names);
    machine-no-address (the plan gives none). Failures carry their own remediation.

    With `presence` (the planner sets it), a failed connection is followed by an ARP probe for
    the machine's address from the machine port (installer.checks.neighbours.presence; 0.2 s,
    nothing when the port opens), and the failure says which of three it is: machine-absent
    (no ARP answer, no TCP answer), machine-port-filtered (it answers ARP, TCP times out: a
    firewall drops the port) or, keeping the SPEC's stable code, tcp-refused with evidence that
    says "present, port closed" (a TCP reset: it is there, nothing listens on the port or a
    firewall rejects it). A probe that could not go out (no carrier) is said in the evidence.
    """
    who = _who(machine, controller)
    address = machine.address
    if not address:
        return _no_address(machine, controller)
    stream = await _connect(ctx, address, machine, controller)
    if isinstance(stream, Outcome):
        if not presence:
            return stream
        from installer.checks import neighbours

        found = await neighbours.presence(ctx, address)
        return _with_presence(stream, found, address, machine, controller) if found is not None else stream
    await stream.close()
    return Outcome("pass", "ok", f"{who}: port {controller.port}/tcp open, {stream.describe()}",
                   {"connect_s": stream.connect_s})


async def mtconnect_probe(ctx: Context, prereqs: Mapping[str, Result], *, machine: Machine,
                          controller: Controller) -> Outcome:
    """HTTP GET /probe on an MTConnect agent; pass when the answer is an MTConnectDevices document.

    The connection and the answer each wait at most ctx.timeout; at most 1 MiB of the answer
    is parsed. Evidence: the devices the agent describes (the agent's own Agent device is not
    counted). Diagnoses: ok; mtconnect-not-agent (warn: the port is open but what answers is not
    an agent's /probe); mtconnect-error (warn: the agent answered with an MTConnectError);
    mtconnect-no-devices (warn: an agent that describes no device); the connection failures of
    `machine_port` (fail).
    """
    who = _who(machine, controller)
    address = machine.address
    if not address:
        return _no_address(machine, controller)
    stream = await _connect(ctx, address, machine, controller)
    if isinstance(stream, Outcome):
        return stream
    try:
        answer = await _get_probe(stream, address, controller.port, ctx.timeout)
    finally:
        await stream.close()
    if answer.problem:
        return _not_agent(f"{who}: port {controller.port} is open, but {answer.problem}", machine, controller)
    doc = _parse_probe(answer.body, answer.complete)
    http = f"HTTP {answer.status}"
    if doc.root == "MTConnectDevices":
        schema = f", schema {doc.version}" if doc.version else ""
        facts = {"devices": doc.devices, "schema_version": doc.version}
        if not doc.devices:
            return Outcome("warn", "mtconnect-no-devices",
                           f"{who}: the MTConnect agent answered /probe ({http}{schema}) but describes no "
                           "device", facts, remediation=(
                               "The agent runs but describes no machine, so there is no data to collect: "
                               "add this machine to the agent's device configuration and restart the agent, "
                               f"then re-run the checks ({_NOT_REPORTING})."))
        more = " (first part of a larger document)" if not answer.complete else ""
        names = ", ".join(doc.devices[:10]) + (", ..." if len(doc.devices) > 10 else "")
        count = f"{len(doc.devices)} device{'s' if len(doc.devices) != 1 else ''}"
        return Outcome("pass", "ok", f"{who}: MTConnect agent ({http}{schema}) describes {count}{more}: "
                                     f"{names}", facts)
    if doc.root == "MTConnectError":
        errors = "; ".join(doc.errors) or "no error text"
        return Outcome("warn", "mtconnect-error", f"{who}: the MTConnect agent answered /probe with an "
                                                  f"MTConnectError ({http}): {errors}",
                       remediation=("The agent is there but refuses /probe: check the agent's configuration "
                                    "and log (its device file must load), restart it, then re-run the checks "
                                    f"({_NOT_REPORTING})."))
    what = f"an XML document <{doc.root}>" if doc.root else doc.problem
    return _not_agent(f"{who}: GET /probe answered {http} with {what}, not an MTConnectDevices document",
                      machine, controller)


# --------------------------------------------------------------------------- HTTP


@dataclass
class _Answer:
    status: int | None = None
    body: bytes = b""
    complete: bool = False
    problem: str | None = None  # not an HTTP answer at all, in words


async def _get_probe(stream: Stream, address: str, port: int, timeout: float) -> _Answer:
    """GET /probe and read the answer, all within `timeout`; whatever arrived by then counts."""
    host = f"[{address}]" if ":" in address else address
    request = (f"GET /probe HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/xml, text/xml\r\n"
               "User-Agent: edge-installer\r\nConnection: close\r\n\r\n")
    deadline = time.monotonic() + timeout
    try:
        stream.writer.write(request.encode("ascii"))
        await asyncio.wait_for(stream.writer.drain(), timeout)
        status_line, headers = await asyncio.wait_for(read_http_head(stream.reader), _left(deadline))
    except TimeoutError:
        return _Answer(problem=f"nothing answered GET /probe within {timeout:g} s (not an HTTP server)")
    except (ValueError, OSError) as e:
        return _Answer(problem=f"the answer to GET /probe is not HTTP ({e})")
    code = status_code(status_line)
    if code is None:
        shown = status_line[:60].encode("ascii", "backslashreplace").decode("ascii")
        return _Answer(problem=f"the answer to GET /probe is not HTTP (it starts {shown!r})")
    raw, ended = await _read_body(stream.reader, headers, deadline)
    if headers.get("transfer-encoding", "").lower().endswith("chunked"):
        body, chunks_ended = _dechunk(raw)
        return _Answer(code, body[:MAX_PROBE_BYTES], chunks_ended and len(body) <= MAX_PROBE_BYTES)
    length = headers.get("content-length", "")
    complete = ended and (not length.isdigit() or len(raw) >= int(length))
    return _Answer(code, raw[:MAX_PROBE_BYTES], complete and len(raw) <= MAX_PROBE_BYTES)


def _left(deadline: float) -> float:
    return max(0.01, deadline - time.monotonic())


async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str],
                     deadline: float) -> tuple[bytes, bool]:
    """Up to MAX_PROBE_BYTES (plus chunk framing) until EOF, Content-Length or the deadline.
    Returns the bytes and whether the body ended."""
    length = headers.get("content-length", "")
    want = int(length) if length.isdigit() else None
    limit = MAX_PROBE_BYTES + 65536
    data = bytearray()
    while len(data) < limit and (want is None or len(data) < want):
        try:
            chunk = await asyncio.wait_for(reader.read(65536), _left(deadline))
        except (TimeoutError, OSError):
            return bytes(data), False
        if not chunk:
            return bytes(data), True
        data += chunk
        if time.monotonic() >= deadline:
            break
    return bytes(data), want is not None and len(data) >= want


def _dechunk(raw: bytes) -> tuple[bytes, bool]:
    """Decode chunked transfer coding, as far as the bytes go. Returns (body, saw the last chunk)."""
    out = bytearray()
    pos = 0
    while True:
        eol = raw.find(b"\r\n", pos)
        if eol < 0:
            return bytes(out), False
        try:
            size = int(raw[pos:eol].split(b";")[0].strip() or b"x", 16)
        except ValueError:
            return bytes(out), False
        if size == 0:
            return bytes(out), True
        start = eol + 2
        out += raw[start:start + size]
        if start + size + 2 > len(raw):
            return bytes(out), False
        pos = start + size + 2


# --------------------------------------------------------------------------- XML


@dataclass
class _Doc:
    root: str | None = None
    version: str | None = None
    devices: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    problem: str | None = None


def _local(tag: str) -> tuple[str, str]:
    """(namespace, local name) of an ElementTree tag."""
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def _parse_probe(body: bytes, complete: bool) -> _Doc:
    """Root, schema version, device names and error texts of an MTConnect answer.

    Parsed incrementally, so a document cut off at the size limit still yields the devices
    before the cut. The namespace is matched by its local names only: it carries the MTConnect
    version (urn:mtconnect.org:MTConnectDevices:1.3, :2.0, ...) and agents differ.
    """
    doc = _Doc()
    if b"<!ENTITY" in body or b"<!DOCTYPE" in body:
        # MTConnect documents never declare entities; refusing them keeps expansion tricks away.
        doc.problem = "a document with a DOCTYPE (not parsed)"
        return doc
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    depth = 0
    error = None
    try:
        parser.feed(body)
        if complete:
            parser.close()
    except ET.ParseError as e:
        error = e
    try:
        for item in parser.read_events():
            event, elem = item[0], item[-1]
            if not isinstance(elem, ET.Element):  # never: only start and end events were asked for
                continue
            ns, name = _local(elem.tag)
            if event == "start":
                depth += 1
                if depth == 1:
                    doc.root = name
                    doc.version = ns.rsplit(":", 1)[-1] if ns.startswith("urn:mtconnect.org:") else None
                continue
            depth -= 1
            # Devices sit at MTConnectDevices/Devices/Device (depth 2 once ended); the agent's own
            # <Agent> there is not a machine, and a stray deeper "Device" is not one either.
            if doc.root == "MTConnectDevices" and name == "Device" and depth == 2:
                doc.devices.append(elem.get("name") or elem.get("uuid") or elem.get("id") or "(unnamed)")
            elif doc.root == "MTConnectError" and name == "Error":
                code = elem.get("errorCode")
                text = " ".join((elem.text or "").split())
                doc.errors.append(f"{code}: {text}" if code and text else code or text)
            if depth <= 2:
                elem.clear()  # keep memory flat for large documents
    except ET.ParseError as e:
        # The pull parser reports a syntax error in its place among the events: whatever was
        # parsed before it still counts.
        error = error or e
    if doc.root is None:
        doc.problem = f"not XML ({error})" if error else "an empty body"
    return doc


# --------------------------------------------------------------------------- remediation


def _no_address(machine: Machine, controller: Controller) -> Outcome:
    return Outcome("fail", "machine-no-address", f"{machine.name or 'a machine'} ({controller.label}) "
                                                 "has no address in the plan",
                   remediation=f"Give the machine's IP address on the machine network ({_NOT_REPORTING}: "
                               "confirm machine IP addresses are correct).")


def _connect_failed(e: NetError, machine: Machine, controller: Controller) -> Outcome:
    address, port = machine.address, controller.port
    allow = (f"any firewall between the Edge and the machines allows outbound TCP {port} from the Edge "
             f"({_PORTS})")
    if e.diagnosis == "tcp-refused":
        text = (f"{address} answered but refused port {port}: nothing listens there, or a firewall rejects "
                f"it. Check that the controller's {controller.label} interface is enabled on port {port}, "
                f"that {address} is this machine's IP address, and that {allow}; see also {_NOT_REPORTING}.")
    elif e.diagnosis == "tcp-timeout":
        text = (f"No answer from {address}: the machine is off, not on the Edge's machine network, or a "
                f"firewall drops TCP {port}. Check the cable and the switch or VLAN the machine and the "
                f"Edge's machine port share, that {address} is the machine's IP address, and that {allow}; "
                f"see also {_NOT_REPORTING}.")
    elif e.diagnosis == "tcp-unreachable":
        text = (f"The Edge cannot reach {address}: no route to it, or no device answers at that address on "
                "the machine network (machine off, wrong IP address, other VLAN). Check that the machine's IP "
                "is inside the plan's machine network, that the machine port has its link and address, and "
                f"the cable and switch or VLAN configuration ({_NOT_REPORTING}).")
    else:
        text = (f"The connection to {address}:{port} failed. Check local connectivity between the Edge and "
                f"the machine, that {address} is its IP address, and that {allow}; see also {_NOT_REPORTING}.")
    return Outcome("fail", e.diagnosis, f"{_who(machine, controller)}: {e.evidence}", remediation=text)


def _with_presence(failed: Outcome, presence: ProbeFacts, address: str, machine: Machine,
                   controller: Controller) -> Outcome:
    """A failed connection read together with the ARP probe for the machine's address."""
    from dataclasses import replace

    from installer.checks import neighbours

    state = presence.get("state")
    macs = list(presence.get("macs") or [])
    port = controller.port
    who = _who(machine, controller)
    allow = (f"any firewall between the Edge and the machines allows outbound TCP {port} from the Edge "
             f"({_PORTS})")
    facts = {**failed.facts, "presence": state, "macs": macs}
    if failed.diagnosis == "tcp-refused" and state in ("present", "absent"):
        mac = f" (MAC {macs[0]})" if macs else ""
        return Outcome("fail", "tcp-refused",
                       f"{who}: present{mac}, port {port} closed: the connection was refused (TCP reset)", facts,
                       remediation=(f"The machine is on the network but nothing accepts TCP {port}: enable the "
                                    f"controller's {controller.label} interface on port {port} (the controller's "
                                    f"network or option settings), or a firewall on the way rejects it: check that "
                                    f"{allow}; see also {_NOT_REPORTING}."))
    if state == "present" and failed.diagnosis == "tcp-timeout":
        mac = f" (MAC {macs[0]})" if macs else ""
        return Outcome("fail", "machine-port-filtered",
                       f"{who}: present{mac}, it answers ARP, but port {port} is filtered: no answer to TCP "
                       f"within the timeout", facts,
                       remediation=(f"The machine answers on the machine network, so the cable, VLAN and address "
                                    f"are right, but TCP {port} gets no answer at all: a firewall drops it (the "
                                    f"machine's own firewall, or one between the Edge and the machines). Check "
                                    f"that {allow}; see also {_NOT_REPORTING}."))
    if state == "absent" and failed.diagnosis in ("tcp-timeout", "tcp-unreachable"):
        where = ", ".join(presence.get("interfaces") or []) or "the machine network"
        return Outcome("fail", "machine-absent",
                       f"{who}: absent, no device answers ARP for {address} on {where}, and TCP {port} got no "
                       f"answer", facts, remediation=neighbours.absent_remediation(address, where))
    if state == "unchecked":
        return replace(failed, evidence=f"{failed.evidence} (presence not probed: {presence.get('words')})",
                       facts=facts)
    return failed


def _not_agent(evidence: str, machine: Machine, controller: Controller) -> Outcome:
    return Outcome("warn", "mtconnect-not-agent", evidence, remediation=(
        f"Something listens on {machine.address}:{controller.port}, but it is not an MTConnect agent "
        f"answering /probe. Check that {controller.port} is the agent's HTTP port on this machine ({_PORTS}: "
        "MTConnect Agent 5000, MTConnect Adapter 7878) and that the machine's IP address is right "
        f"({_NOT_REPORTING}); if this is an adapter (SHDR), choose the controller type MTConnect Adapter."))
