"""The command line's verbs, one module each (as netplan has one class per verb).

Each module has `add_parser(subparsers)` and `run(args) -> int` (the exit code).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from installer.planning import plan as planmod
from installer.planning.plan import FieldError, Plan

if TYPE_CHECKING:
    from installer.planning.validate import Context


class UsageError(Exception):
    """Bad input from the user: printed as it is (one problem per line), exit code 2."""

    def __init__(self, lines: list[str] | str):
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines))


def seconds_type(low: float, high: float, hint: str = "") -> Callable[[str], float]:
    """An argparse type for a flag that takes seconds: a finite number from low to high.
    A word, inf, nan or a number out of bounds is refused in one line that gives the bounds
    (every verb's --timeout, --deadline, --wait and --confirm-timeout say it the same way)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a number of seconds; give {low:g} to {high:g} seconds{hint}") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} s is out of range; give {low:g} to {high:g} seconds{hint}")
        return value

    return parse


# A check's --timeout and --deadline, in every verb that runs the checks.
check_seconds = seconds_type(0.05, 600)


def root_problem(root: str | None) -> str | None:
    """Why --root cannot be written under, in words; None when it can (or is not given)."""
    import os

    if not root:
        return None
    if os.path.isdir(root):
        if root.strip("/") and os.path.realpath(root) == "/":
            # Through `..` or a symlink, this is the box itself, not a staging tree: acting on
            # it would run commands and change the live network while the user meant a stage.
            return (f"--root {root}: resolves to /, this box itself; leave --root out to act on this box, "
                    "or give a staging directory")
        return None
    if os.path.lexists(root):
        return f"--root {root}: exists and is not a directory; give a directory"
    return f"--root {root}: not a directory; create it first (mkdir -p {root})"


def check_root(root: str | None) -> None:
    """Raise UsageError when --root is given and cannot be written under."""
    problem = root_problem(root)
    if problem:
        raise UsageError(problem)


def load_valid_plan(path: str, ctx: Context | None = None) -> Plan:
    """Read and validate a plan file; raise UsageError with one line per problem."""
    from installer.planning.validate import validate

    try:
        plan = planmod.load(path)
    except planmod.PlanError as e:
        raise UsageError(str(e).splitlines()) from None
    errors = validate(plan, ctx)
    if errors:
        raise UsageError(format_errors(path, errors))
    return plan


def format_errors(source: str, errors: list[FieldError]) -> list[str]:
    """One line per error, prefixed by the file: `plan.yaml: uplink.gateway: ...`."""
    return [f"{source}: {e}" for e in errors]
