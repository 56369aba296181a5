"""The fuzz targets (tests/fuzz.py), run briefly: a few seconds each, with fixed seeds so a
failure is reproducible. `python -m tests.fuzz TARGET --seconds N` runs one for longer."""

from __future__ import annotations

import pytest

from tests import fuzz


@pytest.mark.parametrize("target", sorted(fuzz.TARGETS))
def test_fuzz_briefly(target):
    cases, failures = fuzz.run(target, seconds=4.0, seed=20261206, max_cases=4000)
    assert cases >= 50, f"only {cases} inputs in 4 s"
    assert not failures, [(why, data[:80]) for data, why in failures[:5]]


def test_the_mutator_reaches_past_gzip():
    import random
    import zlib

    from tests.hostile_bundles import valid_bundle
    rng = random.Random(1)
    seed = valid_bundle(passphrase=None)
    inner = zlib.decompress(seed, 31)
    changed_inside = 0
    for _ in range(200):
        out = fuzz.mutate(seed, rng)
        try:
            if zlib.decompress(out, 31) != inner:
                changed_inside += 1
        except zlib.error:
            pass
    assert changed_inside > 20  # mutations that still decompress: the tar and JSON parsers see them


def test_a_target_that_raises_is_reported(monkeypatch):
    def broken(data):
        raise KeyError("boom")
    monkeypatch.setitem(fuzz.TARGETS, "broken", (broken, lambda: [b"x"]))
    cases, failures = fuzz.run("broken", seconds=1.0, max_cases=3)
    assert cases == 3 and len(failures) == 3 and failures[0][1] == "KeyError: 'boom'"
