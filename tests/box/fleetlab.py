"""`FleetLab`: several boxes on one lab segment and a controller that reaches them over SSH.

The BoxLab's bridges in its edge namespace become a plant's switches: every box has its uplink
(enp2s0) on br-up (the cloud's segment, 203.0.113.0/24, with the lab's DHCP, gateway, DNS, NTP
and vendor servers) and its machine port (eno1) on br-mach (the plant's machines). A controller
namespace (<lab>-ctl) hangs off br-up with CONTROLLER/24 and no route anywhere else: Ansible runs
there (`ip netns exec`), never in this machine's own network namespace.

    VM box0 enp2s0 = tap-up  --+                 +-- enp2s0 veth ---- cloud (203.0.113.1, .53, ...)
    VM box1 enp2s0 = tap-up1 --+-- br-up --------+-- ctl-br veth ---- <lab>-ctl (CONTROLLER)
    VM box2 enp2s0 = tap-up2 --+
    (eno1 of each on br-mach, with the plant's machines)

Each box boots the image, is given its configuration before the rollout (a static address of
its own on enp2s0, 203.0.113.81 + i: the "old" address), the test's SSH key for root and the
lab's public CA, and waits.

    with FleetLab("eib123n90", workdir, boxes=3) as fleet:
        fleet.boot(image, pyz)
        fleet.ctl(["ansible-playbook", ...])
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.box.net import MACHINE_BRIDGE, MACHINE_TAP, UPLINK_BRIDGE, UPLINK_TAP, BoxLab
from tests.box.qmp import BoxError
from tests.box.vm import Box, Nic
from tests.lab import netns
from tests.lab import topology as T

CONTROLLER = "203.0.113.205"
CA_ON_BOX = "/root/lab-ca.pem"


class FleetLab:
    """A BoxLab with `boxes` VMs on its segments and a controller namespace (module docstring)."""

    def __init__(self, name: str, workdir: Path, boxes: int = 3, memory_mb: int = 768, cpus: int = 1) -> None:
        self.name, self.workdir, self.count = name, Path(workdir), boxes
        self.lab = BoxLab(name, self.workdir)
        self.ctl_ns = f"{name}-ctl"
        self.memory_mb, self.cpus = memory_mb, cpus
        self.boxes: list[Box] = []
        self.key = self.workdir / "id_ed25519"
        self.timings: dict[str, float] = {}

    def __enter__(self) -> FleetLab:
        try:
            self.up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def taps(self, i: int) -> tuple[str, str]:
        """(uplink tap, machine tap) of box i, in the edge namespace."""
        return (UPLINK_TAP, MACHINE_TAP) if i == 0 else (f"tap-up{i}", f"tap-mach{i}")

    def mac(self, i: int, port: int) -> str:
        return f"52:54:00:5e:{i + 1:02x}:{port:02x}"

    def up(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.lab.up()
        e = self.lab.edge_ns
        lines = []
        for i in range(1, self.count):
            up, mach = self.taps(i)
            lines += [f"tuntap add dev {up} mode tap", f"link set {up} master {UPLINK_BRIDGE}", f"link set {up} up",
                      f"tuntap add dev {mach} mode tap", f"link set {mach} master {MACHINE_BRIDGE}",
                      f"link set {mach} up"]
        netns.run(["ip", "-n", e, "-batch", "-"], input="\n".join(lines) + "\n" if lines else "\n")
        netns.delete(self.ctl_ns)
        netns.add(self.ctl_ns)
        netns.write_etc(self.ctl_ns, T.DNS)
        netns.run(["ip", "-n", e, "link", "add", "ctl-br", "type", "veth", "peer", "name", "ctl0",
                   "netns", self.ctl_ns])
        netns.run(["ip", "-n", e, "link", "set", "ctl-br", "master", UPLINK_BRIDGE])
        netns.run(["ip", "-n", e, "link", "set", "ctl-br", "up"])
        netns.run(["ip", "-n", self.ctl_ns, "addr", "add", f"{CONTROLLER}/{T.PREFIX}", "dev", "ctl0"])
        netns.run(["ip", "-n", self.ctl_ns, "link", "set", "ctl0", "up"])
        if not self.key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edge-installer-fleet-lab",
                            "-f", str(self.key)], check=True, timeout=30, stdin=subprocess.DEVNULL)

    def boot(self, image, timeout: float = 600) -> dict[str, float]:
        """Start every box (in parallel), wait until each is ready with its DHCP address, put
        the controller's key and the lab's CA on it. Returns seconds per stage."""
        started = time.monotonic()
        for i in range(self.count):
            up, mach = self.taps(i)
            nics = [Nic("eno1", self.mac(i, 1), mach), Nic("enp2s0", self.mac(i, 2), up)]
            box = Box(image, self.workdir / f"box{i}", netns=self.lab.edge_ns, nics=nics, name=f"fleet{i}",
                      lab=self.lab, memory_mb=self.memory_mb, cpus=self.cpus)
            self.boxes.append(box)
            box.start()
        deadline = time.monotonic() + timeout
        pub = self.key.with_suffix(".pub").read_text()

        def prepare(i: int) -> None:
            box = self.boxes[i]
            box.wait_ready(timeout=max(30, deadline - time.monotonic()))
            # Its configuration before the rollout: a static address of its own (the image's
            # DHCP would give every box the same lease: they share one machine-id, so one DUID).
            box.write_file("/etc/netplan/01-box.yaml", _old_netplan(self.old_address(i)), 0o600)
            box.exec(["netplan", "apply"], timeout=max(60, deadline - time.monotonic()), check=True)
            box.sh("mkdir -p -m 700 /root/.ssh")
            box.write_file("/root/.ssh/authorized_keys", pub, 0o600)
            box.write_file(CA_ON_BOX, self.lab.public_ca_file.read_bytes(), 0o644)
            box.sh("test -s /etc/ssh/ssh_host_ed25519_key || ssh-keygen -A; systemctl start --no-block ssh.service",
                   timeout=120)
            _wait_active(box, "ssh.service", max(60, deadline - time.monotonic()))
            _wait_address(box, self.old_address(i), max(60, deadline - time.monotonic()))

        # Every box at once (each through its own agent): one box's netplan apply and key
        # generation, seconds under TCG, do not wait for the others'. The first error is raised.
        with ThreadPoolExecutor(max_workers=self.count) as pool:
            for done in [pool.submit(prepare, i) for i in range(self.count)]:
                done.result()
        self.timings["boot_s"] = round(time.monotonic() - started, 1)
        return self.timings

    def old_address(self, i: int) -> str:
        """Box i's static address before the rollout (outside the lab's DHCP range)."""
        return f"203.0.113.{81 + i}"

    def addresses(self, i: int) -> list[str]:
        """Box i's IPv4 addresses on enp2s0 now (without the prefix length)."""
        import json

        out = json.loads(self.boxes[i].exec(["ip", "-j", "-4", "addr", "show", "dev", "enp2s0"], check=True).stdout)
        return sorted(a["local"] for a in (out[0].get("addr_info", []) if out else []))

    def env(self) -> dict[str, str]:
        """The environment Ansible runs with: the lab's key, no known_hosts anywhere on this
        machine, short SSH timeouts, its own home and temp directories under the lab's workdir."""
        home = self.workdir / "ansible-home"
        home.mkdir(exist_ok=True)
        return {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": str(home),
                "LC_ALL": "C.UTF-8", "ANSIBLE_HOME": str(home / ".ansible"),
                "ANSIBLE_LOCAL_TEMP": str(home / "tmp"), "ANSIBLE_HOST_KEY_CHECKING": "False",
                "ANSIBLE_PRIVATE_KEY_FILE": str(self.key), "ANSIBLE_REMOTE_USER": "root",
                # One SSH connection per box and address, kept between tasks (a key exchange under
                # TCG on a loaded machine takes seconds); a dead path is noticed within 15 s.
                "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null "
                                    "-o StrictHostKeyChecking=no -o ServerAliveInterval=5 -o ServerAliveCountMax=3",
                "ANSIBLE_PIPELINING": "True",
                "ANSIBLE_TIMEOUT": "30", "ANSIBLE_FORKS": str(max(5, self.count)),
                "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3", "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "False", "ANSIBLE_STDOUT_CALLBACK": "default"}

    def ctl(self, argv: Sequence[str], timeout: float,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """argv in the controller namespace (bounded); its output."""
        return subprocess.run(netns.exec_argv(self.ctl_ns, list(argv)), capture_output=True, text=True,
                              timeout=timeout, env=env or self.env(), stdin=subprocess.DEVNULL)

    def down(self) -> None:
        """Every VM, the controller namespace and the lab gone. Never raises."""
        for box in self.boxes:
            try:
                box.stop()
            except (BoxError, OSError):
                pass
        try:
            netns.kill_all(self.ctl_ns)
        except Exception:  # down() must finish
            pass
        try:
            netns.delete(self.ctl_ns)
        except Exception:
            pass
        self.lab.down()


def _wait_active(box: Box, unit: str, timeout: float) -> None:
    """Wait until `unit` is active in the box (BoxError with its status otherwise)."""
    deadline = time.monotonic() + timeout
    while True:
        state = box.exec(["systemctl", "is-active", unit], timeout=60).stdout.strip()
        if state == "active":
            return
        if time.monotonic() > deadline:
            status = box.exec(["systemctl", "status", "--no-pager", unit], timeout=60).stdout
            raise BoxError(f"{box.name}: {unit} is {state!r} after {timeout:g} s\n{status}")
        time.sleep(2)


def _old_netplan(address: str) -> str:
    return ("network:\n  version: 2\n  renderer: networkd\n  ethernets:\n    enp2s0:\n"
            f"      addresses: [{address}/{T.PREFIX}]\n      routes: [{{to: default, via: {T.GATEWAY}}}]\n"
            f"      nameservers: {{addresses: [{T.DNS}]}}\n")


def _wait_address(box: Box, address: str, timeout: float) -> None:
    """Wait until enp2s0 has exactly `address` (the DHCP lease it booted with gone)."""
    import json

    deadline = time.monotonic() + timeout
    while True:
        out = json.loads(box.exec(["ip", "-j", "-4", "addr", "show", "dev", "enp2s0"], check=True).stdout)
        found = sorted(a["local"] for a in (out[0].get("addr_info", []) if out else []))
        if found == [address]:
            return
        if time.monotonic() > deadline:
            raise BoxError(f"{box.name}: enp2s0 has {found}, not [{address}], after {timeout:g} s")
        time.sleep(1)
