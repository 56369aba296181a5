"""Bundles: one file that carries a box's answers to the next boxes of a fleet.

A bundle holds the plan (secrets removed), the files rendered for it (secrets masked), the
last check report when there is one, the secrets encrypted with a passphrase (or nothing,
when exported without them) and a manifest naming every member with its size and SHA-256.

The container is tar (ustar) compressed with gzip, not zip. tar+gzip is one stream with one
header per member: zip has two (local headers and the central directory) that can disagree,
which is how crafted archives show one reader a different file than another. One gzip stream
also compresses the similar YAML members together, and any box or IT desk can list it with
`tar tzf`. tar's dangers (links, devices, `..`, absolute paths, huge declared sizes) are
exactly what `load_bundle` refuses: it reads the stream with a cap on every member and on the
whole decompressed stream, keeps members in memory and never extracts anything to disk.

Secrets: scrypt derives a key from the passphrase, AES-256-GCM encrypts them, and the
manifest (every member's digest, the KDF parameters, the salt and nonce) is the GCM
associated data, so a bundle whose members were swapped after export does not decrypt.

Signatures: `export --sign-key KEY` adds `signature.json`, an Ed25519 signature over the exact
bytes of manifest.json. The manifest lists every other member's size and SHA-256 and the
secrets' state (none, omitted, encrypted with its KDF parameters), so the signature covers all
of them; signature.json itself is never listed in the manifest. Whether a signer is trusted is
the caller's decision (`trust_verdict`): the keys in TRUST_FILE on the box, plus any given
(installer/fleet/keys.py reads them, and makes and reads the signing key).
A bad signature is always refused.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import re
import stat
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from installer.fleet.archive import ArchiveError, pack, read_archive
from installer.fleet.keys import SIGNATURE_ALGORITHM, TRUST_FILE, fingerprint, raw_public_key
from installer.planning import plan as planmod
from installer.planning.plan import SECRET_FIELDS, Plan
from installer.render import RenderedFile, Target, render

if TYPE_CHECKING:  # cryptography is imported where it is used: it costs start-up time
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

FORMAT = "edge-installer-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PLAN_MEMBER = "plan.yaml"
REPORT_MEMBER = "report.json"
SECRETS_MEMBER = "secrets.enc"
SIGNATURE_MEMBER = "signature.json"
# What is signed: this prefix, then manifest.json's bytes (so a signature means nothing elsewhere).
_SIGNED_PREFIX = b"edge-installer-bundle-signature-v1\n"
FILES_PREFIX = "files/"

# A bundle is a few KB; these caps are far above any real one and far below harm.
MAX_FILE_BYTES = 8 << 20          # the compressed file on disk
MAX_MEMBER_BYTES = 4 << 20        # one member, as declared in its header and as read
MAX_TOTAL_BYTES = 16 << 20        # everything the gzip stream decompresses to
MAX_MEMBERS = 64

# scrypt: 2**15 x 8 x 128 B = 32 MiB of memory, ~0.1 s on a box. Import accepts a range, so
# a later export may raise the cost, but not so far that a crafted manifest exhausts memory.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 15, 8, 1
_SCRYPT_N_RANGE = (2 ** 14, 2 ** 17)
MIN_PASSPHRASE = 8

_FILE_PATH = re.compile(r"^files/etc(/[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*)+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BundleError(Exception):
    """A bundle refused: the message is one line saying why."""


@dataclass(frozen=True)
class LoadedBundle:
    """A verified bundle: the plan (with its secrets when they were decrypted) and the rest.

    `missing_secrets` lists the secret fields the exported plan had that `plan` lacks (left
    out at export, or no passphrase given): the wizard asks for them, a fleet needs them.
    `secrets_present` is True when the bundle's encrypted secrets were decrypted into `plan`.
    """

    plan: Plan
    secrets_present: bool
    missing_secrets: list[str]
    report: dict[str, Any] | None
    manifest: dict[str, Any]
    files: list[RenderedFile] = field(default_factory=list)  # as rendered at export, secrets masked
    signer: bytes | None = None  # the raw Ed25519 public key of a valid signature; None: unsigned
    sealed: bytes | None = field(default=None, repr=False)  # the encrypted secrets, kept for unlock()

    @property
    def target(self) -> Target:
        """What the bundled files were rendered for (the first box's stack)."""
        t = self.manifest["target"]
        return Target(netplan_version=_version_tuple(t["netplan_version"]), networkmanager=t["networkmanager"],
                      cloud_init=t["cloud_init"])

    @property
    def secrets_locked(self) -> bool:
        """The bundle holds secrets encrypted and they were not decrypted (no passphrase given)."""
        return self.manifest.get("secrets", {}).get("state") == "encrypted" and not self.secrets_present

    def per_box_fields(self) -> list[str]:
        """The fields to ask for on the next box (see `per_box_fields`)."""
        return per_box_fields(self.plan, self.missing_secrets)

    def unlock(self, passphrase: str) -> dict[str, str]:
        """The secrets the bundle holds encrypted, decrypted with passphrase (the wizard asks for it
        after the bundle was verified); BundleError for a wrong passphrase. {} when none are encrypted."""
        if self.manifest.get("secrets", {}).get("state") != "encrypted" or self.sealed is None:
            return {}
        return _decrypt(self.manifest, self.sealed, passphrase)


def per_box_fields(plan: Plan, missing_secrets: list[str] | None = None) -> list[str]:
    """Field paths that must differ per box or are missing: what the wizard asks after a bundle.

    hostname, the machine network's address, the uplink's address and gateway when static,
    each port bound by MAC (`ports.eno1.mac`), and every missing secret (given, or when None:
    the WiFi passphrase a WiFi plan lacks).
    """
    fields = ["hostname"]
    if plan.machine_network is not None:
        fields.append("machine_network.address")
    if plan.uplink is not None and plan.uplink.ipv4 == "static":
        fields += ["uplink.address", "uplink.gateway"]
    # A MAC belongs to one box: the next box's port has its own (a driver or path binding
    # holds for the whole box model and needs nothing per box).
    fields += [f"ports.{p.name}.mac" for p in plan.ports if p.mac is not None]
    if missing_secrets is None:
        missing_secrets = []
        w = plan.wifi
        if w is not None and w.security.endswith("enterprise"):
            if w.eap_method == "peap" and not w.eap_password:
                missing_secrets.append("wifi.eap_password")
        elif w is not None and not w.passphrase:
            missing_secrets.append("wifi.passphrase")
    return fields + [s for s in SECRET_FIELDS if s in missing_secrets]


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """True when the file starts like a bundle (gzip magic) rather than a plan (YAML text)."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError:
        return False


def split_secrets(plan: Plan) -> tuple[Plan, dict[str, str]]:
    """The plan without its secrets, and the secrets by field path."""
    secrets: dict[str, str] = {}
    for path in SECRET_FIELDS:
        section, key = path.split(".")
        sec = getattr(plan, section)
        if sec is not None and getattr(sec, key) is not None:
            secrets[path] = getattr(sec, key)
            plan = dataclasses.replace(plan, **{section: dataclasses.replace(sec, **{key: None})})
    return plan, secrets


def merge_secrets(plan: Plan, secrets: dict[str, str]) -> Plan:
    """The plan with the given secret fields filled in."""
    for path, value in secrets.items():
        section, key = path.split(".")
        sec = getattr(plan, section)
        if sec is not None:
            plan = dataclasses.replace(plan, **{section: dataclasses.replace(sec, **{key: value})})
    return plan


# ---------------------------------------------------------------------------------------
# Export.

_ANY_TARGET = Target()  # the renderers' default box


def build_bundle(plan: Plan, passphrase: str | None, *, report: dict[str, Any] | None = None,
                 target: Target = _ANY_TARGET, created: float | None = None, version: str | None = None,
                 scrypt_n: int = SCRYPT_N, sign_key: Ed25519PrivateKey | None = None) -> bytes:
    """The bytes of a bundle for a validated plan. passphrase None leaves the secrets out.

    sign_key (an Ed25519PrivateKey) adds signature.json over the manifest; the key itself
    never enters the bundle, only its public half.
    """
    created = time.time() if created is None else created
    bare, secrets = split_secrets(plan)
    members: list[tuple[str, bytes, str | None]] = [(PLAN_MEMBER, planmod.dumps(bare).encode("utf-8"), None)]
    for f in render(plan.redacted(), target):
        members.append((FILES_PREFIX + f.path.lstrip("/"), f.content, f"{f.mode:04o}"))
    if report is not None:
        members.append((REPORT_MEMBER, json.dumps(redact_report(report, list(secrets.values())), indent=1,
                                                  ensure_ascii=False).encode("utf-8"), None))
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
        "edge_installer_version": version or installer_version(),
        "target": {"netplan_version": ".".join(str(x) for x in target.netplan_version),
                   "networkmanager": target.networkmanager, "cloud_init": target.cloud_init},
        "members": [_entry(name, data, mode) for name, data, mode in members],
        "secrets": {"state": "none", "fields": sorted(secrets, key=SECRET_FIELDS.index)},
    }
    if secrets and passphrase is None:
        manifest["secrets"]["state"] = "omitted"
    elif secrets and passphrase is not None:
        salt, nonce = os.urandom(16), os.urandom(12)
        manifest["secrets"].update({
            "state": "encrypted", "member": SECRETS_MEMBER,
            "kdf": {"name": "scrypt", "n": scrypt_n, "r": SCRYPT_R, "p": SCRYPT_P, "length": 32,
                    "salt": base64.b64encode(salt).decode()},
            "cipher": {"name": "AES-256-GCM", "nonce": base64.b64encode(nonce).decode()},
        })
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key = _derive(passphrase, manifest["secrets"]["kdf"], salt)
        payload = json.dumps(secrets, sort_keys=True).encode("utf-8")
        payload += b" " * (-len(payload) % 64)  # the ciphertext's size does not tell a secret's length
        sealed = AESGCM(key).encrypt(nonce, payload, _associated_data(manifest))
        members.append((SECRETS_MEMBER, sealed, None))
        manifest["members"].append(_entry(SECRETS_MEMBER, sealed, None))
    manifest_bytes = json.dumps(manifest, indent=1).encode("utf-8")
    if sign_key is not None:
        members.insert(0, (SIGNATURE_MEMBER, _signature_member(sign_key, manifest_bytes), None))
    members.insert(0, (MANIFEST, manifest_bytes, None))
    return pack(members, int(created))


def export_bundle(plan: Plan, out: str | os.PathLike[str], passphrase: str | None, **kwargs: Any) -> dict[str, Any]:
    """Write a bundle file (atomically, mode 0600) and return its manifest."""
    from installer.writing.writer import atomic_write

    data = build_bundle(plan, passphrase, **kwargs)
    atomic_write(Path(out), data, 0o600)
    manifest: dict[str, Any] = json.loads(read_members(data)[MANIFEST])  # as build_bundle wrote it: an object
    return manifest


def redact_report(report: Any, secrets: list[str]) -> Any:
    """The report with every secret (however short, as typed or percent-encoded), any password
    inside a URL and any HTTP Basic credentials masked (installer.planning.redact)."""
    from installer.planning.redact import masker

    mask = masker(secrets)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return mask(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {walk(k): walk(v) for k, v in value.items()}
        return value

    return walk(report)


def installer_version() -> str:
    """edge-installer's version as installed, for the manifest."""
    try:
        from importlib.metadata import version

        return version("edge-installer")
    except Exception:  # not installed (run from a checkout): still export
        return "unknown"


def _entry(name: str, data: bytes, mode: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if mode is not None:
        entry["mode"] = mode
    return entry


def _associated_data(manifest: dict[str, Any]) -> bytes:
    # Everything the manifest says except the entry of the ciphertext itself.
    bound = dict(manifest)
    bound["members"] = [m for m in manifest["members"] if m.get("path") != SECRETS_MEMBER]
    return json.dumps(bound, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _derive(passphrase: str, kdf: dict[str, Any], salt: bytes) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    return Scrypt(salt=salt, length=32, n=kdf["n"], r=kdf["r"], p=kdf["p"]).derive(secret)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


# ---------------------------------------------------------------------------------------
# Import: read with caps, then check the manifest, then decrypt.

def load_bundle(path: str | os.PathLike[str], passphrase: str | None) -> LoadedBundle:
    """Read and verify a bundle file; raise BundleError (one line) for anything not a valid bundle."""
    p = Path(path)
    try:
        # O_NONBLOCK: a FIFO given as the bundle is refused instead of waiting for a writer.
        with os.fdopen(os.open(p, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            st = os.fstat(f.fileno())
            if stat.S_ISDIR(st.st_mode):
                raise BundleError("is a directory; give the bundle file")
            if not stat.S_ISREG(st.st_mode):
                raise BundleError("is not a regular file (a device, FIFO or socket); give the bundle file")
            if st.st_size > MAX_FILE_BYTES:
                raise BundleError(f"is {st.st_size} bytes; a bundle is at most {MAX_FILE_BYTES} "
                                  "(a real one is a few KB): refused without reading it")
            members = _members_of(f)
    except FileNotFoundError:
        raise BundleError("does not exist") from None
    except IsADirectoryError:
        raise BundleError("is a directory; give the bundle file") from None
    except OSError as e:
        raise BundleError(f"cannot be read: {e.strerror}") from None
    return verify_members(members, passphrase)


def loads_bundle(data: bytes, passphrase: str | None) -> LoadedBundle:
    """`load_bundle` for bytes already in memory."""
    if len(data) > MAX_FILE_BYTES:
        raise BundleError(f"is {len(data)} bytes; a bundle is at most {MAX_FILE_BYTES}")
    return verify_members(read_members(data), passphrase)


def read_members(data: bytes) -> dict[str, bytes]:
    """The members of a bundle's archive, checked for shape (paths, types, sizes), not content."""
    return _members_of(io.BytesIO(data))


def _members_of(raw: BinaryIO) -> dict[str, bytes]:
    try:
        return read_archive(raw, member_ok=_member_name_ok, max_member=MAX_MEMBER_BYTES,
                            max_total=MAX_TOTAL_BYTES, max_members=MAX_MEMBERS,
                            formats=f"{MANIFEST}, {SIGNATURE_MEMBER}, {PLAN_MEMBER}, {REPORT_MEMBER}, "
                                    f"{SECRETS_MEMBER} and files/etc/...")
    except ArchiveError as e:
        raise BundleError(str(e)) from None


def _member_name_ok(name: str) -> bool:
    return (name in (MANIFEST, PLAN_MEMBER, REPORT_MEMBER, SECRETS_MEMBER, SIGNATURE_MEMBER)
            or bool(_FILE_PATH.match(name)))


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]


def _strict_json(data: bytes, what: str) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise BundleError(f"{what} has the key {k!r} twice")
            out[k] = v
        return out

    def constant(name: str) -> Any:
        raise BundleError(f"{what} holds {name}, which is not JSON")

    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
    except UnicodeDecodeError:
        raise BundleError(f"{what} is not UTF-8 text") from None
    except (ValueError, RecursionError) as e:
        raise BundleError(f"{what} is not valid JSON ({_one_line(e)})") from None


_MANIFEST_KEYS = {"format", "format_version", "created", "edge_installer_version", "target", "members", "secrets"}


def verify_members(members: dict[str, bytes], passphrase: str | None) -> LoadedBundle:
    """Check members against their manifest, read the plan, decrypt the secrets; or BundleError."""
    if MANIFEST not in members:
        raise BundleError(f"has no {MANIFEST}: not an edge-installer bundle")
    signer = _verify_signature(members)  # before anything else is believed
    manifest = _strict_json(members[MANIFEST], MANIFEST)
    _check_manifest(manifest)
    listed = {m["path"]: m for m in manifest["members"]}
    for name, data in members.items():
        if name in (MANIFEST, SIGNATURE_MEMBER):
            continue
        entry = listed.get(name)
        if entry is None:
            raise BundleError(f"member {name!r} is not listed in {MANIFEST}")
        if entry["size"] != len(data):
            raise BundleError(f"member {name!r} is {len(data)} bytes; {MANIFEST} says {entry['size']}")
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise BundleError(f"member {name!r}: its SHA-256 does not match {MANIFEST} (altered or damaged)")
    for name in listed:
        if name not in members:
            raise BundleError(f"member {name!r} is listed in {MANIFEST} but missing")

    try:
        plan = planmod.loads(members[PLAN_MEMBER], PLAN_MEMBER)
    except planmod.PlanError as e:
        raise BundleError(f"{PLAN_MEMBER} is not a valid plan: {_first(e.errors)}") from None
    in_clear = [path for path in SECRET_FIELDS if plan.field(path) is not None]
    if in_clear:
        raise BundleError(f"{PLAN_MEMBER} holds {', '.join(in_clear)} in clear; a bundle never does")

    secrets_meta = manifest["secrets"]
    fields = list(secrets_meta["fields"])
    decrypted: dict[str, str] = {}
    if secrets_meta["state"] == "encrypted" and passphrase is not None:
        decrypted = _decrypt(manifest, members[SECRETS_MEMBER], passphrase)
        plan = merge_secrets(plan, decrypted)
    missing = [f for f in fields if f not in decrypted]

    from installer.planning.validate import validate

    errors = [e for e in validate(plan) if e.field not in missing]
    if errors:
        raise BundleError(f"{PLAN_MEMBER} is not a valid plan: {_first(errors)}")
    report = None
    if REPORT_MEMBER in members:
        report = _strict_json(members[REPORT_MEMBER], REPORT_MEMBER)
        if not isinstance(report, dict):
            raise BundleError(f"{REPORT_MEMBER} is not a check report (a JSON object)")
    files = [RenderedFile("/" + name[len(FILES_PREFIX):], members[name], int(listed[name]["mode"], 8),
                          "as rendered at export (secrets masked)")
             for name in listed if name.startswith(FILES_PREFIX)]
    return LoadedBundle(plan=plan, secrets_present=bool(decrypted), missing_secrets=missing, report=report,
                        manifest=manifest, files=files, signer=signer, sealed=members.get(SECRETS_MEMBER))


def _first(errors: Sequence[object]) -> str:
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{errors[0]}{more}"


def _decrypt(manifest: dict[str, Any], sealed: bytes, passphrase: str) -> dict[str, str]:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    meta = manifest["secrets"]
    key = _derive(passphrase, meta["kdf"], base64.b64decode(meta["kdf"]["salt"]))
    try:
        payload = AESGCM(key).decrypt(base64.b64decode(meta["cipher"]["nonce"]), sealed, _associated_data(manifest))
    except InvalidTag:
        raise BundleError("its secrets do not decrypt: wrong passphrase, or the bundle was altered "
                          "after export") from None
    secrets = _strict_json(payload, SECRETS_MEMBER)
    if (not isinstance(secrets, dict) or sorted(secrets) != sorted(meta["fields"])
            or not all(isinstance(v, str) for v in secrets.values())):
        raise BundleError(f"{SECRETS_MEMBER} does not hold the secrets {MANIFEST} lists")
    return secrets


def _check_manifest(m: Any) -> None:
    def bad(what: str) -> BundleError:
        return BundleError(f"{MANIFEST}: {what}")

    if not isinstance(m, dict):
        raise bad("is not a JSON object")
    if m.get("format") != FORMAT:
        raise BundleError(f"is not an edge-installer bundle ({MANIFEST} names format {m.get('format')!r}, "
                          f"not {FORMAT!r})")
    version = m.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise bad(f"format_version must be a whole number, got {version!r}")
    if version > FORMAT_VERSION:
        raise BundleError(f"is bundle format version {version}, newer than this edge-installer reads "
                          f"(version {FORMAT_VERSION}): use a newer edge-installer")
    if version < FORMAT_VERSION:
        raise BundleError(f"is bundle format version {version}, older than this edge-installer reads "
                          f"(version {FORMAT_VERSION}): export it again with a current edge-installer")
    unknown = sorted(set(m) - _MANIFEST_KEYS)
    missing = sorted(_MANIFEST_KEYS - set(m))
    if unknown or missing:
        raise bad(f"unknown key {unknown[0]!r}" if unknown else f"missing key {missing[0]!r}")
    if not isinstance(m["created"], str) or not isinstance(m["edge_installer_version"], str):
        raise bad("created and edge_installer_version must be text")
    t = m["target"]
    if (not isinstance(t, dict) or set(t) != {"netplan_version", "networkmanager", "cloud_init"}
            or not isinstance(t["netplan_version"], str)
            or not re.fullmatch(r"\d{1,4}(\.\d{1,4}){1,3}", t["netplan_version"])
            or not isinstance(t["networkmanager"], bool) or not isinstance(t["cloud_init"], bool)):
        raise bad("target must be {netplan_version: 'X.Y', networkmanager: true|false, cloud_init: true|false}")
    if not isinstance(m["members"], list) or len(m["members"]) > MAX_MEMBERS:
        raise bad(f"members must be a list of at most {MAX_MEMBERS} entries")
    paths = set()
    for i, e in enumerate(m["members"]):
        if not isinstance(e, dict) or not {"path", "size", "sha256"} <= set(e) <= {"path", "size", "sha256", "mode"}:
            raise bad(f"members[{i}] must be {{path, size, sha256}} (and mode for files/)")
        path, size, digest = e["path"], e["size"], e["sha256"]
        if not isinstance(path, str) or not _member_name_ok(path) or path in (MANIFEST, SIGNATURE_MEMBER):
            raise bad(f"members[{i}].path {path!r} is not a member of the bundle format")
        if path in paths:
            raise bad(f"members[{i}].path {path!r} is listed twice")
        paths.add(path)
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_MEMBER_BYTES:
            raise bad(f"members[{i}].size must be a whole number of bytes up to {MAX_MEMBER_BYTES}")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise bad(f"members[{i}].sha256 must be 64 lowercase hex digits")
        is_file = path.startswith(FILES_PREFIX)
        mode = e.get("mode")
        if is_file != (mode is not None) or (
                is_file and not (isinstance(mode, str) and re.fullmatch(r"0[0-7]{3}", mode))):
            raise bad(f"members[{i}].mode must be given, as '0600' or '0644', for files/ members and only for them")
    if PLAN_MEMBER not in paths:
        raise bad(f"lists no {PLAN_MEMBER}")
    _check_secrets_meta(m["secrets"], SECRETS_MEMBER in paths, bad)


def _check_secrets_meta(s: Any, has_member: bool, bad: Callable[[str], BundleError]) -> None:
    if not isinstance(s, dict) or s.get("state") not in ("none", "omitted", "encrypted"):
        raise bad("secrets.state must be none, omitted or encrypted")
    fields = s.get("fields")
    if (not isinstance(fields, list) or any(f not in SECRET_FIELDS for f in fields)
            or len(set(fields)) != len(fields)):
        raise bad(f"secrets.fields must list distinct secret fields among {', '.join(SECRET_FIELDS)}")
    state = s["state"]
    if state != "encrypted":
        if set(s) != {"state", "fields"} or has_member:
            raise bad(f"secrets: state {state} has no key material and no {SECRETS_MEMBER}")
        if (state == "none") != (not fields):
            raise bad("secrets: state none lists no fields, state omitted lists the fields left out")
        return
    if set(s) != {"state", "fields", "member", "kdf", "cipher"} or s["member"] != SECRETS_MEMBER or not has_member:
        raise bad(f"secrets: state encrypted needs member {SECRETS_MEMBER}, kdf and cipher")
    if not fields:
        raise bad("secrets: state encrypted lists the fields it holds")
    kdf, cipher = s["kdf"], s["cipher"]
    if (not isinstance(kdf, dict) or set(kdf) != {"name", "n", "r", "p", "length", "salt"} or kdf["name"] != "scrypt"
            or kdf["r"] != SCRYPT_R or kdf["p"] != SCRYPT_P or kdf["length"] != 32
            or not isinstance(kdf["n"], int) or isinstance(kdf["n"], bool)
            or not _SCRYPT_N_RANGE[0] <= kdf["n"] <= _SCRYPT_N_RANGE[1] or kdf["n"] & (kdf["n"] - 1)):
        raise bad(f"secrets.kdf must be scrypt with n a power of two in {_SCRYPT_N_RANGE[0]}..{_SCRYPT_N_RANGE[1]}, "
                  f"r {SCRYPT_R}, p {SCRYPT_P}, length 32")
    if not isinstance(cipher, dict) or set(cipher) != {"name", "nonce"} or cipher["name"] != "AES-256-GCM":
        raise bad("secrets.cipher must be AES-256-GCM with its nonce")
    for what, value, size in (("kdf.salt", kdf["salt"], 16), ("cipher.nonce", cipher["nonce"], 12)):
        try:
            ok = isinstance(value, str) and len(base64.b64decode(value, validate=True)) == size
        except ValueError:
            ok = False
        if not ok:
            raise bad(f"secrets.{what} must be {size} bytes in base64")


# ---------------------------------------------------------------------------------------
# Signatures: signature.json over manifest.json, and whether its signer is trusted (the key
# files themselves: installer/fleet/keys.py).

def trust_verdict(loaded: LoadedBundle, trusted: list[bytes], allow_unsigned: bool,
                  trust_file: str = "/" + TRUST_FILE, *,
                  trust_hint: str = "or give --trust-key KEY.pub",
                  opt_in: str = "give --allow-unsigned to use it anyway",
                  because: str = "because of --allow-unsigned",
                  name: str = "this bundle") -> tuple[str, bool]:
    """(the line to show, whether it is a warning) for a verified bundle; BundleError when refused.
    `name`: how the warning calls the bundle (the wizard shows its file name, printable).

    Signed by a trusted key: "Signed by <fingerprint>". Unsigned, or signed by a key not
    trusted: refused, unless allow_unsigned, and then a WARNING line. The wizard words the
    ways out (trust_hint, opt_in, because) as its own controls; the CLI as its options.
    """
    if loaded.signer is not None and loaded.signer in trusted:
        return f"Signed by {fingerprint(loaded.signer)}", False
    why = ("is not signed" if loaded.signer is None
           else f"is signed by {fingerprint(loaded.signer)}, which is not a trusted key")
    if not allow_unsigned:
        if loaded.signer is None:
            raise BundleError(f"{why}: ask for one exported with --sign-key (bundle keygen makes the key); "
                              f"or {opt_in}")
        raise BundleError(f"{why}: add the signer's public key (KEY.pub) to {trust_file} {trust_hint}; "
                          f"or {opt_in}")
    return f"WARNING: {name} {why}; used anyway {because}", True


def _signature_member(key: Ed25519PrivateKey, manifest_bytes: bytes) -> bytes:
    doc = {"algorithm": SIGNATURE_ALGORITHM, "public_key": base64.b64encode(raw_public_key(key)).decode(),
           "signature": base64.b64encode(key.sign(_SIGNED_PREFIX + manifest_bytes)).decode()}
    return json.dumps(doc, indent=1).encode("utf-8")


def _verify_signature(members: dict[str, bytes]) -> bytes | None:
    """The signer's raw public key when signature.json verifies over manifest.json; None when unsigned."""
    if SIGNATURE_MEMBER not in members:
        return None
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    doc = _strict_json(members[SIGNATURE_MEMBER], SIGNATURE_MEMBER)
    if not isinstance(doc, dict) or set(doc) != {"algorithm", "public_key", "signature"}:
        raise BundleError(f"{SIGNATURE_MEMBER}: must hold exactly algorithm, public_key and signature")
    if doc["algorithm"] != SIGNATURE_ALGORITHM:
        raise BundleError(f"{SIGNATURE_MEMBER}: algorithm must be {SIGNATURE_ALGORITHM!r}, "
                          f"not {str(doc['algorithm'])[:40]!r}")
    raw: dict[str, bytes] = {}
    for name, size in (("public_key", 32), ("signature", 64)):
        try:
            value = base64.b64decode(doc[name], validate=True) if isinstance(doc[name], str) else b""
        except ValueError:
            value = b""
        if len(value) != size:
            raise BundleError(f"{SIGNATURE_MEMBER}: {name} must be {size} bytes in base64")
        raw[name] = value
    try:
        Ed25519PublicKey.from_public_bytes(raw["public_key"]).verify(raw["signature"],
                                                                     _SIGNED_PREFIX + members[MANIFEST])
    except InvalidSignature:
        raise BundleError(f"{SIGNATURE_MEMBER}: the signature does not match {MANIFEST}: the bundle was altered "
                          "after it was signed (or damaged); refused") from None
    return raw["public_key"]
