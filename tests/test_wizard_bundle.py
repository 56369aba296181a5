"""A bundle prefills the wizard, which asks only what differs on this box and the secrets
the bundle left out, then goes to the review."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from screens import app as wizard
from screens.run import start_plan
from tests.test_screens_finish import SIZE, make_app, text_of

REPO = Path(__file__).resolve().parent.parent


def export(tmp_path: Path, *flags: str) -> Path:
    bundle = tmp_path / "first-box.tar.gz"
    r = subprocess.run([sys.executable, "-m", "installer", "bundle", "export", str(REPO / "examples/wifi.yaml"),
                        "-o", str(bundle), *flags], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    return bundle


async def test_a_bundle_without_secrets_asks_for_this_box_then_reviews(tmp_path):
    bundle = export(tmp_path, "--no-secrets")
    plan, step, extras = start_plan(tmp_path, str(bundle), resume=False)
    assert step == "this-box"
    assert extras["per_box"] == ["hostname", "machine_network.address", "wifi.passphrase"]
    app = make_app(tmp_path, plan, step)
    app.context.extras.update(extras)
    async with app.run_test(size=SIZE) as pilot:
        assert [c.STEP for c in wizard.step_classes(app.plan, app.context)][:2] == ["welcome", "this-box"]
        await pilot.press("ctrl+n")  # the passphrase is missing: refused at its field
        assert app.step_id == "this-box"
        assert "passphrase" in str(app.screen.query_one("#wifi-passphrase .field-error").render())
        hostname = app.screen.query_one("#hostname-input")
        hostname.value = ""
        hostname.focus()
        await pilot.press(*"edge-09", "tab")
        await pilot.press(*"ctrl+a ctrl+k".split())
        await pilot.press(*"192.168.50.9/24", "tab", *"s3cret-passphrase", "ctrl+n")
        await pilot.pause()
        assert app.step_id == "review", text_of(app, "#step-errors")
    assert app.plan.hostname == "edge-09"
    assert app.plan.machine_network.address == "192.168.50.9/24"
    assert app.plan.wifi.passphrase == "s3cret-passphrase"
    assert app.plan.wifi.ssid == "Plant-Floor"  # everything else from the first box


def test_a_bundle_with_its_passphrase_asks_no_secret(tmp_path):
    secret = tmp_path / "pass.txt"
    secret.write_text("fleet passphrase 2026\n")
    bundle = export(tmp_path, "--passphrase-file", str(secret))
    plan, step, extras = start_plan(tmp_path, str(bundle), resume=False, passphrase_file=str(secret))
    assert extras["per_box"] == ["hostname", "machine_network.address"]
    assert plan.wifi.passphrase == "correct horse battery"


async def test_why_a_secret_is_asked_left_out_or_locked(tmp_path):
    """A secret left out at export and one the bundle holds encrypted (no passphrase given) are
    asked for with words that say which, and what would avoid typing it."""
    secret = tmp_path / "pass.txt"
    secret.write_text("fleet passphrase 2026\n")
    for flags, words in ((["--no-secrets"], "the bundle left it out"),
                         (["--passphrase-file", str(secret)], "encrypted in the bundle; or start with "
                                                                "--passphrase-file")):
        plan, step, extras = start_plan(tmp_path, str(export(tmp_path, *flags)), resume=False)
        assert extras["per_box"][-1] == "wifi.passphrase"
        app = make_app(tmp_path, plan, step)
        app.context.extras.update(extras)
        async with app.run_test(size=SIZE):
            label = text_of(app, "#wifi-passphrase Label")
            assert "WiFi passphrase" in label and words in label and len(label) <= 78, label  # one line at 80x24
            assert "The values shown are its box's" in text_of(app, "#body .hint")


def test_the_wizard_refuses_a_damaged_bundle_in_one_line(tmp_path):
    bundle = export(tmp_path, "--no-secrets")
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    r = subprocess.run([sys.executable, "-m", "installer", "--root", str(tmp_path), "--plan", str(bundle)],
                       capture_output=True, text=True, cwd=REPO, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "Traceback" not in r.stderr and str(bundle) in r.stderr


async def test_the_welcome_step_loads_a_bundle_too(tmp_path):
    from screens.app import new_plan

    bundle = export(tmp_path, "--no-secrets")
    app = make_app(tmp_path, new_plan(), "welcome")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*str(bundle), "ctrl+n")
        await pilot.pause()
        assert app.step_id == "this-box" and app.plan.wifi.ssid == "Plant-Floor"
