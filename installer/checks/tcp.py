"""TCP reachability of every (host, port) a profile needs: connected, refused (a REJECT rule),
timed out (a DROP rule), or no route; through the plan's proxy (CONNECT) when it has one."""

from __future__ import annotations

from installer.checks.base import Context, Outcome
from installer.checks.net import Dest, NetError, open_dest


async def tcp_connect(ctx: Context, prereqs, *, dest: Dest) -> Outcome:
    """Open a TCP connection to dest (or a CONNECT tunnel through the proxy) and close it."""
    try:
        stream = await open_dest(dest, prereqs, ctx.timeout)
    except NetError as e:
        return Outcome("fail", e.diagnosis, e.evidence)
    await stream.close()
    return Outcome("pass", "ok", stream.describe(), facts={"address": stream.address, "via_proxy": stream.via_proxy})
