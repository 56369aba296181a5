"""Fuzz targets: bundle import and the plan loader, fed mutations of real inputs.

Each target takes bytes and must either accept them or refuse them with the product's own
one-line error (BundleError, PlanError); anything else (another exception, a hang, a
traceback) is a defect. The suite runs every target briefly (tests/test_fuzz.py); run one
longer by hand, as long as you like:

    .venv/bin/python -m tests.fuzz bundle --seconds 600
    .venv/bin/python -m tests.fuzz plan --seconds 600

A failing input is written to fuzz-crash-<target>-<sha>.bin in the current directory.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from installer.fleet import bundle as B  # noqa: E402
from installer.planning import plan as P  # noqa: E402


def bundle_target(data: bytes) -> None:
    """Import a bundle from bytes, with the passphrase the seeds use."""
    from tests.hostile_bundles import PASSPHRASE

    try:
        B.loads_bundle(data, PASSPHRASE)
    except B.BundleError:
        pass


def plan_target(data: bytes) -> None:
    """Load a plan from bytes."""
    try:
        P.loads(data, "fuzz.yaml")
    except P.PlanError:
        pass


def bundle_seeds() -> list[bytes]:
    """Valid bundles (with and without secrets) and the hostile corpus."""
    from tests import hostile_bundles as H

    seeds = [H.valid_bundle(), H.valid_bundle(passphrase=None)]
    seeds += [case.data for case in H.corpus()]
    return seeds


def plan_seeds() -> list[bytes]:
    """The examples shipped with the product."""
    return [p.read_bytes() for p in sorted((REPO / "examples").glob("*.yaml"))]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random mutation: flip, insert, delete, duplicate or splice bytes; for a gzip
    stream, sometimes the same inside the decompressed tar (so the parser past gzip is reached)."""
    if data[:2] == b"\x1f\x8b" and rng.random() < 0.5:
        try:
            inner = zlib.decompress(data, 31)
        except zlib.error:
            inner = None
        if inner:
            z = zlib.compressobj(9, zlib.DEFLATED, 31)
            return z.compress(_mutate_raw(inner, rng)) + z.flush()
    return _mutate_raw(data, rng)


def _mutate_raw(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data or b"\0")
    for _ in range(rng.choice((1, 1, 2, 4, 16))):
        if not buf:
            buf = bytearray(rng.randbytes(rng.randrange(1, 9)))
        op = rng.randrange(6)
        i = rng.randrange(len(buf)) if buf else 0
        if op == 0 and buf:
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
        elif op == 2 and len(buf) > 1:
            del buf[i:i + rng.randrange(1, 65)]
        elif op == 3:
            j = rng.randrange(len(buf))
            buf[i:i] = buf[j:j + rng.randrange(1, 33)]
        elif op == 4 and buf:
            buf[i] = rng.choice(b"\x00\xff\x7f\x80:-{}[]'\"\n\t&*!|>%@`#")
        else:
            buf = buf[: rng.randrange(len(buf) + 1)]
    return bytes(buf)


TARGETS: dict[str, tuple[Callable[[bytes], None], Callable[[], list[bytes]]]] = {
    "bundle": (bundle_target, bundle_seeds),
    "plan": (plan_target, plan_seeds),
}


def run(name: str, *, seconds: float, seed: int = 0, max_cases: int | None = None,
        per_case_s: float = 2.0) -> tuple[int, list[tuple[bytes, str]]]:
    """Fuzz `name` for `seconds` (or max_cases inputs): (cases run, failures as (input, why))."""
    target, seeds_of = TARGETS[name]
    seeds = seeds_of()
    rng = random.Random(seed)
    failures: list[tuple[bytes, str]] = []
    cases = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and (max_cases is None or cases < max_cases):
        data = mutate(rng.choice(seeds), rng)
        t0 = time.monotonic()
        try:
            target(data)
        except Exception as e:  # the defect: anything but the product's own refusal
            failures.append((data, f"{type(e).__name__}: {e}"))
        took = time.monotonic() - t0
        if took > per_case_s:
            failures.append((data, f"took {took:.1f} s (bounded inputs must be quick)"))
        cases += 1
    return cases, failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    cases, failures = run(args.target, seconds=args.seconds, seed=args.seed)
    for data, why in failures[:20]:
        name = f"fuzz-crash-{args.target}-{hashlib.sha256(data).hexdigest()[:12]}.bin"
        Path(name).write_bytes(data)
        print(f"FAIL {name}: {why}")
    print(f"{args.target}: {cases} inputs in {args.seconds:g} s (seed {args.seed}), {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
