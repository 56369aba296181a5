"""Basic network primitives, run inside the lab's edge namespace to prove what the lab serves.

    python -m tests.lab.probe '[{"kind": "tcp", "host": "203.0.113.10", "port": 443}, ...]'

prints one JSON list of results, in order. These are deliberately not the product's checks
(tests/test_lab.py proves the lab with them, independently of installer/checks): each is the
plainest use of the socket, ssl, dnspython and ntplib APIs. `Lab.probe()` runs them.
A probe never raises: failures are results ({"error": ...}).
"""

from __future__ import annotations

import base64
import errno
import json
import socket
import ssl
import sys
import time
from collections.abc import Callable
from typing import Any

DEFAULT_TIMEOUT = 2.0


def _errno_result(exc: OSError) -> dict[str, Any]:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return {"result": "timeout"}
    code = exc.errno
    names = {errno.ECONNREFUSED: "refused", errno.EHOSTUNREACH: "unreachable",
             errno.ENETUNREACH: "unreachable", errno.ECONNRESET: "reset"}
    return {"result": names.get(code, "error"), "errno": errno.errorcode.get(code or 0, str(code)),
            "error": str(exc)}


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((host, port), timeout=timeout)


def tcp(host: str, port: int, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """connect(): connected / refused / timeout / unreachable, and how long it took."""
    start = time.monotonic()
    try:
        with _connect(host, port, timeout):
            out: dict[str, Any] = {"result": "connected"}
    except OSError as exc:
        out = _errno_result(exc)
    out["elapsed"] = round(time.monotonic() - start, 3)
    return out


def banner(host: str, port: int, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """The first line a server sends after connect (NATS sends `INFO {...}`)."""
    try:
        with _connect(host, port, timeout) as s:
            data = b""
            while b"\n" not in data and len(data) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        return _errno_result(exc)
    return {"result": "connected", "line": data.split(b"\n")[0].decode("utf-8", "replace").rstrip("\r")}


def _leaf_facts(der: bytes) -> dict[str, Any]:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    cn = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in sans.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    return {"issuer_cn": cn[0].value if cn else None,
            "issuer_dn": ", ".join(f"{a.rfc4514_attribute_name}={a.value}" for a in cert.issuer),
            "subject_names": names,
            "not_after": cert.not_valid_after_utc.isoformat()}


def _tls_over(sock: socket.socket, sni: str, cafile: str | None) -> dict[str, Any]:
    """Handshake on `sock` without verification, to read the leaf whatever it is."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with ctx.wrap_socket(sock, server_hostname=sni) as tls:
        return {"result": "handshake", **_leaf_facts(tls.getpeercert(binary_form=True))}


def tls(host: str, port: int, sni: str | None = None, cafile: str | None = None,
        timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """The leaf certificate's issuer, names and end; and whether it verifies against `cafile`
    (or the system's store) for `sni` (verify_error says why not: expired, hostname
    mismatch, unknown issuer)."""
    sni = sni or host
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    try:
        with ctx.wrap_socket(_connect(host, port, timeout), server_hostname=sni) as s:
            return {"result": "handshake", "verified": True,
                    **_leaf_facts(s.getpeercert(binary_form=True))}
    except ssl.SSLCertVerificationError as exc:
        failure = {"verified": False, "verify_error": exc.verify_message}
    except ssl.SSLError as exc:
        failure = {"verified": False, "verify_error": str(exc)}
    except OSError as exc:
        return _errno_result(exc)
    try:  # again without verification, to read the certificate that failed
        return {**_tls_over(_connect(host, port, timeout), sni, cafile), **failure}
    except OSError as exc:
        return {**_errno_result(exc), **failure}


def _http_get(sock: socket.socket, host: str, path: str) -> dict[str, Any]:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else None
    return {"result": "answered", "status": status, "body": body.decode("utf-8", "replace")[:2000]}


def http(host: str, port: int, path: str = "/", timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Plain HTTP GET: status and the start of the body."""
    try:
        with _connect(host, port, timeout) as s:
            return _http_get(s, host, path)
    except OSError as exc:
        return _errno_result(exc)


def https(host: str, port: int = 443, path: str = "/ping", cafile: str | None = None,
          timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """HTTPS GET with verification against `cafile` and SNI = host."""
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    try:
        with ctx.wrap_socket(_connect(host, port, timeout), server_hostname=host) as s:
            return _http_get(s, host, path)
    except ssl.SSLCertVerificationError as exc:
        return {"result": "untrusted", "verify_error": exc.verify_message}
    except OSError as exc:
        return _errno_result(exc)


def proxy_connect(proxy: str, proxy_port: int, host: str, port: int, user: str | None = None,
                  password: str | None = None, then: str | None = None, cafile: str | None = None,
                  path: str = "/ping", timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """CONNECT host:port through the proxy; the proxy's status, then optionally through the
    tunnel `then` = "tls" (read the leaf) or "https" (GET `path`, verified) or "banner"."""
    try:
        s = _connect(proxy, proxy_port, timeout)
    except OSError as exc:
        return _errno_result(exc)
    with s:
        req = f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            req += f"Proxy-Authorization: Basic {token}\r\n"
        try:
            s.sendall((req + "\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = s.recv(1)  # byte by byte: what follows the head belongs to the tunnel
                if not chunk:
                    break
                head += chunk
        except OSError as exc:
            return _errno_result(exc)
        line = head.split(b"\r\n")[0].decode("latin-1")
        parts = line.split(" ", 2)
        out: dict[str, Any] = {"result": "answered", "status_line": line,
                               "status": int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None}
        if out["status"] != 200 or then is None:
            return out
        try:
            if then == "tls":
                out["tunnel"] = _tls_over(s, host, cafile)
            elif then == "https":
                ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
                with ctx.wrap_socket(s, server_hostname=host) as t:
                    out["tunnel"] = _http_get(t, host, path)
            elif then == "banner":
                out["tunnel"] = {"line": s.recv(4096).split(b"\n")[0].decode("utf-8", "replace").rstrip("\r")}
        except ssl.SSLCertVerificationError as exc:
            out["tunnel"] = {"result": "untrusted", "verify_error": exc.verify_message}
        except OSError as exc:
            out["tunnel"] = _errno_result(exc)
        return out


def dns(name: str, server: str = "203.0.113.53", rdtype: str = "A", tcp: bool = False,
        port: int = 53, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """One query to `server` with dnspython: the rcode, the addresses and their TTLs."""
    import dns.exception
    import dns.message
    import dns.query
    import dns.rcode

    query = dns.message.make_query(name, rdtype)
    try:
        send = dns.query.tcp if tcp else dns.query.udp
        answer = send(query, server, port=port, timeout=timeout)
    except dns.exception.Timeout:
        return {"result": "timeout"}
    except OSError as exc:
        return _errno_result(exc)
    records = [rr for rrset in answer.answer for rr in rrset]
    ttls = [rrset.ttl for rrset in answer.answer]
    return {"result": "answered", "rcode": dns.rcode.to_text(answer.rcode()),
            "addresses": [rr.to_text() for rr in records], "ttls": ttls}


def resolve(name: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """getaddrinfo() as any program would: through /etc/resolv.conf (the lab's, in a lab netns)."""
    try:
        infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return {"result": "error", "error": str(exc)}
    return {"result": "answered", "addresses": sorted({i[4][0] for i in infos})}


def ntp(server: str = "203.0.113.123", timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """One NTP exchange with ntplib: offset and stratum."""
    import ntplib

    try:
        r = ntplib.NTPClient().request(server, version=4, timeout=timeout)
    except ntplib.NTPException as exc:
        return {"result": "timeout", "error": str(exc)}
    except OSError as exc:
        return _errno_result(exc)
    return {"result": "answered", "offset": r.offset, "stratum": r.stratum}


def interfaces() -> dict[str, Any]:
    """Addresses, carrier and routes of this namespace, and whether it forwards."""
    import subprocess

    addr = json.loads(subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True).stdout)
    routes = json.loads(subprocess.run(["ip", "-j", "route"], capture_output=True, text=True).stdout)
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forwarding = f.read().strip() == "1"
    return {"result": "ok", "forwarding": forwarding, "routes": routes,
            "links": {a["ifname"]: {"flags": a.get("flags", []), "operstate": a.get("operstate"),
                                    "addresses": [f"{i['local']}/{i['prefixlen']}" for i in a.get("addr_info", [])
                                                  if i.get("family") == "inet"]} for a in addr}}


PROBES: dict[str, Callable[..., dict[str, Any]]] = {
    "tcp": tcp, "banner": banner, "tls": tls, "http": http, "https": https,
    "proxy": proxy_connect, "dns": dns, "resolve": resolve, "ntp": ntp, "interfaces": interfaces,
}


def run(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run each {"kind": ..., **arguments} in order; never raises."""
    results = []
    for spec in specs:
        args = dict(spec)
        kind = args.pop("kind", None)
        fn = PROBES.get(kind)
        if fn is None:
            results.append({"result": "error", "error": f"unknown probe kind {kind!r}"})
            continue
        try:
            results.append(fn(**args))
        except Exception as exc:  # a probe bug is a result too, so the others still run
            results.append({"result": "error", "error": f"{type(exc).__name__}: {exc}"})
    return results


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
