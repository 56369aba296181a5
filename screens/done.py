"""Step: done. The plan in words, and where everything was left: the final plan (saved here,
mode 0600: it holds the secrets the files need), the check report and the firewall request
for the IT team, and the files written with their backups. Finish ends the wizard."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.widgets import Label, Static

from installer.checks.runner import Report
from installer.planning import plan as planmod
from installer.planning.describe import describe
from installer.writing.writer import APPLIED_PLAN, WriteResult, save_applied_plan
from screens.base import Prose, StepScreen, words
from screens.checks import save_firewall_request, save_report
from screens.cloud import catalog_of
from screens.write import result_lines

PLAN_FILE = APPLIED_PLAN


def save_plan(root: Path, plan: planmod.Plan) -> Path:
    """Write the final plan under root, mode 0600; the path it was written to."""
    return save_applied_plan(Path(root), plan)


class DoneScreen(StepScreen):
    STEP = "done"
    TITLE = "Done"
    SECTIONS = ()
    NEXT_LABEL = "Finish"

    DEFAULT_CSS = """
    DoneScreen #saved { height: auto; }
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.catalog = catalog_of(self.context)
        self.saving = False

    def compose_body(self) -> ComposeResult:
        yield Label("Saved for later")
        yield Prose("Saving...", id="saved")
        yield Label("Files")
        written = self.context.extras.get("write_result")
        if isinstance(written, WriteResult):
            text = "\n".join(result_lines(written))
        else:
            text = "The configuration files were NOT written (Esc goes back to the write step)."
        yield Prose(text, id="written")
        applied = self.context.extras.get("apply_result")
        if applied is not None and getattr(applied, "commands", None) and all(c.ran for c in applied.commands):
            state = "Applied and confirmed on this box."
        else:
            state = "Staged under the root, not applied: on the box, `edge-installer apply` does it."
        yield Prose(f"{state} Finish (Ctrl+N) ends the wizard.", classes="hint")
        yield Label("This box is set up as follows")
        yield Prose("\n".join(f"- {s}" for s in describe(self.plan, self.catalog)), id="summary")

    def on_mount(self) -> None:
        self.saving = True
        self._save_all()
        self.query_one("#next").focus()

    @work(thread=True, exclusive=True, group="save")
    def _save_all(self) -> None:
        # Each file on its own: one that cannot be written does not stop the others.
        root = Path(self.context.root)
        lines: list[str] = []
        saved: dict[str, str] = {}
        try:
            saved["plan"] = str(save_plan(root, self.plan))
            lines.append(f"Plan (mode 0600, holds secrets): {saved['plan']}")
        except Exception as e:
            lines.append(f"Plan NOT saved: {words(e)}")
        report = self.context.report
        if isinstance(report, Report) and self.context.extras.get("report_plan") != self.plan:
            lines.append("No check report: the plan changed after the last checks (Esc back to run them).")
        elif isinstance(report, Report) and not report.cancelled:
            try:
                saved["report"] = str(save_report(root, self.plan, report))
                lines.append(f"Check report: {saved['report']}")
            except Exception as e:
                lines.append(f"Check report NOT saved: {words(e)}")
        else:
            lines.append("No check report: the checks did not finish.")
        try:
            md, csv = save_firewall_request(root, self.plan, self.catalog)
            saved["firewall_md"], saved["firewall_csv"] = str(md), str(csv)
            lines.append(f"Firewall request for IT: {md}")
            lines.append(f"  and as CSV: {csv}")
        except Exception as e:
            lines.append(f"Firewall request NOT saved: {words(e)}")
        self.app.call_from_thread(self._saved, saved, lines)

    def _saved(self, saved: dict, lines: list[str]) -> None:
        self.saving = False
        self.context.extras.setdefault("saved", {}).update(saved)
        self.query_one("#saved", Static).update("\n".join(lines))

    def action_next(self) -> None:
        if self.saving:
            self.say("Still saving; a moment.")
            return
        self.post_message(self.Done(self.plan, "next"))

