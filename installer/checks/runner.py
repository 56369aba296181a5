"""The runner: every check concurrently, under one overall deadline, never raising.

Each check waits only for its own prerequisites, so a slow DNS answer delays the TCP check
of that host and nothing else. A check that runs past its time gets its timeout diagnosis;
a check that raises becomes a `check-error` result naming the exception; a check whose
prerequisites failed is skipped with that cause; whatever is unfinished when the overall
deadline passes is reported as such. The caller gets a result for every planned check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from installer.checks.base import NOT_NEEDED, USABLE, Check, Context, Outcome, Result

# A check's own network operations use ctx.timeout; this margin only catches a check that
# ignores it, so that one bug cannot hold the whole run.
_GRACE_S = 0.5

Progress = Callable[[Result, int, int], None]  # (result, how many done, how many in all)


@dataclass
class Report:
    """The results of one run, in planned order."""

    results: list[Result]
    duration_s: float
    cancelled: bool = False
    summary: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.summary = {s: sum(1 for r in self.results if r.status == s) for s in ("pass", "warn", "fail", "skip")}

    @property
    def exit_code(self) -> int:
        """0 all pass, 1 warnings only, 2 any failure (SPEC, `check --json`)."""
        if self.summary["fail"]:
            return 2
        if self.summary["warn"]:
            return 1
        return 0

    def to_json(self) -> dict[str, Any]:
        """The SPEC's JSON document: version, duration, summary, checks."""
        return {"version": 1, "duration_s": round(self.duration_s, 3), "summary": dict(self.summary),
                "checks": [r.to_json() for r in self.results]}


def default_deadline(timeout: float) -> float:
    """The overall deadline for a per-check timeout: room for the longest chain
    (DNS, TCP, TLS, HTTPS) to run one after another, and a second for the follow-up probes
    that look into their failures."""
    return timeout * 4 + 2.0


