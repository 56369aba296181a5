"""The HTTPS check (`https-ping`): GET a vendor's health path (seed 000's /ping) over
verified TLS, directly or through the plan's proxy, and read the status line.

It runs after `tls-verify` passed (the planner makes it a dependent), so what it adds is the
HTTP layer: a proxy's CONNECT refusal or 407, a web filter's block page, or a firewall that
lets the handshake through and cuts the request (seed 000: "ECONNRESET - CloudLink is
blocked").
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping

from installer.checks.base import Context, Outcome, Result
from installer.checks.net import Dest, NetError, read_http_head, status_code
from installer.checks.tls import dispose, failure_outcome, handshake, judge, open_for_tls, server_name
from installer.vendors.profiles import Endpoint, Profile

_USER_AGENT = "edge-installer-check"


def request_bytes(host: str, port: int, path: str) -> bytes:
    """The GET request: HTTP/1.1 with Host (port only when not 443) and Connection: close."""
    authority = host if port == 443 else f"{host}:{port}"
    return (f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {_USER_AGENT}\r\nAccept: */*\r\n"
            "Connection: close\r\n\r\n").encode("ascii")


async def https_ping(ctx: Context, prereqs: Mapping[str, Result], *, dest: Dest, path: str, endpoint: Endpoint,
                     profile: Profile) -> Outcome:
    """`https-ping`: GET `path` over TLS verified like `tls-verify`; 2xx passes, any other status
    is an `http-status` warning, no answer at all is `http-no-response`."""
    opened = await open_for_tls(ctx, prereqs, dest, endpoint, profile)
    if isinstance(opened, Outcome):
        return opened
    budget, host, stream, via = opened
    try:
        try:
            await handshake(stream, host, ctx.trust(), budget.next())
        except ssl.SSLCertVerificationError as e:
            # tls-verify passed moments ago, so this is rare (a flapping appliance): judge the
            # error without fetching the certificate again; tls-verify's entry has the details.
            return judge(None, e, dest=dest, endpoint=endpoint, profile=profile, ctx=ctx, via=via)
        except NetError as e:
            return failure_outcome(e, dest, endpoint, profile)
        t0 = time.monotonic()
        try:
            stream.writer.write(request_bytes(host, dest.port, path))
            status_line, headers = await asyncio.wait_for(read_http_head(stream.reader), budget.next())
        except TimeoutError:
            return _no_response(dest, path, via, f"no HTTP answer within {ctx.timeout:g} s", endpoint, profile)
        except ValueError as e:  # read_http_head: closed before a complete head
            return _no_response(dest, path, via, str(e), endpoint, profile)
        except ConnectionError as e:
            how = "reset (RST)" if getattr(e, "errno", None) else "closed"
            return _no_response(dest, path, via, f"the connection was {how} after the request", endpoint, profile)
        except (ssl.SSLError, OSError) as e:
            return _no_response(dest, path, via, f"{type(e).__name__}: {e}", endpoint, profile)
        ms = (time.monotonic() - t0) * 1000
    finally:
        dispose(stream)
    code = status_code(status_line)
    seen = status_line.strip()[:120] or "an empty status line"
    # Where the answer came from, for grouping (many names, one block page or appliance).
    facts = {"host": host, "port": dest.port, "path": path,
             "address": None if stream.via_proxy else stream.address.rpartition(":")[0]}
    if code is not None and 300 <= code < 400 and headers.get("location"):
        facts["redirect"] = headers["location"][:300]
    if code is not None and 200 <= code < 300:
        return Outcome("pass", "ok", f"{dest.label}{via}: GET {path} answered {seen} in {ms:.0f} ms",
                       {**facts, "status": code})
    extra = ""
    if headers.get("server"):
        # A block page usually names the appliance that sent it.
        extra += f"; Server: {headers['server'][:80]}"
    if code is not None and 300 <= code < 400 and headers.get("location"):
        extra += f"; redirected to {headers['location'][:160]}"
    if code is None:
        return Outcome("warn", "http-status", f"{dest.label}{via}: GET {path} got an answer that is not HTTP: "
                                              f"{seen!r}{extra}", {**facts, "status": None})
    return Outcome("warn", "http-status", f"{dest.label}{via}: GET {path} answered HTTP {code} ({seen}), "
                                          f"expected 2xx{extra}", {**facts, "status": code})


def _no_response(dest: Dest, path: str, via: str, what: str, endpoint: Endpoint, profile: Profile) -> Outcome:
    host = server_name(dest)
    own = endpoint.remediation.get("http-status") or profile.remediation_for("tls-intercepted", endpoint)
    remediation = (f"The TLS connection to {host} opened but the request GET {path} got no HTTP answer: a "
                   f"firewall or proxy that inspects encrypted traffic is cutting it. {own}")
    return Outcome("fail", "http-no-response", f"{dest.label}{via}: GET {path}: {what}",
                   remediation=remediation.strip())
