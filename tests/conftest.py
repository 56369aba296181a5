"""Shared test set-up: the repository on sys.path, the golden-tree switch, and the network
interlock: nothing the suite runs may reach beyond loopback from this machine's own network
namespace (installer/netguard.py); a refused attempt fails the whole run at its end."""

from __future__ import annotations

import os
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
from installer.netguard import namespace_id  # noqa: E402  (after the variable above is set)

os.environ.setdefault("EDGE_INSTALLER_NET_GUARD_NETNS", str(namespace_id() or ""))


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups
def pytest_collection_modifyitems(config, items):
    """The VMs of the real-box lab run one after another on one xdist worker (`--dist
    loadgroup`): two TCG guests at once would starve each other on two cores, while their
    long idle waits (boots, revert timers) overlap with the rest of the suite on the other."""
    for item in items:
        if item.get_closest_marker("box") is not None:
            item.add_marker(pytest.mark.xdist_group("box"))


def pytest_sessionfinish(session, exitstatus):
    refused = _GUARD_LOG.read_text(encoding="utf-8") if _GUARD_LOG.exists() else ""
    if refused:
        sys.stderr.write("\n" + "!" * 78 + "\nNETWORK INTERLOCK: something in this run tried to reach beyond "
                         "loopback from this machine's own network namespace (refused):\n" + refused + "!" * 78 + "\n")
        session.exitstatus = 1


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite tests/golden/*/expected from the renderers (review the diff!)")
