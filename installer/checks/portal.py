"""The captive-portal check (`captive-portal`): a follow-up that looks into TLS failures.

A guest or visitor network with a captive portal lets nothing out until someone logs in on a
web page: every HTTPS host then shows the portal's own certificate (one certificate, for the
portal's name, on every host), and a plain HTTP request is redirected to the login page. Left
to the TLS checks alone that reads as one "untrusted certificate" per host; IT has nothing to
change on a firewall, the box has to be registered with the portal.

The check is planned after every `tls-verify` (`after=`) and only runs when one of them failed
in a way a portal causes (another server's certificate, an untrusted one, a name mismatch, a
handshake that was not TLS); otherwise it is `not-needed` and left out of the report. It then
asks one failing host for http://<host>/ on port 80 (directly, or through the plan's proxy as
an absolute-URI GET) and reads the answer.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from installer.checks.base import NOT_NEEDED, Context, Outcome, Result
from installer.checks.net import NetError, classify_oserror, connect_direct, read_http_head, status_code
from installer.checks.tls import Budget
from installer.planning.fields import is_ip
from installer.planning.plan import Plan

# tls-verify diagnoses a captive portal (or another server in the way) produces.
TRIGGERS = ("tls-wrong-server", "tls-untrusted", "tls-hostname-mismatch", "tls-handshake-failed")
_BODY_LIMIT = 16384
_USER_AGENT = "edge-installer-check"
_LOGIN_WORDS = re.compile(r"log\s*-?\s*in|sign\s*-?\s*in|password|username|user name|accept|terms|voucher|"
                          r"register|guest|authenticat", re.I)


def host_of(result: Result) -> str:
    """The host name a tls-verify result was for."""
    host = result.facts.get("host") if result.facts else None
    return host or result.target.rpartition(":")[0] or result.target


def _list(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def shared_certificates(results: list[Result]) -> dict[str, list[str]]:
    """fingerprint -> the distinct hosts that presented that certificate (failing results)."""
    by_fp: dict[str, list[str]] = {}
    for r in results:
        fp = (r.facts or {}).get("fingerprint")
        if fp:
            hosts = by_fp.setdefault(fp, [])
            if host_of(r) not in hosts:
                hosts.append(host_of(r))
    return by_fp


def has_login_form(body: str) -> bool:
    """A page that asks for a login or for accepting terms: a form with a password field, or
    with words such as log in / sign in / accept / terms / voucher."""
    lower = body.lower()
    if "<form" not in lower:
        return False
    return 'type="password"' in lower or "type='password'" in lower or bool(_LOGIN_WORDS.search(body))


def redirect_sign(location: str, host: str) -> str | None:
    """Why a redirect from http://host/ to `location` looks like a portal's (None: it does not;
    e.g. the same host over HTTPS, or a path on the same host)."""
    target = urlsplit(location.strip())
    to = (target.hostname or "").lower().rstrip(".")
    if not to:
        return None  # relative: the same server
    if is_ip(to) and to != host:
        return f"{to}, an address literal"
    h = host.lower().rstrip(".")
    if to == h or to.endswith("." + h) or h.endswith("." + to):
        return None
    return f"{to}, another host"


async def _get(ctx: Context, plan: Plan, host: str, path: str, addresses: tuple[str, ...], budget: Budget
               ) -> tuple[str, dict[str, str], str, str]:
    """GET http://host{path} on port 80: (status line, headers, body start, how it was reached).
    Raises NetError, or ValueError for an answer that is not HTTP."""
    from installer.checks.net import bypasses_proxy

    proxy = ctx.proxy if ctx.proxy is not None and not bypasses_proxy(plan, host) else None
    if proxy is not None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(proxy.host, proxy.port), budget.next())
        except (TimeoutError, OSError) as e:
            _, words = classify_oserror(e)
            raise NetError("proxy-unreachable", f"the proxy {proxy.url_redacted}: {words}") from None
        how = f"through the proxy at {proxy.host}:{proxy.port}"
        request = f"GET http://{host}{path} HTTP/1.1\r\nHost: {host}\r\n"
        if proxy.authorization:
            request += f"Proxy-Authorization: {proxy.authorization}\r\n"
    else:
        stream = await connect_direct(addresses or (host,), 80, budget.next())
        reader, writer = stream.reader, stream.writer
        how = f"at {stream.address}"
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n"
    request += f"User-Agent: {_USER_AGENT}\r\nAccept: text/html,*/*\r\nConnection: close\r\n\r\n"
    try:
        writer.write(request.encode("ascii", "replace"))
        status_line, headers = await asyncio.wait_for(read_http_head(reader), budget.next())
        body = b""
        deadline = time.monotonic() + min(budget.next(), 1.0)
        while len(body) < _BODY_LIMIT and time.monotonic() < deadline:
            try:
                chunk = await asyncio.wait_for(reader.read(_BODY_LIMIT - len(body)),
                                               max(0.01, deadline - time.monotonic()))
            except (TimeoutError, OSError):
                break
            if not chunk:
                break
            body += chunk
            length = headers.get("content-length", "")
            if length.isdigit() and len(body) >= int(length):
                break
    except TimeoutError:
        raise NetError("http-no-response", f"http://{host}{path} ({how}): no HTTP answer in time") from None
    except (ConnectionError, OSError) as e:
        raise NetError("http-no-response", f"http://{host}{path} ({how}): {type(e).__name__}: {e}") from None
    finally:
        writer.transport.abort()
    return status_line, headers, body.decode("utf-8", "replace"), how


def _addresses(result: Result, prereqs: Mapping[str, Result], host: str) -> tuple[str, ...]:
    address = (result.facts or {}).get("address")
    if address:
        return (address,)
    if is_ip(host):
        return (host,)
    resolved = prereqs.get(f"dns-resolve:{host}")
    if resolved is not None and resolved.facts:
        return tuple(resolved.facts.get("addresses", ()))
    return ()


async def captive_portal(ctx: Context, prereqs: Mapping[str, Result], *, tls_keys: tuple[str, ...],
                         plan: Any) -> Outcome:
    """`captive-portal`: not needed unless a tls-verify failed with one of TRIGGERS; then
    plain HTTP to one failing host must not be redirected to a login page while several hosts
    show one foreign certificate."""
    checked = [prereqs[k] for k in tls_keys if k in prereqs]
    failing = [r for r in checked if r.status == "fail" and r.diagnosis in TRIGGERS]
    if not failing:
        return Outcome("skip", NOT_NEEDED, "no TLS failure that a captive portal causes")
    shared = shared_certificates(failing)
    fp, fp_hosts = max(shared.items(), key=lambda kv: len(kv[1]), default=("", []))
    # A portal that answers HTTPS ports in plain text shows no certificate: the hosts whose
    # handshake failed that way are its group then.
    plain = sorted({host_of(r) for r in failing if r.diagnosis == "tls-handshake-failed"})
    all_hosts = sorted({host_of(r) for r in checked})
    # Ask a host that showed the most common foreign certificate, else the first failing one.
    first = next((r for r in failing if host_of(r) in fp_hosts), failing[0])
    host = host_of(first)
    budget = Budget(ctx.timeout)
    facts: dict[str, Any] = {"hosts": sorted(fp_hosts) or sorted({host_of(r) for r in failing}),
                             "fingerprint": fp or None, "http_host": host}
    names = next((r.facts.get("names") for r in failing if (r.facts or {}).get("fingerprint") == fp), None) or []
    if fp:
        facts["names"] = list(names)
    cert_words = ""
    if len(fp_hosts) < 2 and len(plain) >= 2:
        cert_words = f"{len(plain)} hosts ({_list(plain)}) answered TLS with something that is not TLS"
        facts["hosts"] = plain
    if len(fp_hosts) >= 2:
        cert_words = (f"{len(fp_hosts)} hosts ({_list(sorted(fp_hosts))}) present the same certificate"
                      f"{' for ' + _list(list(names), 3) if names else ''} (SHA-256 {fp})")
    try:
        status_line, headers, body, how = await _get(ctx, plan, host, "/", _addresses(first, prereqs, host), budget)
    except (NetError, ValueError) as e:
        why = e.evidence if isinstance(e, NetError) else str(e)
        evidence = f"plain HTTP to {host} port 80 gave no page to judge ({why}): no sign of a captive portal"
        if cert_words:
            evidence += f"; {cert_words}: see the TLS results"
        return Outcome("pass", "ok", evidence, facts)
    code = status_code(status_line)
    seen = status_line.strip()[:80] or "an empty status line"
    facts["status"] = code
    signs: list[str] = []
    location = headers.get("location", "")
    portal_address = None
    if code is not None and 300 <= code < 400 and location:
        sign = redirect_sign(location, host)
        facts["redirect"] = location[:300]
        if sign:
            target = urlsplit(location.strip())
            portal_address = target.hostname if target.hostname and is_ip(target.hostname) else None
            signs.append(f"redirected to {location[:160]} ({sign})")
            if target.scheme == "http" and target.hostname:
                # Follow that one redirect: a login form there settles it.
                try:
                    path = (target.path or "/") + (f"?{target.query}" if target.query else "")
                    addrs = (target.hostname,) if is_ip(target.hostname) else ()
                    s2, _, body2, _ = await _get(ctx, plan, target.hostname, path, addrs, budget)
                    if has_login_form(body2) or status_code(s2) == 511:
                        signs[-1] += ", a page with a login form"
                except (NetError, ValueError):
                    pass
    if code == 511:
        signs.append("answered 511 Network Authentication Required")
    elif code == 200 and has_login_form(body):
        signs.append(f"answered {seen} with a login form")
    if portal_address:
        facts["address"] = portal_address
    lone_host = len(all_hosts) == 1
    portal = bool(signs) and (code == 511 or len(fp_hosts) >= 2 or len(plain) >= 2 or lone_host)
    if not portal:
        what = f"answered {seen}" if not signs else "; ".join(signs)
        evidence = f"http://{host}/ ({how}) {what}, without a redirect to a login page: not a captive portal"
        if signs:
            evidence = (f"http://{host}/ ({how}) {what}, but no other host shares its certificate: not judged a "
                        "captive portal")
        return Outcome("pass", "ok", evidence, facts)
    evidence = f"http://{host}/ ({how}) {'; '.join(signs)}"
    if cert_words:
        evidence += f"; {cert_words}"
    evidence += ": a captive portal intercepts the box's web traffic until someone logs in"
    at = f" (the portal at {portal_address})" if portal_address else ""
    remediation = (f"The box is on a network with a captive portal{at}: a guest or visitor network that wants a "
                   f"login, or the terms accepted, on a web page before it lets traffic out. Until then every HTTPS "
                   f"host shows the portal's certificate, so every TLS check fails. The box cannot click through a "
                   f"login page. Register the box on the plant's guest/captive network, or ask IT to exempt its MAC "
                   f"address and IP address from the portal (or to connect it to a network without one).")
    return Outcome("fail", "captive-portal", evidence, facts, remediation=remediation)
