"""Packaging (issue 5, item 4): the single-file zipapp and the systemd units.

The zipapp is built once per session by packaging/build-zipapp (a no-op when none of its
inputs changed) and run from a clean directory by the box's Python in isolated mode with no
site packages at all: `/usr/bin/python3 -I -S edge-installer.pyz ...`. What it writes must be
what the development install writes, and every module it imports must come from the standard
library or from its own unpacked payload. The units are judged by `systemd-analyze verify`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import pytest

from tests.judges import systemd_analyze, systemd_verify_root

REPO = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO / "packaging" / "build-zipapp"
UNITS = REPO / "packaging" / "systemd"
BOX_PYTHON = "/usr/bin/python3"  # Debian 12's python3 (3.11), with no site packages below
EXAMPLE = REPO / "examples" / "isolated.yaml"
# Stage for a fixed box, so the two installs cannot differ by what they detect.
TARGET_FLAGS = ["--netplan-version", "0.106", "--no-networkmanager", "--no-cloud-init"]
INSTALL_PATH = "/usr/local/bin/edge-installer"


def _loud_skip(reason: str) -> None:
    warnings.warn(UserWarning(f"PACKAGING NOT TESTED: {reason}"), stacklevel=2)
    pytest.skip(f"PACKAGING NOT TESTED: {reason}")


def _bootstrap_module():
    spec = importlib.util.spec_from_file_location("zipapp_main", REPO / "packaging" / "zipapp_main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def pyz() -> Path:
    """dist/edge-installer.pyz, built (or found up to date) once per session."""
    if not Path(BOX_PYTHON).exists():
        _loud_skip(f"{BOX_PYTHON} is missing (Debian package python3)")
    box = subprocess.run([BOX_PYTHON, "-I", "-S", "-c", "import sys; print(sys.version_info[:2])"],
                         capture_output=True, text=True).stdout.strip()
    if box != str(sys.version_info[:2]):
        _loud_skip(f"{BOX_PYTHON} is {box}, the build Python {sys.version_info[:2]}: a zipapp with "
                   "compiled wheels runs only on the Python minor version it was built with")
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        fetched = (REPO / "packaging" / "build" / "wheelhouse" / ".requirements.json").exists()
        ci = os.environ.get("CI")
        if not fetched and os.geteuid() != 0 and not ci:
            _loud_skip("the wheelhouse could not be fetched (package index unreachable?):\n" + done.stderr)
        pytest.fail(f"packaging/build-zipapp failed:\n{done.stdout}\n{done.stderr}")
    print(f"\nbuild-zipapp: {time.monotonic() - started:.1f} s\n{done.stderr.strip()}")
    path = REPO / "dist" / "edge-installer.pyz"
    assert path.is_file(), done.stderr
    return path.resolve()


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Path:
    """One unpack directory for the session (EDGE_INSTALLER_CACHE): unpacked on first use."""
    return tmp_path_factory.mktemp("zipapp-cache")


def box_env(cache: Path, home: Path) -> dict[str, str]:
    """A bare environment: nothing that points at the venv or a site directory."""
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
            "EDGE_INSTALLER_CACHE": str(cache)}


def run_pyz(pyz: Path, cache: Path, cwd: Path, *args: str, env: dict | None = None):
    """`/usr/bin/python3 -I -S edge-installer.pyz ARGS` in cwd."""
    (cwd / "home").mkdir(exist_ok=True)
    return subprocess.run([BOX_PYTHON, "-I", "-S", str(pyz), *args], cwd=cwd,
                          env=env or box_env(cache, cwd / "home"), capture_output=True, text=True, timeout=120)


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """path -> (bytes, mode) of every file under root, without the backup sets (dated)."""
    found = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not rel.startswith("var/lib/edge-installer/backups/"):
            found[rel] = (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
    return found


# ----------------------------------------------------------------------------- the file

def test_zipapp_is_one_runnable_file_for_this_python(pyz):
    data = pyz.read_bytes()
    assert data.startswith(b"#!/usr/bin/env python3\n")
    assert os.access(pyz, os.X_OK)
    with zipfile.ZipFile(pyz) as z:
        manifest = json.loads(z.read("edge-installer-build.json"))
        names = set(z.namelist())
    assert "__main__.py" in names
    assert manifest["entry_point"] == "installer.cli:main"
    assert manifest["python"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert manifest["machine"] == os.uname().machine
    assert f"py{manifest['python']}-{manifest['machine']}" in pyz.name  # the name says it too
    for dist in ("edge-installer", "textual", "netifaces", "cryptography", "PyYAML", "dnspython", "ntplib",
                 "pyOpenSSL"):
        assert dist in manifest["distributions"], dist
    # The packages the wheel must carry (pyproject's list), and the assets read by path.
    for name in ("site-packages/installer/commands/validate.py", "site-packages/installer/commands/recover.py",
                 "site-packages/screens/app.py", "site-packages/assets/plain.tcss",
                 "site-packages/assets/profiles/machinemetrics.yaml", "site-packages/assets/help/welcome.md"):
        assert name in names, name
    print(f"\n{pyz.name}: {len(data) / 1e6:.1f} MB, build {manifest['build_id']}")


def test_build_is_skipped_when_nothing_changed(pyz):
    before = pyz.stat().st_mtime_ns
    done = subprocess.run([sys.executable, str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stderr
    assert pyz.stat().st_mtime_ns == before


# ----------------------------------------------------------------------------- running it

def test_validate_from_a_clean_directory(pyz, cache, tmp_path):
    shutil.copy(EXAMPLE, tmp_path / "plan.yaml")
    done = run_pyz(pyz, cache, tmp_path, "validate", "plan.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "plan.yaml: valid (isolated topology, netplan renderer)"

    (tmp_path / "bad.yaml").write_text(EXAMPLE.read_text().replace("192.168.50.2/24", "192.168.50.300/24"))
    done = run_pyz(pyz, cache, tmp_path, "validate", "bad.yaml")
    assert done.returncode == 2
    assert done.stderr.startswith("bad.yaml: machine_network.address:")
    assert "Traceback" not in done.stderr


def test_render_writes_what_the_development_install_writes(pyz, cache, tmp_path):
    shutil.copy(EXAMPLE, tmp_path / "plan.yaml")
    (tmp_path / "zipapp-root").mkdir()
    (tmp_path / "venv-root").mkdir()
    done = run_pyz(pyz, cache, tmp_path, "render", "plan.yaml", "--root", "zipapp-root", *TARGET_FLAGS)
    assert done.returncode == 0, done.stderr
    venv = subprocess.run([sys.executable, "-m", "installer", "render", "plan.yaml", "--root", "venv-root",
                           *TARGET_FLAGS], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert venv.returncode == 0, venv.stderr
    written = tree(tmp_path / "zipapp-root")
    assert "etc/netplan/90-edge-installer.yaml" in written
    assert written["etc/netplan/90-edge-installer.yaml"][1] == 0o600
    assert written == tree(tmp_path / "venv-root")
    for root in ("zipapp-root", "venv-root"):
        assert len(list((tmp_path / root / "var/lib/edge-installer/backups").glob("*/manifest.json"))) == 1
    assert done.stdout.replace("zipapp-root", "ROOT").splitlines()[0] == \
        venv.stdout.replace("venv-root", "ROOT").splitlines()[0]


def test_help_interfaces_and_recover(pyz, cache, tmp_path):
    done = run_pyz(pyz, cache, tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    for verb in ("validate", "render", "interfaces", "recover"):
        assert verb in done.stdout
    done = run_pyz(pyz, cache, tmp_path, "interfaces", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert any(i["name"] == "lo" for i in report["interfaces"])
    (tmp_path / "box").mkdir()
    done = run_pyz(pyz, cache, tmp_path, "recover", "--root", "box")
    assert (done.returncode, done.stdout) == (0, "nothing to recover\n"), done.stderr


def test_recover_finishes_an_interrupted_write(pyz, cache, tmp_path):
    from installer.render import RenderedFile
    from installer.writing.writer import write_files

    root = tmp_path / "box"
    (root / "etc/netplan").mkdir(parents=True)
    (root / "etc/netplan/90-edge-installer.yaml").write_text("old\n")

    class Killed(Exception):
        pass

    def kill_after_the_commit_point(step: str) -> None:
        if step.startswith("rename:"):
            raise Killed(step)

    files = [RenderedFile("/etc/netplan/90-edge-installer.yaml", b"new\n", 0o600, "netplan"),
             RenderedFile("/etc/hostname", b"edge-1\n", 0o644, "host name")]
    with pytest.raises(Killed):
        write_files(root, files, hook=kill_after_the_commit_point)
    done = run_pyz(pyz, cache, tmp_path, "recover", "--root", "box")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("recovered: ") and "the new files were completed" in done.stdout
    assert (root / "etc/netplan/90-edge-installer.yaml").read_text() == "new\n"
    assert (root / "etc/hostname").read_text() == "edge-1\n"


_PROBE = """
import json, runpy, sys
sys.argv = [sys.argv[1], "validate", sys.argv[2]]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as e:
    code = e.code
