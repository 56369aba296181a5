"""CloudLink's OpenVPN server for the lab: Debian's `openvpn` in TCP server mode on the
CloudLink address, port 443, sharing the port with the lab's nginx (`port-share`): a client
that speaks OpenVPN gets the OpenVPN server, one that speaks TLS (HTTPS, /ping) is relayed to
nginx at the cloud address, which picks the certificate by SNI as for every other host. So
cloudlink.balena-cloud.com answers both, as the real one does.

The server's PKI is static and minimal (a CA and a server certificate made with
`cryptography` in the lab's work directory, ECDHE only: `dh none`), and tls-auth is off, so
the server answers any client's hard reset. The tunnel itself (a tun device and a pool of
203.0.113.240/28) lives only in the cloud namespace; no client ever completes a handshake.

`fault_rules()` is the DPI-like firewall of `Lab.block_openvpn()`: TCP segments to port 443
whose payload starts like an OpenVPN client's hard reset (a 2-byte length, then opcode 7 or
10 with key id 0: 0x38 or 0x50) are answered with a TCP reset (or silently dropped); TLS (its
first bytes are 0x16 0x03 ...) passes untouched.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.lab import topology as T
from tests.lab.servers import Service

POOL = "203.0.113.240 255.255.255.240"  # the tunnel's addresses, inside the cloud only


def _usage(**on: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{n: on.get(n, False) for n in names})


def pki(directory: Path) -> tuple[Path, Path, Path]:
    """(ca.crt, server.crt, server.key) under `directory`, made once and kept."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    if ca_file.exists() and cert_file.exists() and key_file.exists():
        return ca_file, cert_file, key_file
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Edge Lab CloudLink VPN CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudlink.balena-cloud.com")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(digital_signature=True, key_agreement=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_file.touch(mode=0o600)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return ca_file, cert_file, key_file


def service(d: Path) -> Service:
    """openvpn on T.OPENVPN:443 (TCP), port-sharing with nginx at the cloud address."""
    root = d / "openvpn"
    ca, cert, key = pki(root)
    conf = root / "server.conf"
    text = f"""# edge-installer lab: CloudLink's OpenVPN server. TCP 443, HTTPS shared with nginx.
proto tcp-server
local {T.OPENVPN}
port 443
dev tun
topology subnet
server {POOL}
ca {ca}
cert {cert}
key {key}
dh none
port-share {T.CLOUD} 443
writepid {d / 'run' / 'openvpn.pid'}
log {d / 'logs' / 'openvpn.log'}
verb 3
"""
    return Service("openvpn", "cloud", ("openvpn", "--cd", str(root), "--config", str(conf)),
                   (("tcp", T.OPENVPN, 443),), files={conf: text})


def fault_rules(action: str = "reset") -> list[str]:
    """nft rules (for an input chain in the cloud) that reset ("reset") or silently drop
    ("drop") OpenVPN to port 443, TLS untouched. `@ih` is the TCP payload: bytes 0-1 the OpenVPN
    packet length, byte 2 opcode << 3 | key id."""
    verdict = "reject with tcp reset" if action == "reset" else "drop"
    return [f"        ip daddr {T.OPENVPN} tcp dport 443 @ih,0,8 0x00 @ih,16,8 {{ 0x38, 0x50 }} {verdict}"]
