"""Apply: staged roots only show commands; on a live box the change is kept only when
confirmed, otherwise every file is restored byte for byte and the old state re-applied."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

from installer.box.system import System
from installer.planning import plan as planmod
from installer.render import NETPLAN_FILE, Target
from installer.writing.apply import apply_plan, stack_commands

REPO = Path(__file__).resolve().parent.parent
OLD = b"network:\n  version: 2\n  ethernets:\n    eth0: {dhcp4: true}\n"


def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
            for p in sorted(root.rglob("*")) if p.is_file() and not str(p.relative_to(root)).startswith("var/")}


def old_box(root: Path) -> None:
    (root / "etc/netplan").mkdir(parents=True)
    (root / "etc/netplan/50-cloud-init.yaml").write_bytes(OLD)
    (root / "etc/netplan/50-cloud-init.yaml").chmod(0o600)
    (root / "etc/hostname").write_text("old-name\n")


class Recorder:
    """Stands in for the box's commands: records them, fails the ones asked to."""

    def __init__(self, fail: str | None = None):
        self.calls: list[list[str]] = []
        self.fail = fail

    def __call__(self, argv, **kwargs):
        self.calls.append(list(argv))
        rc = 1 if self.fail and " ".join(argv).startswith(self.fail) else 0
        return subprocess.CompletedProcess(argv, rc, "", "boom" if rc else "")


def live_system(root: Path, recorder: Recorder) -> System:
    return System(root, runner=recorder, live_override=True)


PLAN = planmod.load(REPO / "examples/isolated.yaml")


def test_staged_root_shows_commands_and_runs_nothing(tmp_path):
    old_box(tmp_path)
    recorder = Recorder()
    system = System(tmp_path, runner=recorder)
    result = apply_plan(PLAN, system, Target(), confirm=lambda s, r: False)
    assert recorder.calls == [] and result.ok
    assert result.commands[0].describe() == "would run: netplan apply"
    assert (tmp_path / NETPLAN_FILE.lstrip("/")).exists()
    assert not (tmp_path / "etc/netplan/50-cloud-init.yaml").exists()  # moved aside into the backup set


def test_confirmed_change_is_kept(tmp_path):
    old_box(tmp_path)
    recorder = Recorder()
    result = apply_plan(PLAN, live_system(tmp_path, recorder), Target(), confirm=lambda s, r: True,
                        rechecker=lambda plan, t: None)
    assert result.ok and not result.rolled_back
    assert ["netplan", "apply"] in recorder.calls
    assert (tmp_path / NETPLAN_FILE.lstrip("/")).exists()


def test_unconfirmed_change_is_rolled_back_byte_for_byte(tmp_path):
    old_box(tmp_path)
    before = tree(tmp_path)
    recorder = Recorder()
    asked = []
    result = apply_plan(PLAN, live_system(tmp_path, recorder), Target(), confirm_timeout=7,
                        confirm=lambda s, r: asked.append(s) or False, rechecker=lambda plan, t: None)
    assert asked == [7]
    assert result.rolled_back and not result.ok
    assert tree(tmp_path) == before
    # netplan apply ran twice: the new state, then the restored old one; the host name was set
    # to the plan's, then read back from the restored /etc/hostname (old-name), not set again.
    assert recorder.calls.count(["netplan", "apply"]) == 2
    assert recorder.calls.count(["hostname", PLAN.hostname]) == 1
    assert recorder.calls[-2] == ["hostname", "-F", "/etc/hostname"]
    # The dead man's switch: armed before the change, stopped once it is undone.
    unit = "edge-installer-revert-" + result.written.backup_dir.rsplit("/", 1)[-1]
    arm = recorder.calls[0]
    assert arm[:3] == ["systemd-run", "--quiet", f"--unit={unit}"] and "--on-active=127s" in arm
    assert arm[-3:] == ["recover", "--root", str(tmp_path)]
    # Once applied and re-checked, a timer for the wait alone (7 s + 20 s) replaces it.
    wait = next(c for c in recorder.calls if c[:3] == ["systemd-run", "--quiet", f"--unit={unit}-wait"])
    assert "--on-active=27s" in wait
    assert recorder.calls.index(wait) < recorder.calls.index(["systemctl", "stop", f"{unit}.timer"])
    assert recorder.calls[-1] == ["systemctl", "stop", f"{unit}-wait.timer"]


def test_without_systemd_run_the_apply_goes_on_and_says_so(tmp_path):
    old_box(tmp_path)
    recorder = Recorder(fail="systemd-run")
    result = apply_plan(PLAN, live_system(tmp_path, recorder), Target(), confirm=lambda s, r: True,
                        rechecker=lambda plan, t: None)
    assert result.ok and ["netplan", "apply"] in recorder.calls
    assert any(m.startswith("no revert timer") and "next boot" in m for m in result.messages)
    assert not any(c[:2] == ["systemctl", "stop"] for c in recorder.calls)  # nothing armed to stop


def test_a_failing_stack_command_rolls_back(tmp_path):
    old_box(tmp_path)
    before = tree(tmp_path)
    result = apply_plan(PLAN, live_system(tmp_path, Recorder(fail="netplan apply")), Target(),
                        confirm=lambda s, r: True, rechecker=lambda plan, t: None)
    assert result.rolled_back and tree(tmp_path) == before


