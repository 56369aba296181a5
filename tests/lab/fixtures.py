"""pytest fixtures for the lab: one lab per test session, reset before every test that asks.

    from tests.lab.fixtures import lab, healthy_lab  # noqa: F401  (pytest finds them by name)

    def test_something(healthy_lab):
        healthy_lab.block(443, action="reject")
        ...

`lab` is session-scoped: the lab is built once (named eil<pid>, so it never clashes with a
demo lab or another xdist worker) and torn down when the session ends. `healthy_lab` resets
it first. Without root the lab tests are skipped, loudly; as root, or when CI is set, a lab
that cannot start fails them instead (a skipped lab test in CI would hide a broken lab).
Importing these fixtures into several test modules is safe: they share one lab.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab import netns
from tests.lab.lab import Lab, LabError

_session: dict[str, object] = {"lab": None, "users": 0, "error": None}


def _unavailable(reason: str) -> None:
    message = f"NETWORK LAB NOT RUN: {reason}"
    if os.geteuid() == 0 or os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    # Loud: in the warnings summary of every run, not only with -rs.
    warnings.warn(pytest.PytestWarning(message), stacklevel=2)
    pytest.skip(message)


def sweep_stale_labs(name: str = r"ei[ld](\d+)", make=Lab) -> list[str]:
    """Remove labs (and work directories) of earlier test sessions whose process is gone: a
    session that was killed cannot tear its lab down itself. `name` matches a lab's name with
    the owning pid as its first group (eil<pid>, eid<pid>; the real-box lab's eib<pid>n<n>);
    `make(name, workdir)` gives the lab object whose down() removes it."""
    swept = []

    def dead(pid: str) -> bool:
        return int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists()

    for ns in sorted(netns.names("ei")):
        m = re.fullmatch(rf"({name})-(edge|cloud|plant|ctl)", ns)  # ctl: a fleet lab's controller
        if m and m.group(1) not in swept and dead(m.group(2)):
            make(m.group(1), Path(tempfile.gettempdir()) / m.group(1)).down()
            swept.append(m.group(1))
    for stale in Path(tempfile.gettempdir()).glob("ei*-*"):  # work directories: mkdtemp(name + "-")
        m = re.fullmatch(rf"{name}-\w+", stale.name)
        if m and stale.is_dir() and dead(m.group(1)):
            shutil.rmtree(stale, ignore_errors=True)
    return swept


def _start() -> Lab:
    if os.geteuid() != 0:
        _unavailable("it needs root (network namespaces, veth, nftables); run the tests as root, "
                     "e.g. sudo ./dev test")
    if _session["error"]:
        _unavailable(str(_session["error"]))
    if _session["lab"] is None:
        name = f"eil{os.getpid()}"
        sweep_stale_labs()
        workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        lab = Lab(name, workdir)
        try:
            lab.up()
        except LabError as exc:
            _session["error"] = str(exc)
            shutil.rmtree(workdir, ignore_errors=True)
            _unavailable(str(_session["error"]))
        _session["lab"] = lab
    _session["users"] = int(_session["users"]) + 1  # type: ignore[call-overload]
    return _session["lab"]  # type: ignore[return-value]


def _release() -> None:
    _session["users"] = int(_session["users"]) - 1  # type: ignore[call-overload]
    lab = _session["lab"]
    if _session["users"] == 0 and isinstance(lab, Lab):
        lab.down()
        if not os.environ.get("EDGE_LAB_KEEP_WORKDIR"):
            shutil.rmtree(lab.workdir, ignore_errors=True)
        _session["lab"] = None


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The session's lab, up. Tests that change it should use `healthy_lab` instead."""
    the_lab = _start()
    try:
        yield the_lab
    finally:
        _release()


@pytest.fixture
def healthy_lab(lab: Lab) -> Lab:
    """The session's lab, reset to healthy (no faults) for this test."""
    lab.reset()
    return lab
