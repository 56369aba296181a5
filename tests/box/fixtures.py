"""pytest fixtures for the real-box lab: images built once per run, VMs booted once per session.

    from tests.box.fixtures import box_images, box_session, boot_box  # noqa: F401

    @pytest.mark.box
    def test_something(boot_box):
        box = boot_box("networkd")      # a Box on its BoxLab, as freshly booted
        box.exec(["netplan", "apply"], check=True)
        box.lab.block(443)              # the lab it is wired to (reset for every test)

A cold boot under TCG takes 15-60 s, so each variant boots once per session, is saved as the
snapshot "booted", and every later test gets it back with loadvm (~1-2 s): every change to its
disk, memory and clock is gone, and its lab is reset. Between tests the VMs are paused, so the
idle ones do not take CPU from the one in use. A test that power-cut or stopped its box gets
it started again on the same overlay and restored.

Without root, qemu or debootstrap these tests are skipped, loudly; as root, or when CI is set,
they fail instead (a skipped VM test in CI would hide a broken lab).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.box.image import ImageSet, build_image, missing_tools
from tests.box.net import BoxLab, lab_name, sweep_stale_boxlabs
from tests.box.qmp import BoxError
from tests.box.rootfs import BuildError
from tests.box.vm import Box, Nic
from tests.lab.lab import LabError

SNAPSHOT = "booted"
INSTALLED = "installed"  # ... and edge-installer installed (the `installed` fixture)
# Fixed MACs, one set per variant (two variants' boxes are never on one wire, but a test that
# reads a lease or a log knows which box it was).
MACS = {"networkd": 1, "nm": 2, "stock": 3}


def _unavailable(reason: str) -> None:
    message = f"REAL-BOX LAB NOT RUN: {reason}"
    if os.geteuid() == 0 or os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    warnings.warn(pytest.PytestWarning(message), stacklevel=2)
    pytest.skip(message)


def _preflight() -> None:
    if os.geteuid() != 0:
        _unavailable("it needs root (debootstrap, network namespaces, taps); run the tests as "
                     "root, e.g. sudo ./dev test")
    missing = missing_tools()
    if missing:
        _unavailable("missing " + "; ".join(missing) + " (./dev test installs them)")


def nics_for(variant: str, lab: BoxLab) -> list[Nic]:
    """eno1, enp2s0 and the lab's extra ports, wired to the lab's taps, with fixed MACs."""
    v = MACS.get(variant, 9)
    return [Nic(name, f"52:54:00:0e:{v:02x}:{i + 1:02x}", tap)
            for i, (name, tap) in enumerate(sorted(lab.taps.items(), key=lambda kv: kv[0] != "eno1"))]


class BoxSession:
    """The session's images, labs and booted VMs, one of each per variant."""

    def __init__(self) -> None:
        self.images: dict[str, ImageSet] = {}
        self.boxes: dict[str, Box] = {}
        self.labs: dict[str, BoxLab] = {}
        self.errors: dict[str, str] = {}
        self.timings: dict[str, dict[str, float]] = {}

    def image(self, variant: str) -> ImageSet:
        """The variant's image, built unless cached (once per session)."""
        _preflight()
        if variant in self.errors:
            _unavailable(self.errors[variant])
        if variant not in self.images:
            try:
                self.images[variant] = build_image(variant)
            except BuildError as exc:
                self.errors[variant] = f"image {variant} did not build: {exc}"
                _unavailable(self.errors[variant])
        return self.images[variant]

    def box(self, variant: str) -> Box:
        """The variant's VM, running, as it was right after boot (see the module docstring)."""
        image = self.image(variant)
        box = self.boxes.get(variant)
        try:
            if box is None:
                return self._cold(variant, image)
            box.lab.reset()
            if not box.disk.exists():
                box.stop()
                return self._boot(variant, box)
            if not box.running:
                box.start()
            box.resume()
            box.snapshot_load(SNAPSHOT)
            return box
        except (BoxError, LabError) as exc:
            self.errors[variant] = f"box {variant}: {exc}"
            pytest.fail(self.errors[variant], pytrace=False)

    def _cold(self, variant: str, image: ImageSet) -> Box:
        name = lab_name(len(self.labs))
        if not self.labs:
            sweep_stale_boxlabs()
        workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        lab = self.labs[variant] = BoxLab(name, workdir)
        lab.up()
        box = Box(image, workdir / "box", netns=lab.edge_ns, nics=nics_for(variant, lab),
                  name=f"box-{variant}", lab=lab)
        self.boxes[variant] = box
        return self._boot(variant, box)

    def _boot(self, variant: str, box: Box) -> Box:
        box.start()
        box.wait_ready()
        # Every variant asks DHCP for the uplink: a snapshot taken before the lease would
        # hand every test a box in the middle of its DHCP exchange.
        try:
            box.wait_ipv4("enp2s0", timeout=60)
        except BoxError:
            pass  # tests of the uplink say so themselves
        box.snapshot_save(SNAPSHOT)
        self.timings[variant] = {"ready_s": round(box.timings["ready"], 1)}
        return box

    def pause_all(self) -> None:
        """Stop the VMs' CPUs (between tests), so idle VMs do not compete for the machine's."""
        for box in self.boxes.values():
            if box.running:
                try:
                    box.pause()
                except BoxError:
                    pass

    def close(self) -> None:
        """Every VM, lab and work directory gone."""
        for box in self.boxes.values():
            box.stop()
        for lab in self.labs.values():
            lab.down()
            if not os.environ.get("EDGE_LAB_KEEP_WORKDIR"):
                shutil.rmtree(lab.workdir, ignore_errors=True)
        self.boxes.clear()
        self.labs.clear()


@pytest.fixture(scope="session")
def box_session() -> Iterator[BoxSession]:
    """The session's real-box lab (images, labs, VMs); torn down at the end of the session."""
    session = BoxSession()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture(scope="session")
def box_images(box_session: BoxSession) -> Callable[[str], ImageSet]:
    """variant -> ImageSet, built once per run (and cached across runs)."""
    return box_session.image


@pytest.fixture
def boot_box(box_session: BoxSession) -> Iterator[Callable[[str], Box]]:
    """variant -> a Box on its BoxLab (`box.lab`), restored to just after boot, lab reset."""
    try:
        yield box_session.box
    finally:
        box_session.pause_all()


@pytest.fixture(scope="session")
def pyz() -> Path:
    """dist/edge-installer.pyz, built (or found up to date) once per session."""
    from tests.box.product import zipapp

    return zipapp()


@pytest.fixture
def installed(boot_box: Callable[[str], Box], pyz: Path) -> Callable[[str], Box]:
    """variant -> its box as booted with edge-installer installed (tests.box.product.install),
    restored from the snapshot "installed" (made at the first use in a session)."""
    from tests.box.product import install

    def get(variant: str) -> Box:
        box = boot_box(variant)
        if INSTALLED in box.snapshots():
            box.snapshot_load(INSTALLED)
        else:
            install(box, pyz, timeout=300)  # the first run unpacks the zipapp: minutes under a loaded TCG
            box.snapshot_save(INSTALLED)
        return box
    return get


@pytest.fixture
def box(request: pytest.FixtureRequest, boot_box: Callable[[str], Box]) -> Box:
    """The variant given by indirect parametrisation, booted:
    `@pytest.mark.parametrize("box", ["networkd", "nm"], indirect=True)`."""
    return boot_box(request.param)
