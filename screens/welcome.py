"""Step 1, welcome: what the box has (interfaces, network stack), load a plan, display mode."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from installer import plan as planmod
from installer.plan import FieldError
from screens.base import FieldInput, StepScreen


class WelcomeScreen(StepScreen):
    STEP = "welcome"
    TITLE = "Welcome"
    SECTIONS = ("load",)

    def compose_body(self) -> ComposeResult:
        from installer.discover import format_table

        inventory = self.context.inventory
        table = format_table(inventory) if inventory is not None else "No interfaces detected."
        yield Static("This box has:", classes="hint")
        yield Static(table, id="interfaces", markup=False)
        mode = self.context.plain_reason or "full display"
        yield Static(f"Display: {mode}. F4 switches.", classes="hint", markup=False)
        yield FieldInput("Start from a plan file or a bundle (optional; leave empty for a new plan)",
                         field="load", value="", placeholder="/path/to/plan.yaml or bundle.tar.gz", id="load")

    def action_next(self) -> None:
        path = self.query_one("#load", FieldInput).value
        if not path:
            super().action_next()
            return
        from installer.bundle import BundleError, is_bundle, load_bundle

        if is_bundle(path):
            # A bundle without its passphrase: the secrets it holds are asked on the next step.
            try:
                bundle = load_bundle(path, None)
            except BundleError as e:
                self.show_errors([FieldError("load", str(e))])
                return
            from screens.perbox import bundle_extras

            self.context.extras.update(bundle_extras(bundle, path))
            self.show_errors([])
            self.post_message(self.Done(bundle.plan, "next", goto="this-box"))
            return
        try:
            loaded = planmod.load(path)
        except planmod.PlanError as e:
            self.show_errors([FieldError("load", "; ".join(err.message for err in e.errors) or str(e))])
            return
        self.show_errors([])
        self.post_message(self.Done(loaded, "next"))
