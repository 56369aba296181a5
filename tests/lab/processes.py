"""The lab's server processes: started in their namespace, restarted when their command line
or files change, killed with everything they forked, and waited for until they listen."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.lab import netns
from tests.lab.errors import LabError
from tests.lab.servers import Service, squid_service_name

READY_TIMEOUT_S = 15.0  # ~0.5 s is usual; a loaded CI machine once needed more than 5
KILL_TIMEOUT_S = 3.0


@dataclass
class _Running:
    proc: subprocess.Popen
    signature: str


class Supervisor:
    """Runs the lab's `Service`s. Each runs in a session of its own (so one SIGKILL to its
    process group takes its workers and helpers too), its output in logs/<key>.out."""

    def __init__(self, lab_name: str, workdir: Path, namespaces: Mapping[str, str]) -> None:
        self.lab_name, self.workdir, self.ns = lab_name, workdir, namespaces
        self._procs: dict[str, _Running] = {}

    def sync(self, wanted: Sequence[Service], stopped: set[str]) -> None:
        """Make the running processes match `wanted` minus `stopped`: restart what changed or
        died, stop what is stopped, then wait until every (re)started one listens."""
        restart = []
        for svc in wanted:
            running = self._procs.get(svc.key)
            if svc.key in stopped:
                self.stop(svc.key)
            elif running is None or running.proc.poll() is not None or running.signature != svc.signature():
                restart.append(svc)
        for svc in restart:
            self.stop(svc.key)
        for svc in restart:
            self._spawn(svc)
        self._wait_ready(restart)

    def stop(self, key: str) -> None:
        """SIGKILL the service's process group and wait (bounded) until all of it is gone."""
        running = self._procs.pop(key, None)
        if running is None:
            return
        pgid = running.proc.pid
        if running.proc.poll() is not None and Path(f"/proc/{pgid}").exists():
            # It died and was reaped: its pid is free, and a process that now has it leads a group
            # of someone else's (pid_max is 32768 here: a long run reuses pids). Killing "the
            # group" would kill that: stop here. (Orphans of ours keep the id taken, so none are.)
            remove_shm(self.lab_name, [pgid])
            return
        killpg(pgid)
        try:
            running.proc.wait(timeout=KILL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise LabError(f"{key} (pid {pgid}) did not die within {KILL_TIMEOUT_S} s") from None
        _wait_group_gone(pgid, KILL_TIMEOUT_S)
        remove_shm(self.lab_name, [pgid])

    def keys(self) -> list[str]:
        """The services this supervisor started and believes running."""
        return list(self._procs)

    def forget(self) -> None:
        """Drop every record (after the namespaces' processes were killed wholesale)."""
        for running in self._procs.values():
            try:
                running.proc.wait(timeout=0)
            except subprocess.TimeoutExpired:
                pass
        self._procs.clear()

    def _spawn(self, svc: Service) -> None:
        for path, text in svc.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if path.suffix == ".sh":
                path.chmod(0o755)
        if svc.owner:
            pw = pwd.getpwnam(svc.owner)
            for path in svc.files:
                os.chown(path, pw.pw_uid, pw.pw_gid)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root", **svc.env}
        with open(self.workdir / "logs" / f"{file_key(svc.key)}.out", "ab") as log:
            proc = subprocess.Popen(netns.exec_argv(self.ns[svc.role], svc.argv), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                                    start_new_session=True)
        self._procs[svc.key] = _Running(proc, svc.signature())

    def _wait_ready(self, services: Sequence[Service]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        pending = {svc.key: svc for svc in services}
        while pending:
            roles = sorted({svc.role for svc in pending.values()})
            found = dict(zip(roles, netns.in_netns_all([(self.ns[r], listening, ()) for r in roles]), strict=True))
            for key, svc in list(pending.items()):
                sockets = found[svc.role]
                if isinstance(sockets, BaseException):
                    raise LabError(f"cannot read sockets in {self.ns[svc.role]}: {sockets}")
                if all(listen in sockets for listen in svc.listens):
                    del pending[key]
                elif self._procs[key].proc.poll() is not None:
                    raise LabError(f"{key} exited with status {self._procs[key].proc.returncode}:\n"
                                   + self.log_tail(key))
            if pending and time.monotonic() > deadline:
                key = next(iter(pending))
                raise LabError(f"{key} did not listen on {pending[key].listens} within "
                               f"{READY_TIMEOUT_S} s ({_proc_state(self._procs[key].proc.pid)}):\n"
                               + self.log_tail(key))
            if pending:
                time.sleep(0.003)

    def log_tail(self, key: str, lines: int = 15) -> str:
        """The last lines of a service's logs, for error messages."""
        paths = sorted((self.workdir / "logs").glob(f"{file_key(key).split('-')[0]}*"))
        if key == "proxy":
            paths.append(self.workdir / "squid" / "cache.log")
        out = []
        for path in paths:
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            out.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(out) or "(no log)"


def file_key(key: str) -> str:
    """A service key as a file name ("machines:502" -> "machines-502")."""
    return key.replace(":", "-")


def killpg(pgid: int) -> None:
    """SIGKILL a process group; quietly nothing when it is already gone."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        members = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                    members.append(int(entry.name))
        if not members:
            return
        if time.monotonic() > deadline:
            raise LabError(f"processes {members} of group {pgid} did not die within {timeout} s")
        killpg(pgid)
        time.sleep(0.003)


def remove_shm(lab_name: str, pids: Sequence[int]) -> None:
    """Shared memory a SIGKILLed server leaves behind: squid's segments (named after the
    lab's squid service) and libfaketime's per-process ones."""
    shm = Path("/dev/shm")
    for pid in pids:
        (shm / f"faketime_shm_{pid}").unlink(missing_ok=True)
        (shm / f"sem.faketime_sem_{pid}").unlink(missing_ok=True)
    for path in shm.glob(f"{squid_service_name(lab_name)}-*"):
        path.unlink(missing_ok=True)


def _proc_state(pid: int) -> str:
    """What a process is doing, for an error message: its command, state and kernel wait."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        wchan = Path(f"/proc/{pid}/wchan").read_text().strip() or "-"
    except OSError as e:
        return f"pid {pid}: {e.strerror}"
    command, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
    return f"pid {pid} {command}: state {rest[0]}, waiting in {wchan}"


def listening() -> set[tuple[str, str, int]]:
    """(proto, address, port) of every listening TCP and bound UDP IPv4 socket of the
    calling thread's namespace: call it through `netns.in_netns`."""
    found = set()
    for proto, wanted_state in (("tcp", "0A"), ("udp", "07")):
        with open(f"/proc/thread-self/net/{proto}") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] != wanted_state:
                    continue
                hex_addr, hex_port = fields[1].split(":")
                addr = ".".join(str(b) for b in bytes.fromhex(hex_addr)[::-1])
                found.add((proto, addr, int(hex_port, 16)))
    return found
