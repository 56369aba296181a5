"""Fleet: a bundle plus one CSV row per box gives each box its tree and a cloud-init seed.

devices.csv has a header row of field paths (`hostname` and whatever differs per box, e.g.
`machine_network.address,uplink.address,uplink.gateway`); every cell is exactly a
`--set HEADER=CELL` on the bundle's plan, so an empty cell clears that field.

For each box, OUT/<hostname>/ holds:
- `root/`: the rendered files at their paths and modes, as `render --root` writes them;
- `seed/`: a cloud-init NoCloud seed (`meta-data`, `user-data`, `network-config` version 2)
  carrying the same configuration, for provisioning engines that speak cloud-init.
They are two ways to the same result: use one of them per box, not both.

A later run replaces a box's directory whole only when it is empty or recognisably this
command's output for that host (root/ and seed/ only, seed/ holding exactly the three seed
files, user-data starting with the header written for that host); any other existing directory
is refused before anything is written, so a run never deletes a folder it did not write.

Thousands of boxes (bench/fleet.py): the rows are validated once each and kept as rows; each box
is built in a private temporary folder (by worker processes for a large fleet, see
default_jobs) and takes its name once a batch of boxes is on disk; the record's digests are
taken from the bytes as written. The output is byte for byte the same however it was built.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from installer.planning.plan import SECRET_FIELDS, FieldError, Plan
from installer.planning.setfield import SetError, _set_one, apply_sets_judged, check_key
from installer.render import NETPLAN_FILE, RenderedFile, Target, dropins, render, yamltext
from installer.render import netplan as netplan_renderer
from installer.render.yamltext import WITH_LIBYAML

if TYPE_CHECKING:
    from concurrent.futures import Future

    from installer.planning.validate import Context

MAX_CSV_BYTES = 1 << 20
MAX_DEVICES = 5000
SEED_DROPINS = (dropins.RESOLVED_FILE, dropins.TIMESYNCD_FILE, dropins.PROXY_FILE, dropins.PROXY_ENV_FILE,
                dropins.SYSCTL_FILE)
# After cloud-init's 50-cloud-init.yaml; see seed_network.
MACHINES_NETPLAN_FILE = "/etc/netplan/60-edge-installer-machines.yaml"
_SEED_HEADER = "# Written by edge-installer bundle fleet; cloud-init NoCloud seed for {host}.\n"
# In each box's folder: what the run wrote there (every file's SHA-256). A rerun replaces the
# folder only when it holds exactly that: a file added or changed by hand is never deleted.
OUTPUT_RECORD = ".edge-installer-fleet.json"
_MAX_RECORD_BYTES = 1 << 20


class FleetError(Exception):
    """Bad fleet input: one line per problem, each naming the CSV line and the field."""

    def __init__(self, lines: list[str]):
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))


@dataclass(frozen=True)
class Device:
    """One box of the fleet: the CSV line it came from, its host name, and the `--set` items
    that make its plan from the bundle's. Only the row is kept (a few hundred bytes a box):
    `plan` applies it again, so a fleet of thousands holds no thousands of plans."""

    line: int
    hostname: str  # also names its output directory
    sets: tuple[str, ...]
    base: Plan = field(repr=False, compare=False)

    @property
    def plan(self) -> Plan:
        """The box's plan (validated when the row was read)."""
        plan = self.base
        for item in self.sets:
            key, _, value = item.partition("=")
            plan = _set_one(plan, key.strip(), value)
        return plan


