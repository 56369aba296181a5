"""Filesystem holes (issue 11): planted unpack directories, failures after the commit point,
modes independent of the umask, recover confined to the root, special files, full disks."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from installer.render import RenderedFile
from installer.writing import writer
from installer.writing.writer import WriteError, recover, write_files

REPO = Path(__file__).resolve().parent.parent


def _bootstrap_module():
    spec = importlib.util.spec_from_file_location("zipapp_main_fs", REPO / "packaging" / "zipapp_main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny_archive(path: Path, build_id: str) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("edge-installer-build.json", json.dumps({"build_id": build_id}))
        z.writestr("site-packages/genuine.py", "GENUINE = True\n")
    return path


def _plant(directory: Path, build_id: str, uid: int = 65534) -> None:
    (directory / build_id / "site-packages").mkdir(parents=True)
    (directory / build_id / "site-packages" / "evil.py").write_text("raise SystemExit('planted')\n")
    (directory / build_id / ".complete").write_text(build_id + "\n")
    for p in [directory, *directory.rglob("*")]:
        os.lchown(p, uid, uid)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant files owned by another user")


# ----------------------------------------------------------------------------- 1. zipapp unpack

@needs_root
def test_a_planted_per_user_directory_in_a_shared_tmp_is_never_used(tmp_path):
    boot = _bootstrap_module()
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    base = shared / f"edge-installer-{os.geteuid()}"
    base.mkdir(mode=0o700)
    _plant(base, "b1")  # the whole per-user directory belongs to someone else
    archive = _tiny_archive(tmp_path / "app.pyz", "b1")
    with pytest.raises(OSError, match="not owned by us"):
        boot.unpack(str(archive), str(base / "b1"), "b1")


@needs_root
def test_a_planted_complete_copy_inside_our_directory_is_not_trusted(tmp_path):
    boot = _bootstrap_module()
    base = tmp_path / "cache"
    base.mkdir(mode=0o700)
    (base / "b1" / "site-packages").mkdir(parents=True)
    (base / "b1" / ".complete").write_text("b1\n")
    os.chown(base / "b1", 65534, 65534)
    archive = _tiny_archive(tmp_path / "app.pyz", "b1")
    with pytest.raises(OSError, match="not owned by us"):
        boot.unpack(str(archive), str(base / "b1"), "b1")


def test_a_world_writable_copy_is_not_trusted_and_prepare_says_so_in_one_line(tmp_path, monkeypatch):
    boot = _bootstrap_module()
    base = tmp_path / "cache"
    (base / "b1" / "site-packages").mkdir(parents=True)
    base.chmod(0o700)
    (base / "b1" / ".complete").write_text("b1\n")
    (base / "b1").chmod(0o777)
    archive = _tiny_archive(tmp_path / "app.pyz", "b1")
    monkeypatch.setenv("EDGE_INSTALLER_CACHE", str(base))
    monkeypatch.setattr(boot, "python_mismatch", lambda manifest: "")
    with pytest.raises(boot.StartError) as e:
        boot.prepare(str(archive))
    assert "writable by others or not owned by us" in str(e.value) and "\n" not in str(e.value)


def test_a_parent_writable_by_others_is_refused(tmp_path):
    boot = _bootstrap_module()
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)  # not sticky: anyone could rename our directory away and plant theirs
    archive = _tiny_archive(tmp_path / "app.pyz", "b1")
    with pytest.raises(OSError, match="writable by others"):
        boot.unpack(str(archive), str(open_dir / "edge-installer-0" / "b1"), "b1")


def test_an_own_fresh_directory_is_unpacked_and_reused(tmp_path):
    boot = _bootstrap_module()
    base = tmp_path / "cache"
    archive = _tiny_archive(tmp_path / "app.pyz", "b1")
    site = boot.unpack(str(archive), str(base / "b1"), "b1")
    assert Path(site, "genuine.py").read_text() == "GENUINE = True\n"
    assert boot.unpack(str(archive), str(base / "b1"), "b1") == site


# ----------------------------------------------------------------------------- 2. after the commit point

def _rf(path: str, text: str, mode: int = 0o644) -> RenderedFile:
    return RenderedFile(path, text.encode(), mode, "test")


OLD = {"/etc/a.conf": "old a\n", "/etc/b.conf": "old b\n", "/etc/c.conf": "old c\n"}
NEW = {"/etc/a.conf": "new a\n", "/etc/b.conf": "new b\n", "/etc/c.conf": "new c\n"}


def _old_tree(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    for path, text in OLD.items():
        (root / path.lstrip("/")).write_text(text)
        (root / path.lstrip("/")).chmod(0o644)


def _contents(root: Path) -> dict[str, str]:
    return {p: (root / p.lstrip("/")).read_text() for p in OLD}


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "etc").iterdir() if p.name.endswith(".new"))


def _immutable(path: Path) -> bool:
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    return done.returncode == 0


def _mutable(path: Path) -> None:
    subprocess.run(["chattr", "-i", str(path)], capture_output=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="chattr +i needs root")
def test_a_replace_that_fails_after_the_commit_point_rolls_everything_back(tmp_path):
    root = tmp_path / "root"
    _old_tree(root)
    blocked = root / "etc/b.conf"
    if not _immutable(blocked):
        pytest.skip("this filesystem has no immutable attribute")
    try:
        with pytest.raises(WriteError) as e:
            write_files(root, [_rf(p, t) for p, t in NEW.items()])
        # a.conf was renamed into place before b.conf failed: it is the old one again.
        assert _contents(root) == OLD
        assert _leftovers(root) == []
        line = str(e.value)
        assert "\n" not in line and "/etc/b.conf: cannot be put in place (operation not permitted)" in line
        assert "the previous files were put back" in line
    finally:
        _mutable(blocked)
    assert recover(root) == []  # nothing left half-done
    # Once unblocked, the same write goes through.
    write_files(root, [_rf(p, t) for p, t in NEW.items()])
    assert _contents(root) == NEW


def test_a_directory_put_in_place_of_a_target_after_the_commit_point_rolls_back(tmp_path):
    root = tmp_path / "root"
    _old_tree(root)

    def hook(step):
        if step == "rename:/etc/a.conf":  # a.conf is new now; c.conf's place is taken by a directory
            (root / "etc/c.conf").unlink()
            (root / "etc/c.conf").mkdir()
            (root / "etc/c.conf/x").write_text("")

    with pytest.raises(WriteError, match=r"/etc/c.conf: cannot be put in place \(is a directory\)"):
        write_files(root, [_rf(p, t) for p, t in NEW.items()], hook=hook)
    assert (root / "etc/a.conf").read_text() == "old a\n" and (root / "etc/b.conf").read_text() == "old b\n"
    assert _leftovers(root) == []


def test_a_recover_that_cannot_proceed_names_the_file_and_why(tmp_path):
    root = tmp_path / "root"
    _old_tree(root)

    class Killed(BaseException):
        pass

    def hook(step):
        if step == "rename:/etc/a.conf":
            raise Killed  # as a power cut after the commit point: a.conf new, b and c still staged

    with pytest.raises(Killed):
        write_files(root, [_rf(p, t) for p, t in NEW.items()], hook=hook)
    # Both ways out blocked: c.conf cannot be put in place forward, a.conf cannot be put
    # back (directories took their places; an immutable file or a bind mount does the same).
    for name in ("a.conf", "c.conf"):
        (root / "etc" / name).unlink()
        (root / "etc" / name).mkdir()
        (root / "etc" / name / "x").write_text("")
    done = subprocess.run([sys.executable, "-m", "installer", "recover", "--root", str(root)],
                          capture_output=True, text=True, cwd=REPO)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "/etc/c.conf: cannot be put in place (is a directory)" in lines[0]
    assert "etc/a.conf: is a directory writing it" in lines[0]
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    # Unblocked, recover finishes: the old files or the new ones, never a mix.
    for name in ("a.conf", "c.conf"):
        (root / "etc" / name / "x").unlink()
        (root / "etc" / name).rmdir()
    (root / "etc/c.conf").write_text("old c\n")
    recover(root)
    assert _contents(root) in (OLD, NEW), _contents(root)
    assert _leftovers(root) == []


# ----------------------------------------------------------------------------- 3. modes and the umask

UMASK_SCRIPT = """
import os, sys
os.umask(0)
sys.path.insert(0, {repo!r})
from installer.cli import main
for plan in sys.argv[2:]:
    code = main(["render", plan, "--root", sys.argv[1]])
    if code:
        sys.exit(code)
