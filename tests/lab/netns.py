"""Network-namespace plumbing: run commands, run Python code, and find processes inside one.

Everything the lab does to the system goes through here, so the safety rule is in one place:
code that touches the network runs *inside* a lab namespace (`in_netns` switches one
short-lived thread, never the caller's), and nothing here creates an interface, address or
rule in the host's namespace.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(Exception):
    """A command of the lab's plumbing failed: which command, and what it said."""


def run(argv: Sequence[str], *, input: str | None = None, timeout: float = 10,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run a plumbing command (ip, nft, sysctl), captured; raise NetnsError when it fails."""
    try:
        proc = subprocess.run(list(argv), input=input, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise NetnsError(f"{' '.join(argv)}: no answer within {timeout} s") from None
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: exit {proc.returncode}: "
                         f"{(proc.stderr or proc.stdout).strip()}")
    return proc


def exists(ns: str) -> bool:
    """True when the named namespace exists (as `ip netns add` made it)."""
    return (NETNS_DIR / ns).exists()


def names(prefix: str = "") -> list[str]:
    """The named namespaces whose name starts with `prefix`."""
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))
    except FileNotFoundError:
        return []


def in_netns(ns: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `fn` in a fresh thread that has joined namespace `ns`; return or raise its result.

    Sockets created by `fn` belong to `ns` for their whole life, and /proc/sys/net is the
    namespace's. The caller's own thread never changes namespace. If the switch fails, `fn`
    is not called at all, so probing code can never reach the host's network by accident.
    """
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            fd = os.open(NETNS_DIR / ns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({ns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            box["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller's thread below
            box["error"] = exc

    thread = threading.Thread(target=body, name=f"netns-{ns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")


def in_netns_all(calls: Sequence[tuple[str, Callable[..., Any], tuple]]) -> list[Any]:
    """Run several (ns, fn, args) concurrently, each as `in_netns` would; results in order.

    A call that raises gives its exception object as its result, so one slow or failed
    probe cannot hide the others.
    """
    results: list[Any] = [None] * len(calls)

    def one(i: int, ns: str, fn: Callable[..., Any], args: tuple) -> None:
        try:
            results[i] = in_netns(ns, fn, *args)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i, *call), daemon=True)
               for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def write_sysctls(settings: dict[str, str]) -> None:
    """Write sysctls (dotted names, as `sysctl -w` takes them) in the calling thread's
    namespace: call it through `in_netns`."""
    for key, value in settings.items():
        Path("/proc/sys", *key.split(".")).write_text(value)


def pids(ns: str) -> list[int]:
    """Every process whose network namespace is `ns` (what `ip netns pids` reports)."""
    try:
        target = os.stat(NETNS_DIR / ns)
    except FileNotFoundError:
        return []
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError:  # gone, or a kernel thread
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            found.append(int(entry.name))
    return found


def kill_all(ns: str, timeout: float = 3.0) -> list[int]:
    """SIGKILL every process in namespace `ns` and wait (bounded) until they are gone."""
    victims = [p for p in pids(ns) if p != os.getpid()]
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    wait_gone(victims, timeout)
    return victims


def wait_gone(pids_: Sequence[int], timeout: float) -> bool:
    """Reap or wait for processes to disappear; True when all are gone within `timeout`."""
    deadline = time.monotonic() + timeout
    pending = set(pids_)
    while pending:
        for pid in list(pending):
            try:  # our own child: reap it, or it stays a zombie
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    pending.discard(pid)
                    continue
            except ChildProcessError:
                pass
            if not _alive(pid):
                pending.discard(pid)
        if not pending:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def add(ns: str) -> None:
    """Create namespace `ns` with its loopback up."""
    run(["ip", "netns", "add", ns])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])


def delete(ns: str) -> None:
    """Delete namespace `ns` (its interfaces and nftables go with it) and /etc/netns/<ns>."""
    if exists(ns):
        run(["ip", "netns", "delete", ns], check=False)
    remove_etc(ns)


def write_etc(ns: str, resolver: str) -> None:
    """/etc/netns/<ns>: what `ip netns exec` mounts over /etc, so nothing run in the lab
    reads the host's resolver, hosts file or name-service switch (nss-resolve would ask the
    host's systemd-resolved)."""
    d = ETC_NETNS / ns
    d.mkdir(parents=True, exist_ok=True)
    (d / "resolv.conf").write_text(f"# edge-installer lab: the lab's DNS only\n"
                                   f"nameserver {resolver}\noptions timeout:2 attempts:1\n")
    (d / "hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    try:
        lines = Path("/etc/nsswitch.conf").read_text().splitlines()
    except FileNotFoundError:
        lines = ["passwd: files", "group: files", "shadow: files"]
    lines = [ln for ln in lines if not ln.startswith("hosts:")] + ["hosts: files dns"]
    (d / "nsswitch.conf").write_text("\n".join(lines) + "\n")


def remove_etc(ns: str) -> None:
    """Remove /etc/netns/<ns> and what the lab wrote in it; leave a stranger's files alone."""
    d = ETC_NETNS / ns
    for name in ("resolv.conf", "hosts", "nsswitch.conf"):
        try:
            (d / name).unlink()
        except FileNotFoundError:
            pass
    try:
        d.rmdir()
    except OSError:
        pass


def exec_argv(ns: str, argv: Sequence[str]) -> list[str]:
    """argv run inside `ns` by `ip netns exec` (which also mounts /etc/netns/<ns>/*)."""
    return ["ip", "netns", "exec", ns, *argv]
