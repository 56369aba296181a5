"""Secrets never on the command line and never echoed (issue 11): `--set` of a secret is
refused with the way to give it, `--set-file` reads it safely, a prompt at a terminal, a
bundle's passphrase asked for, errors that never repeat a secret, and report redaction of
every form (short secrets, HTTP Basic credentials, user:password@ in URLs)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from installer.commands import UsageError
from installer.commands import apply as apply_cmd
from installer.planning import plan as planmod
from installer.planning.setfield import SetError, read_secret_file, secret_refusals

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden"
PROXY_PLAN = GOLDEN / "isolated-static-custom-proxy-keyfile" / "plan.yaml"
WIFI_PLAN = GOLDEN / "wifi-wpa2-networkd" / "plan.yaml"


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "installer", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120, input=stdin, env={**os.environ, "PYTHONPATH": str(REPO)})


# --- a plan printed -----------------------------------------------------------------------

def test_a_plans_repr_masks_every_secret_and_shows_the_rest():
    """repr() of a plan (a log line, a traceback, a test's diff) masks each SECRET_FIELDS value
    and is otherwise what a dataclass prints; the sections' own lists are SECRET_FIELDS."""
    from installer.planning import model

    secret = "s3cr3t-Val"
    plan = planmod.Plan(
        wifi=model.Wifi(ssid="plant", passphrase=secret, eap_password=secret, private_key_password=secret),
        cellular=model.Cellular(apn="m2m", password=secret),
        proxy=model.Proxy(url="http://proxy:3128", username="edge", password=secret))
    shown = repr(plan)
    assert secret not in shown
    assert shown.count(repr(planmod.REDACTED)) == len(planmod.SECRET_FIELDS)
    assert "Wifi(ssid='plant', security='wpa2-psk', passphrase='********'" in shown
    assert "username='edge'" in shown and shown.startswith("Plan(version=1, hostname=None, ")
    assert "passphrase=None" in repr(model.Wifi())  # nothing to hide: shown as it is
    sections = {name: getattr(model, name) for name in ("Wifi", "Cellular", "Proxy")}
    declared = {f"{field.name}.{key}" for field in dataclasses.fields(planmod.Plan)
                for cls in sections.values() if cls.__name__.lower() == field.name for key in cls._SECRETS}
    assert declared == set(planmod.SECRET_FIELDS)


# --- --set of a secret ------------------------------------------------------------------

@pytest.mark.parametrize("key", list(planmod.SECRET_FIELDS))
def test_set_of_a_secret_is_refused_with_the_way_to_give_it(tmp_path, key):
    root = tmp_path / "root"
    root.mkdir()
    out = run_cli("apply", str(PROXY_PLAN), "--root", str(root), "--no-confirm", "--set", f"{key}=Sup3rS3cretValue")
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert key in lines[0] and f"--set-file {key}=FILE" in lines[0] and "asked" in lines[0]
    assert "Sup3rS3cretValue" not in out.stdout + out.stderr
    assert list(root.iterdir()) == []


def test_secret_refusals_never_repeat_the_value():
    errors = secret_refusals(["proxy.password=12345678", " wifi.passphrase =x", "hostname=edge-1", "proxy.password"])
    assert [e.field for e in errors] == ["proxy.password", "wifi.passphrase"]
    assert not any("12345678" in str(e) for e in errors)


def test_set_file_gives_a_secret(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    secret = tmp_path / "proxy.pw"
    secret.write_text("N3w-Pr0xy-Pass\n")
    secret.chmod(0o600)
    out = run_cli("apply", str(PROXY_PLAN), "--root", str(root), "--no-confirm",
                  "--set-file", f"proxy.password={secret}")
    assert out.returncode == 0, out
    assert "N3w-Pr0xy-Pass" not in out.stdout + out.stderr
    env = next(root.rglob("proxy.env"), None) or next(p for p in root.rglob("*") if p.is_file()
                                                        and b"http_proxy" in p.read_bytes())
    assert b"N3w-Pr0xy-Pass" in env.read_bytes()
    assert env.stat().st_mode & 0o077 == 0


def test_set_file_strips_one_trailing_line_break_and_refuses_bad_files(tmp_path):
    f = tmp_path / "s"
    f.write_bytes(b"abc\r\n")
    assert read_secret_file("proxy.password", str(f)) == "abc"
    f.write_bytes(b"abc")
    assert read_secret_file("proxy.password", str(f)) == "abc"
    for content, words in ((b"", "empty"), (b"a\nb\n", "more than one line"), (b"x" * 5000, "larger than"),
                           (b"\xff\xfe", "UTF-8")):
        f.write_bytes(content)
        with pytest.raises(SetError) as e:
            read_secret_file("proxy.password", str(f))
        assert words in str(e.value) and "proxy.password" in str(e.value)
    with pytest.raises(SetError, match="No such file"):
        read_secret_file("proxy.password", str(tmp_path / "missing"))


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "dir"])
def test_set_file_refuses_fifos_devices_and_directories_without_hanging(tmp_path, special):
    if special == "fifo":
        path = tmp_path / "fifo"
        os.mkfifo(path)
    elif special == "dir":
        path = tmp_path
    else:
        path = Path(special)
    link = tmp_path / "link"
    link.symlink_to(path)
    result: list = []
    t = threading.Thread(target=lambda: result.append(_try_read(str(link))), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "reading the secret file hung"
    assert isinstance(result[0], SetError) and "not a regular file" in str(result[0])


def _try_read(path: str):
    try:
        return read_secret_file("proxy.password", path)
    except SetError as e:
        return e


def test_set_file_of_a_field_that_is_not_secret_is_refused(tmp_path):
    with pytest.raises(UsageError, match="not a secret field"):
        apply_cmd.secret_sets([], [f"hostname={tmp_path}"])


def test_set_of_a_secret_alone_asks_at_a_terminal(monkeypatch):
    asked = []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or "typed-secret")
    plain, secrets = apply_cmd.secret_sets(["hostname=edge-9", "proxy.password"], [])
    assert plain == ["hostname=edge-9"]
    assert secrets == ["proxy.password=typed-secret"]
    assert "proxy.password" in asked[0]


