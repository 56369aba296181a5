"""Step: review. The plan in words, every file that will be written with its full content,
what changes against the files on disk now, the files writing will move aside, and every
problem left in the plan with a way to the step that fixes it. Nothing secret is shown: the
files are rendered from the redacted plan and the diff masks secret values on both sides."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.widgets import Label, OptionList, Static

from installer.planning.describe import describe, diff
from installer.planning.plan import FieldError, Plan
from installer.planning.validate import validate
from installer.render import RenderedFile, Target, render
from installer.writing.existing import find_conflicts
from screens.base import StepScreen
from screens.cloud import catalog_of


def owner_step(field: str, plan: Plan) -> tuple[str, str] | None:
    """(id, title) of the wizard step that edits `field`, or None when no step does."""
    from screens import app as wizard

    try:
        classes = wizard.step_classes(plan)
    except ImportError:  # a step module missing must not break the review
        return None
    for cls in classes:
        if cls.STEP == ReviewScreen.STEP:
            continue
        if any(field == s or field.startswith((s + ".", s + "[")) for s in cls.SECTIONS):
            return cls.STEP, cls.TITLE
    return None


class ReviewScreen(StepScreen):
    STEP = "review"
    TITLE = "Review"
    SECTIONS = ()

    DEFAULT_CSS = """
    ReviewScreen #problems { height: auto; max-height: 8; }
    ReviewScreen .file-head { margin-top: 1; text-style: bold; }
    ReviewScreen .file-body { color: $text; padding-left: 2; }
    ReviewScreen .diff { padding-left: 2; }
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.catalog = catalog_of(self.context)
        self.errors: list[FieldError] = validate(self.plan, self.context.validation)
        self.owners = [owner_step(e.field, self.plan) for e in self.errors]
        self.files: list[RenderedFile] = []
        self.render_problem: str | None = None
        target = self.context.target if self.context.target is not None else Target()
        try:
            self.files = render(self.plan.redacted(), target)
        except Exception as e:  # renderers assume a valid plan; an invalid one is reported, not raised
            self.render_problem = f"{type(e).__name__}: {e}"

    def compose_body(self) -> ComposeResult:
        if self.errors:
            n = len(self.errors)
            yield Label(f"{n} problem{'s' if n != 1 else ''} to fix before writing "
                        "(Enter goes to the step that fixes it)", classes="warning")
            options = []
            for e, owner in zip(self.errors, self.owners, strict=True):
                where = f"{owner[1]}: " if owner else "(no step; edit the plan file): "
                options.append(where + str(e))
            yield OptionList(*options, markup=False, compact=True, id="problems")

        yield Label("The plan in words")
        yield Static("\n".join(f"- {s}" for s in describe(self.plan, self.catalog)), id="words", markup=False)

        root = self.context.root
        conflicts = find_conflicts(root, self.plan, self.files) if self.files else []
        moved = [c for c in conflicts if c.action == "move-aside"]
        manual = [c for c in conflicts if c.action != "move-aside"]
        yield Label("Files writing will move aside (kept in the backup set)")
        yield Static("\n".join(f"- {c.path}: {c.reason}" for c in moved) or "None.", id="moves", markup=False)
        if manual:
            yield Label("Edit by hand before applying", classes="warning")
            yield Static("\n".join(f"- {c.path}: {c.reason}" for c in manual), id="manual", markup=False)

        if self.render_problem is not None:
            yield Label("Files to write")
            yield Static("The files cannot be shown until the problems above are fixed "
                         f"({self.render_problem}).", id="files", markup=False)
            return

        changes = diff(root, self.files, secrets=self.plan.secrets())
        status = {path: _short(change) for path, change in changes}
        yield Label(f"Files to write ({len(self.files)}), under {root}", markup=False)
        yield Static("\n".join(f"- {f.path} ({f.mode:04o}, {status[f.path]}): {f.purpose}" for f in self.files),
                     id="file-list", markup=False)
        yield Label("Changes against what is on disk now")
        text = []
        for path, change in changes:
            if "\n" in change or change.startswith("---"):
                text.append(change)
            else:
                text.append(f"{path}: {change}")
        yield Static(fold("\n".join(text)), id="diff", classes="diff", markup=False)
        yield Label("Full content of each file (secrets as ********, long lines folded with \\)", markup=False)
        for i, f in enumerate(self.files):
            yield Static(f"== {f.path} (mode {f.mode:04o}) ==", classes="file-head", markup=False)
            yield Static(fold(f.text.rstrip("\n")), id=f"file-{i}", classes="file-body", markup=False)

    def on_mount(self) -> None:
        if self.errors:
            self.query_one("#problems", OptionList).focus()
        else:
            self.query_one("#body").focus()

    @on(OptionList.OptionSelected, "#problems")
    def _go_fix(self, event: OptionList.OptionSelected) -> None:
        owner = self.owners[event.option_index]
        if owner is None:
            self.say(f"No step edits {self.errors[event.option_index].field}: fix it in the plan file and "
                     "load it again.")
            return
        self.post_message(self.Done(self.plan, "goto", goto=owner[0]))

    def action_next(self) -> None:
        # Review edits nothing: Next only checks that the whole plan is valid.
        self.errors = validate(self.plan, self.context.validation)
        if self.errors:
            n = len(self.errors)
            self.say(f"{n} problem{'s' if n != 1 else ''} to fix before Next: choose one in the list at the "
                     "top and press Enter to go to its step.")
            self.query_one("#body").scroll_home(animate=False)
            self.query_one("#problems", OptionList).focus()
            return
        self.say("")
        self.post_message(self.Done(self.plan, "next"))


FOLD_WIDTH = 72  # 80 columns less the padding, the indent and the scrollbar


def fold(text: str, width: int = FOLD_WIDTH) -> str:
    """Text with each line longer than `width` cut into pieces, every piece but the last
    ending in a backslash: a configuration line must not wrap as if it were two."""
    out = []
    for line in text.splitlines():
        while len(line) > width:
            out.append(line[: width - 1] + "\\")
            line = line[width - 1:]
        out.append(line)
    return "\n".join(out)


def _short(change: str) -> str:
    if change == "new file" or change.startswith("unchanged"):
        return change
    if "\n" in change or change.startswith("---"):
        return "changes"
    return change
