"""Starting the wizard from the command line: `edge-installer [--root DIR] [--plan FILE]
[--resume] [--plain]`. Builds what the steps may read (the box's interfaces and stack, the
catalogue), chooses the display mode, runs the app, and always leaves the terminal usable."""

from __future__ import annotations

import gc
import os
import pickle
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from installer.planning import plan as planmod

if TYPE_CHECKING:
    from installer.box.discover import Inventory
    from installer.planning.validate import Context as ValidationContext
    from installer.render import Target
    from installer.vendors.profilemodel import Catalog
    from screens.base import WizardContext

# A refused bundle at start-up: the ways out are the wizard's options (installer.fleet.bundle.trust_verdict).
CLI_TRUST_WORDS = {"trust_hint": "or give --trust-key KEY.pub", "opt_in": "give --allow-unsigned to use it anyway",
                   "because": "(--allow-unsigned)"}


class WizardStartError(Exception):
    """The wizard cannot start; the message says why and what to do."""


# The welcome step's table of interfaces is laid out this wide (inside the body's padding and
# scroll bar at 80 columns, so no row wraps twice: screens.welcome asks for it at this width).
TABLE_WIDTH = 76


class Discovery:
    """`discover()` (this box's links and stack) in a child process forked before the wizard
    imports Textual: its reads of /sys and /proc and its wait for dpkg-query run on another
    core while this process imports, instead of delaying the first frame. (A thread would
    not: its hundreds of small reads each give the interpreter lock back and wait up to 5 ms
    to take it again from the imports, and both ended ~40 ms later than either alone.) The
    child also lays out the welcome step's table, so that this process need not import the
    discovery code or read the inventory before the first frame.
    Without fork (or background=False), beside other threads (a fork copies only the calling
    thread, perhaps with a lock another one holds), or when the child fails, discover() runs
    here, in `result()`: whatever it raises is raised there, as if called there."""

    def __init__(self, background: bool = True) -> None:
        self._child: tuple[int, int] | None = None  # (pid, read end of its pipe)
        self._sent: tuple[str, bytes] | None = None  # what the child sent: the table, the pickled inventory
        self._inventory: Inventory | None = None
        if not background or not hasattr(os, "fork") or threading.active_count() > 1:
            return
        try:
            read, write = os.pipe()
        except OSError:
            return
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            return
        if pid == 0:  # the child: discover, hand the result over, leave without cleaning up
            status = 1  # the parent's atexit handlers and buffers are not the child's
            try:
                os.close(read)
                from installer.box.discover import discover, format_table

                inventory = discover()
                data = pickle.dumps((format_table(inventory, width=TABLE_WIDTH), pickle.dumps(inventory)))
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(data)
                status = 0
            finally:
                os._exit(status)
        os.close(write)
        self._child = (pid, read)

    def _collect(self) -> None:
        """Take what the child sent (nothing when it failed), the child reaped."""
        if self._child is None:
            return
        pid, read = self._child
        self._child = None
        try:
            with os.fdopen(read, "rb") as pipe:
                data = pipe.read()
        finally:
            _, status = os.waitpid(pid, 0)
        if status == 0 and data:
            self._sent = pickle.loads(data)  # a str and bytes: nothing of the program imported

    def table(self, width: int) -> str | None:
        """The table of interfaces as the child laid it out, when it did and at this width."""
        self._collect()
        return self._sent[0] if self._sent is not None and width == TABLE_WIDTH else None

    def result(self) -> Inventory:
        """The inventory: the child's (it is this program, run from a copy of this process:
        its pickle is trusted), or discover() now."""
        if self._inventory is None:
            self._collect()
            if self._sent is not None:
                self._inventory = pickle.loads(self._sent[1])
            else:
                from installer.box.discover import discover

                self._inventory = discover()
        return self._inventory

    def close(self) -> None:
        """Reap the child if nobody asked for its result (the wizard stopped before)."""
        self._collect()


def build_context(root: Path, plain_reason: str = "", discovery: Discovery | None = None) -> WizardContext:
    """The WizardContext for a box whose filesystem is at root (this box's inventory from
    `discovery`, when it was started earlier; else discovered here). What takes time is left
    for the first step that reads it: the box's facts (the inventory, the render target; the
    welcome step shows the discovery's own table), the vendor profiles (the catalogue, and
    validation, which knows them)."""
    from screens.base import WizardContext

    found = discovery if discovery is not None else Discovery(background=False)
    if found.table(TABLE_WIDTH) is None:
        # No child, or it failed: discover here, where an error (an unreadable /sys) ends the
        # start with one line, not inside a step.
        found.result()

    def box_later() -> tuple[Inventory, Target]:
        from installer.box.stack import detect_stack
        from installer.render import target_for

        inventory = found.result()  # this box, and its stack (root "/")
        stack = inventory.stack if root.resolve() == Path("/") else detect_stack(root)
        return inventory, target_for(stack)

    def later() -> tuple[ValidationContext, Catalog]:
        from installer.planning.validate import default_context
        from installer.vendors.profiles import load_catalog

        inventory = context.inventory
        kinds = {i.name: i.kind for i in inventory.interfaces} if inventory is not None else None
        # The review refuses what this box cannot run, as validate, render and apply do.
        return default_context(kinds, context.target), load_catalog()

    context = WizardContext(root=root, plain_reason=plain_reason, later=later, box_later=box_later, table=found.table,
                            extras={"sys_class_net": "/sys/class/net"})  # this box's ports, read live
    return context


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
    discovery = Discovery()  # while Textual and the steps are imported
    try:
        return _run_wizard(root, root_path, plan_file, resume, plain, passphrase_file, trust_keys, allow_unsigned,
                           collecting, discovery)
    finally:
        discovery.close()
        if collecting:
            gc.enable()


def _run_wizard(root: str | None, root_path: Path, plan_file: str | None, resume: bool, plain: bool | None,
                passphrase_file: str | None, trust_keys: list[str] | tuple[str, ...], allow_unsigned: bool,
                collecting: bool, discovery: Discovery) -> int:
    from screens import terminal

    auto, reason = terminal.detect_plain()
    use_plain = auto if plain is None else plain
    if plain:
        reason = "plain ASCII (--plain)"
    elif not use_plain:
        reason = "full display"
    terminal.prepare_environment(use_plain)
    plan, step, extras = start_plan(root_path, plan_file, resume, passphrase_file, trust_keys, allow_unsigned)
    context = build_context(root_path, reason, discovery)
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
