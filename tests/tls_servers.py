"""Loopback stand-ins for the TLS checks' tests: a small PKI and servers on 127.0.0.1.

The network lab (tests/lab) proves the checks end to end inside namespaces; these servers
let the same checks be tested in milliseconds, without root, for the cases the lab has no
switch for (a reset right after ClientHello, a certificate not yet valid, a self-signed
leaf, a silent handshake). Nothing here listens anywhere but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PUBLIC_CA = "Test Public Root CA"
DPI_CA = "Plant DPI Inspection CA"
ARM_DN = [(NameOID.COUNTRY_NAME, "GB"), (NameOID.STATE_OR_PROVINCE_NAME, "Cambridgeshire"),
          (NameOID.LOCALITY_NAME, "Cambridge"), (NameOID.ORGANIZATION_NAME, "ARM Ltd"),
          (NameOID.COMMON_NAME, "ARM Bootstrap CA")]
NAMES = ["api.machinemetrics.com", "cloudlink.balena-cloud.com", "app.machinemetrics.com",
         "bootstrap.us-east-1.mbedcloud.com", "iem.plant.local"]

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _name(pairs) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in pairs])


@dataclass
class Issuer:
    name: x509.Name
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


class Pki:
    """CAs and leaf certificates written under `root`, and server contexts for them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.public = self._ca([(NameOID.COMMON_NAME, PUBLIC_CA)])
        self.dpi = self._ca([(NameOID.ORGANIZATION_NAME, "Plant IT"), (NameOID.COMMON_NAME, DPI_CA)])
        self.arm = self._ca(ARM_DN)
        # An impostor: the right CN, the wrong organisation.
        self.fake_arm = self._ca([(NameOID.ORGANIZATION_NAME, "Plant IT"), (NameOID.COMMON_NAME, "ARM Bootstrap CA")])
        self.ca_file = root / "public-ca.pem"
        self.ca_file.write_bytes(self.public.cert.public_bytes(serialization.Encoding.PEM))
        self.dpi_ca_file = root / "dpi-ca.pem"
        self.dpi_ca_file.write_bytes(self.dpi.cert.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def _ca(pairs) -> Issuer:
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name(pairs)
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=30)).not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return Issuer(name, key, cert)

    def server_context(self, issuer: str = "public", names=NAMES, *, expired: bool = False,
                       future: bool = False, self_signed: bool = False) -> ssl.SSLContext:
        """A server context presenting a leaf for `names` from CA `issuer` (public, dpi, arm,
        fake_arm), expired, not yet valid, or self-signed."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=90)
        if expired:
            start, end = now - dt.timedelta(days=400), now - dt.timedelta(days=35)
        if future:
            start, end = now + dt.timedelta(days=20), now + dt.timedelta(days=400)
        subject = _name([(NameOID.COMMON_NAME, names[0])])
        signer = Issuer(subject, key, None) if self_signed else getattr(self, issuer)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(signer.name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(signer.key, hashes.SHA256()))
        stem = f"{issuer}-{names[0]}-{expired}-{future}-{self_signed}"
        cert_file, key_file = self.root / f"{stem}.crt", self.root / f"{stem}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)  # the leaf alone: like CoAP services, no chain
        return ctx


@contextlib.asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """Serve `handler` on 127.0.0.1 (TLS with `tls`); yields the port."""
    async def guarded(reader, writer):
        try:
            await handler(reader, writer)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(guarded, "127.0.0.1", 0, ssl=tls,
                                        ssl_handshake_timeout=5 if tls else None)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


def free_port() -> int:
    """A loopback port nothing listens on (connecting is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_answer(status: int = 200, extra: str = "") -> Handler:
    """A handler answering every request with `status`."""
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        body = b"pong"
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n"
                     .encode() + body)
        await writer.drain()
    return handle


def say(data: bytes, then_wait: bool = True) -> Handler:
    """A handler that sends `data` at once (a NATS INFO line, or something else)."""
    async def handle(reader, writer):
        if data:
            writer.write(data)
            await writer.drain()
        if then_wait:
            await reader.read(1000)
    return handle


def nats(info: bytes) -> Handler:
    """A NATS-like server: `info` (an INFO line) at once, then PONG to every PING; CONNECT and
    anything else is read and ignored."""
    async def handle(reader, writer):
        writer.write(info)
        await writer.drain()
        while line := await reader.readline():
            if line.strip().upper() == b"PING":
                writer.write(b"PONG\r\n")
                await writer.drain()
    return handle


async def plain_http(reader, writer) -> None:
    """A plain-text web server on a TLS port: reads the ClientHello as a bad request, says 400."""
    await reader.read(65536)
    writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()


async def silent(reader, writer) -> None:
    """Accept and say nothing until the client goes."""
    while await reader.read(65536):
        pass


async def reset_after_hello(reader, writer) -> None:
    """Read the ClientHello, then reset (RST): what a VPN-blocking firewall does."""
    await reader.read(100)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def close_after_hello(reader, writer) -> None:
    """Read the whole ClientHello, then close (FIN; unread data would make it a RST)."""
    await reader.read(65536)


def proxy(ports: dict[int, int], user: str | None = None, password: str | None = None,
          refuse: int | None = None) -> Handler:
    """An HTTP CONNECT proxy to 127.0.0.1: CONNECT host:P goes to 127.0.0.1:ports[P]. With
    `user`, Basic credentials are required (407 otherwise); `refuse` answers every CONNECT so."""
    expected = None
    if user is not None:
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    async def handle(reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode("iso-8859-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
        method, target, _ = head[0].split(" ", 2)
        if refuse:
            writer.write(f"HTTP/1.1 {refuse} Forbidden\r\nContent-Length: 0\r\n\r\n".encode())
            return await writer.drain()
        if expected and headers.get("proxy-authorization") != expected:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b"Proxy-Authenticate: Basic realm=\"lab\"\r\nContent-Length: 0\r\n\r\n")
            return await writer.drain()
        port = ports[int(target.rsplit(":", 1)[1])]
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    return handle
