"""The corpus of hostile bundles: each a crafted file, the passphrase to try, and the reason
`load_bundle` must give when it refuses it.

    from tests.hostile_bundles import corpus
    for case in corpus(): ...                  # Hostile(name, data, reason, passphrase)

    python -m tests.hostile_bundles DIR         # write the corpus to DIR (and DIR/index.json)

Every case starts from a valid bundle of `base_plan()` (secrets encrypted with PASSPHRASE)
and breaks one thing: tar headers are crafted with tarfile or by hand, so a "2 GB" member
is a header that says so, not 2 GB of data.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from installer.fleet import bundle as B
from installer.planning import plan as P

PASSPHRASE = "fleet passphrase 1"
WIFI_SECRET = "Tr0ub4dor&3-floor"
PROXY_SECRET = "p@ss:w#rd![x"
APN_SECRET = "apn-Secr3t!word"
SCRYPT_N = 2 ** 14  # the cheapest cost import accepts: keeps the tests fast


@dataclass(frozen=True)
class Hostile:
    """One hostile bundle and what must be said about it."""

    name: str
    data: bytes
    reason: str                      # a substring of the refusal
    passphrase: str | None = PASSPHRASE


def base_plan() -> P.Plan:
    """A WiFi box behind an authenticating proxy: two secrets, one with URL metacharacters."""
    return P.Plan(
        hostname="edge-01", topology="wifi", renderer="netplan",
        machine_network=P.MachineNetwork(("eno1",), "192.168.50.2/24"),
        uplink=P.Uplink("wlan0", "static", "10.20.0.15/24", "10.20.0.1"),
        wifi=P.Wifi("Plant-Floor", "wpa2-psk", WIFI_SECRET, False),
        dns=P.Dns("custom", ("10.20.0.53",)), ntp=P.Ntp("pool"),
        proxy=P.Proxy("http://proxy.plant.local:3128", "edge", PROXY_SECRET, (".plant.local",)),
        profiles=("machinemetrics",),
        machines=(P.Machine("Lathe 3", "192.168.50.21", "fanuc-focas"),))


def cellular_plan() -> P.Plan:
    """A cellular box with APN credentials (the third kind of secret)."""
    return P.Plan(
        hostname="edge-cell", topology="cellular", renderer="netplan",
        machine_network=P.MachineNetwork(("eno1",), "192.168.60.2/24"),
        uplink=P.Uplink("cdc-wdm0", "dhcp"),
        cellular=P.Cellular("internet", "m2m", APN_SECRET, True, 5000),
        profiles=("machinemetrics",))


def valid_bundle(plan: P.Plan | None = None, passphrase: str | None = PASSPHRASE, report: dict | None = None) -> bytes:
    """A valid bundle (fixed creation time, cheap scrypt)."""
    return B.build_bundle(plan or base_plan(), passphrase, report=report, created=1_700_000_000, version="test",
                          scrypt_n=SCRYPT_N)


def signing_key(seed: int = 1):
    """A fixed Ed25519 key (the corpus is the same on every run)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def signed_bundle(passphrase: str | None = PASSPHRASE, seed: int = 1) -> bytes:
    """A valid bundle signed by signing_key(seed)."""
    return B.build_bundle(base_plan(), passphrase, created=1_700_000_000, version="test", scrypt_n=SCRYPT_N,
                          sign_key=signing_key(seed))


