"""Reading and writing the one-stream tar+gzip archives that bundles are made of.

Reading is the dangerous half: members are read into memory, never extracted; links,
devices, directories, absolute paths, `..`, pax headers, duplicates and unknown names are
refused from their header, before a byte of them is read; every member's declared size and
the whole decompressed stream are capped, so a 2 GB declared size or a decompression bomb
is refused without being read; nothing may follow the archive's end.
"""

from __future__ import annotations

import io
import re
import tarfile
import zlib
from collections.abc import Callable
from typing import BinaryIO

_CHUNK = 64 << 10


class ArchiveError(Exception):
    """An archive refused: the message is one line saying why."""


BundleError = ArchiveError  # the messages below read as the bundle's own


def pack(members: list[tuple[str, bytes, str | None]], mtime: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data, _ in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime, info.type = len(data), 0o600, mtime, tarfile.REGTYPE
            tf.addfile(info, io.BytesIO(data))
    return gzip_bytes(buf.getvalue())


def gzip_bytes(data: bytes) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing, no file name, mtime 0
    return z.compress(data) + z.flush()


class _CappedGunzip:
    """A file-like view of one gzip stream that refuses to decompress past `cap` bytes."""

    def __init__(self, raw: BinaryIO, cap: int):
        self._raw, self._cap = raw, cap
        self._z = zlib.decompressobj(wbits=31)
        self.produced = 0
        self._tail = b""  # the last bytes handed out: tarfile reads ahead of the archive's end

    def read(self, n: int = -1) -> bytes:
        n = _CHUNK if n is None or n < 0 else n
        out = bytearray()
        while len(out) < n and not self._z.eof:
            data = self._z.unconsumed_tail or self._raw.read(_CHUNK)
            if not data:
                raise BundleError("is truncated: the compressed data ends early")
            try:
                piece = self._z.decompress(data, min(n - len(out), _CHUNK))
            except zlib.error as e:
                raise BundleError(f"is damaged: its gzip data does not decode ({e})") from None
            self.produced += len(piece)
            if self.produced > self._cap:
                raise BundleError(f"decompresses to more than {self._cap} bytes (a bundle is a few KB): "
                                  "refused as a decompression bomb")
            out += piece
        self._tail = (self._tail + out)[-2 * tarfile.RECORDSIZE:]
        return bytes(out)

    def finish(self, archive_end: int) -> None:
        """After the archive's last member (at `archive_end`): only zero padding, then the file's end."""
        seen_from = self.produced - len(self._tail)
        if archive_end < seen_from or self._tail[archive_end - seen_from:].strip(b"\0"):
            raise BundleError("has data after the end of its archive")
        while not self._z.eof:
            if self.read(_CHUNK).strip(b"\0"):
                raise BundleError("has data after the end of its archive")
        if self._z.unused_data or self._raw.read(1):
            raise BundleError("has data after the end of its compressed stream")


def read_archive(raw: BinaryIO, *, member_ok: Callable[[str], bool], formats: str, max_member: int,
                 max_total: int, max_members: int) -> dict[str, bytes]:
    """The members of a tar+gzip stream, in memory, each refused from its header when unsafe."""
    if raw.read(2) != b"\x1f\x8b":
        raise BundleError("is not a bundle (not gzip-compressed; a bundle is a .tar.gz written by "
                          "edge-installer bundle export)")
    raw.seek(0)
    stream = _CappedGunzip(raw, max_total)
    members: dict[str, bytes] = {}
    try:
        # Closing the TarFile leaves `stream` open: it was handed in, so finish() still reads it.
        # typeshed wants every file object to have write/tell/seek/close too; a stream ("r|")
        # is only ever read.
        tf: tarfile.TarFile
        with tarfile.open(fileobj=stream, mode="r|") as tf:  # type: ignore[call-overload]
            while (info := tf.next()) is not None:
                _check_header(info, members, member_ok, formats, max_member, max_members)
                # extractfile() gives None only for a member that is not a regular file, and
                # _check_header has just refused every such member.
                data = tf.extractfile(info).read(info.size)  # type: ignore[union-attr]
                if len(data) != info.size:
                    raise BundleError(f"is truncated: member {info.name!r} ends early")
                members[info.name] = data
    except BundleError:
        raise
    except (tarfile.TarError, EOFError, ValueError, UnicodeError, OverflowError, KeyError) as e:
        raise BundleError(f"is damaged: its archive cannot be read ({_one_line(e)})") from None
    stream.finish(tf.offset)
    return members


def _check_header(info: tarfile.TarInfo, seen: dict[str, bytes], member_ok: Callable[[str], bool], formats: str,
                  max_member: int, max_members: int) -> None:
    name = info.name
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise BundleError(f"member {name!r} has an absolute path; a bundle holds relative paths only")
    if ".." in name.split("/") or ".." in name.split("\\"):
        raise BundleError(f"member {name!r} climbs out with '..'")
    if info.issym():
        raise BundleError(f"member {name!r} is a symbolic link (to {info.linkname!r}); "
                          "a bundle holds regular files only")
    if info.islnk():
        raise BundleError(f"member {name!r} is a hard link (to {info.linkname!r}); a bundle holds regular files only")
    if info.ischr() or info.isblk():
        raise BundleError(f"member {name!r} is a device node; a bundle holds regular files only")
    if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        what = "a directory" if info.isdir() else "a FIFO" if info.isfifo() else f"of tar type {info.type!r}"
        raise BundleError(f"member {name!r} is {what}; a bundle holds regular files only")
    if info.pax_headers:
        raise BundleError(f"member {name!r} has extended (pax) headers; a bundle is plain ustar")
    if not member_ok(name):
        raise BundleError(f"member {name!r} is not part of the bundle format (it holds {formats})")
    if name in seen:
        raise BundleError(f"member {name!r} appears twice")
    if len(seen) >= max_members:
        raise BundleError(f"has more than {max_members} members")
    if info.size > max_member:
        raise BundleError(f"member {name!r} declares {info.size} bytes; a member is at most {max_member}: "
                          "refused without reading it")




def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]