"""


def test_directories_get_their_modes_under_umask_000(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    plans = [str(REPO / "examples/isolated-proxy.yaml"), str(REPO / "examples/isolated.yaml")]
    done = subprocess.run([sys.executable, "-c", UMASK_SCRIPT.format(repo=str(REPO)), str(root), *plans],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    backups = root / "var/lib/edge-installer/backups"
    assert stat.S_IMODE(backups.stat().st_mode) == 0o700
    assert (root / "etc/edge-installer").is_dir() and (root / "etc/netplan").is_dir()
    kept = [p for p in backups.rglob("*") if p.is_file() and p.name != "manifest.json"]
    assert kept, "the second plan replaced nothing: no backup files to check"
    for p in sorted(root.rglob("*")):
        m = stat.S_IMODE(p.lstat().st_mode)
        if p.is_dir():
            want = 0o700 if p == backups or backups in p.parents else 0o755
            assert m == want, f"{p.relative_to(root)} is {m:04o}, not {want:04o}"
        else:
            assert not m & 0o002, f"{p.relative_to(root)} is world-writable ({m:04o})"
    from installer.planning import plan as planmod
    from installer.render import Target, render
    for f in render(planmod.load(plans[1]), Target(cloud_init=False)):
        p = root / f.path.lstrip("/")
        if p.exists():
            assert stat.S_IMODE(p.stat().st_mode) == f.mode, f.path


# ----------------------------------------------------------------------------- 4. recover confined

def _committed_set(root: Path, actions: list[dict], state: str = "committed", **extra) -> Path:
    backup = root / "var/lib/edge-installer/backups/20260101T000000-1"
    backup.mkdir(parents=True)
    (backup / "manifest.json").write_text(json.dumps({"version": 2, "stamp": "20260101T000000-1",
                                                      "state": state, "actions": actions, **extra}))
    return backup


@pytest.mark.parametrize("staged", ["/outside/victim", "../outside/victim", "etc/../../outside/victim",
                                    "etc/.x.edge-installer-1.new"])
def test_recover_refuses_a_staged_path_that_leads_elsewhere(tmp_path, staged):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("precious\n")
    (root / "etc/.x.edge-installer-1.new").write_text("staged\n")
    if staged.startswith("/"):
        staged = str(outside / "victim")
    # a staged file that is not next to its target is refused too (it could be any file in root)
    _committed_set(root, [{"path": "/etc/hostname", "action": "created", "staged": staged}])
    with pytest.raises(WriteError, match=r"staged file .* is not next to /etc/hostname; refused"):
        recover(root)
    assert (outside / "victim").read_text() == "precious\n"
    assert (root / "etc/.x.edge-installer-1.new").exists() and not (root / "etc/hostname").exists()


def test_recover_refuses_a_target_outside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/victim").write_text("precious\n")
    (root / "etc/link").symlink_to(tmp_path / "outside")
    for path in ["/etc/link/victim", "/etc/../../outside/victim"]:
        backup = _committed_set(root, [{"path": path, "action": "moved", "mode": 0o644}])
        with pytest.raises(WriteError, match="leads outside"):
            recover(root)
        assert (tmp_path / "outside/victim").read_text() == "precious\n"
        import shutil
        shutil.rmtree(backup)


def test_restore_never_reads_a_kept_file_through_a_link(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (tmp_path / "secret").write_text("root:hash:...\n")
    backup = _committed_set(root, [{"path": "/etc/hostname", "action": "replaced", "mode": 0o644,
                                    "staged": "etc/.hostname.edge-installer-1.new"}], state="restoring")
    (backup / "files/etc").mkdir(parents=True)
    (backup / "files/etc/hostname").symlink_to(tmp_path / "secret")
    with pytest.raises(WriteError, match="symbolic link"):
        recover(root)
    assert not (root / "etc/hostname").exists()
    (backup / "files/etc/hostname").unlink()
    (backup / "files/etc").rmdir()
    (backup / "files/etc").symlink_to(tmp_path)  # a directory link: the same
    (tmp_path / "hostname").write_text("leaked\n")
    with pytest.raises(WriteError, match="outside its backup set"):
        recover(root)
    assert not (root / "etc/hostname").exists()


def test_recover_runs_only_the_stack_commands_apply_knows(tmp_path):
    from installer.writing.apply import undo_unconfirmed

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/hostname").write_text("new\n")
    backup = _committed_set(
        root, [{"path": "/etc/hostname", "action": "replaced", "mode": 0o644,
                "staged": "etc/.hostname.edge-installer-1.new"}], state="unconfirmed",
        awaiting={"pid": 0, "boot_id": "gone", "commands": [
            ["netplan", "apply"], ["sh", "-c", "touch /tmp/pwned"], ["hostname", "x"],
            ["systemctl", "restart", "sshd"], "not a list"]})
    (backup / "files/etc").mkdir(parents=True)
    (backup / "files/etc/hostname").write_text("old\n")

    ran = []

    class FakeSystem:
        live = True

        def __init__(self):
            self.root = root

        def run(self, argv):
            ran.append(argv)
            return argv

    [(line, _)] = undo_unconfirmed(FakeSystem())
    assert (root / "etc/hostname").read_text() == "old\n"
    assert ran == [["netplan", "apply"], ["hostname", "-F", "/etc/hostname"]]
    from installer.writing.apply import REAPPLY_COMMANDS
    assert all(argv in REAPPLY_COMMANDS for argv in ran)
    assert "2 command(s) recorded in its backup set are not ones edge-installer runs" in line


def test_the_known_commands_cover_every_command_apply_runs():
    from installer.planning import plan as planmod
    from installer.render import Target, render
    from installer.writing.apply import REAPPLY_COMMANDS, STACK_COMMANDS, reapply_commands, stack_commands

    for example in sorted((REPO / "examples").glob("*.yaml")):
        plan = planmod.load(example)
        for target in (Target(cloud_init=True), Target(cloud_init=False)):
            written = [f.path for f in render(plan, target)] + ["/etc/systemd/system.conf.d/edge-installer-proxy.conf"]
            commands = stack_commands(plan, target, written)
            assert all(c in STACK_COMMANDS or c[0] == "hostname" for c in commands), (example, commands)
            assert all(c in REAPPLY_COMMANDS for c in reapply_commands(commands)), example


# ----------------------------------------------------------------------------- 5. special files, bounded reads

def test_read_regular_refuses_special_files_without_blocking(tmp_path):
    from installer.planning.yamlfile import UnreadableFile, read_regular

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UnreadableFile, match="not a regular file"):
        read_regular(fifo, 1000)  # opened O_NONBLOCK: no writer is waited for
    (tmp_path / "zero").symlink_to("/dev/zero")
    with pytest.raises(UnreadableFile, match="not a regular file"):
        read_regular(tmp_path / "zero", 1000)
    with pytest.raises(UnreadableFile, match="is a directory"):
        read_regular(tmp_path, 1000)
    (tmp_path / "big").write_bytes(b"x" * 1001)
    with pytest.raises(UnreadableFile, match="more than the 1000"):
        read_regular(tmp_path / "big", 1000)
    (tmp_path / "ok").write_bytes(b"x" * 1000)
    assert read_regular(tmp_path / "ok", 1000) == b"x" * 1000
    (tmp_path / "link").symlink_to(tmp_path / "ok")
    with pytest.raises(UnreadableFile, match="symbolic link"):
        read_regular(tmp_path / "link", 1000, follow_symlinks=False)
    with pytest.raises(UnreadableFile) as raised:
        read_regular(tmp_path / "missing", 10)
    e = raised.value
    assert isinstance(e, OSError) and str(e) == f"{tmp_path / 'missing'}: does not exist"


CONFLICTS_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from installer.planning import plan as planmod
from installer.writing.existing import find_conflicts
from installer.render import Target, render
plan = planmod.load({plan!r})
for c in find_conflicts(Path(sys.argv[1]), plan, render(plan, Target())):
    print(c.path, c.reason)
"""


