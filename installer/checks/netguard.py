"""A safety interlock for the test suite, off unless EDGE_INSTALLER_NET_GUARD names a file.

The machine that runs the tests must not send a packet anywhere but loopback or the lab's own
network namespaces. tests/conftest.py sets EDGE_INSTALLER_NET_GUARD for the whole session, so
every Python process of the suite that imports `installer` (pytest itself, and every
`edge-installer` or `python -m installer` it starts) carries this audit hook: from the
machine's own network namespace, a connection, a datagram or a name lookup towards anything
but loopback is refused with PermissionError and written to that file, and the suite fails
at its end if the file is not empty. Inside a lab namespace (a process started with `ip netns
exec`, or a thread that entered one) everything is allowed: the lab is closed.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading

ENV = "EDGE_INSTALLER_NET_GUARD"
ENV_NETNS = "EDGE_INSTALLER_NET_GUARD_NETNS"  # the machine's own namespace (inode), from conftest
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
_installed = False


def namespace_id() -> int | None:
    """The network namespace of the calling thread (its inode), or None when unknown."""
    for path in ("/proc/thread-self/ns/net", f"/proc/self/task/{threading.get_native_id()}/ns/net",
                 "/proc/self/ns/net"):
        try:
            return os.stat(path).st_ino
        except OSError:
            continue
    return None


def _own_namespace() -> bool:
    """This thread is in the machine's own network namespace: the one the test session started
    in (ENV_NETNS, set with ENV), else PID 1's. Unknown counts as yes."""
    here = namespace_id()
    own = os.environ.get(ENV_NETNS, "")
    if own.isdigit():
        return here is None or here == int(own)
    try:
        return here is None or here == os.stat("/proc/1/ns/net").st_ino
    except OSError:
        return True


def _local(host: object) -> bool:
    if not isinstance(host, str):
        return True  # netlink (pid, groups) and the like: not a packet on a wire
    name = host.split("%", 1)[0]
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return name.lower() in _LOCAL_NAMES or name == socket.gethostname()


def _numeric(host: object) -> bool:
    try:
        ipaddress.ip_address(str(host).split("%", 1)[0])
        return True
    except ValueError:
        return False


def install(log: str) -> None:
    """Add the audit hook (once per process; an audit hook cannot be removed)."""
    global _installed
    if _installed:
        return
    _installed = True

    def refuse(what: str) -> None:
        line = f"pid {os.getpid()} ({' '.join(sys.argv)[:200]}): refused {what}\n"
        try:
            with open(log, "a", encoding="utf-8") as f:
                f.write(line)
        except OSError:
            pass
        raise PermissionError(f"{ENV}: the test suite may not reach {what} from this machine's own network")

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            address = args[1] if len(args) > 1 else None
            if isinstance(address, tuple) and address and not _local(address[0]) and _own_namespace():
                refuse(f"{event} to {address[:2]}")
        elif event == "socket.getaddrinfo":
            host = args[0] if args else None
            if isinstance(host, bytes):
                host = host.decode(errors="replace")
            # A numeric address is not looked up; a name would be asked of this machine's resolver.
            if host is not None and not _numeric(host) and not _local(host) and _own_namespace():
                refuse(f"a name lookup of {host!r}")

    sys.addaudithook(hook)


def install_from_environment() -> None:
    log = os.environ.get(ENV)
    if log:
        install(log)
