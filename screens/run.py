"""Starting the wizard from the command line: `edge-installer [--root DIR] [--plan FILE]
[--resume] [--plain]`. Builds what the steps may read (the box's interfaces and stack, the
catalogue), chooses the display mode, runs the app, and always leaves the terminal usable."""

from __future__ import annotations

import gc
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from installer.planning import plan as planmod

if TYPE_CHECKING:
    from installer.box.discover import Inventory
    from installer.planning.validate import Context as ValidationContext
    from installer.vendors.profilemodel import Catalog
    from screens.base import WizardContext

# A refused bundle at start-up: the ways out are the wizard's options (installer.fleet.bundle.trust_verdict).
CLI_TRUST_WORDS = {"trust_hint": "or give --trust-key KEY.pub", "opt_in": "give --allow-unsigned to use it anyway",
                   "because": "(--allow-unsigned)"}


class WizardStartError(Exception):
    """The wizard cannot start; the message says why and what to do."""


class Discovery:
    """`discover()` (this box's links and stack) in a thread of its own, started before the
    wizard imports Textual: its reads of /sys and /proc and its wait for dpkg-query overlap
    the imports instead of delaying the first frame. `result()` waits for it."""

    def __init__(self) -> None:
        self._inventory: Inventory | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="discover", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            from installer.box.discover import discover

            self._inventory = discover()
        except BaseException as e:  # raised in the caller of result(), as if called there
            self._error = e

    def result(self) -> Inventory:
        """The inventory (waits for the thread; raises what discover() raised)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._inventory is not None
        return self._inventory


# The discovery run_wizard started, for its build_context (None outside run_wizard).
_started: Discovery | None = None


def build_context(root: Path, plain_reason: str = "", discovery: Discovery | None = None) -> WizardContext:
    """The WizardContext for a box whose filesystem is at root (this box's inventory from
    `discovery`, or the one run_wizard started, when it was started earlier; else discovered
    now). The vendor profiles (the catalogue, and validation, which knows them) are read when a
    step first asks: the welcome step does not, so its first frame need not wait for them."""
    from installer.box.stack import detect_stack
    from installer.render import target_for
    from screens.base import WizardContext

    inventory = (discovery or _started or Discovery()).result()  # this box, and its stack (root "/")
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
    from installer.planning.draft import Draft, DraftError
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

    root_path = Path(root) if root else Path("/")
    problem = root_problem(root)
    if problem:
        raise WizardStartError(problem)
    # Until the first frame is on the screen, no garbage collection: importing Textual and
    # building the first step allocate many objects and free few, and the collector would walk
    # them again and again (about 17 ms of a 2-core machine's CPU, 25-40 ms on a busy one). It
    # collects once the frame is shown, while the technician reads it.
    collecting = gc.isenabled()
    gc.disable()
    global _started
    _started = Discovery()  # while Textual and the steps are imported
    try:
        return _run_wizard(root, root_path, plan_file, resume, plain, passphrase_file, trust_keys, allow_unsigned,
                           collecting)
    finally:
        _started = None
        if collecting:
            gc.enable()


def _run_wizard(root: str | None, root_path: Path, plan_file: str | None, resume: bool, plain: bool | None,
                passphrase_file: str | None, trust_keys: list[str] | tuple[str, ...], allow_unsigned: bool,
                collecting: bool) -> int:
    from screens import terminal

    auto, reason = terminal.detect_plain()
    use_plain = auto if plain is None else plain
    if plain:
        reason = "plain ASCII (--plain)"
    elif not use_plain:
        reason = "full display"
    terminal.prepare_environment(use_plain)
    plan, step, extras = start_plan(root_path, plan_file, resume, passphrase_file, trust_keys, allow_unsigned)
    context = build_context(root_path, reason)  # with the discovery started above
    context.extras.update(extras)
    context.extras["trust"] = (tuple(trust_keys), allow_unsigned)  # for a bundle loaded at the welcome step
    from installer.planning.draft import Draft
    from screens.app import WizardApp

    # A draft from an earlier run is offered (resume or start over) unless --resume took it.
    app = WizardApp(plan, context, draft=Draft(root_path), start_step=step, plain=use_plain,
                    offer_draft=not resume, after_first_frame=gc.enable if collecting else None)
    result = app.run(mouse=False)
    if app.finished and result is not None:
        print("Done. The plan, the report and the firewall request are under "
              f"{root_path / 'var/lib/edge-installer'}.", file=sys.stderr)
        return 0
    print(f"Stopped. The draft is saved; continue with: edge-installer --resume"
          f"{' --root ' + str(root) if root else ''}", file=sys.stderr)
    return app.return_code or 0
