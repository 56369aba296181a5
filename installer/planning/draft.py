"""The wizard's draft: the plan as entered so far and the step to continue at.

Saved after every step (atomically, mode 0600: it may hold a WiFi passphrase), so a power
cut, Ctrl+C or a closed serial session loses at most the step being edited, and
`edge-installer --resume` continues where the technician was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from installer.planning import plan as planmod
from installer.planning.plan import Plan
from installer.writing.paths import box_path  # the writer itself when a draft is saved: not before the first frame

DRAFT_DIR = "/var/lib/edge-installer"
DRAFT_FILE = f"{DRAFT_DIR}/draft.yaml"
STATE_FILE = f"{DRAFT_DIR}/draft-state.json"


class DraftError(Exception):
    """A draft that cannot be read back; the message names the file."""


@dataclass
class Draft:
    """The draft of one box, stored under its root."""

    root: Path

    @property
    def plan_path(self) -> Path:
        """Where the draft plan lives (under the root)."""
        return box_path(self.root, DRAFT_FILE)

    @property
    def state_path(self) -> Path:
        """Where the step to resume at lives (under the root)."""
        return box_path(self.root, STATE_FILE)

    def exists(self) -> bool:
        """True when a draft was saved."""
        return self.plan_path.is_file()

    def save(self, plan: Plan, step: str, warning: str | None = None) -> None:
        """Save the plan and the step, the plan first: a state never points at an older plan.
        warning: the line the wizard keeps on every step (a bundle accepted unsigned); kept on resume."""
        import json

        from installer.writing.writer import atomic_write

        header = "# edge-installer draft: the plan as entered so far. Resume with edge-installer --resume.\n"
        atomic_write(self.plan_path, (header + planmod.dumps(plan)).encode("utf-8"), 0o600)
        state: dict[str, object] = {"version": 1, "step": step}
        if warning:
            state["warning"] = warning
        atomic_write(self.state_path, json.dumps(state).encode(), 0o600)

    def warning(self) -> str | None:
        """The warning saved with the draft (sanitized for the terminal), or None."""
        import json

        from installer.text import ascii_safe

        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None
        text = state.get("warning") if isinstance(state, dict) else None
        return ascii_safe(text, 300) if isinstance(text, str) and text else None

    def load(self) -> tuple[Plan, str | None]:
        """The saved plan and step; DraftError when there is none or it is damaged."""
        if not self.exists():
            raise DraftError(f"{DRAFT_FILE} under {self.root}: no draft to resume; start without --resume")
        try:
            plan = planmod.load(self.plan_path)
        except planmod.PlanError as e:
            raise DraftError(f"the draft cannot be read: {e}") from None
        import json

        step = None
        try:
            state = json.loads(self.state_path.read_text())
            step = state.get("step") if isinstance(state, dict) and isinstance(state.get("step"), str) else None
        except (OSError, ValueError):
            pass  # the plan is what matters; without a step, resume at the start
        return plan, step

    def saved_at(self) -> float | None:
        """When the draft was last saved (seconds since the epoch), or None."""
        try:
            return self.plan_path.stat().st_mtime
        except OSError:
            return None

    def backup(self) -> Path:
        """Keep the draft aside (draft-YYYYmmddTHHMMSS.yaml, its state next to it) before a new
        run starts over: a saved draft is never replaced silently. The backup's path."""
        import time

        stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(self.saved_at() or time.time()))
        target = self.plan_path.with_name(f"draft-{stamp}.yaml")
        n = 1
        while target.exists():
            n += 1
            target = self.plan_path.with_name(f"draft-{stamp}-{n}.yaml")
        self.plan_path.rename(target)  # same directory: atomic, the mode (0600) kept
        try:
            self.state_path.rename(target.with_name(target.stem.replace("draft-", "draft-state-") + ".json"))
        except FileNotFoundError:
            pass
        return target

    def clear(self) -> None:
        """Forget the draft (after the plan was written and applied)."""
        for p in (self.state_path, self.plan_path):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
