"""A box's serial port as a test sees a real one: bytes in, bytes out, nothing interpreted.

QEMU exposes each port as a unix socket. A reader thread takes every byte the guest sends and
keeps it (in memory since this start of the VM, and appended to a raw log file ttyS<n>.raw
over the box's whole life), so a test can wait for a pattern, and can also check afterwards
that every byte ever sent was, say, 7-bit. QEMU drops what the guest has not
read yet when the host side closes, so `close()` is only called when the VM goes away.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

from tests.box.qmp import BoxError, BoxTimeout, connect_unix


class Serial:
    """One serial port of a running box (ttyS<port> in the guest)."""

    def __init__(self, path: Path, raw_log: Path, timeout: float = 20) -> None:
        self.path, self.raw_log = path, raw_log
        self._sock = connect_unix(path, timeout, "serial socket")
        self._buf = bytearray()
        self._cursor = 0
        self._cond = threading.Condition()
        self._closed = False
        self._log = open(raw_log, "ab")  # noqa: SIM115 - the reader thread writes it until close()
        self._thread = threading.Thread(target=self._reader, name=f"serial-{path.name}", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        while True:
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                chunk = b""
            with self._cond:
                if not chunk:
                    self._closed = True
                    self._cond.notify_all()
                    return
                self._buf += chunk
                self._log.write(chunk)
                self._log.flush()
                self._cond.notify_all()

    @property
    def received(self) -> bytes:
        """Every byte received on this port since the box started (or this port connected)."""
        with self._cond:
            return bytes(self._buf)

    def mark(self) -> int:
        """Forget what was received so far for `read_until` (it still is in `received`)."""
        with self._cond:
            self._cursor = len(self._buf)
            return self._cursor

    def read_until(self, pattern: bytes | re.Pattern[bytes], timeout: float = 60) -> bytes:
        """Wait until `pattern` (bytes, or a compiled bytes regex) appears in what arrived since
        the last read_until/mark; return everything up to the end of the match."""
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                m = regex.search(self._buf, self._cursor)
                if m:
                    out = bytes(self._buf[self._cursor:m.end()])
                    self._cursor = m.end()
                    return out
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    tail = bytes(self._buf[-600:]).decode("ascii", "replace")
                    why = "the port closed" if self._closed else f"not within {timeout} s"
                    raise BoxTimeout(f"serial {self.path.name}: {regex.pattern!r} {why}; last bytes:\n{tail}")
                self._cond.wait(min(left, 0.5))

    def write(self, data: bytes) -> None:
        """Send bytes to the guest, as typed (no line ending added)."""
        if self._closed:
            raise BoxError(f"serial {self.path.name} is closed")
        self._sock.sendall(data)

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(timeout=2)
        self._log.close()
