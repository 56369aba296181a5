#!/usr/bin/env python3
"""What the real-box lab costs (needs root): image builds, cold boots, snapshot restores.

    sudo .venv/bin/python bench/box.py                  # builds from the cache, boots, restores
    sudo .venv/bin/python bench/box.py --from-nothing   # ...after building everything in an empty cache
    sudo .venv/bin/python bench/box.py --variants nm --restores 5

1. Image build from nothing (debootstrap, base tarball, the variants): measured with
   --from-nothing in a temporary empty cache (packages downloaded again) and recorded in the
   real cache's cold-build-all.json; otherwise the last figures recorded there are reported.
2. Image build from the cache (what every test session after the first pays), and a variant
   rebuilt from the cached base tarball (what a change to a variant's configuration costs).
3. Per variant: a cold boot until the agent answers and systemd is up; savevm; loadvm until
   the agent answers again (median of --restores); a new QEMU on the overlay plus loadvm.
4. Per variant, edge-installer installed (bench/box_apply.py): apply until the box reaches its
   cloud again and how long it was off the network; the revert of a change never confirmed.

Boots run under TCG on whatever else loads the machine: the load average is printed with them.
A benchmark reports; it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import box_apply  # noqa: E402  (bench/, beside this file)

from tests.box import product  # noqa: E402
from tests.box.fixtures import nics_for  # noqa: E402
from tests.box.image import VARIANTS, base_key, build_image, cache_path, last_cold_build  # noqa: E402
from tests.box.net import BoxLab, lab_name  # noqa: E402
from tests.box.vm import Box  # noqa: E402


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.monotonic()
    result = fn(*args, **kwargs)
    return time.monotonic() - start, result


def load() -> str:
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def build_from_nothing(variants: list[str]) -> dict:
    """Every variant built in an empty temporary cache; the figures are also recorded in the
    real cache, for later runs without --from-nothing."""
    with tempfile.TemporaryDirectory(prefix="eibench-cache-", dir="/var/tmp") as tmp:
        figures: dict = {"variants": {}, "load_before": load()}
        total = 0.0
        for v in variants:
            seconds, _ = timed(build_image, v, tmp)
            figures["variants"][v] = round(seconds, 1)
            total += seconds
        figures["total_s"] = round(total, 1)
        figures["base"] = json.loads((Path(tmp) / "cold-build.json").read_text())
        figures["finished"] = time.time()
    real = cache_path()
    real.mkdir(parents=True, exist_ok=True)
    (real / "cold-build-all.json").write_text(json.dumps(figures, indent=1))
    return figures


def rebuild_variant(variant: str) -> float:
    """A variant rebuilt from the cached base tarball and packages (hard links in a temporary
    cache, so the real cache is untouched)."""
    real = cache_path()
    with tempfile.TemporaryDirectory(prefix="eibench-cache-", dir=real) as tmp:
        t = Path(tmp)
        os.link(real / f"base-{base_key()}.tar.zst", t / f"base-{base_key()}.tar.zst")
        (t / "debs").mkdir()
        for deb in (real / "debs").glob("*.deb"):
            os.link(deb, t / "debs" / deb.name)
        seconds, _ = timed(build_image, variant, t)
        return seconds


def boots(variant: str, restores: int, pyz: Path | None = None) -> dict:
    image = build_image(variant)
    name = lab_name(90 + VARIANTS.index(variant))
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    lab = BoxLab(name, workdir)
    box = Box(image, workdir / "box", netns=lab.edge_ns, nics=nics_for(variant, lab), lab=lab)
    try:
        lab.up()
        figures = {"load_at_boot": load()}
        box.start()
        box.wait_ready()
        figures["cold_boot_to_ready_s"] = round(box.timings["ready"], 1)
        figures["savevm_s"] = round(timed(box.snapshot_save, "bench")[0], 2)
        loads = [timed(box.snapshot_load, "bench")[0] for _ in range(restores)]
        figures["loadvm_to_answer_s"] = round(statistics.median(loads), 2)
        if pyz is not None:
            # edge-installer on the box: apply a plan (static uplink, the lab's DNS and NTP)
            # over its DHCP configuration, kept; then the same change never confirmed.
            box.wait_ipv4("enp2s0", 90)
            product.install(box, pyz)
            box.snapshot_save("installed")
            figures.update(box_apply.measure(box, variant))
            box.snapshot_load("installed")
            box.wait_ipv4("enp2s0", 90)
            figures.update(box_apply.measure_revert(box, variant))
        box.power_cut()
        figures["new_qemu_plus_loadvm_s"] = round(timed(lambda: (box.start(), box.snapshot_load("bench")))[0], 2)
        return figures
    finally:
        box.stop()
        lab.down()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-nothing", action="store_true", help="also build everything in an empty cache")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--restores", type=int, default=3, help="snapshot loads per variant (median)")
    parser.add_argument("--no-boot", action="store_true", help="image figures only")
    parser.add_argument("--no-apply", action="store_true", help="no edge-installer apply/revert figures")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/box.py needs root (debootstrap, namespaces, taps)", file=sys.stderr)
        return 0

    print("== image build from nothing (empty cache, packages downloaded)")
    if args.from_nothing:
        cold = build_from_nothing(args.variants)
        print(f"   measured now: {json.dumps(cold)}")
    else:
        recorded = json.loads((cache_path() / "cold-build-all.json").read_text()) \
            if (cache_path() / "cold-build-all.json").exists() else {}
        print(f"   last recorded by --from-nothing: {json.dumps(recorded) or 'none'}")
        print(f"   last base built from nothing by a test run: {json.dumps(last_cold_build())}")

    print("== image build from the cache")
    for v in args.variants:
        seconds, image = timed(build_image, v)
        print(f"   {v}: {seconds:.2f} s (cached; it was built in {image.meta.get('total_s')} s)")
    for v in args.variants:
        print(f"   {v} rebuilt from the cached base tarball: {rebuild_variant(v):.1f} s")

    if not args.no_boot:
        pyz = None if args.no_apply else product.zipapp()
        print("== boots (TCG); with edge-installer: apply_s (the command), offline_s (longest time the box could "
              "not reach its cloud), cloud_again_after_s (from the start of apply), unconfirmed_apply_s and "
              "old_addresses_back_s (a change never confirmed, 5 s to answer)")
        for v in args.variants:
            print(f"   {v}: {json.dumps(boots(v, args.restores, pyz))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
