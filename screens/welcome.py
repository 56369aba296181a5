"""Step 1, welcome: what the box has (interfaces, network stack), load a plan, display mode."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from installer.planning import plan as planmod
from installer.planning.plan import FieldError
from screens.base import FieldInput, Prose, StepScreen, Toggle


class WelcomeScreen(StepScreen):
    STEP = "welcome"
    TITLE = "Welcome"
    SECTIONS = ("load",)

    def compose_body(self) -> ComposeResult:
        from screens.run import TABLE_WIDTH

        # Inside the body's padding and scroll bar at 80 columns, so no row wraps twice.
        table = self.context.interfaces_table(TABLE_WIDTH)
        yield Static("This box has:", classes="hint")
        yield Prose(table, id="interfaces")
        mode = self.context.plain_reason or "full display"
        yield Static(f"Display: {mode}. F4 switches.", classes="hint", markup=False)
        yield FieldInput("Start from a plan file or a bundle (optional; leave empty for a new plan)",
                         field="load", value="", placeholder="/path/to/plan.yaml or bundle.tar.gz", id="load")

    def action_next(self) -> None:
        path = self.query_one("#load", FieldInput).value
        if not path:
            super().action_next()
            return
        from installer.fleet.bundle import is_bundle

        if is_bundle(path):
            self._open_bundle(path)
            return
        try:
            loaded = planmod.load(path)
        except planmod.PlanError as e:
            self.show_errors([FieldError("load", "; ".join(err.message for err in e.errors) or str(e))])
            return
        self.show_errors([])
        self.post_message(self.Done(loaded, "next"))

    def _open_bundle(self, path: str) -> None:
        """A bundle is verified and its signer checked here; its passphrase (when its secrets are
        encrypted) is asked on the next step, by that name."""
        from screens.perbox import BundleRefused, open_bundle

        trust_keys, allow = self.context.extras.get("trust", ((), False))
        accept = self.query("#accept-untrusted")
        allow = allow or bool(accept and accept.first(Toggle).value)
        try:
            bundle, extras = open_bundle(path, self.context.root, trust_keys, allow)
        except BundleRefused as e:
            self.show_errors([FieldError("load", str(e))])
            if not accept and e.untrusted:  # not a damaged bundle: the technician may accept it
                self.query_one("#body").mount(Toggle("Use it anyway (I know where this bundle came from)",
                                                     field="accept-untrusted", value=False, id="accept-untrusted"))
            return
        self.context.extras.update(extras)
        self.show_errors([])
        self.post_message(self.Done(bundle.plan, "next", goto="this-box"))