def read_devices(text: str, base: Plan, *, missing_secrets: list[str] | tuple[str, ...] = (),
                 source: str = "devices.csv", ctx: Context | None = None) -> list[Device]:
    """Every row of devices.csv applied to the bundle's plan and validated; or FleetError.

    `missing_secrets` are the secret fields the bundle could not supply: each needs a column.
    """
    from installer.planning.validate import default_context, validate

    first = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first and "," not in first else ","  # spreadsheets in many locales
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise FleetError([f"{source}: is empty; the first line names the fields, "
                          "e.g. hostname,machine_network.address"]) from None
    except csv.Error as e:
        raise FleetError([f"{source} line 1: {e}"]) from None
    problems = _header_problems(header, base, missing_secrets, source)
    if problems:
        raise FleetError(problems)

    # What depends on the bundle's plan only is done once, not per box: the validation context
    # (the packaged profiles) and the base plan's own problems (see _apply_row).
    ctx = ctx or default_context()
    before = set(validate(base, ctx))
    devices: list[Device] = []
    hosts: dict[str, int] = {}
    uplinks: dict[str, int] = {}
    errors: list[str] = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(devices) + len(errors) >= MAX_DEVICES:
                raise FleetError([f"{source}: more than {MAX_DEVICES} boxes; split the file"])
            if len(row) != len(header):
                errors.append(f"{source} line {line}: has {len(row)} values; the header names {len(header)} fields")
                continue
            sets = tuple(f"{k}={v if k in SECRET_FIELDS else v.strip()}" for k, v in zip(header, row, strict=True))
            try:
                plan, found = _apply_row(base, before, sets, ctx)
            except SetError as e:
                errors += [f"{source} line {line}: {err}" for err in e.errors]
                continue
            row_errors = [str(err) for err in found]
            if not plan.hostname:
                row_errors.append("hostname: required: each box needs its own host name (it names its directory)")
            else:
                key = plan.hostname.lower()
                if key in hosts:
                    row_errors.append(f"hostname: {plan.hostname} is already line {hosts[key]}'s; "
                                      "each box needs its own")
                hosts.setdefault(key, line)
            if plan.uplink is not None and plan.uplink.ipv4 == "static" and plan.uplink.address:
                ip = plan.uplink.address.split("/")[0]
                if ip in uplinks:
                    row_errors.append(f"uplink.address: {ip} is already line {uplinks[ip]}'s; each box needs its own")
                uplinks.setdefault(ip, line)
            if row_errors or not plan.hostname:  # no host name is one of row_errors
                errors += [f"{source} line {line}: {e}" for e in row_errors]
            else:
                devices.append(Device(line, plan.hostname, sets, base))
    except csv.Error as e:
        errors.append(f"{source} line {reader.line_num}: {e}")
    if errors:
        raise FleetError(errors)
    if not devices:
        raise FleetError([f"{source}: has a header but no boxes; add one line per box"])
    return devices


def _apply_row(base: Plan, before: set[FieldError], sets: tuple[str, ...],
               ctx: Context | None) -> tuple[Plan, list[FieldError]]:
    """`setfield.apply_sets(base, sets, ctx)` and the new plan's problems, validating once: a
    fleet applies every row to the same base, so its problems (`before`) are computed once.
    SetError for what apply_sets refuses, else (plan, every problem of the plan)."""
    return apply_sets_judged(base, sets, ctx, before)


def _header_problems(header: list[str], base: Plan, missing_secrets: Sequence[str], source: str) -> list[str]:
    problems: list[str] = []
    if "hostname" not in header:
        problems.append(f"{source} line 1: needs a hostname column: each box needs its own host name")
    seen: set[str] = set()
    for i, key in enumerate(header):
        if not key:
            problems.append(f"{source} line 1: column {i + 1} has no field name")
            continue
        if key in seen:
            problems.append(f"{source} line 1: {key}: named twice")
        seen.add(key)
        problem = check_key(base, key)
        if problem:
            problems.append(f"{source} line 1: {key}: {problem}")
    lacking = [s for s in missing_secrets if s not in header]
    if lacking:
        problems.append(f"the bundle's secrets are not available ({', '.join(lacking)}): give --passphrase-file with "
                        f"the bundle's passphrase, or a column for each in {source}")
    return problems


# ---------------------------------------------------------------------------------------
# Seeds.

_ASCII_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def _represent_str(dumper: yaml.representer.SafeRepresenter, value: str) -> yaml.ScalarNode:
    # File contents as literal blocks, readable in the seed (PyYAML falls back to quoting
    # wherever a block cannot hold the text exactly). YAML reads NEL and the Unicode line
    # separators as line breaks and PyYAML writes them raw: those go double-quoted, escaped.
    if value.isascii():  # the usual case, by one regular expression: ASCII's category C is C0 and DEL
        odd = _ASCII_CONTROL.search(value) is not None
    else:
        odd = any(ch in "\x85\u2028\u2029" or (unicodedata.category(ch)[0] == "C" and ch != "\n") for ch in value)
    style = '"' if odd else "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


# libyaml's emitter writes tame data, byte for byte as PyYAML's (installer.render.yamltext).
_SeedDumper, _FastSeedDumper = yamltext.dumpers({str: _represent_str})


