"""Write the README's screenshots: every step of one walk through the wizard (isolated
topology, answered by keyboard as in the tests), at 80x24, as SVG files:

    docs/screenshots/<nn>-<step>.svg         full display
    docs/screenshots/<nn>-<step>-plain.svg   plain ASCII mode (F4), the same moment

    .venv/bin/python tests/make_screenshots.py [--out DIR] [--live]

Each step is shot once it is answered, before Next. The files are written under
`demo-root` in a temporary directory, as `./dev demo` does under ./demo-root. The checks
step shows a fixed, finished report (tests/wizard_helpers.REPORT), so the pictures do not
depend on the machine that makes them; --live runs the real checks instead. Either way the
plan checks only 127.0.0.1 (no profile, no machine, no proxy): nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from installer.planning.plan import MachineNetwork, Plan, Uplink  # noqa: E402
from screens import app as wizard  # noqa: E402
from tests.wizard_helpers import REPORT, SIZE, context, drive, is_safe, no_blink, safe  # noqa: E402

# The answers: what the technician types on each step.
PLAN = safe(Plan(topology="isolated", machine_network=MachineNetwork(("eno1",), "192.168.50.2/24"),
                 uplink=Uplink("enp2s0", "static", "10.20.0.15/24", "10.20.0.1")))


async def walk(out: Path, live: bool) -> list[Path]:
    assert is_safe(PLAN)
    ctx = context(Path("demo-root"), plain_reason="full display")
    if not live:
        ctx.report = REPORT
        ctx.extras["report_plan"] = PLAN
    app = wizard.WizardApp(wizard.new_plan(), ctx, plain=False)
    written: list[Path] = []

    def save(name: str) -> None:
        path = out / f"{name}.svg"
        path.write_text(app.export_screenshot(title="edge-installer"), encoding="utf-8")
        written.append(path)

    async def shoot(pilot) -> None:
        n = len(written) // 2 + 1
        await pilot.pause()
        no_blink(app)
        save(f"{n:02d}-{app.step_id}")
        await pilot.press("f4")
        await pilot.pause()
        save(f"{n:02d}-{app.step_id}-plain")
        await pilot.press("f4")
        await pilot.pause()
        no_blink(app)

    async with app.run_test(size=SIZE) as pilot:
        await drive(pilot, PLAN, on_answered=shoot)
    assert app.finished and app.return_value == PLAN
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--live", action="store_true", help="run the real checks (on 127.0.0.1) for the checks step")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("[0-9][0-9]-*.svg"):
        old.unlink()
    os.environ.pop("NO_COLOR", None)
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        Path("demo-root").mkdir()
        try:
            written = asyncio.run(walk(out, args.live))
        finally:
            os.chdir(here)
    for path in written:
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
