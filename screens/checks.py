"""Step: live checks. Proves, before anything is written, that the plant's network lets the
box reach what the plan's profiles need: links, DNS, time, TCP, TLS, HTTPS, NATS, machines.

The checks run in one exclusive async worker (the UI never waits on the network); each
result shows as one short ASCII line as it arrives, then the list opens on the findings (one
per cause: what is wrong in the plant's network and the one thing to do, naming every host it
touches), followed by every check: choosing either shows its evidence and what to do. R re-runs all,
O re-runs the chosen one (with the checks it needs), S saves the report and F the firewall request
under the root. Failures do not block Next (the IT team may open the firewall later), but Next asks
once more first.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Label, OptionList, Static

from installer.checks import findings as finding_groups
from installer.checks import report as reports
from installer.checks.base import DEFAULT_TIMEOUT_S, Check, Result
from installer.checks.findings import Finding
from installer.checks.runner import Report, run_checks
from installer.planning.plan import Plan
from installer.vendors import firewall
from installer.writing.writer import atomic_write, box_path
from screens.base import Prose, StepScreen
from screens.cloud import catalog_of

STATE_DIR = "/var/lib/edge-installer"
REPORT_FILE = f"{STATE_DIR}/report.md"
FIREWALL_MD = f"{STATE_DIR}/firewall-request.md"
FIREWALL_CSV = f"{STATE_DIR}/firewall-request.csv"
MARK = reports.MARK
LINE_WIDTH = 72  # inside the list's border and scroll bar at 80 columns


def short_line(result: Result) -> str:
    """`[PASS] id target`, ASCII only, at most one line of the 80-column screen."""
    text = f"[{MARK[result.status]}] {result.id} {result.target}"
    text = text.encode("ascii", "replace").decode("ascii").replace("\n", " ")
    return text if len(text) <= LINE_WIDTH else text[: LINE_WIDTH - 3] + "..."


def finding_line(finding: Finding) -> str:
    """One short ASCII line for a finding in the results list."""
    text = f"{finding.id} [{MARK[finding.status]}] {finding.title}"
    text = text.encode("ascii", "replace").decode("ascii").replace("\n", " ")
    return text if len(text) <= LINE_WIDTH else text[: LINE_WIDTH - 3] + "..."


def save_report(root: Path, plan: Plan, report: Report) -> Path:
    """Write the Markdown report (mode 0644) under root; the path it was written to."""
    target = box_path(Path(root), REPORT_FILE)
    atomic_write(target, reports.markdown(report, plan).encode("utf-8"), 0o644)
    return target


def save_firewall_request(root: Path, plan: Plan, catalog) -> tuple[Path, Path]:
    """Write the firewall request as Markdown and CSV (mode 0644) under root."""
    rows = firewall.rules(plan, catalog)
    md = box_path(Path(root), FIREWALL_MD)
    csv = box_path(Path(root), FIREWALL_CSV)
    from installer.box.identity import identify

    atomic_write(md, firewall.to_markdown(rows, plan, identify(plan)).encode("utf-8"), 0o644)
    atomic_write(csv, firewall.to_csv(rows).encode("utf-8"), 0o644)
    return md, csv


def _closure(checks: list[Check], key: str) -> list[Check]:
    """The check with `key` and every check it needs, transitively, in planned order."""
    by_key = {c.key: c for c in checks}
    wanted: set[str] = set()
    todo = [key]
    while todo:
        k = todo.pop()
        if k in wanted or k not in by_key:
            continue
        wanted.add(k)
        todo.extend(n for group in by_key[k].needs for n in group)
    return [c for c in checks if c.key in wanted]


_ORDER = {"fail": 0, "warn": 1, "skip": 2, "pass": 3}


class ChecksScreen(StepScreen):
    STEP = "checks"
    TITLE = "Live checks"
    SECTIONS = ()

    BINDINGS = [
        Binding("r", "run_all", "Re-run all"),
        Binding("o", "run_one", "Re-run one"),
        Binding("s", "save_report", "Save report"),
        Binding("f", "save_firewall", "Firewall request"),
    ]

    DEFAULT_CSS = """
    ChecksScreen #results { height: auto; max-height: 9; }
    ChecksScreen #detail { height: auto; margin-top: 1; }
    ChecksScreen #saved { height: auto; max-height: 3; color: $success; padding: 0 1; }
    ChecksScreen #saved.-empty { display: none; }
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.catalog = catalog_of(self.context)
        # A report is kept only for the plan it checked (the plan may have changed since).
        same_plan = self.context.extras.get("report_plan") == self.plan
        self.report: Report | None = (self.context.report if isinstance(self.context.report, Report) and same_plan
                                      else None)
        self.running = False
        self.done_count = 0
        self.total = 0
        self.confirm_next = False

    def compose_body(self) -> ComposeResult:
        yield Static("The plan is not written yet: addresses it sets show as warnings. "
                     "R re-run all, O re-run chosen, S save report, F firewall request.",
                     classes="hint", markup=False)
        yield Static("", id="progress", markup=False)
        yield OptionList(markup=False, compact=True, id="results")
        yield Label("Details (Enter on a result)")
        yield Prose("", id="detail")

    def compose_status(self) -> ComposeResult:
        # Below the body, in sight whatever the list and the details scrolled to.
        yield Prose("", id="saved", classes="-empty")

    def on_mount(self) -> None:
        if self.report is not None and not self.report.cancelled:
            self._show_report(self.report)  # back from a later step: keep the results
        else:
            self.action_run_all()

    # --- running -------------------------------------------------------------------------
    def _timeout(self) -> float:
        return float(self.context.extras.get("check_timeout", DEFAULT_TIMEOUT_S))

    def action_run_all(self) -> None:
        self._start(None)

    def action_run_one(self) -> None:
        if self.running:
            self.say("The checks are running; wait for them to finish (R starts them over).")
            return
        result = self._chosen()
        if result is None:
            self.say("Choose a result in the list first (arrows), then O.")
            return
        if isinstance(result, Finding):
            self.say("That is a finding (a cause): choose one of its checks below it in the list, then O.")
            return
        self._start(result.key)

    def _start(self, only: str | None) -> None:
        self.confirm_next = False
        self.say("")
        self.run_checks_worker(only)

    shown: list[Result | Finding] = []
    finding_of: dict[str, str] = {}

    @work(exclusive=True, group="checks")
    async def run_checks_worker(self, only: str | None) -> None:
        """Plan and run the checks (all, or one with what it needs) and show them as they come."""
        from installer.checks.planner import build_context, plan_checks, remediation

        progress = self.query_one("#progress", Static)
        results = self.query_one("#results", OptionList)
        try:
            ctx = build_context(self.plan, self.catalog, timeout=self._timeout())
            checks = plan_checks(self.plan, ctx, expect_applied=False)
        except Exception as e:  # a plan the planner cannot read is shown, never raised
            progress.update(f"The checks could not start: {type(e).__name__}: {e}")
            return
        if only is not None:
            checks = _closure(checks, only)
        trust_problem = ""
        if self.plan.tls.extra_ca_file:
            try:  # loading trust anchors reads files: off the UI thread
                await asyncio.to_thread(ctx.trust)
            except (OSError, ValueError) as e:
                trust_problem = (f" tls.extra_ca_file {self.plan.tls.extra_ca_file} cannot be used ({e}): "
                                 "TLS checks will fail until it is a PEM file of CA certificates on this box.")
        self.running = True
        self.done_count, self.total = 0, len(checks)
        progress.update(f"Running {self.total} check{'s' if self.total != 1 else ''}: 0 of {self.total} done")
        results.clear_options()
        self.query_one("#detail", Static).update("")

        def on_result(result: Result, done: int, total: int) -> None:
            self.done_count = done
            progress.update(f"Running: {done} of {total} done")
            results.add_option(short_line(result))

        try:
            report = await run_checks(checks, ctx, progress=on_result,
                                      remediation=remediation(self.plan, self.catalog))
        except Exception as e:  # the runner never raises; should it, say so instead of crashing
            progress.update(f"The checks stopped: {type(e).__name__}: {e}. R runs them again.")
            return
        finally:
            self.running = False
        if only is not None and self.report is not None:
            fresh = {r.key: r for r in report.results}
            merged = [fresh.get(r.key, r) for r in self.report.results]
            merged += [r for r in report.results if r.key not in {m.key for m in merged}]
            report = Report(merged, self.report.duration_s, cancelled=False)
        self.report = report
        self.context.report = report
        self.context.extras["report_plan"] = self.plan
        self._show_report(report, focus_key=only)
        if trust_problem:
            self.say(trust_problem.strip())

    def _show_report(self, report: Report, focus_key: str | None = None) -> None:
        results = self.query_one("#results", OptionList)
        results.clear_options()
        # The causes first (one per problem in the plant's network), then every check: failures,
        # warnings, skips, passes (planned order within).
        found, self.finding_of = finding_groups.group(report.results)
        self.shown = [*found, *sorted(report.results, key=lambda r: _ORDER[r.status])]
        results.add_options(finding_line(x) if isinstance(x, Finding) else short_line(x) for x in self.shown)
        causes = (f" {len(found)} cause{'s' if len(found) != 1 else ''} found (F1...), then every check."
                  if found else "")
        self.query_one("#progress", Static).update(
            f"Done: {reports.summary_line(report)}.{causes} Enter shows the evidence.")
        index = next((i for i, r in enumerate(self.shown) if isinstance(r, Result) and r.key == focus_key), 0)
        if self.shown:
            results.highlighted = index
            self._show_detail(self.shown[index])
        results.focus()

    # --- results ---------------------------------------------------------------------------
    def _chosen(self) -> Result | Finding | None:
        if self.report is None or self.running:
            return None
        shown = getattr(self, "shown", self.report.results)
        index = self.query_one("#results", OptionList).highlighted
        if index is None or not 0 <= index < len(shown):
            return None
        return shown[index]

    @on(OptionList.OptionHighlighted, "#results")
    @on(OptionList.OptionSelected, "#results")
    def _result_chosen(self, event) -> None:
        result = self._chosen()
        if result is not None:
            self._show_detail(result)

    def _show_detail(self, r: Result | Finding) -> None:
        if isinstance(r, Finding):
            lines = [f"{r.id} {MARK[r.status]}: {r.title}"]
            if r.remediation:
                lines.append(f"What to do: {r.remediation}")
            lines.append(f"Covers {len(r.checks)} check{'s' if len(r.checks) != 1 else ''}: " + "; ".join(r.evidence))
            self.query_one("#detail", Static).update("\n".join(lines))
            return
        lines = [f"{MARK[r.status]} {r.id} {r.target}", f"Seen: {r.evidence}"]
        if r.remediation:
            lines.append(f"What to do: {r.remediation}")
        extra = f"Diagnosis: {r.diagnosis}, {r.duration_s:.2f} s"
        if r.key in self.finding_of:
            extra += f", part of finding {self.finding_of[r.key]}"
        if r.profile:
            extra += f", profile {r.profile}"
        lines.append(extra)
        self.query_one("#detail", Static).update("\n".join(lines))

    # --- saving ----------------------------------------------------------------------------
    def action_save_report(self) -> None:
        if self.report is None or self.running:
            self.say("No finished run to save yet: wait for the checks, or press R.")
            return
        self._save("report", self.report)

    def action_save_firewall(self) -> None:
        self._save("firewall")

    @work(thread=True, exclusive=True, group="save")
    def _save(self, what: str, report: Report | None = None) -> None:
        # Disk writes (with fsync) run off the UI thread. The report: the one finished when asked.
        try:
            if report is not None:
                paths = [save_report(self.context.root, self.plan, report)]
                saved = {"report": str(paths[0])}
                words = "Report saved: "
            else:
                md, csv = save_firewall_request(self.context.root, self.plan, self.catalog)
                paths = [md, csv]
                saved = {"firewall_md": str(md), "firewall_csv": str(csv)}
                words = "Firewall request saved: "
            message = words + ", ".join(str(p) for p in paths)
        except Exception as e:
            saved = {}
            message = f"Could not save the {what}: {getattr(e, 'strerror', None) or e}"
        self.app.call_from_thread(self._saved, saved, message)

    def _saved(self, saved: dict, message: str) -> None:
        self.context.extras.setdefault("saved", {}).update(saved)
        line = self.query_one("#saved", Static)
        line.update(message)
        line.set_class(not message, "-empty")

    # --- leaving -----------------------------------------------------------------------------
    def _stop(self) -> None:
        self.workers.cancel_group(self, "checks")
        self.running = False

    def action_next(self) -> None:
        report = self.report
        if self.running:
            problem = (f"The checks are still running ({self.done_count} of {self.total}). "
                       "Ctrl+N again leaves them unfinished and goes on.")
        elif report is None:
            problem = "No checks have run. Ctrl+N again goes on without them, R runs them."
        elif report.summary["fail"]:
            n = report.summary["fail"]
            problem = (f"{n} check{'s' if n != 1 else ''} failed. The IT team can fix the firewall later "
                       "(F saves the request): Ctrl+N again goes on, R re-runs.")
        else:
            problem = None
        if problem is not None and not self.confirm_next:
            self.confirm_next = True
            self.say(problem)
            return
        self._stop()
        self.say("")
        self.post_message(self.Done(self.plan, "next"))

    def action_back(self) -> None:
        self._stop()
        super().action_back()

    def on_unmount(self) -> None:
        self._stop()