def _dump(data: Any, *, fast: bool = True) -> str:
    return yamltext.dump(data, _SeedDumper, _FastSeedDumper if fast else None)


# Reading YAML back is data, not bytes: libyaml's parser gives what PyYAML's gives, faster.
_NETPLAN_LOADER = yaml.CSafeLoader if WITH_LIBYAML else yaml.SafeLoader


def _load_netplan(content: bytes) -> dict[str, Any]:
    """The netplan renderer's YAML as data."""
    network: dict[str, Any] = yaml.load(content, Loader=_NETPLAN_LOADER)["network"]  # a safe loader, either way
    return network


def seed_network(plan: Plan, target: Target,
                 netplan_file: RenderedFile | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The netplan renderer's network, as (network-config, extra netplan file or None).

    `netplan_file`: that renderer's file for this plan and target, when already rendered.

    cloud-init writes network-config back out with its keys sorted, so `bridges:` comes
    before the `ethernets:` it bridges; netplan 0.106 then parses the file twice and takes
    the second sight of each WiFi access point for a duplicate ("Duplicate access point
    SSID", LP: #1809994, fixed in later netplan). Where a bridge and a WiFi uplink meet
    (wireless-bridge), network-config keeps the uplink and the machine ports' bridge goes
    into its own netplan file, which user-data writes: together, the same network.
    """
    network = _load_netplan((netplan_file or netplan_renderer.render(plan, target)[0]).content)
    if not ("bridges" in network and "wifis" in network):
        return network, None
    machines = {"version": 2, "renderer": network["renderer"], "ethernets": network.pop("ethernets"),
                "bridges": network.pop("bridges")}
    return network, machines


def network_config(plan: Plan, target: Target) -> RenderedFile:
    """network-config (version 2): the network the netplan renderer produces, unwrapped."""
    return _seed_pair(plan, target)[0]


def user_data(plan: Plan, target: Target) -> RenderedFile:
    """user-data (#cloud-config): the host name, and the drop-ins as write_files."""
    return _seed_pair(plan, target)[1]


def _seed_pair(plan: Plan, target: Target,
               netplan_file: RenderedFile | None = None) -> tuple[RenderedFile, RenderedFile]:
    """(network-config, user-data) of one box, from one rendering of its netplan file."""
    netplan_file = netplan_file or netplan_renderer.render(plan, target)[0]
    network, machines = seed_network(plan, target, netplan_file)
    # The secrets (WiFi passphrase, APN password) stay with the uplink, in network-config.
    secret = netplan_file.secret
    text = _SEED_HEADER.format(host=plan.hostname) + _dump(network)
    net = RenderedFile("network-config", text.encode("utf-8"), 0o600 if secret else 0o644,
                       "cloud-init network configuration (version 2)", secret=secret)

    files = [f for f in dropins.render(plan, target) if f.path in SEED_DROPINS]
    if machines is not None:
        files.insert(0, RenderedFile(MACHINES_NETPLAN_FILE, (netplan_renderer.HEADER + _dump({"network": machines}))
                                     .encode("utf-8"), 0o600, "the machine ports' bridge"))
    doc: dict[str, Any] = {"hostname": plan.hostname, "preserve_hostname": False}
    doc["write_files"] = [{"path": f.path, "content": f.text, "owner": "root:root", "permissions": f"{f.mode:04o}"}
                          for f in files]
    # The services already run when cloud-init writes their drop-ins: restart them now; the
    # proxy's drop-in is read by the services started after a daemon-reload.
    runcmd: list[list[str]] = []
    if any(f.path == dropins.PROXY_FILE for f in files):
        runcmd.append(["systemctl", "daemon-reload"])
    if machines is not None:
        runcmd.append(["netplan", "apply"])
    runcmd.append(["systemctl", "try-restart", "systemd-resolved.service", "systemd-timesyncd.service"])
    if any(f.path == dropins.SYSCTL_FILE for f in files):
        runcmd.append(["sysctl", "-p", dropins.SYSCTL_FILE])
    doc["runcmd"] = runcmd
    secret = any(f.secret for f in files)
    text = "#cloud-config\n" + _SEED_HEADER.format(host=plan.hostname) + _dump(doc)
    user = RenderedFile("user-data", text.encode("utf-8"), 0o600 if secret else 0o644,
                        "cloud-init user data (#cloud-config)", secret=secret)
    return net, user


def seed_files(plan: Plan, target: Target, netplan_file: RenderedFile | None = None) -> list[RenderedFile]:
    """The NoCloud seed of one box: meta-data, user-data, network-config.

    `netplan_file`: the netplan renderer's file for this plan, when the tree already has it."""
    net, user = _seed_pair(plan, target, netplan_file)
    # The instance id changes with the configuration, so cloud-init applies a changed seed
    # again; it is computed without the secrets, since meta-data is readable by all.
    masked = plan.redacted()
    masked_net, masked_user = (net, user) if masked == plan else _seed_pair(masked, target)  # no secret: the same
    digest = hashlib.sha256(masked_net.content + masked_user.content).hexdigest()
    meta = _dump({"instance-id": f"{plan.hostname}-{digest[:12]}", "local-hostname": plan.hostname})
    return [RenderedFile("meta-data", meta.encode("utf-8"), 0o644, "cloud-init instance metadata"), user, net]


# ---------------------------------------------------------------------------------------
# Writing.

# Boxes are built in private temporary folders and take their names in batches: one sync of
# the filesystem per batch puts every file of the batch on disk (instead of two fsyncs per
# file), then each folder is renamed into place; a folder under a box's name is always whole.
COMMIT_BATCH = 250
# Boxes can be built by worker processes (render and seeds are pure functions of the plan:
# the bytes do not depend on who builds them); this process names the folders, in the CSV's
# order, and deletes the previous run's. Bounded: at most MAX_JOBS workers, each given
# CHUNK boxes at a time and at most two chunks ahead of the folders named.
MAX_JOBS = 4
CHUNK = 16
PARALLEL_FROM = 64  # fewer boxes than this: one process (starting workers costs more)


def default_jobs(boxes: int) -> int:
    """How many processes build `boxes` boxes when not told: the CPUs this process may use
    (at most MAX_JOBS) for a large fleet, else 1."""
    if boxes < PARALLEL_FROM:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_JOBS, cpus))


def write_fleet(out: Path, devices: list[Device], target: Target, *, jobs: int | None = None) -> list[Path]:
    """Write OUT/<hostname>/{root,seed} per box; a box's previous output is replaced whole.

    `jobs`: processes building boxes (1: this one only; None: default_jobs). The output is
    the same whatever the number."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FleetError([f"{out}: exists and is not a directory; give --out a directory (it is created if missing)"])
    for d in devices:  # refuse before writing anything
        final = out / d.hostname
        foreign = _not_ours(final, d.hostname)
        if foreign:
            raise FleetError([f"{final}: exists and is not the output of a previous fleet run for {d.hostname} "
                              f"({foreign}); nothing was written: move it away or choose another --out"])
    jobs = default_jobs(len(devices)) if jobs is None else max(1, min(MAX_JOBS, jobs))
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    pending: list[tuple[Path, Path]] = []  # (folder being built or built, its final name), in order
    trash = _Trash()
    try:
        if jobs == 1:
            for d in devices:
                tmp = _new_folder(out, d.hostname)
                pending.append((tmp, out / d.hostname))
                _build_box(tmp, d.hostname, d.plan, target)
                if len(pending) >= COMMIT_BATCH:
                    _commit(out, pending, len(pending), written, trash)
        else:
            _write_in_workers(out, devices, target, jobs, pending, written, trash)
        _commit(out, pending, len(pending), written, trash)
        trash.finish()
    except BaseException:
        trash.finish(errors=False)
        for tmp, _ in pending:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written


class _Trash:
    """The previous run's box folders, deleted by one thread while the next boxes are built
    (deleting is mostly waiting for the disk). Bounded: adding waits when it lags behind."""

    def __init__(self) -> None:
        self._queue: Any = None
        self._thread: Any = None
        self._error: BaseException | None = None

    def add(self, folder: Path) -> None:
        import queue
        import threading

        if self._thread is None:  # started only now: write_fleet's workers are forked before
            self._queue = queue.Queue(maxsize=COMMIT_BATCH)
            self._thread = threading.Thread(target=self._run, name="fleet-trash", daemon=True)
            self._thread.start()
        self._queue.put(folder)

    def _run(self) -> None:
        while (folder := self._queue.get()) is not None:
            try:
                shutil.rmtree(folder)
            except BaseException as e:  # handed to finish()
                self._error = self._error or e

    def finish(self, errors: bool = True) -> None:
        """Wait until everything added is deleted; raise the first error (when `errors`)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if errors and self._error is not None:
            raise self._error


def _write_in_workers(out: Path, devices: list[Device], target: Target, jobs: int,
                      pending: list[tuple[Path, Path]], written: list[Path], trash: _Trash) -> None:
    """Build the boxes in `jobs` worker processes, naming each batch once it is built."""
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    base = devices[0].base
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"), initializer=_worker_start,
                               initargs=(base, target, os.getpid()))
    try:
        window: deque[tuple[Future[None], int]] = deque()  # (future, boxes in its chunk)
        built = 0  # pending[:built] are built
        for start in range(0, len(devices), CHUNK):
            chunk = []
            for d in devices[start:start + CHUNK]:
                if d.base is not base:
                    raise ValueError("write_fleet: every device must come from one read_devices")
                tmp = _new_folder(out, d.hostname)
                pending.append((tmp, out / d.hostname))
                chunk.append((str(tmp), d.hostname, d.sets))
            window.append((pool.submit(_build_chunk, chunk), len(chunk)))
            while len(window) > 2 * jobs or (window and window[0][0].done()):
                future, count = window.popleft()
                future.result()
                built += count
                if built >= COMMIT_BATCH:
                    _commit(out, pending, built, written, trash)
                    built = 0
        while window:
            future, count = window.popleft()
            future.result()
    finally:
        # On an error: no task starts any more, and none is still writing when the caller
        # deletes the unfinished folders.
        pool.shutdown(wait=True, cancel_futures=True)


