"""The plan in words and the diff against the disk: complete, never secret, never raising."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from installer.planning import plan as planmod
from installer.planning.describe import describe, diff, mask_secrets
from installer.planning.plan import REDACTED, Plan, Proxy
from installer.render import NETPLAN_FILE, Target, render
from installer.vendors.profiles import load_catalog

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def example(name: str) -> Plan:
    return planmod.load(REPO / "examples" / f"{name}.yaml")


def test_describes_every_part_of_the_isolated_plan(catalog):
    text = "\n".join(describe(example("isolated"), catalog))
    assert "isolated networks" in text
    assert "eno1" in text and "192.168.50.2/24" in text and "no gateway" in text
    assert "enp2s0" in text and "DHCP" in text
    assert "8.8.8.8" in text and "pool.ntp.org" in text
    assert "MachineMetrics (standard cloud)" in text
    assert "Lathe 3 at 192.168.50.21 (FANUC FOCAS, port 8193/tcp)" in text
    assert "netplan" in text


def test_names_the_profile_parameters_and_the_proxy(catalog):
    text = "\n".join(describe(example("isolated-proxy"), catalog))
    assert "iem.plant.local" in text and "Siemens Industrial Edge" in text
    assert "http://proxy.plant.local:3128" in text and "user edge" in text
    assert "10.20.0.53" in text and "ntp.plant.local" in text
    assert "/etc/ssl/plant-ca.pem" in text and "NetworkManager" in text


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_never_says_a_secret(path, catalog):
    plan = planmod.load(path)
    plan = dataclasses.replace(plan, proxy=Proxy(url="http://proxy.plant.local:3128", username="edge",
                                                 password="hunter2-proxy"))
    text = "\n".join(describe(plan, catalog))
    for secret in plan.secrets():
        assert secret not in text
    assert "hunter2-proxy" not in text and "not shown" in text


def test_an_unfinished_plan_is_described_not_raised(catalog):
    lines = describe(Plan(), catalog)
    assert "No topology chosen yet." in lines and "No uplink chosen yet." in lines
    odd = Plan(topology="bogus", profiles=("nope",), proxy=Proxy(url="http://u:pw@h:1"),
               machines=(planmod.Machine(name=None, address=None, controller="unknown"),))
    text = "\n".join(describe(odd, catalog))
    assert "nope (unknown)" in text and "pw" not in text.replace("unknown", "")


def test_diff_says_new_file_then_unchanged(tmp_path):
    files = render(example("isolated"), Target())
    assert all(change == "new file" for _, change in diff(tmp_path, files))
    for f in files:
        p = tmp_path / f.path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f.content)
        os.chmod(p, f.mode)
    assert all(change == "unchanged" for _, change in diff(tmp_path, files))


def test_diff_shows_the_changed_line_and_the_mode(tmp_path):
    files = render(example("isolated"), Target())
    hostname = tmp_path / "etc/hostname"
    hostname.parent.mkdir(parents=True)
    hostname.write_text("old-box\n")
    os.chmod(hostname, 0o600)
    changes = dict(diff(tmp_path, files))
    assert "-old-box" in changes["/etc/hostname"].splitlines()
    assert "+edge-01" in changes["/etc/hostname"].splitlines()
    assert "mode 0600 -> 0644" in changes["/etc/hostname"]
    assert "--- /etc/hostname (on disk)" in changes["/etc/hostname"]


def test_diff_never_shows_a_secret_old_or_new(tmp_path):
    plan = example("wifi")
    secret = plan.wifi.passphrase
    old_secret = "an older passphrase"
    real = {f.path: f for f in render(plan, Target())}
    netplan = tmp_path / NETPLAN_FILE.lstrip("/")
    netplan.parent.mkdir(parents=True)
    netplan.write_text(real[NETPLAN_FILE].text.replace(secret, old_secret).replace("dhcp4: true", "dhcp4: false"))
    proxy_env = tmp_path / "etc/environment"
    proxy_env.write_text("http_proxy=http://edge:s3cr3t@proxy:3128\n")
    changes = dict(diff(tmp_path, render(plan.redacted(), Target()), secrets=plan.secrets()))
    text = changes[NETPLAN_FILE]
    assert "+      dhcp4: true" in text  # a real change still shows
    assert secret not in text and old_secret not in text
    assert mask_secrets("http_proxy=http://edge:s3cr3t@proxy:3128") == f"http_proxy=http://edge:{REDACTED}@proxy:3128"
    assert mask_secrets("psk=abcdefgh\nid=x") == f"psk={REDACTED}\nid=x"


def test_the_diff_masker_covers_every_secret_form_the_report_one_does():
    """One masker (installer.planning.redact) for diffs and reports: HTTP Basic credentials, a secret of
    two characters where it stands alone (not inside other words), a percent-encoded one."""
    import base64

    token = base64.b64encode(b"edge:pw").decode()
    assert mask_secrets(f"Proxy-Authorization: Basic {token}") == f"Proxy-Authorization: Basic {REDACTED}"
    assert mask_secrets("Basic configuration") == "Basic configuration"  # a word, not credentials
    assert mask_secrets("user ab logged in; abstract", ["ab"]) == f"user {REDACTED} logged in; abstract"
    assert mask_secrets("http://proxy/?p=p%40ss%3Aword", ["p@ss:word"]) == f"http://proxy/?p={REDACTED}"


def test_describe_imports_no_textual():
    code = ("import sys, installer.planning.describe; "
            "bad = [m for m in ('textual', 'rich') if m in sys.modules]; "
            "print(*bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_plan_secret_keys_with_underscores_are_masked_without_knowing_the_value():
    text = "wifi:\n  eap_password: hunter2-x\n  private_key_password: k3y-pass\n  identity: edge-01\n"
    masked = mask_secrets(text)
    assert "hunter2-x" not in masked and "k3y-pass" not in masked and "identity: edge-01" in masked