def test_set_of_a_secret_alone_without_a_terminal_says_how(tmp_path):
    out = run_cli("apply", str(PROXY_PLAN), "--root", str(tmp_path), "--no-confirm", "--set", "proxy.password")
    assert out.returncode == 2, out
    assert "no terminal" in out.stderr and "--set-file proxy.password=FILE" in out.stderr


# --- a bundle's passphrase --------------------------------------------------------------

@pytest.fixture
def encrypted_bundle(tmp_path):
    from installer.fleet.bundle import export_bundle

    plan = planmod.load(WIFI_PLAN)
    path = tmp_path / "box.bundle"
    export_bundle(plan, path, "bundle-passphrase-1")
    return path, plan


def test_apply_bundle_without_passphrase_file_asks_at_a_terminal(encrypted_bundle, monkeypatch):
    path, plan = encrypted_bundle
    asked = []
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or "bundle-passphrase-1")
    loaded = apply_cmd.load_source(str(path), None, [], allow_unsigned=True)
    assert loaded.wifi.passphrase == plan.wifi.passphrase
    assert len(asked) == 1 and "passphrase" in asked[0] and "bundle" in asked[0]


def test_apply_bundle_without_passphrase_and_terminal_is_one_clear_line(encrypted_bundle, monkeypatch):
    path, _ = encrypted_bundle
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    with pytest.raises(UsageError) as e:
        apply_cmd.load_source(str(path), None, [], allow_unsigned=True)
    assert len(e.value.lines) == 1 and "--passphrase-file" in e.value.lines[0]


def test_apply_bundle_needs_no_passphrase_when_the_secret_is_given_otherwise(encrypted_bundle, monkeypatch):
    path, _ = encrypted_bundle
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("getpass.getpass", lambda prompt: pytest.fail("asked for the passphrase"))
    loaded = apply_cmd.load_source(str(path), None, ["wifi.passphrase=another-passphrase"], allow_unsigned=True)
    assert loaded.wifi.passphrase == "another-passphrase"


# --- no secret echoed -------------------------------------------------------------------

@pytest.mark.parametrize("field", ["passphrase"])
def test_a_numeric_wifi_passphrase_is_not_echoed(tmp_path, field):
    text = WIFI_PLAN.read_text()
    data = planmod.load(WIFI_PLAN).to_dict()
    data["wifi"][field] = 918273645
    import yaml

    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(data))
    out = run_cli("validate", str(tmp_path / "plan.yaml"))
    assert out.returncode == 2, out
    assert "wifi.passphrase" in out.stderr and "a number" in out.stderr and "quotes" in out.stderr
    assert "918273645" not in out.stdout + out.stderr
    assert text  # the golden plan itself is untouched


