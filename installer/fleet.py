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
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from installer.plan import SECRET_FIELDS, Plan
from installer.render import RenderedFile, Target, render
from installer.render import dropins
from installer.render import netplan as netplan_renderer
from installer.setfield import SetError, apply_sets, check_key

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
    """One box of the fleet: the CSV line it came from and its validated plan."""

    line: int
    plan: Plan

    @property
    def hostname(self) -> str:
        """The box's host name, which also names its output directory."""
        assert self.plan.hostname is not None
        return self.plan.hostname


def read_devices(text: str, base: Plan, *, missing_secrets: list[str] | tuple[str, ...] = (),
                 source: str = "devices.csv", ctx=None) -> list[Device]:
    """Every row of devices.csv applied to the bundle's plan and validated; or FleetError.

    `missing_secrets` are the secret fields the bundle could not supply: each needs a column.
    """
    from installer.validate import validate

    first = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first and "," not in first else ","  # spreadsheets in many locales
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise FleetError([f"{source}: is empty; the first line names the fields, e.g. hostname,machine_network.address"]) from None
    except csv.Error as e:
        raise FleetError([f"{source} line 1: {e}"]) from None
    problems = _header_problems(header, base, missing_secrets, source)
    if problems:
        raise FleetError(problems)

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
            sets = [f"{k}={v if k in SECRET_FIELDS else v.strip()}" for k, v in zip(header, row)]
            try:
                plan = apply_sets(base, sets, ctx)
            except SetError as e:
                errors += [f"{source} line {line}: {err}" for err in e.errors]
                continue
            row_errors = [str(err) for err in validate(plan, ctx)]
            if not plan.hostname:
                row_errors.append("hostname: required: each box needs its own host name (it names its directory)")
            else:
                key = plan.hostname.lower()
                if key in hosts:
                    row_errors.append(f"hostname: {plan.hostname} is already line {hosts[key]}'s; each box needs its own")
                hosts.setdefault(key, line)
            if plan.uplink is not None and plan.uplink.ipv4 == "static" and plan.uplink.address:
                ip = plan.uplink.address.split("/")[0]
                if ip in uplinks:
                    row_errors.append(f"uplink.address: {ip} is already line {uplinks[ip]}'s; each box needs its own")
                uplinks.setdefault(ip, line)
            if row_errors:
                errors += [f"{source} line {line}: {e}" for e in row_errors]
            else:
                devices.append(Device(line, plan))
    except csv.Error as e:
        errors.append(f"{source} line {reader.line_num}: {e}")
    if errors:
        raise FleetError(errors)
    if not devices:
        raise FleetError([f"{source}: has a header but no boxes; add one line per box"])
    return devices


def _header_problems(header: list[str], base: Plan, missing_secrets, source: str) -> list[str]:
    problems = []
    if "hostname" not in header:
        problems.append(f"{source} line 1: needs a hostname column: each box needs its own host name")
    seen = set()
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

class _SeedDumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # File contents as literal blocks, readable in the seed (PyYAML falls back to quoting
    # wherever a block cannot hold the text exactly). YAML reads NEL and the Unicode line
    # separators as line breaks and PyYAML writes them raw: those go double-quoted, escaped.
    odd = any(ch in "\x85\u2028\u2029" or (unicodedata.category(ch)[0] == "C" and ch != "\n") for ch in value)
    style = '"' if odd else "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_SeedDumper.add_representer(str, _represent_str)


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_SeedDumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=1000)


