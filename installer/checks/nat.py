"""The NAT check (`nat-detect`): is the box's uplink behind NAT, and does it matter?

Two signs, no extra traffic:

- the NATS server's INFO line carries `client_ip`, the address the server saw the connection
  come from; the nats-info checks keep it beside the socket's own local address (direct
  connections only: through a proxy the server sees the proxy). Different: the box is behind
  NAT, and the server saw its public address.
- an uplink address in a private range (RFC 1918: 10/8, 172.16/12, 192.168/16) or in the
  carrier-grade NAT range (RFC 6598: 100.64/10) can only reach the internet through NAT.

It matters for Izuma Device Management: "If your devices are behind a NAT, we recommend using
either CoAP over TCP; or, if you require UDP, a dedicated tunnel between your device gateway
and Device Management" (seed 002, Connecting devices behind NAT). So behind NAT with a profile
that uses CoAP over UDP is a warning carrying that advice; otherwise NAT is reported, as a pass.

When nothing can tell (no NATS answer read directly, and a public uplink address), the check
passes with "could not tell" and says why when a CoAP-over-UDP profile is in the plan (the
technician should know the question is open); without such a profile the answer would change
nothing, so it leaves the report (`not-needed`).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict

from installer.checks.base import NOT_NEEDED, Context, Outcome, Result

# Addresses that reach the internet only through NAT: RFC 1918 and RFC 6598 (CGNAT).
NAT_RANGES = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                       "100.64.0.0/10"))


class NatFacts(TypedDict):
    """What `nat-detect` found: the box's own uplink address, the one a NATS server saw, and
    whether the uplink is behind NAT (None: could not tell)."""

    local_ip: str | None
    public_ip: str | None
    nat: bool | None


def nat_only(address: str) -> bool:
    """True for an address that can reach the internet only through NAT (RFC 1918, RFC 6598)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in NAT_RANGES)


def _uplink_addresses(ctx: Context) -> list[str]:
    """The uplink's IPv4 addresses: the interface's current ones, else the plan's static one."""
    plan = ctx.plan
    found: list[str] = []
    if plan.uplink is not None and plan.uplink.interface:
        from installer.box.discover import interface

        iface = interface(plan.uplink.interface, Path(ctx.sys_class_net))
        if iface is not None:
            found = [a.split("/")[0] for a in iface.addresses if ":" not in a]
        if not found and plan.uplink.address:
            found = [plan.uplink.address.split("/")[0]]
    return found


async def nat_detect(ctx: Context, prereqs: Mapping[str, Result], *, nats_keys: tuple[str, ...] = (),
                     coap_udp_profiles: tuple[str, ...] = ()) -> Outcome:
    """`nat-detect`: compare what the NATS servers saw with the box's own address (see above)."""
    seen: list[tuple[str, str, str]] = []  # (target, local_ip, public_ip)
    for key in nats_keys:
        r = prereqs.get(key)
        if r is None or r.status != "pass":
            continue  # a session that did not complete may have met a relay, not the server
        local, public = r.facts.get("local_ip"), r.facts.get("public_ip")
        if local and public and not r.facts.get("via_proxy"):
            seen.append((r.target, str(local), str(public)))
    uplink = await asyncio.to_thread(_uplink_addresses, ctx)
    hurt = ", ".join(ctx.catalog.profiles[p].title for p in coap_udp_profiles if p in ctx.catalog.profiles)
    translated = [(t, lo, pub) for t, lo, pub in seen if lo != pub]
    facts: NatFacts
    if translated:
        target, local, public = translated[0]
        facts = {"local_ip": local, "public_ip": public, "nat": True}
        why = f"the NATS server at {target} saw this box as {public}, its own address is {local}"
    elif seen:
        target, local, public = seen[0]
        private = nat_only(local)
        facts = {"local_ip": local, "public_ip": public, "nat": private}
        if not private:
            return Outcome("pass", "ok", f"no NAT seen: the NATS server at {target} saw this box as {public}, "
                                         "its own uplink address", facts)
        why = f"the uplink address {local} is private (RFC 1918/6598)"
    elif any(nat_only(a) for a in uplink):
        local = next(a for a in uplink if nat_only(a))
        facts = {"local_ip": local, "public_ip": None, "nat": True}
        why = f"the uplink address {local} is private (RFC 1918/6598) and reaches the internet only through NAT"
    else:
        facts = {"local_ip": uplink[0] if uplink else None, "public_ip": None, "nat": None}
        if not hurt:
            return Outcome("skip", NOT_NEEDED, "could not tell, and no profile in the plan depends on it", facts)
        parts = ["no NATS server was reached directly to say which address it saw"]
        parts += [f"the uplink address {', '.join(uplink)} is public"] if uplink else []
        return Outcome("pass", "ok", "could not tell whether the uplink is behind NAT: " + " and ".join(parts),
                       facts)
    if not hurt:
        return Outcome("pass", "ok", f"behind NAT: {why}; no profile in the plan is affected by it", facts)
    public_words = f" (the internet sees it as {facts['public_ip']})" if facts.get("public_ip") else ""
    evidence = f"behind NAT: {why}; {hurt} uses CoAP over UDP, which NAT can break"
    remediation = (f"This box is behind NAT{public_words}. For {hurt}, configure the device for CoAP over TCP "
                   "(port 5684/tcp), or, if it requires UDP, set up a dedicated tunnel between the device gateway "
                   "and Device Management. Keep the CoAP over TCP keepalive (default 540 s) shorter than the "
                   "NAT's idle timeout.")
    return Outcome("warn", "behind-nat", evidence, facts, remediation=remediation)
