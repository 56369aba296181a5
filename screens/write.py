"""Step: write. Lists the files and the ones that will be moved aside, then writes them
under the root only after an explicit confirmation (tick the box, then W), atomically and
with backups (installer.writer). Shows what was written, replaced, moved and where the
backups are; a write that fails is told in words. Applying comes later (see the help)."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Button, Checkbox, Label, Static

from installer.existing import Conflict, find_conflicts, move_aside_paths
from installer.render import RenderedFile, Target, render
from installer.validate import validate
from installer.writer import WriteResult, box_path, write_files
from screens.base import StepScreen, Toggle


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

    BINDINGS = [Binding("w", "write", "Write")]

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
        yield Button("Write files (W)", id="write", compact=True, disabled=True)
        done = "Already written.\n" + "\n".join(result_lines(self.result)) if self.result else ""
        yield Static(done, id="result", markup=False)

    def on_mount(self) -> None:
        if not self.problem:
            self.query_one("#confirm", Toggle).focus()

    @on(Checkbox.Changed, "#confirm")
    def _confirmed(self, event: Checkbox.Changed) -> None:
        self.query_one("#write", Button).disabled = not event.value

    @on(Button.Pressed, "#write")
    def _write_pressed(self) -> None:
        self.action_write()

    def action_write(self) -> None:
        if self.problem or self.writing:
            return
        if not self.query_one("#confirm", Toggle).value:
            self._say("Tick 'Yes, write these files now' first (Space), then W.")
            self.query_one("#confirm", Toggle).focus()
            return
        self._say("")
        self.writing = True
        self.query_one("#result", Static).update("Writing...")
        self._write()

    @work(thread=True, exclusive=True, group="write")
    def _write(self) -> None:
        # fsync on a slow eMMC takes time: off the UI thread.
        try:
            files = render(self.plan, self.target)
            conflicts = find_conflicts(self.root, self.plan, files)
            result = write_files(self.root, files, move_aside_paths(conflicts))
            self.app.call_from_thread(self._written, result, None)
        except Exception as e:  # told in words, never a traceback
            self.app.call_from_thread(self._written, None, _words(e))

    def _written(self, result: WriteResult | None, error: str | None) -> None:
        self.writing = False
        out = self.query_one("#result", Static)
        if error is not None:
            out.update(f"NOT written: {error}\nWhat was written before the error is listed in the backup "
                       f"manifest under {self.root}/var/lib/edge-installer/backups.")
            self._say("Writing failed; fix the cause and press W again.")
            return
        self.result = result
        self.context.extras["write_result"] = result
        out.update("Done.\n" + "\n".join(result_lines(result)))
        self.query_one("#confirm", Toggle).value = False
        self.query_one("#next").focus()
        self.query_one("#body").scroll_end(animate=False)

    def _say(self, message: str) -> None:
        line = self.query_one("#step-errors", Static)
        line.update(message)
        line.set_class(bool(message), "-shown")

    def action_next(self) -> None:
        if self.writing:
            self._say("Still writing; wait a moment.")
            return
        if self.result is None:
            self._say("The files are not written yet: tick 'Yes, write these files now' (Space), then W.")
            return
        self.post_message(self.Done(self.plan, "next"))


def _words(e: BaseException) -> str:
    if isinstance(e, OSError):
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror or e}"
    return str(e) or type(e).__name__