def test_confirm_that_raises_counts_as_no(tmp_path):
    old_box(tmp_path)
    before = tree(tmp_path)

    def broken(seconds, report):
        raise RuntimeError("UI gone")
    result = apply_plan(PLAN, live_system(tmp_path, Recorder()), Target(), confirm=broken,
                        rechecker=lambda plan, t: None)
    assert result.rolled_back and tree(tmp_path) == before


def test_networkmanager_plans_use_nmcli():
    plan = planmod.load(REPO / "examples/isolated-proxy.yaml")
    cmds = stack_commands(plan, Target(networkmanager=True),
                          ["/etc/systemd/system/service.d/60-edge-installer-proxy.conf",
                           "/etc/systemd/system.conf.d/60-edge-installer-proxy.conf"])
    assert cmds[0] == ["nmcli", "connection", "reload"]
    assert ["nmcli", "connection", "up", "edge-uplink"] in cmds
    assert ["systemctl", "daemon-reload"] in cmds   # the proxy drop-in
    assert ["systemctl", "daemon-reexec"] in cmds   # an old version's DefaultEnvironment moved aside


def test_commands_only_for_what_the_box_runs():
    plan = planmod.load(REPO / "examples/isolated.yaml")
    from installer.render import render

    stock = Target(networkmanager=True, resolved=False, time_daemon="chrony", networkmanager_installed=True)
    written = [f.path for f in render(plan, stock)]
    cmds = stack_commands(plan, stock, written)
    assert ["systemctl", "restart", "chrony"] in cmds
    assert not any("systemd-resolved" in c or "systemd-timesyncd" in c for c in cmds)
    ubuntu = Target()
    cmds = stack_commands(plan, ubuntu, [f.path for f in render(plan, ubuntu)])
    assert ["systemctl", "restart", "systemd-resolved"] in cmds and ["systemctl", "restart", "chrony"] not in cmds
    # networkd's ports on a box that also has NetworkManager: NetworkManager lets go first.
    both = Target(networkmanager=False, networkmanager_installed=True)
    cmds = stack_commands(plan, both, [f.path for f in render(plan, both)])
    assert cmds[:2] == [["systemctl", "try-reload-or-restart", "NetworkManager.service"], ["netplan", "apply"]]


def test_cli_apply_headless_without_confirmation_under_root(tmp_path):
    r = subprocess.run([sys.executable, "-m", "installer", "apply", str(REPO / "examples/wifi.yaml"),
                        "--root", str(tmp_path), "--no-cloud-init"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "would run: netplan apply" in r.stdout
    assert "correct horse" not in r.stdout + r.stderr


def test_cli_apply_refuses_bad_input_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ntopology: mesh\n")
    r = subprocess.run([sys.executable, "-m", "installer", "apply", str(bad), "--root", str(tmp_path)],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "topology" in r.stderr and "Traceback" not in r.stderr


def test_cli_apply_a_bundle_with_set_for_the_next_box(tmp_path):
    secret = tmp_path / "pass.txt"
    secret.write_text("fleet passphrase 2026\n")
    bundle = tmp_path / "edge.tar.gz"
    cli = [sys.executable, "-m", "installer"]
    key = tmp_path / "signing.key"
    r = subprocess.run([*cli, "bundle", "keygen", "-o", str(key)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*cli, "bundle", "export", str(REPO / "examples/wifi.yaml"), "-o", str(bundle),
                        "--passphrase-file", str(secret), "--sign-key", str(key)], capture_output=True, text=True,
                       cwd=REPO)
    assert r.returncode == 0, r.stderr
    root = tmp_path / "box2"
    root.mkdir()
    r = subprocess.run([*cli, "apply", str(bundle), "--passphrase-file", str(secret), "--root", str(root),
                        "--trust-key", f"{key}.pub",
                        "--set", "hostname=edge-04", "--set", "machine_network.address=192.168.50.3/24",
                        "--no-cloud-init"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert "Signed by SHA256:" in r.stdout + r.stderr
    assert (root / "etc/hostname").read_text() == "edge-04\n"
    netplan = (root / NETPLAN_FILE.lstrip("/")).read_text()
    assert "192.168.50.3/24" in netplan and "correct horse battery" in netplan  # the secret came back
    r = subprocess.run([*cli, "apply", str(bundle), "--root", str(root), "--trust-key", f"{key}.pub",
                        "--passphrase-file", str(secret), "--set", "nosuch.key=1"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "nosuch" in r.stderr and "Traceback" not in r.stderr


def test_the_revert_timer_starts_this_very_edge_installer(tmp_path, monkeypatch):
    import installer
    from installer.writing.apply import self_command

    # From the zipapp: the interpreter and the archive (packaging/zipapp_main.py sets it).
    monkeypatch.setattr(installer, "ARCHIVE", "/usr/local/bin/edge-installer", raising=False)
    assert self_command() == ([sys.executable, "/usr/local/bin/edge-installer"], {})
    monkeypatch.delattr(installer, "ARCHIVE")
    # An installed console script.
    script = tmp_path / "edge-installer"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(script), "apply"])
    assert self_command() == ([str(script)], {})
    # python -m installer: the module, with the directory that holds the package.
    monkeypatch.setattr(sys, "argv", [str(REPO / "installer/__main__.py"), "apply"])
    assert self_command() == ([sys.executable, "-m", "installer"], {"PYTHONPATH": str(REPO)})
