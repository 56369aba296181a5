"""The real-box tests' xdist groups (tests/conftest.py, box_group), read from a real collection
of the box test files, without booting anything: every box test on one of the two workers,
each variant's tests beside its booted VM, and the heavy tests where BOX_GROUP_OF_TEST puts
them to even out the two workers (the suite's wall time is the busier one's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from tests.conftest import BOX_GROUP_OF_TEST, BOX_GROUP_OF_VARIANT

REPO = Path(__file__).resolve().parent.parent
BOX_FILES = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").glob("test_box_*.py"))
PLUGIN = """
def pytest_collection_finish(session):
    for item in session.items:
        if item.get_closest_marker("box") is not None:
            marks = [m.args[0] for m in item.iter_markers("xdist_group")]
            print("GROUP", ",".join(marks) or "-", item.nodeid, getattr(item, "originalname", item.name))
"""


def groups(tmp_path: Path, **env: str) -> dict[str, tuple[str, str]]:
    """nodeid -> (group(s), function name) of every box test, as the suite collects them."""
    (tmp_path / "groupprobe.py").write_text(PLUGIN)
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]), **env}
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "groupprobe",
                           "-p", "no:cacheprovider", *BOX_FILES], capture_output=True, text=True, cwd=REPO,
                          env=environ, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found = {}
    for line in done.stdout.splitlines():
        if line.startswith("GROUP "):
            _, group, nodeid, name = line.split(" ", 3)
            found[nodeid] = (group, name)
    assert len(found) > 20, done.stdout[-3000:]
    return found


def test_every_box_test_is_in_one_group_and_the_heavy_ones_even_out_the_workers(tmp_path):
    found = groups(tmp_path)
    by_name: dict[str, set[str]] = {}
    for nodeid, (group, name) in found.items():
        assert group in ("box-networkd", "box-nm"), (nodeid, group)  # exactly one, one of the two
        by_name.setdefault(name, set()).add(group)
    # xdist (--dist loadgroup) hands out its work units largest first, and every test outside
    # a group is a unit of its own: with more than one test each, the two box groups start
    # first, one on each worker, and the rest of the suite fills in around them.
    sizes = {g: sum(1 for group, _ in found.values() if group == g) for g in ("box-networkd", "box-nm")}
    assert min(sizes.values()) > 1, sizes
    # Each named test exists (a renamed test would fall back to its variant's group unseen).
    for name, group in BOX_GROUP_OF_TEST.items():
        assert by_name.get(name) == {group}, (name, by_name.get(name))
    # The two Ansible rollouts share one module fixture (three VMs booted once): one worker.
    ansible = {g for nodeid, (g, _) in found.items() if nodeid.startswith("tests/test_box_ansible.py::")}
    assert ansible == {"box-networkd"}, ansible
    # The apply on all three kinds of box goes where two of them are booted anyway.
    assert by_name["test_apply_on_each_kind_of_box_holds_and_reaches_cloud_and_machines"] == {"box-nm"}
    assert by_name["test_a_box_sets_itself_up_from_a_usb_stick"] == {"box-nm"}
    # ... and a networkd test that finds networkd installed there by it: after it, in file order.
    watchdog = "tests/test_box_watchdog.py::test_the_watchdog_runs_under_systemd_and_logs_each_check_to_the_journal"
    assert found[watchdog][0] == "box-nm"
    each_kind = "tests/test_box_apply.py::test_apply_on_each_kind_of_box_holds_and_reaches_cloud_and_machines"
    assert list(found).index(each_kind) < list(found).index(watchdog)
    # A test given its variant as a parameter runs beside that variant's VM.
    for nodeid, (group, name) in found.items():
        if name in BOX_GROUP_OF_TEST:
            continue
        for variant, home in BOX_GROUP_OF_VARIANT.items():
            if nodeid.endswith(f"[{variant}]"):
                assert group == home, (nodeid, group)
    assert found["tests/test_box_apply.py::test_no_confirmation_brings_the_old_configuration_back[stock]"][0] \
        == "box-nm"
    assert found["tests/test_box_apply.py::test_a_killed_apply_is_undone_by_the_revert_timer"][0] == "box-networkd"


def test_one_group_for_every_box_test_when_asked(tmp_path):
    found = groups(tmp_path, EDGE_INSTALLER_BOX_GROUPS="1")
    assert {g for g, _ in found.values()} == {"box"}


class _Worker:
    """What xdist's scheduler sees of a worker: the tests it is sent."""

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent: list[list[int]] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.append(list(indices))

    def shutdown(self) -> None:
        self.shutting_down = True


def test_xdist_hands_each_worker_one_box_group_first(tmp_path):
    """The installed pytest-xdist's own LoadGroupScheduling, given the box tests (named as its
    workers name them: nodeid@group) among single tests as collected: each of the two workers
    is sent one whole box group first."""
    from xdist.scheduler.loadgroup import LoadGroupScheduling

    box = [f"{nodeid}@{group}" for nodeid, (group, _) in groups(tmp_path).items()]
    collection = ([f"tests/test_a{i}.py::test_it" for i in range(30)] + box
                  + [f"tests/test_z{i}.py::test_it" for i in range(30)])
    config = SimpleNamespace(getvalue=lambda name: ["2*popen"], option=SimpleNamespace(loadscopereorder=True))
    scheduler = LoadGroupScheduling(config)
    workers = [_Worker("gw0"), _Worker("gw1")]
    for w in workers:
        scheduler.add_node(w)
    for w in workers:
        scheduler.add_node_collection(w, collection)
    scheduler.schedule()
    first = sorted(tuple({collection[i].rsplit("@", 1)[-1] for i in w.sent[0]}) for w in workers)
    assert first == [("box-networkd",), ("box-nm",)], first
    for w in workers:  # the whole group at once
        group = collection[w.sent[0][0]].rsplit("@", 1)[-1]
        assert len(w.sent[0]) == sum(1 for n in box if n.endswith("@" + group))
