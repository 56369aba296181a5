"""The real-box lab: Debian 12 VMs with systemd as PID 1, wired into the network lab.

A recording of `netplan apply` or `nmcli` never shows what the real stack does (NetworkManager
taking a port netplan gave to networkd, resolv.conf that nobody updates); a booted box does.

    from tests.box import BoxLab, Box, build_image

    image = build_image("networkd")                 # or "nm", "stock"; cached
    with BoxLab("eibdemo", "/tmp/eibdemo") as lab:
        nics = [Nic("eno1", "52:54:00:0e:00:01", lab.taps["eno1"]),
                Nic("enp2s0", "52:54:00:0e:00:02", lab.taps["enp2s0"])]
        with Box(image, lab.workdir / "box", netns=lab.edge_ns, nics=nics, lab=lab) as box:
            box.wait_ready()
            box.exec(["netplan", "apply"], check=True)

- image.py / rootfs.py: images built with debootstrap, cached by a hash of their inputs.
- vm.py (Box), qmp.py, serial.py: one QEMU (TCG) VM, reached by its agent, QMP and serial ports.
- net.py (BoxLab): the lab with its edge namespace turned into the VM's wires, plus DHCP.
- fixtures.py: pytest fixtures (one cold boot per variant per session, then snapshots).
- By hand: python -m tests.box build | up VARIANT | down.
"""

from tests.box.image import ImageSet, build_image
from tests.box.net import BoxLab
from tests.box.qmp import BoxError, BoxTimeout
from tests.box.vm import Box, Nic

__all__ = ["Box", "BoxError", "BoxLab", "BoxTimeout", "ImageSet", "Nic", "build_image"]
