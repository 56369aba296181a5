"""A captive portal and a web filter's block page: the lab's own small server (no Debian
package plays either), run as one lab Service in the cloud namespace.

    python -m tests.lab.portal --dir DIR

Two addresses, one process (asyncio + ssl, standard library only):

- the captive portal (topology.PORTAL): TLS on 443, 9443, 9444 and 5684 with ONE self-signed
  certificate for "portal.login.example", whatever name the client asks for; plain HTTP on 80.
  Every request (HTTP, or HTTP inside TLS) except /login is answered
  "302 Found, Location: http://<portal address>/login?orig=..."; /login is a login form.
  `Lab.captive_portal()` DNATs the edge's web ports to it, as a guest network does before the
  box has logged in.
- the block page (topology.BLOCK_PAGE): TLS on the same ports with a certificate for
  "blocked.webfilter.example" issued by the "Plant Web Filter CA" (trusted by nobody); HTTP
  and HTTPS requests get "403 Forbidden" and a page saying the site is blocked (no form, no
  redirect). `Lab.block_page(*names)` points those names' DNS at it, as a DNS filter does.
- a captive portal that answers in plain HTTP on every port, 443 too (topology.PORTAL_PLAIN).

The certificates are made once per lab by `make_certs` (with `cryptography`, in the lab's
process); the server itself only reads them.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ssl
import sys
from pathlib import Path

from tests.lab import topology as T

PORTAL_NAME = "portal.login.example"
BLOCK_NAME = "blocked.webfilter.example"
FILTER_CA_NAME = "Plant Web Filter CA"
TLS_PORTS = (*T.HTTPS_PORTS, T.COAP_PORT)
HTTP_PORT = 80

LOGIN_PAGE = """<!DOCTYPE html>
<html><head><title>Guest network - sign in</title></head>
<body><h1>Welcome to the plant guest network</h1>
<p>Sign in or accept the terms of use to access the internet.</p>
<form method="post" action="/login">
<label>User name <input type="text" name="username"></label>
<label>Password <input type="password" name="password"></label>
<input type="checkbox" name="accept"> I accept the terms of use
<button type="submit">Log in</button>
</form></body></html>
"""

BLOCK_PAGE = """<!DOCTYPE html>
<html><head><title>Access denied</title></head>
<body><h1>Access denied</h1>
<p>The site you requested is blocked by the plant's web filter policy (category: uncategorized).</p>
<p>Contact the IT help desk if you believe this is an error.</p></body></html>
"""


def make_certs(directory: Path) -> dict[str, tuple[Path, Path]]:
    """Write the portal's self-signed certificate and the block page's (with its CA) under
    `directory` once; {"portal"|"block": (certificate chain file, key file)}."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from tests.lab import pki

    directory.mkdir(parents=True, exist_ok=True)
    out = {"portal": (directory / "portal.crt", directory / "portal.key"),
           "block": (directory / "block.crt", directory / "block.key")}
    if all(p.exists() for pair in out.values() for p in pair):
        return out
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, PORTAL_NAME)])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(PORTAL_NAME)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    _write(out["portal"], cert.public_bytes(serialization.Encoding.PEM), key)
    ca = pki.make_ca([(NameOID.ORGANIZATION_NAME, "Plant IT Security"), (NameOID.COMMON_NAME, FILTER_CA_NAME)])
    block_key = ec.generate_private_key(ec.SECP256R1())
    pem = pki.make_leaf(ca, block_key, [BLOCK_NAME]) + ca.cert.public_bytes(serialization.Encoding.PEM)
    _write(out["block"], pem, block_key)
    return out


def _write(paths: tuple[Path, Path], cert_pem: bytes, key) -> None:
    from cryptography.hazmat.primitives import serialization

    paths[1].touch(mode=0o600)
    paths[1].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[0].write_bytes(cert_pem)


