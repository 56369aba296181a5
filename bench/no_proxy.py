"""How long a plan with a huge proxy no_proxy list takes to load, validate and render
(issue 11: 90,000 entries took 245 s to render while the list was deduplicated quadratically).
The plan is built from data: a plan file holds at most 1 MB.

    .venv/bin/python bench/no_proxy.py              # 10,000, 40,000 and 90,000 entries
    .venv/bin/python bench/no_proxy.py --sizes 1000 200000

Prints seconds per step and size; linear steps grow about as the size does. A benchmark
reports; it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from installer.planning import plan as planmod
from installer.planning.validate import validate
from installer.render import Target, render

PLAN = (Path(__file__).resolve().parent.parent / "tests" / "golden" / "isolated-static-custom-proxy-keyfile"
        / "plan.yaml")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 40_000, 90_000])
    args = parser.parse_args()
    base = planmod.load(PLAN)
    print(f"{'entries':>9} {'load':>8} {'validate':>9} {'render':>8}")
    for n in args.sizes:
        entries = [f"h{i}.plant.local" for i in range(n)]
        data = base.to_dict()
        data["proxy"]["no_proxy"] = entries
        t0 = time.perf_counter()
        plan = planmod.from_dict(data)
        t1 = time.perf_counter()
        validate(plan)
        t2 = time.perf_counter()
        render(plan, Target())
        t3 = time.perf_counter()
        print(f"{n:>9} {t1 - t0:>7.2f}s {t2 - t1:>8.2f}s {t3 - t2:>7.2f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