async def run_checks(checks: Iterable[Check], ctx: Context, *, deadline: float | None = None,
                     progress: Progress | None = None,
                     remediation: Callable[[Check, Outcome], str] | None = None) -> Report:
    """Run every check; return a Report with one Result per check. Never raises, except
    CancelledError when the caller cancels (the checks are cancelled with it)."""
    checks = list(checks)
    deadline = deadline if deadline is not None else default_deadline(ctx.timeout)
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    futures: dict[str, asyncio.Future[Result]] = {c.key: loop.create_future() for c in checks}
    done_count = 0

    def finish(check: Check, result: Result) -> Result:
        nonlocal done_count
        fut = futures[check.key]
        if not fut.done():
            fut.set_result(result)
            done_count += 1
            if progress is not None and result.diagnosis != NOT_NEEDED:
                try:
                    progress(result, done_count, len(checks))
                except Exception:  # a UI callback's bug must not stop the checks
                    pass
        return fut.result()

    def result_of(check: Check, outcome: Outcome, duration: float) -> Result:
        text = outcome.remediation
        if text is None and outcome.status in ("fail", "warn") and remediation is not None:
            try:
                text = remediation(check, outcome)
            except Exception:
                text = ""
        return Result(check.id, check.kind, check.target, outcome.status, outcome.diagnosis,
                      unlabelled(outcome.evidence, check.target), text or "", duration, check.profile, check.key,
                      outcome.facts)

    by_key = {c.key: c for c in checks}

    def ancestors(check: Check) -> set[str]:
        seen: set[str] = set()
        stack = [k for group in check.needs for k in group] + list(check.after)
        while stack:
            key = stack.pop()
            if key in seen or key not in by_key:
                continue
            seen.add(key)
            stack += [k for group in by_key[key].needs for k in group] + list(by_key[key].after)
        return seen

    async def one(check: Check) -> None:
        prereqs: dict[str, Result] = {}
        for group in check.needs:
            for key in group:
                if key in futures:
                    prereqs[key] = await asyncio.shield(futures[key])  # a cut waiter never cancels it
            if not any(k in prereqs and prereqs[k].status in USABLE for k in group):
                # Name the root cause, not the skipped check in between.
                cause = "; ".join(prereqs[k].evidence.removeprefix("not run: ")
                                  if prereqs[k].diagnosis == "prerequisite-failed"
                                  else f"{prereqs[k].id} {prereqs[k].target}: {prereqs[k].diagnosis}"
                                  for k in group if k in prereqs) or "its prerequisite was not planned"
                finish(check, result_of(check, Outcome("skip", "prerequisite-failed",
                                                       f"not run: {cause}"), 0.0))
                return
        for key in check.after:
            if key in futures and key != check.key:
                prereqs[key] = await asyncio.shield(futures[key])
        # A check sees every finished ancestor too: a TLS check needs the addresses that the
        # DNS check before its TCP check found.
        for key in ancestors(check):
            if key not in prereqs and futures[key].done():
                prereqs[key] = futures[key].result()
        t0 = time.monotonic()
        try:
            outcome = await asyncio.wait_for(check.run(ctx, prereqs), ctx.timeout * 2 + _GRACE_S)
        except TimeoutError:
            outcome = Outcome("fail", check.timeout_diagnosis,
                              f"no answer within {ctx.timeout:g} s")
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug in one check is that check's result, never a crash
            outcome = Outcome("fail", "check-error", f"the check itself failed: {type(e).__name__}: {e}",
                              remediation="This is a defect in edge-installer, not in the network: "
                                          "report it with this line.")
        finish(check, result_of(check, outcome, time.monotonic() - t0))

    tasks = [asyncio.create_task(one(c), name=c.key) for c in checks]
    cancelled = False
    try:
        if tasks:
            await asyncio.wait(tasks, timeout=max(0.0, deadline - (time.monotonic() - started)))
    except asyncio.CancelledError:
        cancelled = True
        raise
    finally:
        for t in tasks:
            if not t.done():
                t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for c in checks:
            if not futures[c.key].done():
                finish(c, result_of(c, Outcome("skip" if cancelled else "fail",
                                               "cancelled" if cancelled else "deadline",
                                               "cancelled before it finished" if cancelled else
                                               f"unfinished when the overall deadline of {deadline:g} s passed"),
                                    time.monotonic() - started))
    return Report([r for r in (futures[c.key].result() for c in checks) if r.diagnosis != NOT_NEEDED],
                  time.monotonic() - started, cancelled)


def unlabelled(evidence: str, target: str) -> str:
    """Evidence without the check's own target in front: every line that shows a result names
    its target already. "h:443 (at 203.0.113.10:443): certificate ..." becomes "certificate ...
    (at 203.0.113.10:443)"."""
    if not target or not evidence.startswith(target):
        return evidence
    rest = evidence[len(target):]
    if rest.startswith(": ") and len(rest) > 2:
        return rest[2:]
    if rest.startswith(" (") and "): " in rest:
        inner, _, after = rest[2:].partition("): ")
        if after:
            return f"{after} ({inner})"
    return evidence


def run_checks_sync(checks: Iterable[Check], ctx: Context, *, deadline: float | None = None,
                    progress: Progress | None = None,
                    remediation: Callable[[Check, Outcome], str] | None = None) -> Report:
    """run_checks for callers without an event loop (the command line).

    Returns when run_checks does, at the deadline at the latest: unlike asyncio.run, it does not
    wait for a blocking call still running in a worker thread (an NTP query under its own socket
    timeout), whose result nobody reads any more; that thread ends by itself."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(
            run_checks(checks, ctx, deadline=deadline, progress=progress, remediation=remediation))
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()  # its default executor is shut down without waiting


def results_by_key(results: Iterable[Result]) -> Mapping[str, Result]:
    """Results indexed by check key."""
    return {r.key: r for r in results}
