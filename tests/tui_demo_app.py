"""A stand-in for the wizard, shaped like one of its steps, for the terminal tests and the bench.

    python tests/tui_demo_app.py [--plain | --no-plain] [--draft-file PATH] [--stock-frames]

Step 1: a step counter, three compact inputs, a radio set of five, a checkbox, a help line,
Back/Next buttons and a footer. Ctrl+N (or Next) switches to step 2, Escape comes back.
Ctrl+C or SIGTERM writes the reason to --draft-file (what the wizard's draft save will do).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import ClassVar

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from textual.app import ComposeResult  # noqa: E402
from textual.binding import Binding, BindingType  # noqa: E402
from textual.containers import Horizontal  # noqa: E402
from textual.screen import Screen  # noqa: E402
from textual.widgets import Button, Checkbox, Footer, Input, RadioButton, RadioSet, Static  # noqa: E402

from screens.terminal import PlainModeMixin, detect_plain, prepare_environment  # noqa: E402

CSS = """
#step { height: 1; text-style: bold; }
.row { height: 1; }
.row Static { width: 16; }
.row Input { width: 1fr; }
RadioSet { width: 40; }
#help { height: 1; color: $text-muted; }
#buttons { height: auto; align-horizontal: right; }
"""


class StepOne(Screen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+n", "next", "Next step")]

    def compose(self) -> ComposeResult:
        yield Static("Step 1 of 2: Uplink addressing", id="step")
        for label, placeholder, ident in (("Address/prefix", "10.20.0.15/24", "address"),
                                          ("Gateway", "10.20.0.1", "gateway"),
                                          ("DNS servers", "8.8.8.8, 8.8.4.4", "dns")):
            with Horizontal(classes="row"):
                yield Static(label)
                yield Input(placeholder=placeholder, id=ident, compact=True)
        with RadioSet(id="topology"):
            for i, name in enumerate(("Single company network", "Isolated dual-NIC",
                                      "Wireless LAN", "Fully wireless", "Cellular")):
                yield RadioButton(name, value=(i == 1))
        yield Checkbox("Use a proxy", id="proxy")
        yield Static("Help: the address the box uses on the company network.", id="help")
        with Horizontal(id="buttons"):
            yield Button("Back", id="back")
            yield Button("Next", id="next", variant="primary")
        yield Footer()

    def action_next(self) -> None:
        self.app.push_screen(StepTwo())

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "next":
            self.action_next()


class StepTwo(Screen):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "back", "Back")]

    def compose(self) -> ComposeResult:
        yield Static("Step 2 of 2: Wireless", id="step")
        with Horizontal(classes="row"):
            yield Static("SSID")
            yield Input(placeholder="Plant-Floor", id="ssid", compact=True)
        with Horizontal(classes="row"):
            yield Static("Passphrase")
            yield Input(password=True, id="passphrase", compact=True)
        yield Checkbox("Hidden network", id="hidden")
        yield Static("Help: WPA2 passphrase, 8 to 63 characters.", id="help")
        with Horizontal(id="buttons"):
            yield Button("Back", id="back")
            yield Button("Next", id="next", variant="primary")
        yield Footer()

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "back":
            self.action_back()


class DemoApp(PlainModeMixin):
    CSS = CSS
    TITLE = "edge-installer"
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, *, draft_file: Path | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.draft_file = draft_file

    def on_mount(self) -> None:
        self.push_screen(StepOne())

    def before_forced_exit(self, reason: str) -> None:
        if self.draft_file is not None:
            self.draft_file.write_text(reason + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--plain", action="store_true", default=None)
    mode.add_argument("--no-plain", dest="plain", action="store_false")
    parser.add_argument("--draft-file", type=Path)
    parser.add_argument("--stock-frames", action="store_true",
                        help="no frame coalescing and no lean focus (for comparisons)")
    args = parser.parse_args(argv)
    plain = detect_plain()[0] if args.plain is None else args.plain
    prepare_environment(plain)
    app = DemoApp(plain=plain, draft_file=args.draft_file, coalesce_frames=not args.stock_frames,
                  lean_focus=not args.stock_frames)
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
