"""The vendor documents, for the tests that compare the profiles with them.

They are not part of the repository: they live beside it (../shared/seeds) or where
EDGE_INSTALLER_SEEDS points. Only the tests that compare the assets with the documents read
them; without them those tests skip loudly (in the warnings summary of every run, not only
with -rs), and in CI (env CI set) they fail: CI never passes without the comparison.
Everything else runs from a clone alone.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SEEDS = Path(os.environ.get("EDGE_INSTALLER_SEEDS") or REPO.parent / "shared" / "seeds")


def require_seeds() -> Path:
    """The directory of the vendor documents; without it, skip the calling test loudly (fail in CI)."""
    if SEEDS.is_dir() and any(SEEDS.glob("000_*.txt")):
        return SEEDS
    message = (f"VENDOR DOCUMENTS NOT COMPARED: no vendor documents at {SEEDS} (../shared/seeds beside "
               "the repository, or set EDGE_INSTALLER_SEEDS to their directory)")
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    warnings.warn(pytest.PytestWarning(message), stacklevel=2)
    pytest.skip(message)


def seed_text(number: str) -> str:
    """The text of the vendor document numbered `number` ("000", "001", "002")."""
    (path,) = require_seeds().glob(f"{number}_*.txt")
    return path.read_text(encoding="utf-8")
