"""TCP reachability of every (host, port) a profile needs: connected, refused (a REJECT rule),
timed out (a DROP rule), or no route; through the plan's proxy (CONNECT) when it has one.

A proxy that refuses the tunnel gets one more question, only then: would it open a tunnel to
the same host on port 443? A proxy that allows 443 and refuses 7422 filters by port (the
common "CONNECT to SSL ports only" rule); one that refuses both filters the destination.
The remediation (`net.proxy_remediation`) names what to allow accordingly.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from installer.checks.base import Context, Outcome, Result
from installer.checks.net import (
    PROXY_CODES,
    Dest,
    NetError,
    connect_via_proxy,
    open_dest,
    proxy_facts,
    proxy_remediation,
)
from installer.vendors.profiles import Endpoint, Profile


async def tcp_connect(ctx: Context, prereqs: Mapping[str, Result], *, dest: Dest, endpoint: Endpoint | None = None,
                      profile: Profile | None = None) -> Outcome:
    """Open a TCP connection to dest (or a CONNECT tunnel through the proxy) and close it."""
    end = time.monotonic() + 2 * ctx.timeout  # the runner allows a check twice its timeout
    try:
        stream = await open_dest(dest, prereqs, ctx.timeout)
    except NetError as e:
        facts: dict[str, Any] = {"host": dest.host or (dest.addresses[0] if dest.addresses else None),
                                 "port": dest.port, "via_proxy": dest.proxy is not None}
        if e.diagnosis not in PROXY_CODES:
            return Outcome("fail", e.diagnosis, e.evidence, facts)
        facts = proxy_facts(dest, e)
        evidence = e.evidence
        if e.diagnosis == "proxy-denied" and dest.port != 443 and not (facts.get("proxy_status") or 0) >= 500:
            allows = await _proxy_allows_443(dest, end - time.monotonic())
            if allows is not None:
                facts["proxy_allows_443"] = allows
                evidence += ("; the same proxy does not refuse CONNECT to port 443 of that host: it filters by port"
                             if allows
                             else "; it refuses CONNECT to port 443 of that host too: it filters the destination")
        return Outcome("fail", e.diagnosis, evidence, facts,
                       remediation=proxy_remediation(e.diagnosis, dest, profile, endpoint, facts))
    await stream.close()
    return Outcome("pass", "ok", stream.describe(),
                   facts={"address": stream.address, "via_proxy": stream.via_proxy, "host": dest.host,
                          "port": dest.port})


async def _proxy_allows_443(dest: Dest, time_left: float) -> bool | None:
    """Whether the proxy lets a CONNECT to the same host on port 443 through: True (a tunnel;
    the proxy tried and the far end failed: HTTP 5xx; or it is still connecting after a while:
    a proxy refuses by its rules at once, before it connects anywhere), False (refused: 4xx),
    None (no time, or no clear answer)."""
    if dest.proxy is None or time_left < 0.5:
        return None
    try:
        stream = await connect_via_proxy(dest.proxy, dest.host or dest.addresses[0], 443, min(time_left, 1.5))
    except NetError as e:
        status = e.facts.get("proxy_status")
        if e.diagnosis == "proxy-denied" and isinstance(status, int):
            return status >= 500
        if e.diagnosis == "proxy-timeout":
            return True  # no refusal: the proxy passed its rules and is connecting to the host
        return None
    await stream.close()
    return True