@pytest.mark.parametrize("section,key", [("proxy", "password"), ("cellular", "password")])
def test_numeric_passwords_are_not_echoed(section, key):
    from installer.planning.planread import from_data

    data = {"version": 1, section: {key: 31415926}}
    with pytest.raises(planmod.PlanError) as e:
        from_data(data)
    assert f"{section}.{key}" in str(e.value) and "31415926" not in str(e.value)


def test_a_proxy_url_with_a_password_is_never_repeated():
    from installer.planning.fields import check_proxy_url

    for url in ("http://edge:hunter2@proxy.plant.local:99999", "http://edge:hunter2@proxy", "edge:hunter2@proxy:3128"):
        message = check_proxy_url(url)
        assert message and "hunter2" not in message and "proxy.password" in message


# --- report redaction -------------------------------------------------------------------

@pytest.mark.parametrize("secret", ["x", "p1", "a$b", "Zq9"])
def test_report_redaction_masks_short_secrets(secret):
    from installer.fleet.bundle import redact_report

    report = {"evidence": [f"password: {secret}", f"http://edge:{secret}@proxy:3128", f'"psk": "{secret}"'],
              "summary": "Basic checks passed: examples and extras"}
    text = json.dumps(redact_report(report, [secret]))
    assert f": {secret}\"" not in text and f":{secret}@" not in text and f'\\"{secret}\\"' not in text
    assert text.count(planmod.REDACTED) == 3
    assert "examples and extras" in text  # ordinary words holding the letters are kept


def test_report_redaction_masks_basic_auth():
    from installer.fleet.bundle import redact_report

    token = base64.b64encode(b"edge:ab").decode()
    report = {"headers": f"Proxy-Authorization: Basic {token}", "other": f"authorization: basic {token}",
              "plain": "Basic connectivity works"}
    out = redact_report(report, [])
    assert token not in json.dumps(out)
    assert out["headers"] == f"Proxy-Authorization: Basic {planmod.REDACTED}"
    assert out["plain"] == "Basic connectivity works"


def test_report_redaction_of_a_url_password_nobody_listed():
    from installer.fleet.bundle import redact_report

    out = redact_report(["via http://u:zz@proxy.plant.local:3128"], [])
    assert out == [f"via http://u:{planmod.REDACTED}@proxy.plant.local:3128"]


def test_exported_bundle_report_masks_a_short_proxy_password(tmp_path):
    from installer.fleet.bundle import build_bundle, read_members

    plan = planmod.load(PROXY_PLAN)
    plan = dataclasses.replace(plan, proxy=dataclasses.replace(plan.proxy, password="q7"))
    token = base64.b64encode(b"edge@plant:q7").decode()
    report = {"results": [{"evidence": f"CONNECT via http://edge%40plant:q7@proxy.plant.local:3128 "
                                       f"with Basic {token}; password q7"}]}
    data = build_bundle(plan, None, report=report)
    members = read_members(data)
    text = members["report.json"].decode() if "report.json" in members else next(
        v.decode() for k, v in members.items() if k.endswith(".json") and b"results" in v)
    assert "q7" not in text and token not in text


# --- text that reaches a terminal ------------------------------------------------------

@pytest.mark.parametrize("field", ["wifi.ssid", "proxy.username", "proxy.password"])
@pytest.mark.parametrize("bad", ["x\x1b[2Jy", "pay\u202eroll", "a\x00b", "a\nb"])
def test_free_text_fields_refuse_control_and_direction_characters(field, bad):
    """An SSID or a proxy user name is shown on screens and in reports; a control or bidi
    character there would be obeyed by the terminal (a faked line, a cleared screen)."""
    import dataclasses

    from installer.planning.validate import validate
    from tests import hostile_bundles as H

    base = H.base_plan()
    section, key = field.split(".")
    plan = dataclasses.replace(base, **{section: dataclasses.replace(getattr(base, section), **{key: bad})})
    errors = [e for e in validate(plan) if e.field == field]
    assert errors, field
    if field == "proxy.password":
        assert bad not in str(errors[0]) and "never shown" in str(errors[0])
    assert "\x1b" not in str(errors[0]) and "\u202e" not in str(errors[0])


def test_an_ssid_with_emoji_and_accents_is_still_accepted():
    from installer.planning.fields import check_ssid

    assert check_ssid("Usine Hall \u00e9\U0001F4F6") is None
    assert check_ssid("Caf\u00e9 \U0001F468\u200d\U0001F527") is None  # ZWJ sequence: not a direction control
