"""Property-based tests: plan-shaped input never makes loading or validation raise, and
every plan that validates renders files that the real netplan and libnm accept."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings

from installer.planning import plan as P
from installer.planning.validate import validate, validate_document
from installer.render import Target, render
from installer.writing.writer import write_files
from tests.judges import judge_trees, require_tools
from tests.strategies import plan_shaped, valid_plans

EXAMPLES = int(os.environ.get("EDGE_INSTALLER_PROPERTY_EXAMPLES", "150"))


@settings(max_examples=EXAMPLES * 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan_shaped)
def test_plan_shaped_input_never_raises(data):
    plan, errors = validate_document(data)
    assert plan is not None or errors
    # The same data through YAML text: loading gives a plan or a PlanError, nothing else.
    try:
        text = yaml.safe_dump(data)
    except yaml.YAMLError:
        return
    try:
        P.loads(text)
    except P.PlanError as e:
        assert e.errors and all(isinstance(err.field, str) and err.message for err in e.errors)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_plans())
def test_generated_valid_plans_validate_and_round_trip(plan):
    assert validate(plan) == [], P.dumps(plan.redacted())
    assert P.loads(P.dumps(plan)) == plan


def test_every_valid_plan_renders_files_the_real_tools_accept(tmp_path):
    require_tools()
    roots: list[tuple[Path, P.Plan]] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(valid_plans(), st_targets())
    def collect(plan, target):
        assert validate(plan) == []
        root = tmp_path / f"case{len(roots)}"
        root.mkdir()
        write_files(root, render(plan, target))
        roots.append((root, plan))

    collect()
    failures = judge_trees(root for root, _ in roots)
    assert not failures, "\n".join(failures)
    shutil.rmtree(tmp_path, ignore_errors=True)


def st_targets():
    from hypothesis import strategies as st

    return st.builds(Target, netplan_version=st.just((0, 106)), networkmanager=st.booleans(),
                     cloud_init=st.booleans())
