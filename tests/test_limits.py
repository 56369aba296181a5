"""Limits and shapes of input the issue 11 review found mishandled: APN credentials, 90,000
no_proxy entries, --confirm-timeout inf/nan/negative/huge, and a --root that is / itself."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from installer.commands import UsageError, check_root, root_problem
from installer.planning import plan as planmod
from installer.planning.validate import validate
from installer.render import Target, dropins, render

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden"


def golden_plan(name: str) -> planmod.Plan:
    return planmod.load(GOLDEN / name / "plan.yaml")


def errors_for(plan: planmod.Plan, field: str) -> list[str]:
    return [e.message for e in validate(plan) if e.field == field]


# --- APN credentials ----------------------------------------------------------------------

CELLULAR = "cellular-keyfile-credentials"


@pytest.mark.parametrize("field", ["username", "password"])
@pytest.mark.parametrize("bad", ["pa\x00ss", "pa\nss", "pa\rss", "\x1b[2Jx", "x" * 65, "", "ab\u2028cd"])
def test_apn_credentials_are_validated(field, bad):
    plan = golden_plan(CELLULAR)
    plan = dataclasses.replace(plan, cellular=dataclasses.replace(plan.cellular, **{field: bad}))
    messages = errors_for(plan, f"cellular.{field}")
    assert len(messages) == 1, validate(plan)
    assert "1-64" in messages[0] or "is empty" in messages[0]
    if field == "password":
        assert bad not in messages[0] or bad == ""
        assert repr(bad) not in messages[0]


def test_apn_credentials_that_are_fine_pass():
    plan = golden_plan(CELLULAR)
    for value in ("a", "p@ss:w#rd ![x]", "ü" * 64):
        ok = dataclasses.replace(plan, cellular=dataclasses.replace(plan.cellular, username=value, password=value))
        assert validate(ok) == []


def test_apn_with_a_trailing_line_break_is_refused():
    plan = golden_plan(CELLULAR)
    plan = dataclasses.replace(plan, cellular=dataclasses.replace(plan.cellular, apn="internet\n"))
    assert errors_for(plan, "cellular.apn")


def test_a_nul_in_the_apn_password_of_a_plan_file_is_one_line(tmp_path):
    text = (GOLDEN / CELLULAR / "plan.yaml").read_text().replace('"apn:p@ss"', '"apn\\0secret"')
    (tmp_path / "plan.yaml").write_text(text)
    out = subprocess.run([sys.executable, "-m", "installer", "validate", str(tmp_path / "plan.yaml")],
                         capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 2, out
    assert "cellular.password" in out.stderr + out.stdout
    assert "secret" not in out.stderr + out.stdout
    assert "Traceback" not in out.stderr


# --- no_proxy ---------------------------------------------------------------------------

PROXY = "isolated-static-custom-proxy-keyfile"


def proxy_plan(n: int) -> planmod.Plan:
    plan = golden_plan(PROXY)
    entries = tuple(f"h{i}.plant.local" for i in range(n)) + ("h0.plant.local",)  # one duplicate
    return dataclasses.replace(plan, proxy=dataclasses.replace(plan.proxy, no_proxy=entries))


def test_no_proxy_list_keeps_order_and_drops_duplicates():
    plan = proxy_plan(5)
    got = dropins.no_proxy_list(plan)
    assert got == ["localhost", "127.0.0.1", "::1", "192.168.50.0/24"] + [f"h{i}.plant.local" for i in range(5)]


def test_no_proxy_of_50000_entries_renders_in_linear_time():
    """Correctness, plus a generous bound: the quadratic list test took minutes for 90,000."""
    plan = proxy_plan(50_000)
    start = time.monotonic()
    files = render(plan, Target())
    elapsed = time.monotonic() - start
    env = next(f for f in files if f.path == dropins.PROXY_ENV_FILE)
    assert env.text.count("h49999.plant.local") == 2  # no_proxy and NO_PROXY
    assert env.text.count("h0.plant.local,") == 2  # the duplicate is dropped
    assert elapsed < 10, f"rendering 50,000 no_proxy entries took {elapsed:.1f} s"


def test_no_proxy_list_does_not_compare_entries_pairwise():
    """Counts comparisons: a list membership test compares each entry with all before it."""
    compared = 0

    class Entry(str):
        def __eq__(self, other):
            nonlocal compared
            compared += 1
            return str.__eq__(self, other)

        __hash__ = str.__hash__

    plan = golden_plan(PROXY)
    entries = tuple(Entry(f"h{i}.plant.local") for i in range(2000))
    plan = dataclasses.replace(plan, proxy=dataclasses.replace(plan.proxy, no_proxy=entries))
    assert len(dropins.no_proxy_list(plan)) == 2004
    assert compared < 10 * len(entries), compared


# --- --confirm-timeout ------------------------------------------------------------------

def run_cli(*args: str, cwd: Path = REPO, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "installer", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120, input=stdin if stdin is not None else "",
                          env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "-1", "1e12", "infinity", "forever"])
def test_confirm_timeout_out_of_bounds_is_refused_before_anything_is_written(tmp_path, value):
    root = tmp_path / "root"
    root.mkdir()
    out = run_cli("apply", str(GOLDEN / PROXY / "plan.yaml"), "--root", str(root), "--no-confirm",
                  f"--confirm-timeout={value}")
    assert out.returncode == 2, out
    assert "--confirm-timeout" in out.stderr and "86400" in out.stderr
    assert "Traceback" not in out.stderr
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("value", ["inf", "nan", "-5", "1e9", "x"])
def test_confirm_seconds_parser(value):
    import argparse

    from installer.commands.apply import confirm_seconds

    with pytest.raises(argparse.ArgumentTypeError):
        confirm_seconds(value)
    assert confirm_seconds("120") == 120.0
    assert confirm_seconds("0.5") == 0.5


@pytest.mark.parametrize("argv,expected", [
    (["check", "--timeout", "soon"], "--timeout: 'soon' is not a number of seconds; give 0.05 to 600 seconds"),
    (["check", "--deadline", "inf"], "--deadline: inf s is out of range; give 0.05 to 600 seconds"),
    (["firstboot", "--wait", "-1"], "--wait: -1 s is out of range; give 0 to 600 seconds"),
    (["firstboot", "--check-timeout", "nan"], "--check-timeout: nan s is out of range; give 0.05 to 600 seconds"),
    (["watchdog", "enable", "--deadline", "601"], "--deadline: 601 s is out of range; give 0.05 to 600 seconds"),
])
def test_every_seconds_flag_refuses_in_the_same_words(argv, expected):
    out = run_cli(*argv)
    assert out.returncode == 2 and expected in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr


# --- --root that is / -------------------------------------------------------------------

def test_root_through_dotdot_is_the_live_box(tmp_path):
    sneaky = str(tmp_path) + "/" + "/".join([".."] * len(tmp_path.parts))
    assert os.path.realpath(sneaky) == "/"
    problem = root_problem(sneaky)
    assert problem and "resolves to /" in problem and sneaky in problem
    with pytest.raises(UsageError):
        check_root(sneaky)
    assert root_problem("/tmp/..") is not None


def test_root_through_a_symlink_is_the_live_box(tmp_path):
    link = tmp_path / "stage"
    link.symlink_to("/")
    assert "resolves to /" in (root_problem(str(link)) or "")


def test_a_real_staging_root_and_slash_itself_are_fine(tmp_path):
    assert root_problem(str(tmp_path)) is None
    assert root_problem("/") is None  # recover's default: said plainly, it is the box
    assert root_problem(None) is None

