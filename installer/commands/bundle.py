"""`edge-installer bundle export|import|fleet`: carry one box's answers to the next boxes.

    bundle export PLAN -o FILE [--passphrase-file F | --no-secrets] [--report REPORT.json]
    bundle import FILE [--passphrase-file F] [-o PLAN]
    bundle fleet BUNDLE --devices devices.csv --out DIR [--passphrase-file F]

A refused bundle, plan or CSV exits 2 with one line per problem, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from installer import plan as planmod
from installer.commands import UsageError, load_valid_plan
from installer.commands.render import _version, add_target_arguments, describe_target, detect_target

MAX_PASSPHRASE_FILE = 4096
MAX_REPORT_BYTES = 4 << 20


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bundle", help="export a box's answers as one file, import it, or render a fleet from it",
                       description="Bundles carry a box's plan, rendered files, last report and (encrypted) "
                                   "secrets to the next boxes of a fleet.")
    actions = p.add_subparsers(dest="bundle_action", metavar="ACTION", parser_class=type(p))
    actions.required = True

    e = actions.add_parser("export", help="write the plan, its files and its report into one bundle file",
                           description="Write one bundle file (tar+gzip) with the plan, the files rendered for "
                                       "it, the last check report and a manifest of SHA-256 digests. Secrets are "
                                       "encrypted with the passphrase (scrypt + AES-GCM) or left out.")
    e.add_argument("plan", metavar="PLAN", help="the plan file (YAML)")
    e.add_argument("-o", "--output", required=True, metavar="FILE", help="the bundle to write (e.g. plant.bundle.tar.gz)")
    how = e.add_mutually_exclusive_group()
    how.add_argument("--passphrase-file", metavar="F", help="encrypt the secrets with the passphrase in F (first line)")
    how.add_argument("--no-secrets", action="store_true", help="leave the secrets out (each box then asks for them)")
    e.add_argument("--report", metavar="REPORT.json", help="the last `check --json` result, carried along")
    add_target_arguments(e)
    e.set_defaults(run=run_export)

    i = actions.add_parser("import", help="verify a bundle and write (or show) its plan",
                           description="Verify a bundle (format, checksums, member paths and sizes), decrypt its "
                                       "secrets, and write its plan with -o, or show what it holds.")
    i.add_argument("bundle", metavar="FILE", help="the bundle file")
    i.add_argument("--passphrase-file", metavar="F", help="the passphrase the secrets were encrypted with")
    i.add_argument("-o", "--output", metavar="PLAN", help="write the plan here (mode 0600)")
    i.set_defaults(run=run_import)

    f = actions.add_parser("fleet", help="render every box of devices.csv from a bundle, with cloud-init seeds",
                           description="For each row of devices.csv (a header of field paths: hostname and what "
                                       "differs per box), write DIR/<hostname>/root (the rendered tree) and "
                                       "DIR/<hostname>/seed (cloud-init NoCloud: meta-data, user-data, "
                                       "network-config).")
    f.add_argument("bundle", metavar="BUNDLE", help="the bundle file")
    f.add_argument("--devices", required=True, metavar="CSV", help="one line per box; the header names the fields")
    f.add_argument("--out", required=True, metavar="DIR", help="where the boxes' directories go")
    f.add_argument("--passphrase-file", metavar="F", help="the bundle's passphrase: the seeds then carry the secrets")
    # The boxes are not this machine: by default, render for the stack the bundle was made on.
    f.add_argument("--netplan-version", metavar="X.Y", type=_version,
                   help="render for this netplan version (default: the bundle's)")
    f.add_argument("--networkmanager", action=argparse.BooleanOptionalAction, default=None,
                   help="NetworkManager is (or is not) the boxes' stack in charge (default: the bundle's)")
    f.add_argument("--cloud-init", action=argparse.BooleanOptionalAction, default=None,
                   help="cloud-init is (or is not) installed on the boxes (default: the bundle's)")
    f.set_defaults(run=run_fleet)


def read_passphrase(path: str, *, for_export: bool = False) -> str:
    """The passphrase in a file: its first line, without the line break."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_PASSPHRASE_FILE + 1)
    except OSError as e:
        raise UsageError(f"--passphrase-file {path}: {e.strerror}") from None
    if len(data) > MAX_PASSPHRASE_FILE:
        raise UsageError(f"--passphrase-file {path}: is larger than {MAX_PASSPHRASE_FILE} bytes; it holds one line")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--passphrase-file {path}: is not UTF-8 text") from None
    passphrase = text.split("\n", 1)[0].removesuffix("\r")
    if not passphrase:
        raise UsageError(f"--passphrase-file {path}: its first line is empty; write the passphrase there")
    if for_export:
        from installer.bundle import MIN_PASSPHRASE

        if len(passphrase) < MIN_PASSPHRASE:
            raise UsageError(f"--passphrase-file {path}: the passphrase has {len(passphrase)} characters; use at "
                             f"least {MIN_PASSPHRASE} (it guards the secrets of every box of the fleet)")
    return passphrase