def seed_network(plan: Plan, target: Target) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The netplan renderer's network, as (network-config, extra netplan file or None).

    cloud-init writes network-config back out with its keys sorted, so `bridges:` comes
    before the `ethernets:` it bridges; netplan 0.106 then parses the file twice and takes
    the second sight of each WiFi access point for a duplicate ("Duplicate access point
    SSID", LP: #1809994, fixed in later netplan). Where a bridge and a WiFi uplink meet
    (wireless-bridge), network-config keeps the uplink and the machine ports' bridge goes
    into its own netplan file, which user-data writes: together, the same network.
    """
    network = yaml.safe_load(netplan_renderer.render(plan, target)[0].content)["network"]
    if not ("bridges" in network and "wifis" in network):
        return network, None
    machines = {"version": 2, "renderer": network["renderer"], "ethernets": network.pop("ethernets"),
                "bridges": network.pop("bridges")}
    return network, machines


def network_config(plan: Plan, target: Target) -> RenderedFile:
    """network-config (version 2): the network the netplan renderer produces, unwrapped."""
    network, _ = seed_network(plan, target)
    # The secrets (WiFi passphrase, APN password) stay with the uplink, in network-config.
    secret = netplan_renderer.render(plan, target)[0].secret
    text = _SEED_HEADER.format(host=plan.hostname) + _dump(network)
    return RenderedFile("network-config", text.encode("utf-8"), 0o600 if secret else 0o644,
                        "cloud-init network configuration (version 2)", secret=secret)


def user_data(plan: Plan, target: Target) -> RenderedFile:
    """user-data (#cloud-config): the host name, and the drop-ins as write_files."""
    files = [f for f in dropins.render(plan, target) if f.path in SEED_DROPINS]
    _, machines = seed_network(plan, target)
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
    return RenderedFile("user-data", text.encode("utf-8"), 0o600 if secret else 0o644,
                        "cloud-init user data (#cloud-config)", secret=secret)


def seed_files(plan: Plan, target: Target) -> list[RenderedFile]:
    """The NoCloud seed of one box: meta-data, user-data, network-config."""
    net, user = network_config(plan, target), user_data(plan, target)
    # The instance id changes with the configuration, so cloud-init applies a changed seed
    # again; it is computed without the secrets, since meta-data is readable by all.
    masked = plan.redacted()
    digest = hashlib.sha256(network_config(masked, target).content + user_data(masked, target).content).hexdigest()
    meta = _dump({"instance-id": f"{plan.hostname}-{digest[:12]}", "local-hostname": plan.hostname})
    return [RenderedFile("meta-data", meta.encode("utf-8"), 0o644, "cloud-init instance metadata"), user, net]


# ---------------------------------------------------------------------------------------
# Writing.

def write_fleet(out: Path, devices: list[Device], target: Target) -> list[Path]:
    """Write OUT/<hostname>/{root,seed} per box; a box's previous output is replaced whole."""
    from installer.writer import atomic_write, box_path

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FleetError([f"{out}: exists and is not a directory; give --out a directory (it is created if missing)"])
    for d in devices:  # refuse before writing anything
        final = out / d.hostname
        foreign = _not_ours(final, d.hostname)
        if foreign:
            raise FleetError([f"{final}: exists and is not the output of a previous fleet run for {d.hostname} "
                              f"({foreign}); nothing was written: move it away or choose another --out"])
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for d in devices:
        tmp = Path(tempfile.mkdtemp(prefix=f".{d.hostname}.", suffix=".partial", dir=out))
        try:
            root, seed = tmp / "root", tmp / "seed"
            root.mkdir()
            seed.mkdir()
            files = render(d.plan, target)
            for f in files:
                atomic_write(box_path(root, f.path), f.content, f.mode)
            seeds = seed_files(d.plan, target)
            for f in seeds:
                atomic_write(seed / f.path, f.content, f.mode)
            record = {"hostname": d.hostname, "files": _digests(tmp)}
            atomic_write(tmp / OUTPUT_RECORD, json.dumps(record, indent=1, sort_keys=True).encode(), 0o644)
            if not any(f.secret for f in files + seeds):
                os.chmod(tmp, 0o755)  # mkdtemp's 0700 stays where a secret is inside
            final = out / d.hostname
            old = None
            if final.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{d.hostname}.", suffix=".old", dir=out))
                os.rename(final, old / "box")
            os.rename(tmp, final)
            if old is not None:
                shutil.rmtree(old)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        written.append(final)
    return written


def _digests(folder: Path) -> dict[str, str]:
    """Every file under folder (but the record), by its path relative to folder: its SHA-256."""
    out = {}
    for dirpath, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if rel != OUTPUT_RECORD:
                out[rel] = _sha256(path)
    return out


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()  # streamed: a planted large file costs no memory


def _not_ours(path: Path, hostname: str) -> str | None:
    """None when path is absent, an empty directory, or exactly what a previous run wrote for
    this host (its record, every file listed with its digest, nothing else, no links); else the
    first thing that is not ours, in words."""
    from installer.yamlfile import SmallFileError, read_small

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
        if not isinstance(record, dict) or record.get("hostname") != hostname or not isinstance(record.get("files"), dict):
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