"""`edge-installer validate` reports every problem in one pass, with close values suggested, and
a cellular data cap is understood with its unit (issue 12, part 5)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from installer import cli
from installer.planning import plan as planmod
from installer.planning.fields import parse_data_cap
from installer.planning.setfield import SetError, apply_sets
from installer.planning.validate import suggest, validate

ROOT = Path(__file__).resolve().parent.parent

# Shape problems (a misspelt key, an unknown one) beside value problems in other sections: one
# run must name them all.
MIXED = """\
version: 1
topology: isolted
renderer: netplna
machine_network:
  interfaces: [eno1]
  address: 192.168.50.2/24
uplink:
  interfce: enp2s0
  ipv4: static
  address: 10.20.0.15/24
  gateway: 10.30.0.1
dns: {mode: gogle}
profiles: [machinemetric]
machines:
  - {name: Lathe 3, address: 192.168.50.21, controller: fanuc-foca}
colour: blue
"""


def _validate(tmp_path: Path, text: str, capsys) -> tuple[int, list[str]]:
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    (tmp_path / "root").mkdir(exist_ok=True)
    code = cli.main(["validate", str(plan), "--root", str(tmp_path / "root")])
    captured = capsys.readouterr()
    return code, [line.removeprefix(f"{plan}: ") for line in (captured.out + captured.err).splitlines()]


def test_every_problem_is_reported_in_one_pass(tmp_path, capsys):
    code, lines = _validate(tmp_path, MIXED, capsys)
    assert code == 2
    fields = [line.split(":", 1)[0] for line in lines]
    # The shape problems...
    assert "uplink.interfce" in fields and "colour" in fields
    # ...and, in the same run, what validation finds in the parts that could be read.
    for field in ("topology", "renderer", "uplink.gateway", "dns.mode", "profiles[0]", "machines[0].controller"):
        assert field in fields, lines
    # A misspelt key's line is not doubled by a "required" line for the key it meant.
    assert "uplink.interface" not in fields, lines
    assert len(lines) == len(set(lines)) == 8, lines


@pytest.mark.parametrize("line", [
    "uplink.interfce: unknown key; did you mean 'interface'?",
    "topology: 'isolted' is not a topology (did you mean 'isolated'?)",
    "renderer: 'netplna' is not a renderer (did you mean 'netplan'?)",
    "dns.mode: 'gogle' is not a mode (did you mean 'google'?)",
    "profiles[0]: 'machinemetric' is not a profile (did you mean 'machinemetrics'?)",
    "machines[0].controller: 'fanuc-foca' is not a known controller (did you mean 'fanuc-focas'?)",
    "uplink.gateway: 10.30.0.1 is outside 10.20.0.0/24",
])
def test_misspelt_keys_and_values_get_the_closest_valid_one(tmp_path, capsys, line):
    _, lines = _validate(tmp_path, MIXED, capsys)
    assert any(got.startswith(line) for got in lines), lines


def test_a_valid_plan_is_still_valid_and_a_wrong_section_type_is_one_line(tmp_path, capsys):
    code, lines = _validate(tmp_path, (ROOT / "examples" / "isolated.yaml").read_text(), capsys)
    assert code == 0 and "valid" in lines[0]
    text = (ROOT / "examples" / "isolated.yaml").read_text().replace("uplink:\n  interface: enp2s0\n  ipv4: dhcp\n",
                                                                     "uplink: enp2s0\n")
    code, lines = _validate(tmp_path, text, capsys)
    assert code == 2 and [line.split(":", 1)[0] for line in lines] == ["uplink"], lines


def test_suggestions_are_only_for_close_values():
    assert suggest("isolted", planmod.TOPOLOGIES) == " (did you mean 'isolated'?)"
    assert suggest("machinemetric", ["machinemetrics", "machinemetrics-govcloud"]) == \
        " (did you mean 'machinemetrics'?)"
    assert suggest("banana", planmod.TOPOLOGIES) == ""
    assert suggest(None, planmod.TOPOLOGIES) == ""


# ---------------------------------------------------------------------------------------
# The cellular data cap: "2GB", "2 GB", "2 gb", "500 MB" wherever it is read.

@pytest.mark.parametrize("text,mb", [("2GB", 2000), ("2 GB", 2000), ("2 gb", 2000), ("500 MB", 500), ("500mb", 500),
                                     ("1.5 GB", 1500), ("5000", 5000), ("5,000", 5000), ("5 000", 5000),
                                     ("1 TB", 1_000_000), (5000, 5000)])
def test_a_data_cap_is_understood_with_its_unit(text, mb):
    assert parse_data_cap(text) == (mb, None)


@pytest.mark.parametrize("text", ["lots", "2 GiB", "-3", "0.5 MB", "2,5 GB", "GB", "0", 0, True, 1.5])
def test_a_nonsense_data_cap_says_what_would_be_valid(text):
    mb, problem = parse_data_cap(text)
    assert mb is None and problem and "2 GB" in problem and "1 GB = 1000 MB" in problem


def test_the_plan_file_takes_a_data_cap_with_its_unit():
    base = (ROOT / "examples" / "cellular.yaml").read_text()
    assert "data_cap_mb:" in base
    for cap, mb in (('"2 GB"', 2000), ("2GB", 2000), ("2 gb", 2000), ("500 MB", 500), ("5000", 5000)):
        text = "\n".join(f"  data_cap_mb: {cap}" if line.strip().startswith("data_cap_mb:") else line
                         for line in base.splitlines())
        plan = planmod.loads(text)
        assert plan.cellular.data_cap_mb == mb and validate(plan) == []
        assert planmod.loads(planmod.dumps(plan)) == plan  # written back as a number of MB
    bad = "\n".join("  data_cap_mb: lots" if line.strip().startswith("data_cap_mb:") else line
                    for line in base.splitlines())
    with pytest.raises(planmod.PlanError) as e:
        planmod.loads(bad, "c.yaml")
    assert str(e.value).startswith("c.yaml: cellular.data_cap_mb: 'lots' is not a data cap; give a monthly volume")


def test_set_takes_a_data_cap_with_its_unit():
    plan = planmod.load(ROOT / "examples" / "cellular.yaml")
    assert apply_sets(plan, ["cellular.data_cap_mb=2 GB"]).cellular.data_cap_mb == 2000
    assert apply_sets(plan, ["cellular.data_cap_mb=500MB"]).cellular.data_cap_mb == 500
    assert apply_sets(plan, ["cellular.data_cap_mb="]).cellular.data_cap_mb is None
    with pytest.raises(SetError) as e:
        apply_sets(plan, ["cellular.data_cap_mb=a lot"])
    assert str(e.value).startswith("cellular.data_cap_mb: 'a lot' is not a data cap")


def test_a_negative_cap_in_mb_is_still_refused_by_validation():
    plan = planmod.load(ROOT / "examples" / "cellular.yaml")
    bad = dataclasses.replace(plan, cellular=dataclasses.replace(plan.cellular, data_cap_mb=-5))
    (err,) = [e for e in validate(bad) if e.field == "cellular.data_cap_mb"]
    assert "positive" in err.message and "2 GB" in err.message