def test_special_files_among_the_box_configuration_do_not_hang_or_eat_memory(tmp_path):
    root = tmp_path / "root"
    (root / "etc/netplan").mkdir(parents=True)
    (root / "etc/NetworkManager/system-connections").mkdir(parents=True)
    (root / "etc/network").mkdir(parents=True)
    os.mkfifo(root / "etc/netplan/10-fifo.yaml")
    (root / "etc/netplan/20-zero.yaml").symlink_to("/dev/zero")
    os.mkfifo(root / "etc/network/interfaces")
    (root / "etc/NetworkManager/system-connections/zero.nmconnection").symlink_to("/dev/zero")
    script = CONFLICTS_SCRIPT.format(repo=str(REPO), plan=str(REPO / "examples/isolated.yaml"))
    # Without the bounded reader the FIFO blocks for ever and /dev/zero fills the memory.
    done = subprocess.run([sys.executable, "-c", script, str(root)], capture_output=True, text=True,
                          timeout=60, preexec_fn=lambda: __import__("resource").setrlimit(
                              __import__("resource").RLIMIT_AS, (2 << 30, 2 << 30)))
    assert done.returncode == 0, done.stderr
    assert "/etc/netplan/10-fifo.yaml netplan merges it with ours (it was not read: is not a regular file" \
        in done.stdout
    assert "/etc/netplan/20-zero.yaml netplan merges it with ours (it was not read: is not a regular file" \
        in done.stdout