# The compiled parts and the wizard's modules, as the wizard would load them.
import netifaces, yaml, cryptography.hazmat.bindings._rust, textual.app, screens.app, screens.terminal
files = {n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())}
print(json.dumps({"code": code, "no_site": sys.flags.no_site, "isolated": sys.flags.isolated,
                  "path": sys.path, "files": files, "libyaml": yaml.__with_libyaml__}))
"""


def test_nothing_comes_from_site_packages_or_the_venv(pyz, cache, tmp_path):
    shutil.copy(EXAMPLE, tmp_path / "plan.yaml")
    (tmp_path / "home").mkdir()
    done = subprocess.run([BOX_PYTHON, "-I", "-S", "-c", _PROBE, str(pyz), "plan.yaml"], cwd=tmp_path,
                          env=box_env(cache, tmp_path / "home"), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["code"] == 0 and seen["no_site"] == 1 and seen["isolated"] == 1
    assert seen["libyaml"], "PyYAML's C loader did not load from the unpacked payload"
    stdlib = subprocess.run([BOX_PYTHON, "-I", "-S", "-c",
                             "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
                            capture_output=True, text=True).stdout.strip()
    unpacked = os.path.realpath(cache)
    for entry in seen["path"]:
        assert "site-packages" not in entry or entry.startswith(unpacked), entry
        assert "dist-packages" not in entry and str(REPO) not in entry, entry
    allowed = (stdlib + "/", unpacked + "/")
    strays = {n: f for n, f in seen["files"].items()
              if f and not os.path.realpath(f).startswith(allowed)}
    assert not strays, f"imported from outside the stdlib and the payload: {strays}"
    for name in ("installer.cli", "netifaces", "textual.app", "cryptography.hazmat.bindings._rust"):
        assert os.path.realpath(seen["files"][name]).startswith(unpacked + "/"), name


def test_unpacks_once_then_starts_from_the_unpacked_copy(pyz, tmp_path):
    shutil.copy(EXAMPLE, tmp_path / "plan.yaml")
    fresh = tmp_path / "cache"
    times = []
    for _ in range(2):
        started = time.monotonic()
        done = run_pyz(pyz, fresh, tmp_path, "validate", "plan.yaml")
        times.append(time.monotonic() - started)
        assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(pyz) as z:
        build = json.loads(z.read("edge-installer-build.json"))["build_id"]
    assert [p.name for p in fresh.iterdir()] == [build]  # no temporary directory left behind
    marker = fresh / build / ".complete"
    assert marker.read_text().strip() == build
    assert oct(stat.S_IMODE((fresh / build).stat().st_mode)) == "0o755"
    print(f"\nvalidate from the zipapp: first run (unpacks) {times[0]:.2f} s, second {times[1]:.2f} s")


def test_refuses_another_python_with_a_clear_line(pyz, tmp_path):
    boot = _bootstrap_module()
    with zipfile.ZipFile(pyz) as z:
        manifest = json.loads(z.read("edge-installer-build.json"))
    assert boot.python_mismatch(manifest) == ""
    why = boot.python_mismatch(manifest, version=(3, 12))
    assert f"built for cpython {manifest['python']} on {manifest['machine']}" in why
    assert "this is cpython 3.12" in why
    assert "aarch64" in boot.python_mismatch(manifest, machine="aarch64")
    assert "glibc" in boot.python_mismatch(manifest, libc="glibc 2.31")
    other = _another_python()
    if other:  # a real one, where the machine has it
        done = subprocess.run([other, "-I", "-S", str(pyz), "--help"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("edge-installer: this file was built for cpython"), done.stderr
        assert "\n" not in done.stderr.rstrip("\n")


def _another_python() -> str | None:
    """The executable of a CPython of another minor version, if this machine has one."""
    for name in ("python3.12", "python3.13", "python3.10"):
        found = shutil.which(name)
        if not found:
            continue
        try:  # through a version manager's shim, to the interpreter itself
            real = subprocess.run([found, "-c", "import sys; print(sys.executable)"], capture_output=True,
                                  text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if real and os.path.exists(real):
            return real
    return None


def test_unpack_directory_choice():
    boot = _bootstrap_module()
    assert boot.candidates("b1", {}, euid=0) == ["/var/cache/edge-installer/b1", "/run/edge-installer/b1",
                                                   "/tmp/edge-installer-0/b1"]
    assert boot.candidates("b1", {"HOME": "/home/tech", "XDG_RUNTIME_DIR": "/run/user/1000"}, euid=1000) == [
        "/home/tech/.cache/edge-installer/b1", "/run/user/1000/edge-installer/b1", "/tmp/edge-installer-1000/b1"]
    assert boot.candidates("b1", {"EDGE_INSTALLER_CACHE": "/data/x", "HOME": "/root"}, euid=0) == ["/data/x/b1"]


def test_no_directory_to_unpack_into_is_one_clear_line(pyz, tmp_path):
    (tmp_path / "not-a-directory").write_text("")
    env = box_env(tmp_path / "not-a-directory", tmp_path)
    done = run_pyz(pyz, tmp_path, tmp_path, "--help", env=env)
    assert done.returncode == 2
    assert "no directory to unpack into" in done.stderr and "EDGE_INSTALLER_CACHE" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_noexec_directory_is_not_used(pyz, tmp_path):
    # Debian mounts /run noexec: a C extension unpacked there could not be loaded.
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare to mount a noexec tmpfs")
    mnt = tmp_path / "noexec"
    mnt.mkdir()
    script = (f"mount -t tmpfs -o noexec,mode=0755 tmpfs {shlex.quote(str(mnt))} || exit 99; "
              f"exec {BOX_PYTHON} -I -S {shlex.quote(str(pyz))} --help")
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], env=box_env(mnt, tmp_path),
                          capture_output=True, text=True, timeout=60)
    if done.returncode == 99:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    assert done.returncode == 2
    assert "mounted noexec" in done.stderr


# ----------------------------------------------------------------------------- systemd units

def unit(name: str) -> list[tuple[str, str, str]]:
    """(section, key, value) of a unit file, continuation lines joined, in order."""
    entries, section, pending = [], "", ""
    for raw in (UNITS / name).read_text().splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key, value))
    return entries


def values(name: str, key: str) -> list[str]:
    return [v for _, k, v in unit(name) if k == key]


UNIT_NAMES = ("edge-installer-firstboot.service", "edge-installer-serial.service",
              "edge-installer-recover.service", "edge-installer-zerotouch.service")


def test_units_pass_systemd_analyze_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        _loud_skip("systemd-analyze is missing (Debian package systemd)")
    root = systemd_verify_root(tmp_path, commands=("sh", "stty", "systemctl"))
    for name in UNIT_NAMES:
        shutil.copy(UNITS / name, root / "etc/systemd/system" / name)
    done = systemd_analyze(root, *UNIT_NAMES)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "" and done.stdout.strip() == "", done.stderr + done.stdout


def test_units_say_what_the_issue_asks():
    from installer.planning.draft import DRAFT_FILE
    from screens.done import PLAN_FILE

    assert sorted(p.name for p in UNITS.glob("*.service")) == sorted(UNIT_NAMES)
    for name in ("edge-installer-firstboot.service", "edge-installer-serial.service"):
        # Until the Done step ran once: checked by the script, not a Condition (a skipped unit
        # would leave the console without its getty; proven on a booted box, test_box_firstboot).
        assert f"!{PLAN_FILE}" not in values(name, "ConditionPathExists")
        script = values(name, "ExecStart")[0]
        assert f"[ ! -e {PLAN_FILE} ] || exit 0;" in script
        assert DRAFT_FILE in script and INSTALL_PATH in script
        assert values(name, "StandardInput") == ["tty"] and values(name, "StandardError") == ["tty"]
    first = "edge-installer-firstboot.service"
    assert values(first, "TTYPath") == ["/dev/tty1"]
    assert values(first, "Environment") == ["TERM=linux"]
    assert "getty@tty1.service" in values(first, "Conflicts")
    serial = "edge-installer-serial.service"
    assert values(serial, "TTYPath") == ["/dev/ttyS0"]
    assert "--plain" in values(serial, "ExecStart")[0]
    stty = values(serial, "ExecStartPre")[0].split()
    assert stty[:3] == ["/bin/stty", "-F", "/dev/ttyS0"] and "115200" in stty
    assert stty[stty.index("rows") + 1] == "24" and stty[stty.index("cols") + 1] == "80"
    assert (values(serial, "TTYRows"), values(serial, "TTYColumns")) == (["24"], ["80"])
    recover = "edge-installer-recover.service"
    assert values(recover, "ExecStart") == [f"{INSTALL_PATH} recover --boot"]  # files only: no network yet
    before = " ".join(values(recover, "Before")).split()
    for name in ("network-pre.target", "systemd-networkd.service", "NetworkManager.service"):
        assert name in before
    for name in ("edge-installer-firstboot.service", "edge-installer-serial.service"):
        assert "edge-installer-recover.service" in " ".join(values(name, "After")).split()


@pytest.mark.parametrize("name,other,plain", [
    ("edge-installer-firstboot.service", "edge-installer-serial.service", []),
    ("edge-installer-serial.service", "edge-installer-firstboot.service", ["--plain"]),
])
def test_console_units_start_the_wizard_only_after_enter(name, other, plain, tmp_path):
    """The units' shell line, run with a stand-in wizard and systemctl: Enter first; the draft
    is resumed when there is one, a draft that cannot be read starts a new plan."""
    script = shlex.split(values(name, "ExecStart")[0].replace("$$", "$"))
    assert script[:2] == ["/bin/sh", "-c"]
    state = tmp_path / "state"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "log"
    for tool in ("edge-installer", "systemctl"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n'
                                    'case "$*" in *--resume*) exit "${RESUME_EXIT:-0}";; esac\nexit 0\n')
        os.chmod(bin_dir / tool, 0o755)
    body = (script[2].replace(INSTALL_PATH, str(bin_dir / "edge-installer"))
            .replace("/var/lib/edge-installer", str(state)))

    def run(stdin: str, draft: bool, resume_exit: int = 0) -> tuple[int, list[str]]:
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir()
        if draft:
            (state / "draft.yaml").write_text("version: 1\n")
        log.write_text("")
        done = subprocess.run(["/bin/sh", "-c", body], input=stdin, capture_output=True, text=True,
                              env={"PATH": f"{bin_dir}:/usr/bin:/bin", "RESUME_EXIT": str(resume_exit)},
                              timeout=30)
        return done.returncode, [x.rstrip() for x in log.read_text().splitlines()]

    wizard = " ".join(["edge-installer", *plain]).strip()
    assert run("", draft=False) == (0, [])  # nobody pressed Enter (EOF): no wizard
    assert run("\n", draft=False) == (0, [f"systemctl stop {other}", wizard])
    assert run("\n", draft=True) == (0, [f"systemctl stop {other}", f"{wizard} --resume"])
    assert run("\n", draft=True, resume_exit=130) == (130, [f"systemctl stop {other}", f"{wizard} --resume"])
    assert run("\n", draft=True, resume_exit=2) == (0, [f"systemctl stop {other}", f"{wizard} --resume", wizard])


def test_the_wizard_starts_from_the_zipapp_as_on_a_serial_line(pyz, cache, tmp_path):
    """As edge-installer-serial.service starts it: a tty that reports 0x0, TERM=vt220, --plain.
    The first step is drawn in ASCII at 80x24, and SIGTERM (systemctl stop) saves the draft."""
    import pty
    import select
    import signal

    root = tmp_path / "box"
    root.mkdir()
    master, slave = pty.openpty()  # a new pty is 0x0, like a serial line
    env = {**box_env(cache, tmp_path), "TERM": "vt220"}
    proc = subprocess.Popen([BOX_PYTHON, "-I", "-S", str(pyz), "--plain", "--root", str(root)],
                            stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path, env=env,
                            start_new_session=True)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while b"Step 1 of" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
        assert b"Step 1 of" in seen, seen[-2000:]
        assert all(b < 0x80 for b in seen), "non-ASCII bytes on a plain display"
        proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < end:  # keep the pty drained
            if select.select([master], [], [], 0.2)[0]:
                try:
                    os.read(master, 65536)
                except OSError:
                    pass
        assert proc.wait(timeout=5) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    from installer.planning.draft import DRAFT_FILE
    assert (root / DRAFT_FILE.lstrip("/")).is_file()
