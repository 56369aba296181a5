"""The one seam between edge-installer and the box: where files go and which commands run.

Chosen once at start-up. On the box (root "/") commands really run; under a staging root
(`--root DIR`) nothing outside DIR is touched and commands are only recorded, so the
technician sees what would run. No `if dry_run:` anywhere else.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class CommandResult:
    """What a command did: its exit status and the tail of its output."""

    argv: tuple[str, ...]
    returncode: int | None      # None: not run (staged root), or it could not start
    output: str
    ran: bool

    @property
    def ok(self) -> bool:
        """Ran and succeeded, or was only shown."""
        return not self.ran or self.returncode == 0

    def describe(self) -> str:
        """One line for the technician."""
        cmd = " ".join(self.argv)
        if not self.ran:
            return f"would run: {cmd}"
        if self.returncode == 0:
            return f"ran: {cmd}"
        tail = self.output.strip().splitlines()[-1:] or ["no output"]
        return f"FAILED ({self.returncode}): {cmd}: {tail[0]}"


@dataclass
class System:
    """The box (root "/") or a staged tree (any other root)."""

    root: Path = Path("/")
    runner: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
    history: list[CommandResult] = field(default_factory=list)
    # None: live exactly when root is "/". Tests of the apply flow set it with their own runner.
    live_override: bool | None = None

    @property
    def live(self) -> bool:
        """True when this is the box itself: commands run and the network changes."""
        if self.live_override is not None:
            return self.live_override
        return Path(self.root).resolve() == Path("/")

    def run(self, argv: list[str], timeout: float = 120) -> CommandResult:
        """Run a stack command on the box, or record it under a staged root. Never raises."""
        if not self.live:
            result = CommandResult(tuple(argv), None, "", False)
        elif shutil.which(argv[0]) is None and self.runner is subprocess.run:
            result = CommandResult(tuple(argv), 127, f"{argv[0]}: not installed", True)
        else:
            try:
                proc = self.runner(argv, capture_output=True, text=True, timeout=timeout)
                result = CommandResult(tuple(argv), proc.returncode, (proc.stdout or "") + (proc.stderr or ""), True)
            except subprocess.TimeoutExpired:
                result = CommandResult(tuple(argv), 124, f"timed out after {timeout:g} s", True)
            except OSError as e:
                result = CommandResult(tuple(argv), 126, str(e), True)
        self.history.append(result)
        return result