def _signed_cases() -> list[Hostile]:
    """A signed bundle changed as a forger would (digests recomputed, the signature kept, or its
    public key swapped for another's): always refused, whatever the trust or the passphrase."""
    members = members_of(signed_bundle())
    named = dict(members)
    other = dict(members_of(signed_bundle(seed=2)))[B.SIGNATURE_MEMBER]
    mismatch = "the signature does not match manifest.json"

    def with_signature(doc) -> bytes:
        blob = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        return repack([(n, blob if n == B.SIGNATURE_MEMBER else d) for n, d in members])

    sig = json.loads(named[B.SIGNATURE_MEMBER])

    def omit(m: dict) -> None:
        m["secrets"] = {"state": "omitted", "fields": m["secrets"]["fields"]}
        m["members"] = [e for e in m["members"] if e["path"] != B.SECRETS_MEMBER]

    return [
        Hostile("signed-plan-digests-recomputed",
                repack([(n, d.replace(b"proxy.plant.local", b"proxy.evil.example") if n == B.PLAN_MEMBER else d)
                        for n, d in members], refresh=(B.PLAN_MEMBER,)), mismatch),
        Hostile("signed-secrets-downgraded", repack([(n, d) for n, d in members if n != B.SECRETS_MEMBER],
                                                    manifest_edit=omit), mismatch),
        Hostile("signed-file-replaced", repack([(n, b"evil\n" if n == "files/etc/hostname" else d) for n, d in members],
                                               refresh=("files/etc/hostname",)), mismatch),
        Hostile("signature-of-another-bundle", with_signature(other), mismatch),
        Hostile("signature-key-swapped", with_signature(dict(sig, public_key=json.loads(other)["public_key"])),
                mismatch),
        Hostile("signature-wrong-algorithm", with_signature(dict(sig, algorithm="rsa-sha256")),
                "algorithm must be 'ed25519'"),
        Hostile("signature-short-key", with_signature(dict(sig, public_key="AAAA")), "public_key must be 32 bytes"),
        Hostile("signature-not-json", with_signature(b"{\"algorithm\": "), "signature.json is not valid JSON"),
        Hostile("signature-extra-field", with_signature(dict(sig, trusted=True)), "must hold exactly"),
    ]


def members_of(data: bytes) -> list[tuple[str, bytes]]:
    """The members of a bundle, in archive order (the bundle must be valid)."""
    with tarfile.open(fileobj=io.BytesIO(zlib.decompress(data, 31)), mode="r:") as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf.getmembers()]  # type: ignore[union-attr]


def gz(raw: bytes) -> bytes:
    """gzip framing, as bundle export writes it."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    return z.compress(raw) + z.flush()


def tar(entries: list[tuple[tarfile.TarInfo, bytes | None]], fmt: int = tarfile.USTAR_FORMAT) -> bytes:
    """A tar stream of crafted headers (data only for regular files)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for info, data in entries:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def regular(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    """A regular-file entry."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, 1_700_000_000
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    """A non-regular entry: link, device, FIFO or directory."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o644
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    return info, None


def repack(members: list[tuple[str, bytes]], manifest_edit=None, refresh: tuple[str, ...] = ()) -> bytes:
    """Re-pack members, optionally editing the manifest (a function of its dict) and refreshing
    the size and digest of the named members, as a forger who knows the format would."""
    manifest = json.loads(dict(members)[B.MANIFEST])
    for entry in manifest["members"]:
        if entry["path"] in refresh:
            data = dict(members)[entry["path"]]
            entry.update(B._entry(entry["path"], data, entry.get("mode")))
    if manifest_edit is not None:
        manifest_edit(manifest)
    out = [(B.MANIFEST, json.dumps(manifest, indent=1).encode())] + [(n, d) for n, d in members if n != B.MANIFEST]
    return gz(tar([regular(n, d) for n, d in out]))


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]


