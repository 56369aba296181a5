"""The two JSON protocols a `Box` speaks over unix sockets: QMP (QEMU itself: snapshots,
links, events) and the guest agent (qemu-guest-agent inside the VM: exec, files, clock).

Every read has a deadline, so a VM that hangs makes a call fail, never the test session hang.
The agent's channel is a virtio-serial port that survives reboots and snapshot loads with stale
bytes in it; `Agent.sync()` (guest-sync-delimited: a 0xFF marker, then a fresh id) finds the
answer that belongs to this request, and runs again after any request that timed out.
"""

from __future__ import annotations

import itertools
import json
import select
import socket
import threading
import time
from pathlib import Path
from typing import Any


class BoxError(Exception):
    """The VM failed or did not answer in time (the message says which and, where it helps,
    ends with the tail of the serial console)."""


class BoxTimeout(BoxError):
    """No answer within the timeout."""


def connect_unix(path: Path, timeout: float, what: str = "socket") -> socket.socket:
    """A stream connection to the unix socket QEMU serves at path, waiting for QEMU to make it."""
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if time.monotonic() > deadline:
                raise BoxTimeout(f"no {what} {path} within {timeout} s") from None
            time.sleep(0.05)


class _JsonSocket:
    """Line-delimited JSON over a unix socket, with deadlines."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.sock = connect_unix(path, timeout)
        self.buf = b""

    def execute(self, name: str, arguments: dict | None, timeout: float) -> float:
        """Send {"execute": name, "arguments": ...} (QMP and the guest agent speak the same
        request); the deadline for its answer."""
        msg: dict = {"execute": name}
        if arguments:
            msg["arguments"] = arguments
        self.send_json(msg)
        return time.monotonic() + timeout

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_json(self, obj: dict) -> None:
        self.send(json.dumps(obj).encode() + b"\n")

    def read_some(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self.sock], [], [], left)[0]:
            raise BoxTimeout(f"no answer on {self.path.name}")
        chunk = self.sock.recv(65536)
        if not chunk:
            raise BoxError(f"{self.path.name}: QEMU closed the socket")
        self.buf += chunk

    def read_line(self, deadline: float) -> bytes:
        while b"\n" not in self.buf:
            self.read_some(deadline)
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class Qmp:
    """QEMU's machine protocol: commands, HMP lines (savevm/loadvm), and the events it sent."""

    def __init__(self, path: Path, timeout: float = 20) -> None:
        self._io = _JsonSocket(path, timeout)
        self._lock = threading.Lock()
        self.events: list[dict] = []
        deadline = time.monotonic() + timeout
        json.loads(self._io.read_line(deadline))  # the greeting
        self.command("qmp_capabilities", timeout=timeout)

    def command(self, name: str, arguments: dict | None = None, timeout: float = 30) -> Any:
        """Run a QMP command; its return value, or BoxError with QEMU's error."""
        with self._lock:
            deadline = self._io.execute(name, arguments, timeout)
            while True:
                try:
                    reply = json.loads(self._io.read_line(deadline))
                except BoxTimeout:
                    raise BoxTimeout(f"QMP {name}: no answer within {timeout} s") from None
                if "event" in reply:
                    self.events.append(reply)
                elif "error" in reply:
                    raise BoxError(f"QMP {name}: {reply['error'].get('desc', reply['error'])}")
                elif "return" in reply:
                    return reply["return"]

    def hmp(self, line: str, timeout: float = 120) -> str:
        """A human-monitor command (savevm and loadvm have no QMP form in QEMU 7.2); its output."""
        return self.command("human-monitor-command", {"command-line": line}, timeout=timeout)

    def wait_event(self, name: str, after: int, timeout: float) -> dict:
        """The first event `name` among those after index `after` of `events` (waits for it)."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events[after:]:
                if ev["event"] == name:
                    return ev
            with self._lock:
                try:
                    self._io.read_some(min(deadline, time.monotonic() + 0.5))
                except BoxTimeout:
                    if time.monotonic() > deadline:
                        raise BoxTimeout(f"no QMP event {name} within {timeout} s") from None
                while b"\n" in self._io.buf:
                    line, self._io.buf = self._io.buf.split(b"\n", 1)
                    reply = json.loads(line)
                    if "event" in reply:
                        self.events.append(reply)

    def close(self) -> None:
        self._io.close()


class Agent:
    """qemu-guest-agent: one request at a time, resynchronised whenever an answer was missed."""

    def __init__(self, path: Path, timeout: float = 20) -> None:
        self._io = _JsonSocket(path, timeout)
        self._lock = threading.Lock()
        self._ids = itertools.count(int(time.time()) % 1000000 * 1000)
        self._synced = False

    def sync(self, timeout: float) -> None:
        """Flush the channel and wait for the guest's answer to a fresh id (BoxTimeout if the
        agent does not answer: not started yet, or the guest is gone)."""
        with self._lock:
            self._sync(timeout)

    def _sync(self, timeout: float) -> None:
        self._synced = False
        ident = next(self._ids)
        self._io.buf = b""
        self._io.send(b"\xff")
        self._io.send_json({"execute": "guest-sync-delimited", "arguments": {"id": ident}})
        deadline = time.monotonic() + timeout
        while True:
            while b"\xff" not in self._io.buf:
                self._io.buf = b""
                self._io.read_some(deadline)
            self._io.buf = self._io.buf.split(b"\xff")[-1]
            while True:
                try:
                    line = self._io.read_line(deadline)
                except BoxTimeout:
                    raise
                if b"\xff" in line:  # another marker: start over from it
                    self._io.buf = line.split(b"\xff")[-1] + b"\n" + self._io.buf
                    continue
                try:
                    reply = json.loads(line)
                except ValueError:
                    continue
                if reply.get("return") == ident:
                    self._synced = True
                    return

    def command(self, name: str, arguments: dict | None = None, timeout: float = 30) -> Any:
        """Run an agent command; its return value (BoxError with the agent's error)."""
        with self._lock:
            if not self._synced:
                self._sync(min(timeout, 10))
            deadline = self._io.execute(name, arguments, timeout)
            while True:
                try:
                    line = self._io.read_line(deadline)
                except BoxTimeout:
                    self._synced = False
                    raise BoxTimeout(f"guest agent {name}: no answer within {timeout} s") from None
                except BoxError:
                    self._synced = False
                    raise
                try:
                    reply = json.loads(line.replace(b"\xff", b""))
                except ValueError:
                    continue
                if "error" in reply:
                    raise BoxError(f"guest agent {name}: {reply['error'].get('desc', reply['error'])}")
                if "return" in reply:
                    return reply["return"]

    def close(self) -> None:
        self._io.close()