def service(d: Path):
    """The lab Service running both servers (see tests.lab.servers.Service)."""
    import os

    from tests.lab.servers import Service

    certs = make_certs(d / "pki" / "portal")
    repo = Path(__file__).resolve().parents[2]
    listens = tuple(("tcp", a, p) for a in (T.PORTAL, T.BLOCK_PAGE, T.PORTAL_PLAIN) for p in (*TLS_PORTS, HTTP_PORT))
    argv = (sys.executable, "-m", "tests.lab.portal", "--portal-cert", str(certs["portal"][0]),
            "--portal-key", str(certs["portal"][1]), "--block-cert", str(certs["block"][0]),
            "--block-key", str(certs["block"][1]))
    return Service("portal", "cloud", argv, listens,
                   env={"PYTHONPATH": os.pathsep.join([str(repo)]), "PYTHONDONTWRITEBYTECODE": "1"})


# --- the server ---------------------------------------------------------------------------

def _response(status: str, headers: dict[str, str], body: str) -> bytes:
    data = body.encode()
    head = [f"HTTP/1.1 {status}", "Content-Type: text/html; charset=utf-8", f"Content-Length: {len(data)}",
            "Connection: close", "Cache-Control: no-store", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


def answer(kind: str, address: str, request_line: str, host: str) -> bytes:
    """What the portal ("portal") or the block page ("block") answers to one request."""
    parts = request_line.split()
    target = parts[1] if len(parts) >= 2 else "/"
    if kind == "block":
        return _response("403 Forbidden", {"Server": "PlantWebFilter"}, BLOCK_PAGE)
    path = target
    if target.startswith(("http://", "https://")):  # an absolute URI, as a proxy is asked
        rest = target.split("://", 1)[1]
        path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    if path.split("?")[0] == "/login":
        return _response("200 OK", {"Server": "GuestPortal"}, LOGIN_PAGE)
    orig = f"http://{host or address}{path}"
    return _response("302 Found", {"Location": f"http://{address}/login?orig={orig}", "Server": "GuestPortal"},
                     "<html><body>Redirecting to the login page.</body></html>")


async def _handle(kind: str, address: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await asyncio.wait_for(reader.read(4096), 10)
        if head[:1].isalpha():  # a request: read the rest of its head
            while b"\r\n\r\n" not in head and len(head) < 16384:
                more = await asyncio.wait_for(reader.read(4096), 10)
                if not more:
                    break
                head += more
        else:  # not HTTP (a TLS ClientHello on a plain port): answered like a request for /
            head = b"GET / HTTP/1.1\r\n\r\n"
        lines = head.decode("iso-8859-1").split("\r\n")
        host = next((ln.split(":", 1)[1].strip() for ln in lines[1:] if ln.lower().startswith("host:")), "")
        writer.write(answer(kind, address, lines[0], host))
        await asyncio.wait_for(writer.drain(), 10)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def serve(portal: tuple[str, str], block: tuple[str, str]) -> None:
    """Listen on both addresses until killed."""
    servers = []
    for kind, address, (cert, key) in (("portal", T.PORTAL, portal), ("block", T.BLOCK_PAGE, block)):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

        def handler(r, w, kind=kind, address=address):
            return _handle(kind, address, r, w)

        for port in TLS_PORTS:
            servers.append(await asyncio.start_server(handler, address, port, ssl=context, reuse_address=True,
                                                      ssl_handshake_timeout=10))
        servers.append(await asyncio.start_server(handler, address, HTTP_PORT, reuse_address=True))

    def plain(r, w):
        return _handle("portal", T.PORTAL_PLAIN, r, w)

    for port in (*TLS_PORTS, HTTP_PORT):  # a portal that speaks plain HTTP even on 443
        servers.append(await asyncio.start_server(plain, T.PORTAL_PLAIN, port, reuse_address=True))
    print(f"portal on {T.PORTAL}, block page on {T.BLOCK_PAGE}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--portal-cert", required=True)
    p.add_argument("--portal-key", required=True)
    p.add_argument("--block-cert", required=True)
    p.add_argument("--block-key", required=True)
    a = p.parse_args(argv)
    asyncio.run(serve((a.portal_cert, a.portal_key), (a.block_cert, a.block_key)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
