"""The runner's own rules, with check functions that do not touch the network: concurrency,
prerequisites, timeouts, a check's bug, the overall deadline, cancellation, progress."""

from __future__ import annotations

import asyncio
import time

import pytest

from installer.checks.base import Check, Context, Outcome
from installer.checks.runner import run_checks
from installer.planning import plan as P
from installer.vendors.profiles import load_catalog

PLAN = P.Plan(topology="single", uplink=P.Uplink("enp2s0"))


def ctx(timeout=0.5):
    return Context(plan=PLAN, catalog=load_catalog(), timeout=timeout)


def sleeper(seconds, status="pass", diagnosis="ok"):
    async def run(ctx, prereqs):
        await asyncio.sleep(seconds)
        return Outcome(status, diagnosis, f"slept {seconds}")
    return run


async def test_checks_run_concurrently():
    checks = [Check("c", "test", str(i), sleeper(0.2)) for i in range(20)]
    t0 = time.monotonic()
    report = await run_checks(checks, ctx())
    assert time.monotonic() - t0 < 0.6
    assert report.summary["pass"] == 20 and report.exit_code == 0


async def test_failed_prerequisite_skips_with_its_cause():
    a = Check("dns-resolve", "dns", "x", sleeper(0.01, "fail", "dns-nxdomain"))
    b = Check("tcp-connect", "tcp", "x:443", sleeper(0.01), needs=((a.key,),))
    c = Check("tls-verify", "tls", "x:443", sleeper(0.01), needs=((b.key,),))
    report = await run_checks([a, b, c], ctx())
    assert [r.status for r in report.results] == ["fail", "skip", "skip"]
    assert "dns-nxdomain" in report.results[1].evidence
    assert report.results[1].diagnosis == "prerequisite-failed"


async def test_any_of_a_group_is_enough():
    r1 = Check("dns-resolver", "dns", "1", sleeper(0.01, "fail", "dns-timeout"))
    r2 = Check("dns-resolver", "dns", "2", sleeper(0.01, "warn", "dns-timeout"))
    d = Check("dns-resolve", "dns", "x", sleeper(0.01), needs=((r1.key, r2.key),))
    report = await run_checks([r1, r2, d], ctx())
    assert report.results[2].status == "pass"


async def test_a_bug_in_a_check_is_that_checks_result():
    async def broken(ctx, prereqs):
        raise KeyError("oops")
    report = await run_checks([Check("x", "t", "a", broken), Check("y", "t", "b", sleeper(0.01))], ctx())
    assert report.results[0].status == "fail" and report.results[0].diagnosis == "check-error"
    assert "KeyError" in report.results[0].evidence and report.results[0].remediation
    assert report.results[1].status == "pass"


async def test_a_check_that_ignores_its_timeout_gets_its_timeout_diagnosis():
    report = await run_checks([Check("tcp-connect", "tcp", "a", sleeper(30), timeout_diagnosis="tcp-timeout")],
                              ctx(0.2), deadline=10)
    assert report.results[0].diagnosis == "tcp-timeout" and report.duration_s < 1.5


async def test_overall_deadline_bounds_the_run():
    checks = [Check("x", "t", str(i), sleeper(30)) for i in range(5)]
    t0 = time.monotonic()
    report = await run_checks(checks, ctx(100), deadline=0.3)
    assert time.monotonic() - t0 < 0.8
    assert {r.diagnosis for r in report.results} == {"deadline"} and report.exit_code == 2


async def test_cancelling_the_run_cancels_every_check():
    started = asyncio.Event()

    async def slow(ctx, prereqs):
        started.set()
        await asyncio.sleep(30)
        return Outcome("pass", "ok", "")
    task = asyncio.create_task(run_checks([Check("x", "t", str(i), slow) for i in range(3)], ctx(100), deadline=60))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("x:")]


async def test_progress_sees_every_result_and_its_bugs_do_not_stop_the_run():
    seen = []

    def progress(result, done, total):
        seen.append((result.target, done, total))
        raise RuntimeError("UI bug")
    report = await run_checks([Check("x", "t", str(i), sleeper(0.01 * i)) for i in range(4)], ctx(), progress=progress)
    assert [d for _, d, _ in seen] == [1, 2, 3, 4] and all(t == 4 for _, _, t in seen)
    assert report.summary["pass"] == 4


async def test_exit_codes():
    assert (await run_checks([Check("x", "t", "a", sleeper(0, "warn", "w"))], ctx())).exit_code == 1
    assert (await run_checks([Check("x", "t", "a", sleeper(0, "fail", "f"))], ctx())).exit_code == 2


async def test_a_follow_up_waits_for_failures_and_is_left_out_when_not_needed():
    from installer.checks.base import NOT_NEEDED

    def follow_up(ctx, prereqs):
        async def run(ctx, prereqs):
            failed = sorted(r.target for r in prereqs.values() if r.status == "fail")
            if not failed:
                return Outcome("skip", NOT_NEEDED, "nothing failed")
            return Outcome("pass", "ok", "looked into " + ", ".join(failed))
        return run

    a = Check("tcp-connect", "tcp", "a:443", sleeper(0.05, "fail", "tcp-timeout"))
    b = Check("tcp-connect", "tcp", "b:443", sleeper(0.01))
    probe = Check("icmp-reference", "icmp", "8.8.8.8", follow_up(None, None), after=(a.key, b.key))
    seen = []
    report = await run_checks([a, b, probe], ctx(), progress=lambda r, n, t: seen.append(r.id))
    # It ran after its failing prerequisite (never skipped by it) and saw it.
    assert report.results[2].status == "pass" and report.results[2].evidence == "looked into a:443"
    healthy = await run_checks([b, Check("icmp-reference", "icmp", "8.8.8.8", follow_up(None, None),
                                         after=(b.key,))], ctx(), progress=lambda r, n, t: seen.append(r.id))
    # Nothing to look into: no result at all, in the report or in the progress.
    assert [r.id for r in healthy.results] == ["tcp-connect"] and healthy.summary["skip"] == 0
    assert seen.count("icmp-reference") == 1


def test_evidence_does_not_repeat_the_target():
    from installer.checks.runner import unlabelled
    assert unlabelled("a:443: refused", "a:443") == "refused"
    assert unlabelled("a:443 (at 203.0.113.10:443): certificate for a", "a:443") == \
        "certificate for a (at 203.0.113.10:443)"
    assert unlabelled("203.0.113.53 answered NOERROR", "203.0.113.53") == "203.0.113.53 answered NOERROR"
    assert unlabelled("a:443:", "a:443") == "a:443:"


def test_the_sync_runner_does_not_wait_for_a_blocked_worker_thread():
    """A check blocked in a worker thread (as ntplib's query is) does not hold the caller past
    the deadline: the report comes back while the thread still blocks."""
    import threading

    from installer.checks.runner import run_checks_sync

    release, entered, finished = threading.Event(), threading.Event(), threading.Event()

    def blocking() -> None:
        entered.set()
        release.wait(5)
        finished.set()

    async def in_a_thread(ctx, prereqs):
        await asyncio.to_thread(blocking)
        return Outcome("pass", "ok", "")

    try:
        report = run_checks_sync([Check("ntp-offset", "t", "0", in_a_thread)], ctx(100), deadline=0.3)
        assert entered.is_set() and not finished.is_set()  # returned while the thread still blocks
        assert [r.diagnosis for r in report.results] == ["deadline"]
    finally:
        release.set()
