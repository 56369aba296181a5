"""An Ansible inventory for a fleet: `bundle fleet --ansible` writes it beside the box folders.

devices.csv may carry, besides the field paths of the plan, columns for the controller only:

- `ansible_host`: where the controller reaches the box now, before the change (default: the
  address the box will have, when its uplink is static);
- `ansible_user`, `ansible_port`: how to log in (default: Ansible's).

They are taken out of the CSV before the rows are read as plan fields, and go to the inventory
only. Each box gets, as host variables of OUT/inventory.yml:

    ansible_host                  the box's address now (the old path)
    edge_installer_new_host       the address the controller reaches it on after the change (the
                                  static uplink address, else ansible_host)
    edge_installer_hostname       its host name
    edge_installer_sets           its `--set KEY=VALUE` items (its row), applied to the bundle
    edge_installer_secret_files   {secret field: file}, for `apply --set-file`: a secret column's
                                  cell goes to OUT/ansible-secrets/<box>/<field> (mode 0600),
                                  never into the inventory or onto a command line
    edge_installer_plan_file      OUT/ansible-secrets/<box>/plan.yaml (0600): the box's plan, which
                                  `check --json` runs on the box after the change

and the group variables name the bundle, the signer's public key to trust on the box, and
where the rollout's results go. The playbook is packaging/ansible/rollout.yml (README: "Rolling
out with Ansible").
"""

from __future__ import annotations

import csv
import io
import ipaddress
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from installer.fleet.build import Device
    from installer.planning.plan import Plan

INVENTORY_FILE = "inventory.yml"
SECRETS_DIR = "ansible-secrets"
CONTROLLER_COLUMNS = ("ansible_host", "ansible_user", "ansible_port")
# The repository's (or source tree's) packaging/ansible: this file is installer/fleet/inventory.py.
ROLLOUT_DIR = Path(__file__).resolve().parents[2] / "packaging" / "ansible"


class InventoryError(Exception):
    """A controller column that cannot be used: one line per problem."""

    def __init__(self, lines: list[str]):
        self.lines = list(lines)
        super().__init__("\n".join(self.lines))


def split_controller_columns(text: str, source: str = "devices.csv") -> tuple[str, list[dict[str, str]]]:
    """(the CSV without the controller's columns, one {column: cell} per box row, in order).

    Without controller columns the text is returned unchanged. Rows that are empty are dropped
    from both, as `fleet.read_devices` skips them, so the i-th entry belongs to the i-th box.
    """
    first = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first and "," not in first else ","
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter, strict=True))
    except csv.Error:
        return text, []  # read_devices says what is wrong with it, naming the line
    if not rows:
        return text, []
    header = [h.strip() for h in rows[0]]
    picked = [i for i, h in enumerate(header) if h in CONTROLLER_COLUMNS]
    if not picked:
        return text, [{} for row in rows[1:] if any(c.strip() for c in row)]
    keep = [i for i in range(len(header)) if i not in picked]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow([rows[0][i] for i in keep])
    extras: list[dict[str, str]] = []
    problems: list[str] = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):  # read_devices refuses the row with its own line
            writer.writerow(row)
            extras.append({})
            continue
        values = {header[i]: row[i].strip() for i in picked if row[i].strip()}
        problems += _column_problems(values, n, source)
        extras.append(values)
        writer.writerow([row[i] for i in keep])
    if problems:
        raise InventoryError(problems)
    return out.getvalue(), extras


def _column_problems(values: dict[str, str], line: int, source: str) -> list[str]:
    problems = []
    host = values.get("ansible_host")
    if host is not None:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not all(part and len(part) <= 63 and part.replace("-", "").isalnum() for part in host.split(".")):
                problems.append(f"{source} line {line}: ansible_host: {host!r} is not an address or a host name; "
                                "give where the controller reaches the box now, e.g. 203.0.113.101")
    port = values.get("ansible_port")
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        problems.append(f"{source} line {line}: ansible_port: {port!r} is not a port; give 1 to 65535, e.g. 22")
    user = values.get("ansible_user")
    if user is not None and not all(c.isalnum() or c in "._-" for c in user):
        problems.append(f"{source} line {line}: ansible_user: {user!r}: use letters, digits, '.', '_' or '-'")
    return problems


def new_host(plan: Plan) -> str | None:
    """The address the controller reaches the box on after the change: its static uplink's."""
    uplink = getattr(plan, "uplink", None)
    if uplink is None or getattr(uplink, "ipv4", None) != "static" or not getattr(uplink, "address", None):
        return None
    return str(uplink.address).split("/", 1)[0]


def host_vars(device: Device, extra: dict[str, str], out: Path) -> dict[str, Any]:
    """One box's inventory variables (see the module docstring); secrets go to files."""
    from installer.planning.plan import SECRET_FIELDS
    from installer.writing.writer import atomic_write

    plain, secret_files = [], {}
    for item in device.sets:
        key, _, value = item.partition("=")
        key = key.strip()
        if key in SECRET_FIELDS:
            if value:
                path = out / SECRETS_DIR / device.hostname / key
                atomic_write(path, (value + "\n").encode("utf-8"), 0o600, dir_mode=0o700)
                secret_files[key] = str(path.resolve())
            continue
        plain.append(f"{key}={value}")
    after = new_host(device.plan)
    before = extra.get("ansible_host") or after
    entry: dict[str, Any] = {}
    if before:
        entry["ansible_host"] = before
    for key in ("ansible_user", "ansible_port"):
        if key in extra:
            entry[key] = int(extra[key]) if key == "ansible_port" else extra[key]
    entry["edge_installer_new_host"] = after or before or device.hostname
    entry["edge_installer_hostname"] = device.hostname
    entry["edge_installer_sets"] = plain
    if secret_files:
        entry["edge_installer_secret_files"] = secret_files
    # The box's own plan, for `check --plan` after the change (secrets included: mode 0600).
    from installer.planning import plan as planmod

    plan_file = out / SECRETS_DIR / device.hostname / "plan.yaml"
    atomic_write(plan_file, planmod.dumps(device.plan).encode("utf-8"), 0o600, dir_mode=0o700)
    entry["edge_installer_plan_file"] = str(plan_file.resolve())
    return entry


def write_inventory(out: Path, devices: Sequence[Device], extras: Sequence[dict[str, str]], *, bundle: Path,
                    signer_line: str | None, results: Path | None = None) -> Path:
    """OUT/inventory.yml for `devices` (from fleet.read_devices, in CSV order); its path."""
    from installer.writing.writer import atomic_write

    out = Path(out)
    hosts = {d.hostname: host_vars(d, extras[i] if i < len(extras) else {}, out) for i, d in enumerate(devices)}
    group: dict[str, Any] = {"edge_installer_bundle": str(Path(bundle).resolve()),
                             "edge_installer_results": str((results or out / "results").resolve())}
    if signer_line:
        group["edge_installer_trust_key_line"] = signer_line
    doc = {"all": {"vars": group, "children": {"edge_boxes": {"hosts": hosts}}}}
    text = ("# Written by edge-installer bundle fleet --ansible: one host per row of the devices CSV.\n"
            f"# Roll out: ansible-playbook -i {out / INVENTORY_FILE} {ROLLOUT_DIR / 'rollout.yml'}\n"
            + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=False))
    path = out / INVENTORY_FILE
    atomic_write(path, text.encode("utf-8"), 0o644)
    return path