_WORKER: dict[str, Any] = {}


def _worker_start(base: Plan, target: Target, parent: int) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle (it cleans up)
    # A parent killed outright (SIGKILL, SIGTERM) takes its workers with it: they would wait
    # for work forever, since each holds the task queue open itself.
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it died before prctl
        os._exit(1)
    _WORKER.update(base=base, target=target)


def _build_chunk(chunk: list[tuple[str, str, tuple[str, ...]]]) -> None:
    base, target = _WORKER["base"], _WORKER["target"]
    for tmp, hostname, sets in chunk:
        _build_box(Path(tmp), hostname, Device(0, hostname, sets, base).plan, target)


def _new_folder(out: Path, hostname: str) -> Path:
    """A fresh private (0700) folder in out for a box to be built in."""
    return Path(tempfile.mkdtemp(prefix=f".{hostname}.", suffix=".partial", dir=out))


def _build_box(tmp: Path, hostname: str, plan: Plan, target: Target) -> None:
    """Fill the fresh private folder tmp with root/, seed/ and the record of their digests."""
    from installer.writing.writer import DIR_MODE

    root, seed = tmp / "root", tmp / "seed"
    root.mkdir()
    seed.mkdir()
    files = render(plan, target)
    netplan_file = next((f for f in files if f.path == NETPLAN_FILE), None) if plan.renderer == "netplan" else None
    seeds = seed_files(plan, target, netplan_file)
    digests: dict[str, str] = {}
    made = {root}
    for f in files:
        path = _tree_path(root, f.path)
        missing = []
        probe = path.parent
        while probe not in made:
            missing.append(probe)
            probe = probe.parent
        for directory in reversed(missing):  # as writer.make_dirs: exactly DIR_MODE whatever the umask
            _os_call(os.mkdir, directory, DIR_MODE)
            _os_call(os.chmod, directory, DIR_MODE)
            made.add(directory)
        digests["root" + f.path] = _write_new(path, f.content, f.mode)
    for f in seeds:
        digests["seed/" + f.path] = _write_new(seed / f.path, f.content, f.mode)
    record = {"hostname": hostname, "files": digests}
    _write_new(tmp / OUTPUT_RECORD, json.dumps(record, indent=1, sort_keys=True).encode(), 0o644)
    if not any(f.secret for f in files + seeds):
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 stays where a secret is inside


