"""`Box`: one Debian 12 VM with systemd as PID 1, driven as a test drives a real edge box.

QEMU runs under TCG (the /dev/kvm of these machines cannot run Debian's kernel, see
/work/shared/notes/real-box-vm.md) with `-nic none` and -nodefaults: its only network devices
are the NICs given, each a tap that must already exist in the network namespace QEMU runs in
(a lab namespace; never this machine's own), so there is no path out. NICs get the names a
vendor's box has: `enoN` through ACPI index N, `enp2s0` behind two PCI bridges. A NIC is a
virtio-net device unless it asks for QEMU's Intel 82574L (`model="e1000e"`, Linux's e1000e
driver: one whose LED `ethtool -p` can blink, and a driver the other ports do not share).
`trace=` hands QEMU trace events (`-trace NAME`; Debian's QEMU logs them to qemu.log, each
line stamped with the host's time).

The guest is reached without its network: the guest agent (exec, files, clock), two serial
ports (ttyS0 console, ttyS1 spare) and QMP, all unix sockets in the box's directory. The disk
is a qcow2 overlay of the image, so the image stays clean, a new QEMU on the same overlay is a
power cycle, and snapshots (savevm/loadvm) live in the overlay.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.box.image import ImageSet
from tests.box.qmp import Agent, BoxError, BoxTimeout, Qmp
from tests.box.serial import Serial

# guest-file-write/read per call: 1 MiB (the 15 MB zipapp in ~15 s under TCG; 48 KiB pieces took
# a minute), its base64 well under qga's limits.
CHUNK = 1 << 20
# QEMU device models a lab NIC may be: virtio-net (the default), the Intel 82574L (e1000e).
NIC_MODELS = ("virtio-net-pci", "e1000e")
SNAPSHOT_DEVICES = "snapshots.json"  # snapshot name -> the device set it was saved with


@dataclass(frozen=True)
class Nic:
    """A wired port: its name in the guest (enoN or enp2s0), MAC, the tap it is wired to
    (in QEMU's namespace; None: a NIC with no cable) and its QEMU device model (NIC_MODELS)."""

    name: str
    mac: str
    tap: str | None = None
    model: str = "virtio-net-pci"


DEFAULT_NICS = (Nic("eno1", "52:54:00:0e:00:01"), Nic("enp2s0", "52:54:00:0e:00:02"))


class Box:
    """One VM. `start()` boots it (or restarts it on the same disk: a power cycle),
    `wait_ready()` waits for systemd, `stop()` removes every trace. A context manager."""

    def __init__(self, image: ImageSet, workdir: Path | str, *, netns: str | None = None,
                 nics: Sequence[Nic] = DEFAULT_NICS, extra_disk: Path | int | None = None,
                 memory_mb: int = 1024, cpus: int = 2, name: str = "box", lab: object = None,
                 trace: Sequence[str] = ()) -> None:
        if any(n.tap for n in nics) and not netns:
            raise BoxError("a NIC wired to a tap needs netns: taps live only in lab namespaces")
        for n in nics:
            if n.name != "enp2s0" and not (n.name.startswith("eno") and n.name[3:].isdigit()):
                raise BoxError(f"NIC name {n.name!r}: enoN or enp2s0")
            if n.model not in NIC_MODELS:
                raise BoxError(f"NIC {n.name} model {n.model!r}: one of {', '.join(NIC_MODELS)}")
        self.image, self.netns, self.nics, self.name = image, netns, tuple(nics), name
        self.trace = tuple(trace)  # QEMU trace events (-trace NAME), logged to qemu.log
        self.lab = lab  # the BoxLab it is wired to, for tests that change the network
        self.dir = Path(workdir)
        self.extra_disk, self.memory_mb, self.cpus = extra_disk, memory_mb, cpus
        self.disk = self.dir / "disk.qcow2"
        self.console_log = self.dir / "console.log"
        self._proc: subprocess.Popen | None = None
        self._qmp: Qmp | None = None
        self._agent: Agent | None = None
        self._serials: list[Serial] = []
        self.timings: dict[str, float] = {}

    # --- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> Box:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """QEMU is running (the guest may still be booting)."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30) -> Box:
        """Start QEMU on the overlay (made from the image the first time). Does not wait for
        the guest: call wait_ready()."""
        if self.running:
            raise BoxError(f"{self.name}: already running")
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.disk.exists():
            _overlay(self.image.disk, self.disk)
            (self.dir / SNAPSHOT_DEVICES).unlink(missing_ok=True)  # a new disk has no snapshots
        if isinstance(self.extra_disk, Path) and not (self.dir / "extra.qcow2").exists():
            _overlay(self.extra_disk, self.dir / "extra.qcow2")
        elif isinstance(self.extra_disk, int) and not (self.dir / "extra.qcow2").exists():
            _qemu_img("create", "-q", "-f", "qcow2", str(self.dir / "extra.qcow2"), f"{self.extra_disk}M")
        for sock in self.dir.glob("*.sock"):
            sock.unlink()
        self.console_log.write_bytes(b"")
        argv = self.qemu_argv()
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        (self.dir / "qemu.cmd").write_text(shlex.join(argv) + "\n")
        with open(self.dir / "qemu.log", "ab") as log:
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        self.timings["started"] = time.monotonic()
        deadline = time.monotonic() + timeout
        while not self._sock("qmp").exists() and time.monotonic() < deadline:
            if self._proc.poll() is not None:  # a missing tap, a bad option: say so at once
                self._proc = None
                raise BoxError(f"{self.name}: QEMU exited at start\n{self._qemu_log_tail()}")
            time.sleep(0.02)
        try:
            self._qmp = Qmp(self._sock("qmp"), timeout)
            self._serials = [Serial(self._sock(f"ttyS{i}"), self.dir / f"ttyS{i}.raw", timeout) for i in (0, 1)]
            self._agent = Agent(self._sock("qga"), timeout)
        except BoxError as exc:
            self._kill()
            raise BoxError(f"{self.name}: QEMU did not start: {exc}\n{self._qemu_log_tail()}") from None
        return self

    def qemu_argv(self) -> list[str]:
        """The QEMU command line (without the `ip netns exec` around it)."""
        trace = [a for event in self.trace for a in ("-trace", event)]
        # -msg timestamp=on: each trace line says when (pid@seconds.micros:), in host time
        return self._machine_argv() + (trace + ["-msg", "timestamp=on"] if trace else [])

    def device_set(self) -> str:
        """What a snapshot's RAM and device state depend on (machine, memory, CPUs, devices
        and their models, kernel), hashed; not trace events. loadvm into another set fails or,
        worse, half works: snapshot_load() refuses a snapshot saved with another."""
        return hashlib.sha256("\0".join(self._machine_argv()).encode()).hexdigest()[:16]

    def _machine_argv(self) -> list[str]:
        s = lambda n: str(self._sock(n))  # noqa: E731
        argv = ["qemu-system-x86_64", "-name", self.name, "-nodefaults", "-no-user-config",
                "-display", "none", "-nic", "none",
                "-M", "pc", "-accel", "tcg,thread=multi", "-cpu", "max",
                "-smp", str(self.cpus), "-m", str(self.memory_mb),
                "-rtc", "base=utc,clock=host",
                "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd),
                "-append", "root=/dev/vda rw console=ttyS0,115200 net.ifnames=1",
                "-global", "PIIX4_PM.acpi-pci-hotplug-with-bridge-support=off",
                "-drive", f"file={self.disk},if=none,id=root,format=qcow2",
                "-device", "virtio-blk-pci,drive=root",
                "-chardev", f"socket,id=qmp,path={s('qmp')},server=on,wait=off",
                "-mon", "chardev=qmp,mode=control",
                "-chardev", f"socket,id=s0,path={s('ttyS0')},server=on,wait=off,logfile={self.console_log}",
                "-serial", "chardev:s0",
                "-chardev", f"socket,id=s1,path={s('ttyS1')},server=on,wait=off",
                "-serial", "chardev:s1",
                "-device", "virtio-serial-pci,id=vser",
                "-chardev", f"socket,id=qga,path={s('qga')},server=on,wait=off",
                "-device", "virtserialport,bus=vser.0,chardev=qga,name=org.qemu.guest_agent.0"]
        if self.extra_disk is not None:
            argv += ["-drive", f"file={self.dir / 'extra.qcow2'},if=none,id=extra,format=qcow2",
                     "-device", "virtio-blk-pci,drive=extra"]
        for i, nic in enumerate(self.nics):
            netdev = f"nic{i}"
            if nic.tap:
                argv += ["-netdev", f"tap,id={netdev},ifname={nic.tap},script=no,downscript=no"]
            dev = f"{nic.model},id=dev-{nic.name},mac={nic.mac}" + (f",netdev={netdev}" if nic.tap else "")
            if nic.name == "enp2s0":  # bus 2, slot 0: behind a bridge behind a bridge
                argv += ["-device", "pci-bridge,id=pb1,chassis_nr=1,shpc=off",
                         "-device", "pci-bridge,id=pb2,bus=pb1,addr=0x1,chassis_nr=2,shpc=off",
                         "-device", f"{dev},bus=pb2,addr=0x0"]
            else:
                argv += ["-device", f"{dev},acpi-index={nic.name[3:]}"]
        return argv

    def wait_ready(self, timeout: float = 300) -> str:
        """Wait until the agent answers and systemd has finished starting up; return the
        state ("running" or "degraded"). BoxError, with the console's tail, otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                self._need(self._agent).sync(timeout=min(3, max(0.1, deadline - time.monotonic())))
                break
            except BoxTimeout:
                if time.monotonic() > deadline:
                    raise BoxTimeout(f"{self.name}: guest agent silent after {timeout} s\n"
                                     + self.console_tail()) from None
        left = max(5, deadline - time.monotonic())
        try:
            state = self.exec(["systemctl", "is-system-running", "--wait"], timeout=left).stdout.strip()
        except BoxTimeout:
            raise BoxTimeout(f"{self.name}: systemd still starting after {timeout} s\n"
                             + self.console_tail()) from None
        if state not in ("running", "degraded"):
            raise BoxError(f"{self.name}: systemd is {state!r}\n" + self.console_tail())
        self.timings["ready"] = time.monotonic() - self.timings.get("started", time.monotonic())
        return state

    def power_cut(self) -> None:
        """Pull the plug: SIGKILL QEMU. The disk keeps whatever reached it; start() boots again."""
        self._kill()

    def reboot(self, timeout: float = 300) -> str:
        """`systemctl reboot` in the guest, in the same QEMU; wait until ready again."""
        qmp = self._need(self._qmp)
        mark = len(qmp.events)
        self._need(self._agent).command("guest-exec", {"path": "systemctl", "arg": ["reboot"]})
        qmp.wait_event("RESET", mark, timeout)
        self.timings["started"] = time.monotonic()
        return self.wait_ready(timeout)

    def stop(self, keep_disk: bool = False) -> None:
        """Kill QEMU and remove its sockets and (unless keep_disk) the overlays. Never raises."""
        self._kill()
        for sock in self.dir.glob("*.sock"):
            sock.unlink(missing_ok=True)
        if not keep_disk:
            self.disk.unlink(missing_ok=True)
            (self.dir / "extra.qcow2").unlink(missing_ok=True)
            (self.dir / SNAPSHOT_DEVICES).unlink(missing_ok=True)

    def detach(self) -> None:
        """Let QEMU run on without this object (a demo leaves it to `tests.box down`)."""
        self._close_clients()
        self._proc = None

    def _close_clients(self) -> None:
        for client in (self._agent, self._qmp, *self._serials):
            if client is not None:
                client.close()
        self._agent, self._qmp, self._serials = None, None, []

    def _kill(self) -> None:
        self._close_clients()
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self._proc = None

    # --- the guest --------------------------------------------------------------------------

    def exec(self, argv: Sequence[str], timeout: float = 60, input: bytes | str | None = None,
             check: bool = False, text: bool = True, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess:
        """Run argv in the guest (as root, through the agent); stdout/stderr as text (or bytes).
        On timeout the guest process is killed and subprocess.TimeoutExpired raised."""
        agent = self._need(self._agent)
        args: dict = {"path": argv[0], "arg": list(argv[1:]), "capture-output": True}
        if input is not None:
            raw = input.encode() if isinstance(input, str) else input
            args["input-data"] = base64.b64encode(raw).decode()
        if env is not None:
            args["env"] = [f"{k}={v}" for k, v in {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env}.items()]
        pid = agent.command("guest-exec", args, timeout=min(timeout, 30))["pid"]
        deadline = time.monotonic() + timeout
        pause = 0.02
        while True:
            status = agent.command("guest-exec-status", {"pid": pid}, timeout=30)
            if status.get("exited"):
                break
            if time.monotonic() > deadline:
                agent.command("guest-exec", {"path": "kill", "arg": ["-KILL", str(pid)]})
                raise subprocess.TimeoutExpired(list(argv), timeout)
            time.sleep(pause)
            pause = min(pause * 1.5, 0.25)
        out = base64.b64decode(status.get("out-data", ""))
        err = base64.b64decode(status.get("err-data", ""))
        code = -status["signal"] if status.get("signal") else status.get("exitcode", 0)
        result = subprocess.CompletedProcess(list(argv), code, out.decode(errors="replace") if text else out,
                                             err.decode(errors="replace") if text else err)
        if check and code != 0:
            raise subprocess.CalledProcessError(code, list(argv), result.stdout, result.stderr)
        return result

    def sh(self, script: str, timeout: float = 60, check: bool = True) -> str:
        """A shell script in the guest (sh -ec); its stdout. Raises on failure by default."""
        return self.exec(["sh", "-ec", script], timeout=timeout, check=check).stdout

    def write_file(self, path: str, data: bytes | str, mode: int | None = None) -> None:
        """Write a guest file (created or truncated), optionally chmod it."""
        agent = self._need(self._agent)
        raw = data.encode() if isinstance(data, str) else data
        handle = agent.command("guest-file-open", {"path": path, "mode": "w"})
        try:
            for i in range(0, len(raw), CHUNK) or [0]:
                agent.command("guest-file-write", {"handle": handle,
                                                   "buf-b64": base64.b64encode(raw[i:i + CHUNK]).decode()},
                              timeout=120)
        finally:
            agent.command("guest-file-close", {"handle": handle})
        if mode is not None:
            self.exec(["chmod", f"{mode:o}", path], check=True)

    def read_file(self, path: str) -> bytes:
        """A guest file's bytes (BoxError if it cannot be opened)."""
        agent = self._need(self._agent)
        handle = agent.command("guest-file-open", {"path": path, "mode": "r"})
        data = bytearray()
        try:
            while True:
                part = agent.command("guest-file-read", {"handle": handle, "count": CHUNK})
                data += base64.b64decode(part.get("buf-b64", ""))
                if part.get("eof") or not part.get("count"):
                    return bytes(data)
        finally:
            agent.command("guest-file-close", {"handle": handle})

    def set_time(self) -> None:
        """Set the guest's clock to this machine's (after a snapshot load it is in the past)."""
        try:
            self._need(self._agent).command("guest-set-time", {"time": time.time_ns()})
        except BoxError:  # no hwclock: set the system clock alone
            self.exec(["date", "-u", "-s", f"@{time.time():.3f}"], check=True)

    # --- snapshots, links, serial -----------------------------------------------------------

    def snapshot_save(self, name: str, timeout: float = 180) -> None:
        """Save the whole VM (RAM, devices, disk) in the overlay under `name`."""
        out = self._need(self._qmp).hmp(f"savevm {name}", timeout=timeout)
        if out.strip():
            raise BoxError(f"{self.name}: savevm {name}: {out.strip()}")
        self._snapshot_devices({**self._snapshot_devices(), name: self.device_set()})

    def snapshot_load(self, name: str, timeout: float = 60) -> None:
        """Back to snapshot `name`: every change since is gone; the guest clock is set to now.
        BoxError if it was saved by a VM with other devices (another NIC model, more memory)."""
        saved = self._snapshot_devices().get(name)
        if saved is not None and saved != self.device_set():
            raise BoxError(f"{self.name}: snapshot {name} was saved with another device set "
                           f"({saved}, this VM's is {self.device_set()}): boot it afresh")
        out = self._need(self._qmp).hmp(f"loadvm {name}", timeout=timeout)
        if "Error" in out or "error" in out:
            raise BoxError(f"{self.name}: loadvm {name}: {out.strip()}")
        self._need(self._agent).sync(timeout=min(timeout, 20))
        self.set_time()

    def _snapshot_devices(self, record: dict[str, str] | None = None) -> dict[str, str]:
        """The device sets snapshots were saved with (beside the overlay), or record them."""
        path = self.dir / SNAPSHOT_DEVICES
        if record is not None:
            path.write_text(json.dumps(record, indent=1) + "\n")
            return record
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return {}

    def snapshots(self) -> list[str]:
        """Names of the snapshots in the overlay."""
        info = self._need(self._qmp).command("query-block")
        root = next(b for b in info if b["device"] == "root" or b.get("qdev", "").endswith("root"))
        return [s["name"] for s in root.get("inserted", {}).get("image", {}).get("snapshots", [])]

    def pause(self) -> None:
        """Stop the guest's CPUs (it takes no CPU time until resume())."""
        self._need(self._qmp).command("stop")

    def resume(self) -> None:
        """Let a paused guest run again."""
        self._need(self._qmp).command("cont")

    def wait_ipv4(self, nic: str, timeout: float = 60) -> str:
        """The first IPv4 address (a.b.c.d/len) on `nic`, waiting until it has one."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.exec(["ip", "-4", "-o", "addr", "show", "dev", nic], timeout=20).stdout.split()
            if "inet" in out:
                return out[out.index("inet") + 1]
            if time.monotonic() > deadline:
                raise BoxTimeout(f"{self.name}: no IPv4 address on {nic} within {timeout} s")
            time.sleep(0.5)

    def set_link(self, nic: str, up: bool) -> None:
        """Plug or unplug the cable of a NIC (the guest sees carrier come and go)."""
        self._need(self._qmp).command("set_link", {"name": f"dev-{nic}", "up": bool(up)})

    def serial(self, port: int = 0) -> Serial:
        """ttyS<port> (0: the console, 1: spare)."""
        if not self._serials:
            raise BoxError(f"{self.name}: not running")
        return self._serials[port]

    def console_tail(self, lines: int = 40) -> str:
        """The end of everything the console printed since start, for error messages."""
        try:
            text = self.console_log.read_bytes().decode("utf-8", "replace")
        except OSError:
            return "(no console log)"
        return f"--- console {self.console_log} (last {lines} lines):\n" + "\n".join(text.splitlines()[-lines:])

    # --- helpers ----------------------------------------------------------------------------

    def _sock(self, name: str) -> Path:
        return self.dir / f"{name}.sock"

    def _need(self, client):
        if client is None:
            raise BoxError(f"{self.name}: not running (start() it)")
        return client

    def _check_alive(self) -> None:
        if not self.running:
            raise BoxError(f"{self.name}: QEMU exited\n{self._qemu_log_tail()}\n{self.console_tail()}")

    def _qemu_log_tail(self) -> str:
        try:
            return "--- qemu.log:\n" + "\n".join((self.dir / "qemu.log").read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return ""


def _qemu_img(*args: str) -> None:
    proc = subprocess.run(["qemu-img", *args], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise BoxError(f"qemu-img {' '.join(args)}: {proc.stderr.strip()}")


def _overlay(base: Path, overlay: Path) -> None:
    fmt = "qcow2" if _is_qcow2(base) else "raw"
    _qemu_img("create", "-q", "-f", "qcow2", "-F", fmt, "-b", str(base.resolve()), str(overlay))


def _is_qcow2(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"QFI\xfb"
