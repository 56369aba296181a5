"""Starting the wizard from the command line: `edge-installer [--root DIR] [--plan FILE]
[--resume] [--plain]`. Builds what the steps may read (the box's interfaces and stack, the
catalogue), chooses the display mode, runs the app, and always leaves the terminal usable."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from installer.planning import plan as planmod
from installer.planning.draft import Draft, DraftError

if TYPE_CHECKING:
    from installer.planning.validate import Context as ValidationContext
    from installer.vendors.profilemodel import Catalog
    from screens.base import WizardContext

# A refused bundle at start-up: the ways out are the wizard's options (installer.fleet.bundle.trust_verdict).
CLI_TRUST_WORDS = {"trust_hint": "or give --trust-key KEY.pub", "opt_in": "give --allow-unsigned to use it anyway",
                   "because": "(--allow-unsigned)"}


class WizardStartError(Exception):
    """The wizard cannot start; the message says why and what to do."""


def build_context(root: Path, plain_reason: str = "") -> WizardContext:
    """The WizardContext for a box whose filesystem is at root. The vendor profiles (the
    catalogue, and validation, which knows them) are read when a step first asks: the welcome
    step does not, so its first frame need not wait for them."""
    from installer.box.discover import discover
    from installer.box.stack import detect_stack
    from installer.render import target_for
    from screens.base import WizardContext

    inventory = discover()  # this box, and its stack (root "/")
    stack = inventory.stack if root.resolve() == Path("/") else detect_stack(root)
    kinds = {i.name: i.kind for i in inventory.interfaces}
    target = target_for(stack)

    def later() -> tuple[ValidationContext, Catalog]:
        from installer.planning.validate import default_context
        from installer.vendors.profiles import load_catalog

        # The review refuses what this box cannot run, as validate, render and apply do.
        return default_context(kinds, target), load_catalog()

    return WizardContext(root=root, inventory=inventory, target=target, plain_reason=plain_reason, later=later,
                         extras={"sys_class_net": "/sys/class/net"})  # this box's ports, read live


def start_plan(root: Path, plan_file: str | None, resume: bool, passphrase_file: str | None = None,
               trust_keys: list[str] | tuple[str, ...] = (), allow_unsigned: bool = False,
               ) -> tuple[planmod.Plan, str | None, dict]:
    """The plan to start from, the step to start at, and what the context must know
    (a bundle: the fields this box must give, who signed it). A bundle whose signer the box
    does not trust (root's trust file, trust_keys) is refused unless allow_unsigned."""
    from screens.app import new_plan

    draft = Draft(root)
    if resume:
        try:
            plan, step = draft.load()
            return plan, step, {"trust_warning": draft.warning()}  # an accepted unsigned bundle stays said
        except DraftError as e:
            raise WizardStartError(str(e)) from None
    if plan_file:
        from installer.fleet.bundle import is_bundle  # cryptography: only when there is a file to read
    if plan_file and is_bundle(plan_file):
        from screens.perbox import BundleRefused, open_bundle

        passphrase = None
        if passphrase_file:
            from installer.commands import UsageError
            from installer.commands.bundle import read_passphrase

            try:
                passphrase = read_passphrase(passphrase_file)
            except UsageError as e:
                raise WizardStartError(str(e)) from None
        try:
            loaded, extras = open_bundle(plan_file, root, trust_keys, allow_unsigned, passphrase, words=CLI_TRUST_WORDS)
        except BundleRefused as e:
            raise WizardStartError(f"{plan_file}: {e}") from None
        return loaded.plan, "this-box", extras
    if plan_file:
        try:
            return planmod.load(plan_file), "topology", {}
        except planmod.PlanError as e:
            raise WizardStartError(str(e)) from None
    return new_plan(), None, {}


def run_wizard(root: str | None, plan_file: str | None, resume: bool, plain: bool | None,
               passphrase_file: str | None = None, trust_keys: list[str] | tuple[str, ...] = (),
               allow_unsigned: bool = False) -> int:
    """Run the wizard; the exit code for the command line."""
    from installer.commands import root_problem
    from screens import terminal

    root_path = Path(root) if root else Path("/")
    problem = root_problem(root)
    if problem:
        raise WizardStartError(problem)
    auto, reason = terminal.detect_plain()
    use_plain = auto if plain is None else plain
    if plain:
        reason = "plain ASCII (--plain)"
    elif not use_plain:
        reason = "full display"
    terminal.prepare_environment(use_plain)
    plan, step, extras = start_plan(root_path, plan_file, resume, passphrase_file, trust_keys, allow_unsigned)
    context = build_context(root_path, reason)
    context.extras.update(extras)
    context.extras["trust"] = (tuple(trust_keys), allow_unsigned)  # for a bundle loaded at the welcome step
    from screens.app import WizardApp

    # A draft from an earlier run is offered (resume or start over) unless --resume took it.
    app = WizardApp(plan, context, draft=Draft(root_path), start_step=step, plain=use_plain,
                    offer_draft=not resume)
    result = app.run(mouse=False)
    if app.finished and result is not None:
        print("Done. The plan, the report and the firewall request are under "
              f"{root_path / 'var/lib/edge-installer'}.", file=sys.stderr)
        return 0
    print(f"Stopped. The draft is saved; continue with: edge-installer --resume"
          f"{' --root ' + str(root) if root else ''}", file=sys.stderr)
    return app.return_code or 0