def _tree_path(root: Path, path: str) -> Path:
    """Where a path of the box lands under root, refused as writer.box_path refuses it (not
    absolute, `..`). box_path also resolves every directory on the way, against links out of
    root; root here is in a folder this run just made, private, holding only what it made."""
    from installer.writing.writer import WriteError

    if not path.startswith("/"):
        raise WriteError(f"{path}: not an absolute path")
    parts = path.split("/")[1:]
    if any(p in ("..", "", ".") for p in parts):
        raise WriteError(f"{path}: '..', '.' and empty names are not allowed in a path")
    return root.joinpath(*parts)


def _write_new(path: Path, content: bytes, mode: int) -> str:
    """Create path (in a folder of ours nobody else writes: no temporary name needed) with
    exactly `mode` before any byte is written; its SHA-256, for the record."""
    from installer.writing.writer import WriteError, os_problem

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, mode)  # the umask does not apply; a secret is never readable by others
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    except OSError as e:
        raise WriteError(os_problem(e, path)) from None
    return hashlib.sha256(content).hexdigest()


def _os_call(fn: Callable[..., object], path: Path, *args: Any) -> None:
    from installer.writing.writer import WriteError, os_problem

    try:
        fn(path, *args)
    except OSError as e:
        raise WriteError(os_problem(e, path, "creating")) from None


