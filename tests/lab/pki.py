"""The lab's certificate authorities and server certificates, made with `cryptography`.

Three CAs, as the real world has them: the lab's *public* CA (stands for the web PKI the
vendors' clouds use; a plan trusts it through tls.extra_ca_file), the *DPI* CA of a
TLS-inspecting firewall (trusted by nobody), and the ARM Bootstrap CA with the exact subject
Izuma's bootstrap server is documented with. EC P-256 keys: a whole set takes milliseconds.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PUBLIC_CA_NAME = "Edge Lab Public Root CA"
DPI_CA_NAME = "Plant DPI Inspection CA"
# Seed 002 ("Intrusive firewalls"): the bootstrap server's issuer, most significant RDN first.
ARM_CA_ATTRS = ((NameOID.COUNTRY_NAME, "GB"), (NameOID.STATE_OR_PROVINCE_NAME, "Cambridgeshire"),
                (NameOID.LOCALITY_NAME, "Cambridge"), (NameOID.ORGANIZATION_NAME, "ARM Ltd"),
                (NameOID.COMMON_NAME, "ARM Bootstrap CA"))
WRONG_NAME = "portal.example.net"  # what the "wrong-name" server's certificate is for


@dataclass(frozen=True)
class Issuer:
    """A CA: its certificate and key, for signing leaves."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_ca(attrs: Sequence[tuple[x509.ObjectIdentifier, str]]) -> Issuer:
    """A self-signed root CA with `attrs` as its subject (in the order given)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return Issuer(cert, key)


def make_leaf(issuer: Issuer, key: ec.EllipticCurvePrivateKey, names: Sequence[str], *,
              common_name: str | None = None, expired: bool = False) -> bytes:
    """Certificate PEM for a server known by `names` (DNS names or IPs), with key `key`.

    An expired certificate ended 30 days ago; a valid one runs from a day ago for a year, so
    a client whose clock is a few hours off still accepts it.
    """
    now = _now()
    if expired:
        start, end = now - dt.timedelta(days=90), now - dt.timedelta(days=30)
    else:
        start, end = now - dt.timedelta(days=1), now + dt.timedelta(days=365)
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    cn = common_name or names[0]
    # A common name holds at most 64 characters; longer names (some S3 bucket hosts) get an
    # empty subject and a critical SAN, as public CAs issue them (RFC 5280, 4.2.1.6).
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if len(cn) <= 64 else [])
    cert = (x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(sans), critical=len(subject) == 0)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                           critical=False)
            # What a public CA's leaf carries besides (and what makes a real server's first
            # flight larger than a small-MTU hop lets through: see Lab.mtu_blackhole).
            .add_extension(x509.AuthorityInformationAccess([
                x509.AccessDescription(x509.AuthorityInformationAccessOID.OCSP,
                                       x509.UniformResourceIdentifier("http://ocsp.edge-lab.example")),
                x509.AccessDescription(x509.AuthorityInformationAccessOID.CA_ISSUERS,
                                       x509.UniformResourceIdentifier("http://certs.edge-lab.example/ca.der"))]),
                critical=False)
            .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                [x509.UniformResourceIdentifier("http://crl.edge-lab.example/ca.crl")], None, None, None)]),
                critical=False)
            .add_extension(x509.CertificatePolicies([x509.PolicyInformation(
                x509.ObjectIdentifier("2.23.140.1.2.1"), None)]), critical=False)
            .sign(issuer.key, hashes.SHA256()))
    return _pem(cert)


DEFAULT_CERT = "_default"  # file stem of the certificate for clients that send no known SNI


@dataclass(frozen=True)
class CertSet:
    """One server's certificates for one kind of port: `<directory>/<sni name>.crt` for every
    name, `<directory>/_default.crt` for everything else, all with the key `key`."""

    directory: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """Where the lab's CA files and server certificates were written."""

    public_ca: Path
    dpi_ca: Path
    arm_ca: Path
    names: tuple[str, ...]                       # the DNS names with a certificate of their own
    servers: dict[str, dict[str, CertSet]]       # "cloud"|"dpi"|"expired"|"wrong-name" -> "https"|"coap"


def build(directory: Path, names: Sequence[str], addresses: Sequence[str] = ()) -> Pki:
    """Write the three CAs and every server certificate under `directory`.

    Every DNS name in `names` gets a certificate of its own on each server, chosen by SNI as
    a real server (or a DPI appliance forging certificates) would; clients without SNI get
    a certificate for all names and `addresses`. The "cloud" server's HTTPS certificates are
    the public CA's; on 5684 (CoAP over TLS) the ARM Bootstrap CA's. The "dpi" server's are
    the DPI CA's on every port. "expired" keeps the right issuers but ended 30 days ago;
    "wrong-name" presents a certificate for WRONG_NAME only, whatever the client asks.
    """
    directory.mkdir(parents=True, exist_ok=True)
    public = make_ca([(NameOID.ORGANIZATION_NAME, "Edge Lab Trust Services"),
                      (NameOID.COMMON_NAME, PUBLIC_CA_NAME)])
    dpi = make_ca([(NameOID.ORGANIZATION_NAME, "Plant IT Security"),
                   (NameOID.COMMON_NAME, DPI_CA_NAME)])
    arm = make_ca(ARM_CA_ATTRS)
    for stem, ca in {"public-ca": public, "dpi-ca": dpi, "arm-bootstrap-ca": arm}.items():
        (directory / f"{stem}.pem").write_bytes(_pem(ca.cert))
    plan = {  # server -> {port kind: (issuer, expired, wrong name)}
        "cloud": {"https": (public, False, False), "coap": (arm, False, False)},
        "dpi": {"https": (dpi, False, False), "coap": (dpi, False, False)},
        "expired": {"https": (public, True, False), "coap": (arm, True, False)},
        "wrong-name": {"https": (public, False, True), "coap": (arm, False, True)},
    }
    servers: dict[str, dict[str, CertSet]] = {}
    for server, kinds in plan.items():
        servers[server] = {}
        for kind, (ca, expired, wrong) in kinds.items():
            d = directory / server / kind
            d.mkdir(parents=True, exist_ok=True)
            key = ec.generate_private_key(ec.SECP256R1())
            key_path = d / "key.pem"
            key_path.touch(mode=0o600)
            key_path.write_bytes(_key_pem(key))
            # The vendors' servers send their chain (the leaf and its issuer), as real ones do;
            # the others (a DPI appliance's forgeries, ...) the leaf alone.
            chain = _pem(ca.cert) if server == "cloud" else b""
            if wrong:
                pem = make_leaf(ca, key, [WRONG_NAME]) + chain
                for n in [*names, DEFAULT_CERT]:
                    (d / f"{n}.crt").write_bytes(pem)
            else:
                for n in names:
                    (d / f"{n}.crt").write_bytes(make_leaf(ca, key, [n], expired=expired) + chain)
                (d / f"{DEFAULT_CERT}.crt").write_bytes(make_leaf(
                    ca, key, [*names, *addresses], common_name=f"Edge Lab {server} server",
                    expired=expired) + chain)
            servers[server][kind] = CertSet(d, key_path)
    return Pki(directory / "public-ca.pem", directory / "dpi-ca.pem",
               directory / "arm-bootstrap-ca.pem", tuple(names), servers)