def _unterminated(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    # Headers and data without tar's end-of-archive blocks, so that more can follow.
    out = b""
    for info, data in entries:
        out += info.tobuf(format=tarfile.USTAR_FORMAT) + data + bytes(-len(data) % tarfile.BLOCKSIZE)
    return out


def _bomb(raw_tar: bytes, zeros: int = 64 << 20) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [z.compress(raw_tar)]
    block = bytes(1 << 20)
    for _ in range(zeros >> 20):
        parts.append(z.compress(block))
    parts.append(z.flush())
    return b"".join(parts)


def _with_pax(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info, data = regular(name, data)
    info.pax_headers = {"comment": "a pax extended header"}
    return info, data


def _declared(name: str, size: int) -> bytes:
    # A header that declares `size` bytes, followed by none of them.
    info = tarfile.TarInfo(name)
    info.size, info.mode = size, 0o600
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def corpus() -> list[Hostile]:
    """Every hostile case, built fresh."""
    good = valid_bundle()
    members = members_of(good)
    named = dict(members)
    manifest_only = _unterminated([regular(B.MANIFEST, named[B.MANIFEST])])
    plain = valid_bundle(passphrase=None)
    plain_members = members_of(plain)
    cases = [
        Hostile("empty", b"", "not gzip-compressed"),
        Hostile("plan-not-bundle", P.dumps(base_plan().redacted()).encode(), "not gzip-compressed"),
        Hostile("truncated-half", good[: len(good) // 2], "is truncated"),
        Hostile("truncated-tail", good[:-5], "is truncated"),
        Hostile("wrong-passphrase", good, "wrong passphrase", passphrase="not the passphrase"),
        # The gzip trailer: CRC-32 of the data, then its length (random flips: the property tests).
        Hostile("flipped-gzip-crc", _flip(good, len(good) - 8), "is damaged: its gzip data does not decode"),
        Hostile("flipped-gzip-length", _flip(good, len(good) - 4), "is damaged: its gzip data does not decode"),
        Hostile("appended-garbage", good + b"garbage", "data after the end of its compressed stream"),
        Hostile("second-gzip-stream", good + gz(b"more"), "data after the end of its compressed stream"),
        Hostile("garbage-after-archive", gz(zlib.decompress(good, 31) + b"X" * 1024),
                "data after the end of its archive"),
        Hostile("garbage-in-last-record", gz(_unterminated([regular(n, d) for n, d in members]) + bytes(1024) + b"X"),
                "data after the end of its archive"),
        Hostile("dotdot-member", repack(members + [("../../etc/cron.d/evil", b"* * * * * root sh\n")]),
                "climbs out with '..'"),
        Hostile("dotdot-inside-files", gz(manifest_only + tar([regular("files/etc/../../x", b"x")])),
                "climbs out with '..'"),
        Hostile("absolute-member", gz(tar([regular(B.MANIFEST, named[B.MANIFEST]),
                                           regular("/etc/cron.d/evil", b"x")])), "absolute path"),
        Hostile("symlink-member", gz(tar([regular(B.MANIFEST, named[B.MANIFEST]),
                                          special("files/etc/hostname", tarfile.SYMTYPE, "/etc/shadow")])),
                "is a symbolic link"),
        Hostile("hardlink-member", gz(tar([regular(B.MANIFEST, named[B.MANIFEST]),
                                           special(B.PLAN_MEMBER, tarfile.LNKTYPE, "/etc/shadow")])),
                "is a hard link"),
        Hostile("device-member", gz(tar([regular(B.MANIFEST, named[B.MANIFEST]),
                                         special("files/etc/null", tarfile.CHRTYPE)])), "is a device node"),
        Hostile("block-device-member", gz(tar([special("files/etc/sda", tarfile.BLKTYPE)])), "is a device node"),
        Hostile("fifo-member", gz(tar([special("files/etc/fifo", tarfile.FIFOTYPE)])), "is a FIFO"),
        Hostile("directory-member", gz(tar([special("files/etc", tarfile.DIRTYPE)])), "is a directory"),
        Hostile("pax-member", gz(tar([_with_pax(B.PLAN_MEMBER, b"version: 1\n")], fmt=tarfile.PAX_FORMAT)),
                "extended (pax) headers"),
        Hostile("declared-2GB", gz(manifest_only + _declared(B.REPORT_MEMBER, 2 ** 31)),
                "declares 2147483648 bytes"),
        Hostile("decompression-bomb", _bomb(zlib.decompress(good, 31)), "decompression bomb"),
        Hostile("duplicate-member", repack(members + [(B.PLAN_MEMBER, named[B.PLAN_MEMBER])]), "appears twice"),
        Hostile("unknown-member", repack(members + [("notes.txt", b"hello")]), "not part of the bundle format"),
        Hostile("missing-manifest", gz(tar([regular(n, d) for n, d in members if n != B.MANIFEST])),
                "has no manifest.json"),
        Hostile("format-version-0", repack(members, lambda m: m.update(format_version=0)),
                "format version 0, older than this edge-installer reads"),
        Hostile("format-version-2", repack(members, lambda m: m.update(format_version=2)),
                "format version 2, newer than this edge-installer reads"),
        Hostile("other-format", repack(members, lambda m: m.update(format="something-else")),
                "not an edge-installer bundle"),
        Hostile("manifest-wrong-checksum", repack(members, lambda m: m["members"][0].update(sha256="0" * 64)),
                "its SHA-256 does not match manifest.json"),
        Hostile("manifest-wrong-size", repack(members, lambda m: m["members"][0].update(size=1)),
                "manifest.json says 1"),
        Hostile("manifest-unlisted-member", repack(members, lambda m: m["members"].pop(1)),
                "is not listed in manifest.json"),
        Hostile("manifest-lists-missing", repack([(n, d) for n, d in members if n != B.PLAN_MEMBER]),
                "'plan.yaml' is listed in manifest.json but missing"),
        Hostile("manifest-huge-scrypt", repack(members, lambda m: m["secrets"]["kdf"].update(n=2 ** 30)),
                "secrets.kdf must be scrypt"),
        Hostile("manifest-duplicate-key", gz(tar([regular(B.MANIFEST, named[B.MANIFEST].replace(
            b'"format": ', b'"format": "x", "format": ', 1))] + [regular(n, d) for n, d in members[1:]])),
                "has the key 'format' twice"),
        Hostile("plan-not-a-plan", repack([(n, b"version: 1\ntopology: mesh\n" if n == B.PLAN_MEMBER else d)
                                           for n, d in plain_members], refresh=(B.PLAN_MEMBER,)),
                "plan.yaml is not a valid plan"),
        Hostile("plan-not-yaml", repack([(n, b"version: [1\n" if n == B.PLAN_MEMBER else d)
                                         for n, d in plain_members], refresh=(B.PLAN_MEMBER,)),
                "plan.yaml is not a valid plan"),
        Hostile("plan-with-secret-in-clear", repack([(n, P.dumps(base_plan()).encode() if n == B.PLAN_MEMBER else d)
                                                     for n, d in plain_members], refresh=(B.PLAN_MEMBER,)),
                "holds wifi.passphrase, proxy.password in clear"),
        Hostile("altered-after-export", repack([(n, d.replace(b"Plant-Floor", b"Evil-Floor") if n == B.PLAN_MEMBER
                                                 else d) for n, d in members], refresh=(B.PLAN_MEMBER,)),
                "wrong passphrase, or the bundle was altered after export"),
    ]
    cases += _signed_cases()
    for name, data in members:
        # One flipped byte in each member, re-packed with the original manifest. The manifest's
        # first byte ("{" -> "z") breaks its JSON; any other member's breaks its digest.
        at = 0 if name == B.MANIFEST else len(data) // 2
        reason = ("manifest.json is not valid JSON" if name == B.MANIFEST
                  else f"member {name!r}: its SHA-256 does not match manifest.json")
        cases.append(Hostile(f"flipped-byte-{name.replace('/', '_')}",
                             gz(tar([regular(n, _flip(d, at) if n == name else d) for n, d in members])), reason))
    return cases


def main(argv: list[str]) -> int:
    """Write the corpus to a directory, with index.json (name -> reason, passphrase)."""
    if len(argv) != 1:
        print("usage: python -m tests.hostile_bundles DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    index = {}
    for case in corpus():
        (out / f"{case.name}.tar.gz").write_bytes(case.data)
        index[case.name] = {"reason": case.reason, "passphrase": case.passphrase}
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    print(f"{len(index)} hostile bundles in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
