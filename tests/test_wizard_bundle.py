"""A bundle prefills the wizard, which asks only what differs on this box, the bundle's
passphrase (by that name) when its secrets are encrypted, and the secrets the bundle left
out, then goes to the review. A bundle is used only when its signer is trusted on the box,
or when the technician accepts it anyway: then a warning stays on every step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from installer.fleet import keys as K
from screens import app as wizard
from screens.run import WizardStartError, start_plan
from tests.test_screens_finish import SIZE, make_app, text_of
from tests.wizard_helpers import frame_text

REPO = Path(__file__).resolve().parent.parent


def export(tmp_path: Path, *flags: str, sign: bool = True, name: str = "first-box.tar.gz") -> Path:
    """A bundle of examples/wifi.yaml; signed by a key tmp_path (the wizard's --root) trusts."""
    bundle = tmp_path / name
    if sign:
        key = tmp_path / "it-desk.key"
        if not key.exists():
            K.generate_signing_key(key)
            trust = tmp_path / K.TRUST_FILE
            trust.parent.mkdir(parents=True, exist_ok=True)
            trust.write_text((tmp_path / "it-desk.key.pub").read_text())
        flags += ("--sign-key", str(key))
    if bundle.exists():
        bundle.unlink()
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
        await pilot.press(*["ctrl+a", "ctrl+k"])
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
    """A secret left out at export is asked for by its name; a bundle that holds its secrets
    encrypted (no passphrase given at start) asks for the bundle's passphrase by that name, and
    the secret's own field says it is only for a technician without it."""
    secret = tmp_path / "pass.txt"
    secret.write_text("fleet passphrase 2026\n")
    for flags, words in ((["--no-secrets"], "the bundle left it out"),
                         (["--passphrase-file", str(secret)], "only without the bundle's passphrase")):
        plan, step, extras = start_plan(tmp_path, str(export(tmp_path, *flags)), resume=False)
        assert extras["per_box"][-1] == "wifi.passphrase"
        app = make_app(tmp_path, plan, step)
        app.context.extras.update(extras)
        async with app.run_test(size=SIZE):
            label = text_of(app, "#wifi-passphrase Label")
            assert "WiFi passphrase" in label and words in label and len(label) <= 78, label  # one line at 80x24
            assert "The values shown are its box's" in text_of(app, "#body .hint")
            locked = bool(app.screen.query("#bundle-passphrase"))
            assert locked == ("--no-secrets" not in flags)
            if locked:
                label = text_of(app, "#bundle-passphrase Label")
                assert label.startswith("Bundle passphrase") and "not a WiFi key" in label and len(label) <= 78


async def _this_box_with_encrypted_bundle(tmp_path):
    secret = tmp_path / "pass.txt"
    secret.write_text("fleet passphrase 2026\n")
    plan, step, extras = start_plan(tmp_path, str(export(tmp_path, "--passphrase-file", str(secret))), resume=False)
    assert extras["secrets_locked"] and plan.wifi.passphrase is None
    app = make_app(tmp_path, plan, step)
    app.context.extras.update(extras)
    return app


async def test_the_bundle_passphrase_unlocks_the_secrets_and_is_never_the_wifi_key(tmp_path):
    app = await _this_box_with_encrypted_bundle(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+n")  # nothing given: the bundle passphrase is asked for, naming what it unlocks
        await pilot.pause()
        assert app.step_id == "this-box"
        error = text_of(app, "#bundle-passphrase .field-error")
        assert "give its passphrase" in error and "WiFi passphrase" in error, error
        app.screen.query_one("#bundle-passphrase-input").focus()
        await pilot.press(*"fleet passphrase 2025", "ctrl+n")  # wrong: refused at its own field
        await pilot.pause()
        assert app.step_id == "this-box"
        assert "wrong passphrase" in text_of(app, "#bundle-passphrase .field-error")
        shown = frame_text(app) + text_of(app, "#step-errors") + text_of(app, "#bundle-passphrase .field-error")
        assert "2025" not in shown  # never echoed
        await pilot.press(*["backspace", "backspace", "backspace", "backspace"], *"2026", "ctrl+n")
        await pilot.pause()
        assert app.step_id == "review", text_of(app, "#step-errors")
    assert app.plan.wifi.passphrase == "correct horse battery"  # the first box's key, decrypted
    assert app.plan.wifi.passphrase != "fleet passphrase 2026"
    assert not app.context.extras["secrets_locked"] and "wifi.passphrase" not in app.context.extras["per_box"]


async def test_without_the_bundle_passphrase_the_secrets_can_be_typed(tmp_path):
    app = await _this_box_with_encrypted_bundle(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one("#wifi-passphrase-input").focus()
        await pilot.press(*"typed-on-site-key", "ctrl+n")
        await pilot.pause()
        assert app.step_id == "review", text_of(app, "#step-errors")
    assert app.plan.wifi.passphrase == "typed-on-site-key"


def test_an_unsigned_or_untrusted_bundle_does_not_start_the_wizard(tmp_path):
    unsigned = export(tmp_path, "--no-secrets", sign=False, name="unsigned.tar.gz")
    with pytest.raises(WizardStartError) as e:
        start_plan(tmp_path, str(unsigned), resume=False)
    assert "is not signed" in str(e.value) and "--allow-unsigned" in str(e.value)
    other = tmp_path / "other"
    other.mkdir()
    theirs = export(other, "--no-secrets", name="theirs.tar.gz")  # signed, by a key tmp_path does not trust
    with pytest.raises(WizardStartError) as e:
        start_plan(tmp_path, str(theirs), resume=False)
    fp = K.fingerprint(K.load_signing_key(other / "it-desk.key").public_key().public_bytes_raw())
    assert fp in str(e.value) and "--trust-key" in str(e.value)
    plan, step, extras = start_plan(tmp_path, str(theirs), resume=False, trust_keys=[str(other / "it-desk.key.pub")])
    assert extras["trust_warning"] is None and extras["trust_line"] == f"Signed by {fp}"
    r = subprocess.run([sys.executable, "-m", "installer", "--root", str(tmp_path), "--plan", str(unsigned)],
                       capture_output=True, text=True, cwd=REPO, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "is not signed" in r.stderr, r.stderr


async def test_an_accepted_unsigned_bundle_keeps_its_warning_on_every_step(tmp_path):
    unsigned = export(tmp_path, "--no-secrets", sign=False, name="unsigned.tar.gz")
    plan, step, extras = start_plan(tmp_path, str(unsigned), resume=False, allow_unsigned=True)
    app = make_app(tmp_path, plan, step)
    app.context.extras.update(extras)
    async with app.run_test(size=SIZE) as pilot:
        warning = text_of(app, "#trust-warning")
        assert warning.startswith("WARNING: unsigned.tar.gz is not signed; used anyway"), warning
        await pilot.press(*"s3cret-passphrase")
        app.screen.query_one("#wifi-passphrase-input").value = "s3cret-passphrase"
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.step_id == "review", text_of(app, "#step-errors")
        assert text_of(app, "#trust-warning") == warning  # still there, above the review
        assert app.screen.query_one("#trust-warning").region.y == 1  # right under the title: never scrolled


async def test_signed_by_a_trusted_key_says_who(tmp_path):
    plan, step, extras = start_plan(tmp_path, str(export(tmp_path, "--no-secrets")), resume=False)
    app = make_app(tmp_path, plan, step)
    app.context.extras.update(extras)
    async with app.run_test(size=SIZE):
        signed = text_of(app, "#signed-by")
        assert signed.startswith("Signed by a key this box trusts:\nSHA256:")
        fp = extras["trust_line"].removeprefix("Signed by ")
        assert signed.replace("\n", "").endswith(fp) and all(len(line) <= 78 for line in signed.splitlines())
        assert not app.screen.query("#trust-warning")


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


async def test_the_welcome_step_refuses_an_unsigned_bundle_until_the_technician_accepts_it(tmp_path):
    from screens.app import new_plan

    unsigned = export(tmp_path, "--no-secrets", sign=False, name="unsigned.tar.gz")
    app = make_app(tmp_path, new_plan(), "welcome")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*str(unsigned), "ctrl+n")
        await pilot.pause()
        assert app.step_id == "welcome"
        error = text_of(app, "#load .field-error")
        assert "is not signed" in error and "Use it anyway" in error, error
        toggle = app.screen.query_one("#accept-untrusted")
        assert not toggle.value
        toggle.value = True
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.step_id == "this-box"
        assert ("unsigned.tar.gz is not signed; used anyway (the technician accepted it)"
                in text_of(app, "#trust-warning"))


async def test_the_welcome_step_never_offers_to_accept_a_damaged_bundle(tmp_path):
    from screens.app import new_plan

    bundle = export(tmp_path, "--no-secrets")
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    app = make_app(tmp_path, new_plan(), "welcome")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*str(bundle), "ctrl+n")
        await pilot.pause()
        assert app.step_id == "welcome" and text_of(app, "#load .field-error")
        assert not app.screen.query("#accept-untrusted")


def test_the_warning_of_an_accepted_bundle_survives_a_resume(tmp_path):
    from installer.planning.draft import Draft

    unsigned = export(tmp_path, "--no-secrets", sign=False, name="unsigned.tar.gz")
    plan, _, extras = start_plan(tmp_path, str(unsigned), resume=False, allow_unsigned=True)
    Draft(tmp_path).save(plan, "review", extras["trust_warning"] + "\x1b[2J")  # a crafted state is sanitized
    _, step, resumed = start_plan(tmp_path, None, resume=True)
    assert step == "review" and resumed["trust_warning"].startswith(extras["trust_warning"])
    assert "\x1b" not in resumed["trust_warning"]
    Draft(tmp_path).save(plan, "review")
    assert start_plan(tmp_path, None, resume=True)[2]["trust_warning"] is None


async def test_a_port_bound_by_mac_is_asked_for_this_box(tmp_path):
    """A MAC belongs to one box's NIC: the next box is asked for its own (a driver binding holds
    for the box model and is not asked). A value that is no MAC is refused at its field; one typed
    in capitals is kept as the kernel prints it."""
    bundle = tmp_path / "ports.tar.gz"
    r = subprocess.run([sys.executable, "-m", "installer", "bundle", "export", str(REPO / "examples/ports-by-mac.yaml"),
                        "-o", str(bundle)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    plan, step, extras = start_plan(tmp_path, str(bundle), resume=False, allow_unsigned=True)
    assert step == "this-box"
    assert extras["per_box"] == ["hostname", "machine_network.address", "ports.eno1.mac"]
    app = make_app(tmp_path, plan, step)
    app.context.extras.update(extras)
    async with app.run_test(size=SIZE) as pilot:
        assert "port the plan calls eno1" in text_of(app, "#ports-eno1-mac Label")
        mac = app.screen.query_one("#ports-eno1-mac-input")
        assert mac.value == "52:54:00:12:34:56"  # the first box's, to be replaced
        mac.value = ""
        mac.focus()
        await pilot.press(*"01:00:5e:00:00:01", "ctrl+n")
        await pilot.pause()
        assert app.step_id == "this-box"
        assert "multicast" in text_of(app, "#ports-eno1-mac .field-error")
        mac.value = ""
        await pilot.press(*"52:54:00:AB:CD:EF", "ctrl+n")
        await pilot.pause()
        assert app.step_id == "review", text_of(app, "#step-errors")
    assert app.plan.port("eno1").mac == "52:54:00:ab:cd:ef"
    assert app.plan.port("enp2s0").driver == "igb"  # the model's binding, from the bundle