def _read_report(path: str) -> dict:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_REPORT_BYTES + 1)
    except OSError as e:
        raise UsageError(f"--report {path}: {e.strerror}") from None
    if len(data) > MAX_REPORT_BYTES:
        raise UsageError(f"--report {path}: is larger than {MAX_REPORT_BYTES} bytes; give `check --json` output")
    try:
        report = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UsageError(f"--report {path}: is not JSON; give the output of `edge-installer check --json`") from None
    if not isinstance(report, dict):
        raise UsageError(f"--report {path}: is not a check report (a JSON object from `check --json`)")
    return report


def run_export(args: argparse.Namespace) -> int:
    from installer.bundle import export_bundle, split_secrets

    plan = load_valid_plan(args.plan)
    secrets = list(split_secrets(plan)[1])
    if secrets and not (args.passphrase_file or args.no_secrets):
        raise UsageError(f"{args.plan}: holds {', '.join(secrets)}: give --passphrase-file F to encrypt them in the "
                         "bundle, or --no-secrets to leave them out")
    passphrase = read_passphrase(args.passphrase_file, for_export=True) if args.passphrase_file else None
    report = _read_report(args.report) if args.report else None
    target = detect_target(Path("/"), args)
    manifest = export_bundle(plan, args.output, None if args.no_secrets else passphrase, report=report, target=target)
    state = manifest["secrets"]["state"]
    print(f"{args.output}: bundle of {args.plan} ({plan.topology} topology), rendered for "
          f"{describe_target(plan, target)}")
    for m in manifest["members"]:
        print(f"  {m['size']:7d}  {m['path']}")
    if state == "encrypted":
        print(f"Secrets encrypted with the passphrase: {', '.join(manifest['secrets']['fields'])}")
    elif state == "omitted":
        print(f"Secrets left out: {', '.join(manifest['secrets']['fields'])} (each box asks for them)")
    return 0


def _load(args: argparse.Namespace):
    """The bundle named on the command line, verified, with its secrets when a passphrase is given."""
    from installer.bundle import BundleError, load_bundle

    passphrase = read_passphrase(args.passphrase_file) if args.passphrase_file else None
    try:
        return load_bundle(args.bundle, passphrase), passphrase
    except BundleError as e:
        raise UsageError(f"{args.bundle}: refused: {e}") from None


def run_import(args: argparse.Namespace) -> int:
    from installer.writer import atomic_write

    loaded, passphrase = _load(args)
    m = loaded.manifest
    plan = loaded.plan
    print(f"{args.bundle}: bundle format {m['format_version']}, created {m['created']} by edge-installer "
          f"{m['edge_installer_version']}; {plan.topology} topology, host {plan.hostname or '(none)'}")
    if loaded.report is not None:
        summary = loaded.report.get("summary")
        print(f"Check report: {json.dumps(summary) if isinstance(summary, dict) else 'included'}")
    if passphrase is not None and m["secrets"]["state"] != "encrypted":
        print(f"The bundle holds no encrypted secrets (state {m['secrets']['state']}); the passphrase was not needed")
    if loaded.missing_secrets:
        print(f"Missing secrets: {', '.join(loaded.missing_secrets)} "
              f"({'give --passphrase-file' if m['secrets']['state'] == 'encrypted' else 'left out at export'}; "
              "set them with --set or in the wizard)")
    print(f"Per box, set: {', '.join(loaded.per_box_fields())}")
    if args.output:
        atomic_write(Path(args.output), planmod.dumps(plan).encode("utf-8"), 0o600)
        print(f"Plan written to {args.output} (mode 0600)")
    else:
        print("\n" + planmod.dumps(plan.redacted()), end="")
    return 0


def run_fleet(args: argparse.Namespace) -> int:
    from installer.fleet import MAX_CSV_BYTES, FleetError, read_devices, write_fleet

    loaded, passphrase = _load(args)
    text = _read_csv(args.devices, MAX_CSV_BYTES)
    target = loaded.target
    target = dataclasses.replace(
        target,
        netplan_version=tuple(args.netplan_version) if args.netplan_version else target.netplan_version,
        networkmanager=target.networkmanager if args.networkmanager is None else args.networkmanager,
        cloud_init=target.cloud_init if args.cloud_init is None else args.cloud_init)
    try:
        devices = read_devices(text, loaded.plan, missing_secrets=loaded.missing_secrets, source=args.devices)
        written = write_fleet(Path(args.out), devices, target)
    except FleetError as e:
        raise UsageError(e.lines) from None
    print(f"{len(written)} box(es) from {args.bundle}, rendered for {describe_target(loaded.plan, target)}:")
    for path in written:
        print(f"  {path}/root (the tree to install)  {path}/seed (cloud-init NoCloud: meta-data, user-data, "
              "network-config)")
    print("Use one of the two per box: the tree, or the seed through cloud-init.")
    return 0


def _read_csv(path: str, cap: int) -> str:
    try:
        with open(path, "rb") as fh:
            data = fh.read(cap + 1)
    except OSError as e:
        raise UsageError(f"--devices {path}: {e.strerror}") from None
    if len(data) > cap:
        raise UsageError(f"--devices {path}: is larger than {cap} bytes; split the fleet into several files")
    try:
        return data.decode("utf-8-sig")  # spreadsheets write a byte-order mark
    except UnicodeDecodeError as e:
        raise UsageError(f"--devices {path}: is not UTF-8 text (byte {e.start}); save it as CSV UTF-8") from None

