"""Build images and boot a box on a lab by hand (a demo): python -m tests.box build|up|down.

    sudo .venv/bin/python -m tests.box build                 # all three variants (cached)
    sudo .venv/bin/python -m tests.box up networkd           # a VM on lab "eibox", stays up
    sudo .venv/bin/python -m tests.box down

`up` returns once the guest's systemd is up; QEMU keeps running in the lab's edge namespace
until `down` (from any process) removes the lab, which kills it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from tests.box.fixtures import nics_for
from tests.box.image import VARIANTS, build_image
from tests.box.net import BoxLab
from tests.box.qmp import BoxError
from tests.box.rootfs import BuildError
from tests.box.vm import Box
from tests.lab.lab import LabError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.box", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build (or find cached) images")
    b.add_argument("variants", nargs="*", metavar="VARIANT", help=f"{', '.join(VARIANTS)} (default: all)")
    u = sub.add_parser("up", help="boot a VM of VARIANT on a lab")
    u.add_argument("variant", choices=VARIANTS)
    for p in (u, sub.add_parser("down", help="remove the lab and its VM")):
        p.add_argument("--name", default="eibox", help="lab name (namespaces <name>-edge, -cloud, -plant)")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            return _build(args.variants or list(VARIANTS))
        lab = BoxLab(args.name, Path("/tmp") / args.name)
        if args.command == "down":
            lab.down()  # kills QEMU with everything else in the namespaces
            shutil.rmtree(lab.workdir / "box", ignore_errors=True)  # the VM's overlay and sockets
            print(f"box lab {args.name} removed")
            return 0
        return _up(lab, args.variant)
    except (BuildError, BoxError, LabError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _build(variants: list[str]) -> int:
    for variant in variants:
        start = time.monotonic()
        image = build_image(variant)
        print(f"{variant}: {image.disk} ({time.monotonic() - start:.1f} s; "
              f"{json.dumps(image.meta.get('packages', {}))})")
    return 0


def _up(lab: BoxLab, variant: str) -> int:
    image = build_image(variant)
    lab.up()
    box = Box(image, lab.workdir / "box", netns=lab.edge_ns, nics=nics_for(variant, lab),
              name=f"box-{variant}", lab=lab)
    box.start()
    try:
        state = box.wait_ready()
    except BoxError:
        lab.down()
        raise
    s = box.dir
    print(f"""box {variant} is {state} after {box.timings['ready']:.0f} s, on lab {lab.name}
  NICs:     {', '.join(f'{n.name} {n.mac} (tap {n.tap})' for n in box.nics)}
  console:  socat -,raw,echo=0 UNIX-CONNECT:{s / 'ttyS0.sock'}   (log in as root, no password)
  ttyS1:    {s / 'ttyS1.sock'}
  agent:    {s / 'qga.sock'}   QMP: {s / 'qmp.sock'}
  logs:     {box.console_log}, {lab.workdir / 'logs'}
  its uplink's neighbours, from the cloud:  sudo ip netns exec {lab.ns['cloud']} ping 203.0.113.100
Remove it:  sudo .venv/bin/python -m tests.box down{'' if lab.name == 'eibox' else f' --name {lab.name}'}""")
    box.detach()
    return 0


if __name__ == "__main__":
    sys.exit(main())
