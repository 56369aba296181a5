"""Ed25519 keys for signing bundles: the signer's private key file, and the public keys a box trusts.

    raw = generate_signing_key("/root/plant.key")       # plant.key (0600) and plant.key.pub
    key = load_signing_key("/root/plant.key")           # KeyFileError unless 0600, Ed25519, PEM
    trusted = read_trusted_keys("/", ["plant.key.pub"]) # TRUST_FILE on the box, plus any given
    print(public_key_line(raw))                         # "ed25519 BASE64  # SHA256:...": a trust file's line

A trust file (and KEY.pub) holds one `ed25519 BASE64` per line, '#' comments. What a signature
covers and whether a bundle's signer is trusted: installer/fleet/bundle.py. cryptography is
imported where it is used: it costs start-up time.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SIGNATURE_ALGORITHM = "ed25519"
TRUST_FILE = "etc/edge-installer/trusted-keys"  # under the box's root: one public key per line
MAX_KEY_FILE_BYTES = 64 << 10


class KeyFileError(Exception):
    """A key file refused: the message is one line naming the file and what would be valid."""


def fingerprint(public_key: bytes) -> str:
    """SHA-256 of the raw 32-byte public key, in hex groups: what a person compares."""
    digest = hashlib.sha256(public_key).hexdigest()
    return "SHA256:" + ":".join(digest[i:i + 4] for i in range(0, len(digest), 4))


def public_key_line(public_key: bytes) -> str:
    """The public key as one line of a trust file: `ed25519 BASE64  # fingerprint`."""
    return f"{SIGNATURE_ALGORITHM} {base64.b64encode(public_key).decode()}  # {fingerprint(public_key)}"


def parse_public_keys(text: str, source: str) -> list[bytes]:
    """The raw public keys of a trust file (or KEY.pub): one `ed25519 BASE64` per line, '#' comments."""
    keys = []
    for n, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        raw = None
        if len(words) == 2 and words[0] == SIGNATURE_ALGORITHM:
            try:
                raw = base64.b64decode(words[1], validate=True)
            except ValueError:
                raw = None
        if raw is None or len(raw) != 32:
            raise KeyFileError(f"{source} line {n}: is not a public key; each line holds `{SIGNATURE_ALGORITHM} "
                            "BASE64` as `bundle keygen` writes it to KEY.pub (or a # comment)")
        keys.append(raw)
    return keys


def _read_small_text(path: Path, what: str) -> str:
    from installer.planning.yamlfile import SmallFileError, read_small

    try:
        data = read_small(path, MAX_KEY_FILE_BYTES, what, "it holds public keys, one a line")
    except SmallFileError as e:
        raise KeyFileError(str(e)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFileError(f"{what}: is not UTF-8 text") from None


def read_trusted_keys(root: str | os.PathLike[str] | None = None,
                      extra: list[str] | tuple[str, ...] = ()) -> list[bytes]:
    """The public keys the box trusts: TRUST_FILE under root (absent: none) and each extra file."""
    keys: list[bytes] = []
    trust_file = Path(root or "/") / TRUST_FILE
    if trust_file.exists():
        keys += parse_public_keys(_read_small_text(trust_file, str(trust_file)), str(trust_file))
    for path in extra:
        found = parse_public_keys(_read_small_text(Path(path), f"--trust-key {path}"), f"--trust-key {path}")
        if not found:
            raise KeyFileError(f"--trust-key {path}: holds no public key; give the KEY.pub `bundle keygen` wrote")
        keys += found
    return keys


def generate_signing_key(out: str | os.PathLike[str]) -> bytes:
    """Write a new Ed25519 private key to `out` (PEM, 0600) and its public key to `out`.pub; the raw public key.

    Refuses to overwrite either file; each is written whole under a temporary name and then
    linked into place, which fails rather than replace a file that appeared meanwhile.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key_path = Path(out)
    pub_path = Path(f"{out}.pub")
    for p in (key_path, pub_path):
        if p.exists() or p.is_symlink():
            raise KeyFileError(f"{p}: exists; a key is never overwritten: choose another name or move it away")
    if not key_path.parent.is_dir():
        raise KeyFileError(f"{key_path.parent}: is not a directory; create it first")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    _create_exclusive(key_path, pem, 0o600)
    try:
        _create_exclusive(pub_path, (public_key_line(raw) + "\n").encode("ascii"), 0o644)
    except BaseException:
        os.unlink(key_path)
        raise
    return raw


def _create_exclusive(target: Path, content: bytes, mode: int) -> None:
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # before any byte
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise KeyFileError(f"{target}: exists; a key is never overwritten: choose another name or "
                               "move it away") from None
    finally:
        os.unlink(tmp)


def load_signing_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file written by `bundle keygen`; KeyFileError otherwise."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from installer.planning.yamlfile import SmallFileError, read_small

    what = f"--sign-key {path}"
    try:  # a regular file only (a FIFO would wait forever), bounded
        data = read_small(path, MAX_KEY_FILE_BYTES, what, "give the KEY `bundle keygen -o KEY` wrote")
        mode = os.stat(path).st_mode & 0o777
    except SmallFileError as e:
        raise KeyFileError(str(e)) from None
    except OSError as e:
        raise KeyFileError(f"{what}: {e.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"{what}: is not an unencrypted PEM private key; give the KEY `bundle keygen -o KEY` "
                        "wrote (not KEY.pub)") from None
    except Exception:  # cryptography raises UnsupportedAlgorithm for odd keys
        raise KeyFileError(f"{what}: is not a key this edge-installer reads; give one from `bundle keygen`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{what}: is a {type(key).__name__.removeprefix('_')} key; bundles are signed with "
                        "Ed25519 keys from `bundle keygen`")
    if mode & 0o077:  # as OpenSSH does: a private key others can read is no longer private
        raise KeyFileError(f"{what}: is readable by others (mode {mode:04o}); a private key must be 0600: "
                           f"chmod 600 {path}, and make a new key if others may have copied it")
    return key


def raw_public_key(key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public half of a private key."""
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