def _commit(out: Path, pending: list[tuple[Path, Path]], count: int, written: list[Path], trash: _Trash) -> None:
    """Put the first `count` folders of `pending` (built) on disk, then give each its name
    (replacing the previous run's folder whole, which goes to the trash); they leave
    `pending` as they are named."""
    from installer.writing.writer import fsync_dir

    if not count:
        return
    _sync_filesystem(out)
    for _ in range(count):
        tmp, final = pending[0]
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=out))
            os.rename(final, old / "box")
        os.rename(tmp, final)
        pending.pop(0)
        written.append(final)
        if old is not None:
            trash.add(old)
    fsync_dir(out)  # the names too


def _sync_filesystem(directory: Path) -> None:
    """Everything written on directory's filesystem, on disk: syncfs(2), else sync(2)."""
    from installer.writing.writer import WriteError, os_problem

    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _syncfs() is not None:
            if _syncfs()(fd) != 0:
                import ctypes

                err = ctypes.get_errno()
                raise WriteError(os_problem(OSError(err, os.strerror(err)), directory, "syncing"))
        else:
            os.sync()
    finally:
        os.close(fd)


_SYNCFS: list[Any] = []


def _syncfs() -> Any:
    """libc's syncfs (Linux), or None."""
    if not _SYNCFS:
        try:
            import ctypes

            fn = ctypes.CDLL(None, use_errno=True).syncfs
            fn.argtypes = [ctypes.c_int]
            fn.restype = ctypes.c_int
            _SYNCFS.append(fn)
        except (OSError, AttributeError, ImportError):
            _SYNCFS.append(None)
    return _SYNCFS[0]


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()  # streamed: a planted large file costs no memory


def _not_ours(path: Path, hostname: str) -> str | None:
    """None when path is absent, an empty directory, or exactly what a previous run wrote for
    this host (its record, every file listed with its digest, nothing else, no links); else the
    first thing that is not ours, in words."""
    from installer.planning.yamlfile import SmallFileError, read_small

    if not path.exists() and not path.is_symlink():
        return None
    if path.is_symlink() or not path.is_dir():
        return "a symbolic link" if path.is_symlink() else "not a directory"
    try:
        if not os.listdir(path):
            return None
        if not (path / OUTPUT_RECORD).exists():
            return f"no {OUTPUT_RECORD}"
        try:
            record = json.loads(read_small(path / OUTPUT_RECORD, _MAX_RECORD_BYTES, "the fleet record",
                                           "it is written by bundle fleet"))
        except (SmallFileError, ValueError, UnicodeDecodeError):
            return f"{OUTPUT_RECORD} is not one bundle fleet wrote"
        if (not isinstance(record, dict) or record.get("hostname") != hostname
                or not isinstance(record.get("files"), dict)):
            return f"{OUTPUT_RECORD} is for another host" if isinstance(record, dict) else f"{OUTPUT_RECORD} is damaged"
        listed = record["files"]
        for dirpath, dirs, names in os.walk(path):
            for name in dirs + names:
                entry = Path(dirpath) / name
                rel = entry.relative_to(path).as_posix()
                if entry.is_symlink():
                    return f"{rel} is a symbolic link"
                if name in names and rel != OUTPUT_RECORD:
                    if rel not in listed:
                        return f"{rel} was not written by it"
                    if not entry.is_file() or _sha256(entry) != listed[rel]:
                        return f"{rel} was changed since"
        missing = [rel for rel in listed if not (path / rel).is_file()]
        return f"{missing[0]} was removed since" if missing else None
    except OSError as e:
        return f"it cannot be read: {e.strerror}"
