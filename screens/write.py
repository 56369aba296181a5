"""Step: write and apply. Lists the files and the ones that will be moved aside, then,
only after an explicit confirmation (tick the box, then W), writes them as one transaction
with backups and applies them (installer.writing.apply: `netplan apply` or nmcli on the box; under
a staging --root the commands are only shown). On the box the link, DNS and the cloud are
re-checked and the change is kept only when the technician presses K before the countdown
ends; otherwise every file is restored and the old state applied again (`netplan try`,
done so it works inside the wizard). Before anything is written on the box, every static
address of the plan is probed on the wire (ARP, installer.checks.neighbours): when another
device holds one, nothing is written and the line names the address, the port and the MAC."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Button, Checkbox, Label, Static

from installer.box.system import System
from installer.planning.validate import validate
from installer.render import RenderedFile, Target, render
from installer.writing.apply import DEFAULT_CONFIRM_TIMEOUT_S, ApplyResult, apply_plan
from installer.writing.existing import Conflict, find_conflicts
from installer.writing.writer import WriteResult, box_path
from screens.base import StepScreen, Toggle, WizardButton, words


def _state(root: Path, f: RenderedFile) -> str:
    try:
        p = box_path(root, f.path)
        if not p.exists():
            return "new"
        if p.is_file() and p.read_bytes() == f.content:
            return "same"
        return "replace"
    except Exception:
        return "?"


def result_lines(result: WriteResult) -> list[str]:
    """What a write run did, in words, one line each."""
    lines = []
    replaced = set(result.backed_up)
    created = [p for p in result.written if p not in replaced]
    for p in created:
        lines.append(f"written (new): {p}")
    for p in result.backed_up:
        lines.append(f"replaced: {p} (old copy kept)")
    for original, _kept in result.moved:
        lines.append(f"moved aside: {original} (into the backup set, under files/)")
    if result.unchanged:
        lines.append(f"already up to date: {', '.join(result.unchanged)}")
    if result.backup_dir:
        lines.append(f"Backups and manifest: {result.backup_dir} (under {result.root})")
    else:
        lines.append("Nothing needed changing; no backup set was made.")
    return lines


class WriteScreen(StepScreen):
    STEP = "write"
    TITLE = "Write the files"
    SECTIONS = ()

    BINDINGS = [Binding("w", "write", "Write"), Binding("k", "keep", "Keep")]

    DEFAULT_CSS = """
    WriteScreen #result { height: auto; margin-top: 1; }
    WriteScreen #write { margin-top: 1; }
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.root = Path(self.context.root)
        self.target = self.context.target if self.context.target is not None else Target()
        self.files: list[RenderedFile] = []
        self.conflicts: list[Conflict] = []
        self.problem: str | None = None
        self.writing = False
        self.result: WriteResult | None = None
        self.system: System = self.context.extras.get("system") or System(self.root)
        self._keep = threading.Event()
        self._leaving = False                 # the wizard is ending: answer no, touch no widget
        self._applying = threading.Event()  # set while apply_plan runs in the worker
        self._asking_until: float | None = None
        errors = validate(self.plan, self.context.validation)
        if errors:
            self.problem = (f"The plan has {len(errors)} problem(s) (first: {errors[0]}); go back to Review.")
        else:
            try:
                self.files = render(self.plan, self.target)
                self.conflicts = find_conflicts(self.root, self.plan, self.files)
            except Exception as e:
                self.problem = f"The files cannot be rendered: {type(e).__name__}: {e}"
        earlier = self.context.extras.get("write_result")
        if self.files and isinstance(earlier, WriteResult) and all(_state(self.root, f) == "same" for f in self.files):
            self.result = earlier  # back here after writing this very plan: nothing left to do

    def compose_body(self) -> ComposeResult:
        if self.problem:
            yield Static(self.problem, classes="warning", markup=False)
            return
        yield Label(f"Files to write under {self.root}", markup=False)
        yield Static("\n".join(f"  {_state(self.root, f):7} {f.mode:04o} {f.path}" for f in self.files),
                     id="files", markup=False)
        moved = [c for c in self.conflicts if c.action == "move-aside"]
        manual = [c for c in self.conflicts if c.action != "move-aside"]
        yield Label("Moved aside into the backup set (not deleted)")
        yield Static("\n".join(f"  {c.path}: {c.reason}" for c in moved) or "  None.", id="moves", markup=False)
        if manual:
            yield Label("Edit by hand before applying", classes="warning")
            yield Static("\n".join(f"  {c.path}: {c.reason}" for c in manual), markup=False)
        yield Toggle("Yes, write these files now (Space)", field="confirm", value=False, id="confirm")
        yield WizardButton("Write files (W)", id="write", disabled=True)
        done = "Already written.\n" + "\n".join(result_lines(self.result)) if self.result else ""
        yield Static(done, id="result", markup=False)

    def on_mount(self) -> None:
        if not self.problem:
            self.query_one("#confirm", Toggle).focus()

    @on(Checkbox.Changed, "#confirm")
    def _confirmed(self, event: Checkbox.Changed) -> None:
        self.query_one("#write", WizardButton).disabled = not event.value

    @on(Button.Pressed, "#write")
    def _write_pressed(self) -> None:
        self.action_write()

    def action_write(self) -> None:
        if self.problem or self.writing:
            return
        if not self.query_one("#confirm", Toggle).value:
            self.say("Tick 'Yes, write these files now' first (Space), then W.")
            self.query_one("#confirm", Toggle).focus()
            return
        self.say("")
        self.writing = True
        self.query_one("#result", Static).update("Writing...")
        self._applying.set()  # from now: the worker may apply (cleared when it is done)
        self._write()

    @work(thread=True, exclusive=True, group="write")
    def _write(self) -> None:
        # fsync, netplan apply and the re-check take seconds: off the UI thread.
        try:
            if not self._leaving:
                self._apply_in_thread()
        finally:
            self._applying.clear()

    def _apply_in_thread(self) -> None:
        lines: list[str] = []

        def progress(line: str) -> None:
            lines.append(line)
            self._from_thread(self.query_one("#result", Static).update, "\n".join(lines))

        timeout = float(self.context.extras.get("confirm_timeout", DEFAULT_CONFIRM_TIMEOUT_S))
        kwargs = {}
        if "rechecker" in self.context.extras:
            kwargs["rechecker"] = self.context.extras["rechecker"]
        if "address_prober" in self.context.extras:  # tests: what the ARP probes found
            kwargs["prober"] = self.context.extras["address_prober"]
        try:
            outcome = apply_plan(self.plan, self.system, self.target, confirm=self._confirm_in_thread,
                                 confirm_timeout=timeout, progress=progress, how_to_change="wizard", **kwargs)
            self._from_thread(self._written, outcome, None)
        except Exception as e:  # told in words, never a traceback
            self._from_thread(self._written, None, words(e))

    def _from_thread(self, callback, *args) -> None:
        # Queued, not waited for (post_message is thread-safe): while the wizard ends, its loop
        # waits for this thread (abandon) and could not answer.
        if not self._leaving:
            self.call_later(callback, *args)

    def _confirm_in_thread(self, seconds: float, report) -> bool:
        """Runs in the worker: show the re-check and the countdown, wait for K (or for
        `edge-installer confirm` from another session: a colleague on SSH who got through)."""
        import os

        from installer.writing.writer import confirmation_requested

        if self._leaving:
            return False
        self._keep.clear()
        self._from_thread(self._ask_to_keep, seconds, report)
        deadline = time.monotonic() + seconds
        kept = False
        while not self._leaving and (left := deadline - time.monotonic()) > 0:
            if self._keep.wait(min(left, 0.2)) or confirmation_requested(self.system.root, os.getpid()):
                kept = True
                break
        kept = kept and not self._leaving
        self._from_thread(self._stop_asking)
        return kept

    def abandon(self, seconds: float = 90.0) -> None:
        """The wizard is ending (Ctrl+Q, Ctrl+C, SIGTERM, SIGHUP) while a change may be applied
        and waiting for K: that is a no. Wait (bounded) until the old configuration is back,
        so the process does not end with the change half undone."""
        if not self._applying.is_set():
            return
        self._leaving = True
        self._keep.set()
        deadline = time.monotonic() + seconds
        while self._applying.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)

    def _ask_to_keep(self, seconds: float, report) -> None:
        from installer.checks.report import summary_line

        self._asking_until = time.monotonic() + seconds
        if report is not None:
            bad = [r for r in report.results if r.status == "fail"]
            first = f" First failure: {bad[0].id} {bad[0].target}: {bad[0].diagnosis}." if bad else ""
            self._recheck_line = f"Re-check after applying: {summary_line(report)}.{first}"
        else:
            self._recheck_line = "The re-check could not run."
        self._tick()
        self._countdown = self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        if self._asking_until is None:
            return
        left = max(0, int(self._asking_until - time.monotonic() + 0.999))
        self.say(f"{self._recheck_line} Press K to KEEP this network configuration; otherwise it is "
                  f"reverted in {left} s.")

    def _stop_asking(self) -> None:
        self._asking_until = None
        timer = getattr(self, "_countdown", None)
        if timer is not None:
            timer.stop()
        self.say("")

    def action_keep(self) -> None:
        if self._asking_until is not None:
            self._keep.set()

    def _written(self, outcome: ApplyResult | None, error: str | None) -> None:
        self.writing = False
        out = self.query_one("#result", Static)
        if outcome is not None and outcome.refused:
            # Another device answers for a planned address: nothing was written.
            out.update("NOT written: " + outcome.refused + "\n" + "\n".join(
                m for m in outcome.messages if not m.startswith("refused: ")))
            self.query_one("#confirm", Toggle).value = False
            self.say(f"Address in use: {outcome.refused.split(';')[0]}. Go back (Escape) and choose another.")
            return
        if error is not None or outcome is None or outcome.written is None:
            out.update(f"NOT written: {error}\nWhat was written before the error is listed in the backup "
                       f"manifest under {self.root}/var/lib/edge-installer/backups.")
            self.say("Writing failed; fix the cause and press W again.")
            return
        commands = [c.describe() for c in outcome.commands]
        if outcome.rolled_back:
            out.update("Reverted: the previous configuration is back.\n" + "\n".join(
                outcome.messages + [f"restored: {p}" for p in outcome.restored] + commands))
            self.query_one("#confirm", Toggle).value = False
            self.say("Not kept. Fix what the re-check showed (or confirm with K in time), then W again.")
            return
        self.result = outcome.written
        self.context.extras["write_result"] = outcome.written
        self.context.extras["apply_result"] = outcome
        out.update("Done.\n" + "\n".join(result_lines(outcome.written) + commands + outcome.messages))
        self.query_one("#next").focus()
        self.query_one("#body").scroll_end(animate=False)

    def action_next(self) -> None:
        if self.writing:
            self.say("Still writing; wait a moment.")
            return
        if self.result is None:
            self.say("The files are not written yet: tick 'Yes, write these files now' (Space), then W.")
            return
        self.post_message(self.Done(self.plan, "next"))