# ----------------------------------------------------------------------------- 6. a full disk

@pytest.fixture
def tiny_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def _fill(directory: Path) -> None:
    with open(directory / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC


def test_a_full_disk_is_named_with_the_file_not_an_internal_error(tiny_fs):
    root = tiny_fs / "root"
    root.mkdir()
    _fill(tiny_fs)
    done = subprocess.run([sys.executable, "-m", "installer", "render", str(REPO / "examples/isolated.yaml"),
                           "--root", str(root)], capture_output=True, text=True, cwd=REPO)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "internal error" not in lines[0] and "Traceback" not in done.stderr
    assert "no space left on device writing it" in lines[0] and str(root) in lines[0], lines[0]


def test_atomic_write_on_a_full_disk_names_the_file_and_leaves_no_temporary(tiny_fs):
    (tiny_fs / "etc/netplan").mkdir(parents=True)
    (tiny_fs / "etc/netplan/x.yaml").write_text("old\n")
    _fill(tiny_fs)
    with pytest.raises(WriteError) as e:
        writer.atomic_write(tiny_fs / "etc/netplan/x.yaml", b"n" * 100_000, 0o600)
    assert str(e.value).startswith(f"{tiny_fs}/etc/netplan/x.yaml: no space left on device writing it")
    assert isinstance(e.value, OSError)  # code that copes with a failed write copes with this one
    assert sorted(p.name for p in (tiny_fs / "etc/netplan").iterdir()) == ["x.yaml"]
    assert (tiny_fs / "etc/netplan/x.yaml").read_text() == "old\n"


def test_an_os_error_without_a_file_name_is_one_line_not_an_internal_error(monkeypatch, capsys):
    from installer import cli
    from installer.commands import recover as recover_cmd

    def boom(args):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(recover_cmd, "run", boom)
    monkeypatch.delenv("EDGE_INSTALLER_DEBUG", raising=False)
    assert cli.main(["recover", "--root", "/nonexistent-root-for-test"]) == 1
    err = capsys.readouterr().err
    assert err == "edge-installer: input/output error\n"


def test_recover_refusing_a_crafted_manifest_is_one_line_without_terminal_escapes(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    _committed_set(root, [{"path": "/etc/\x1b]0;owned\x07\x1b[2Jx", "action": "created",
                           "staged": "/etc/\x1b[2J.new"}])
    done = subprocess.run([sys.executable, "-m", "installer", "recover", "--root", str(root)],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 1, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "\x1b" not in done.stderr + done.stdout
    assert done.stderr.startswith("edge-installer: recover: backup set 20260101T000000-1 cannot be recovered: ")
    assert "is not next to" in done.stderr and "refused" in done.stderr


def test_recover_never_puts_a_staged_symbolic_link_in_place(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (tmp_path / "shadow").write_text("secret\n")
    (root / "etc/.hostname.edge-installer-1.new").symlink_to(tmp_path / "shadow")
    _committed_set(root, [{"path": "/etc/hostname", "action": "created",
                           "staged": "etc/.hostname.edge-installer-1.new"}])
    recover(root)  # refused forward, so rolled back: the link is removed, nothing put in place
    assert not os.path.lexists(root / "etc/hostname")
    assert not os.path.lexists(root / "etc/.hostname.edge-installer-1.new")
    assert (tmp_path / "shadow").read_text() == "secret\n"


def test_a_full_disk_before_the_commit_point_keeps_the_old_files_and_leaves_no_debris(tiny_fs):
    root = tiny_fs / "root"
    _old_tree(root)
    files = [_rf("/etc/a.conf", "new a\n"), _rf("/etc/b.conf", "b" * 200_000)]  # more than the 64 KB
    with pytest.raises(WriteError, match="no space left on device writing it"):
        write_files(root, files)
    assert _contents(root) == OLD
    assert _leftovers(root) == [] and not [p for p in (root / "etc").iterdir() if p.name.startswith(".")]
    assert recover(root) == []


def test_a_fifo_as_the_plan_or_the_passphrase_file_is_refused_without_hanging(tmp_path):
    import subprocess
    import sys

    fifo = tmp_path / "plan.yaml"
    os.mkfifo(fifo)
    cli = [sys.executable, "-m", "installer"]
    for argv in (["validate", str(fifo)],
                 ["bundle", "export", str(REPO / "examples/isolated.yaml"), "-o", str(tmp_path / "b.tar.gz"),
                  "--passphrase-file", str(fifo)]):
        r = subprocess.run([*cli, *argv], capture_output=True, text=True, cwd=REPO, timeout=20)
        assert r.returncode == 2 and "not a regular file" in r.stderr and "Traceback" not in r.stderr, r.stderr
    bundle = tmp_path / "plain.tar.gz"
    r = subprocess.run([*cli, "bundle", "export", str(REPO / "examples/isolated.yaml"), "-o", str(bundle),
                        "--no-secrets"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    for argv in (["bundle", "import", str(bundle), "--trust-key", str(fifo)],
                 ["bundle", "fleet", str(bundle), "--allow-unsigned", "--devices", str(fifo),
                  "--out", str(tmp_path / "out")]):
        r = subprocess.run([*cli, *argv], capture_output=True, text=True, cwd=REPO, timeout=20)
        assert r.returncode == 2 and "not a regular file" in r.stderr and "Traceback" not in r.stderr, r.stderr
    zero = tmp_path / "zero.yaml"
    zero.symlink_to("/dev/zero")
    r = subprocess.run([*cli, "validate", str(zero)], capture_output=True, text=True, cwd=REPO, timeout=20)
    assert r.returncode == 2 and "not a regular file" in r.stderr
