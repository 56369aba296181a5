"""Shared test set-up: the repository on sys.path, the golden-tree switch, and the network
interlock: nothing the suite runs may reach beyond loopback from this machine's own network
namespace (installer/checks/netguard.py); a refused attempt fails the whole run at its end."""

from __future__ import annotations

import inspect
import os
import re
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `from tests.judges import ...`

# Set before `installer` is first imported, and inherited by every program the tests start.
# xdist's workers inherit the controller's: one log for the whole run, which the controller
# reads at its end.
_GUARD_LOG = Path(os.environ.get("EDGE_INSTALLER_NET_GUARD")
                  or Path(tempfile.mkdtemp(prefix="edge-installer-netguard-")) / "refused.log")
os.environ["EDGE_INSTALLER_NET_GUARD"] = str(_GUARD_LOG)
# The namespace this session starts in is the machine's own (PID 1's is not readable in every
# container); the lab's namespaces are the others.
from installer.checks.netguard import namespace_id  # noqa: E402  (after the variable above is set)

os.environ.setdefault("EDGE_INSTALLER_NET_GUARD_NETNS", str(namespace_id() or ""))


# The real-box lab's tests in two xdist groups (`--dist loadgroup`), one per worker: the
# networkd box's, and the NetworkManager boxes' (nm, stock) with the rest. A box test spends
# most of its time waiting on its guest (DHCP, association, revert timers, boots), so two run
# side by side on two cores; grouping by the box keeps each variant's VM booted once per
# worker. EDGE_INSTALLER_BOX_GROUPS=1 puts them all on one worker, one after another.
#
# The suite's wall time is the busier worker's. Both groups start first, one per worker (xdist
# hands out its work units largest first, and the two groups are the only units of more than
# one test); the rest of the suite goes to whichever worker is free. A worker cold-boots
# and installs each variant it uses once (about 1-2 minutes under TCG), then restores snapshots
# in a second or two. By the variant alone the networkd group carried ~2200 s and the other
# ~1300 s; BOX_GROUP_OF_TEST moves three tests, by name, to even them out (~1700 s each; the
# rest of the suite, ~5 min of work, absorbs what is left over):
# - the apply on each kind of box boots all three variants: beside nm and stock, booted
#   there anyway, it costs one more cold boot (networkd's) instead of two (nm's and stock's);
# - the USB first boot runs a VM and lab of its own: it costs the same on either worker;
# - the watchdog's (networkd, ~100 s) finds networkd installed there by the apply above.
# The Ansible rollout (its own three VMs, ~13 min with their boot) stays beside networkd.
# Balanced, the two cores are busy throughout: the floor is then the suite's CPU time over two
# (3780 s of it at the last full run: ~31 min), not the waits.
BOX_GROUP_OF_VARIANT = {"networkd": "box-networkd", "nm": "box-nm", "stock": "box-nm"}
BOX_GROUP_OF_TEST = {
    "test_apply_on_each_kind_of_box_holds_and_reaches_cloud_and_machines": "box-nm",
    "test_a_box_sets_itself_up_from_a_usb_stick": "box-nm",
    "test_the_watchdog_runs_under_systemd_and_logs_each_check_to_the_journal": "box-nm",
}
_VARIANT_USE = re.compile(r"""\b(?:installed|boot_box|box_images)\(\s*["'](\w+)["']""")


def box_variants(item) -> set[str]:
    """The box variants a test boots: its parameters ("variant", or "box" given indirectly),
    else the variants its body names in installed("nm") / boot_box("networkd") calls."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    for key in ("variant", "box"):
        if params.get(key) in BOX_GROUP_OF_VARIANT:
            return {params[key]}
    try:
        source = inspect.getsource(item.function)
    except (OSError, TypeError):
        return set()
    return {v for v in _VARIANT_USE.findall(source) if v in BOX_GROUP_OF_VARIANT}


def box_group(item) -> str:
    """The xdist group of a real-box test (see BOX_GROUP_OF_VARIANT and BOX_GROUP_OF_TEST)."""
    if os.environ.get("EDGE_INSTALLER_BOX_GROUPS", "2") == "1":
        return "box"
    named = BOX_GROUP_OF_TEST.get(getattr(item, "originalname", item.name))
    if named is not None:
        return named
    groups = {BOX_GROUP_OF_VARIANT[v] for v in box_variants(item)}
    if not groups:
        return "box-networkd"  # labs of their own (the fleet's VMs)
    return groups.pop() if len(groups) == 1 else "box-nm"


LAB_FIXTURES = frozenset({"lab", "healthy_lab"})


# tryfirst: before xdist's own hook, which reads the groups, and before `-m` selects (so that
# `-m "not lab"` leaves out every lab test).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """The VMs of the real-box lab: in their groups (see BOX_GROUP_OF_VARIANT). Every test
    that takes the network lab's fixtures carries the `lab` marker."""
    for item in items:
        if item.get_closest_marker("box") is not None:
            item.add_marker(pytest.mark.xdist_group(box_group(item)))
        if LAB_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("lab") is None:
            item.add_marker(pytest.mark.lab)


def pytest_sessionfinish(session, exitstatus):
    refused = _GUARD_LOG.read_text(encoding="utf-8") if _GUARD_LOG.exists() else ""
    if refused:
        sys.stderr.write("\n" + "!" * 78 + "\nNETWORK INTERLOCK: something in this run tried to reach beyond "
                         "loopback from this machine's own network namespace (refused):\n" + refused + "!" * 78 + "\n")
        session.exitstatus = 1


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/*/expected from the renderers (review the diff!)")
