"""`edge-installer bundle export|import|fleet`: carry one box's answers to the next boxes.

    bundle keygen -o KEY                  (KEY: Ed25519 private key, KEY.pub: its public key)
    bundle export PLAN -o FILE [--passphrase-file F | --no-secrets] [--report REPORT.json] [--sign-key KEY]
    bundle import FILE [--passphrase-file F] [-o PLAN] [TRUST]
    bundle fleet BUNDLE --devices devices.csv --out DIR [--passphrase-file F] [--ansible] [TRUST]
    bundle fleet-report RESULTS_DIR [-o DIR]   (a rollout's results: fleet-report.json and .html)

TRUST: [--root DIR] [--trust-key KEY.pub ...] [--allow-unsigned]. A bundle is used when signed
by a key in DIR/etc/edge-installer/trusted-keys or a --trust-key; otherwise only with
--allow-unsigned, which prints a WARNING. A bad signature is always refused.

A refused bundle, plan or CSV exits 2 with one line per problem, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from installer.commands import UsageError, load_valid_plan
from installer.commands.render import _version, add_target_arguments, describe_target, detect_target
from installer.planning import plan as planmod
from installer.text import ascii_safe

if TYPE_CHECKING:
    from installer.fleet.bundle import LoadedBundle

MAX_PASSPHRASE_FILE = 4096
SHOWN = 200  # characters of text from a bundle or a box shown on one line
MAX_REPORT_BYTES = 4 << 20


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    e.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the bundle to write (e.g. plant.bundle.tar.gz)")
    how = e.add_mutually_exclusive_group()
    how.add_argument("--passphrase-file", metavar="F", help="encrypt the secrets with the passphrase in F (first line)")
    how.add_argument("--no-secrets", action="store_true", help="leave the secrets out (each box then asks for them)")
    e.add_argument("--report", metavar="REPORT.json", help="the last `check --json` result, carried along")
    e.add_argument("--sign-key", metavar="KEY", help="sign the bundle with this private key (from `bundle keygen`)")
    add_target_arguments(e)
    e.set_defaults(run=run_export)

    k = actions.add_parser("keygen", help="create an Ed25519 key pair to sign bundles with",
                           description="Write a new private key to KEY (PEM, mode 0600; never overwritten) and "
                                       "its public key to KEY.pub, and print the public key and its fingerprint. "
                                       "Add KEY.pub's line to /etc/edge-installer/trusted-keys on the boxes.")
    k.add_argument("-o", "--output", required=True, metavar="KEY", help="the private key file to create")
    k.set_defaults(run=run_keygen)

    i = actions.add_parser("import", help="verify a bundle and write (or show) its plan",
                           description="Verify a bundle (format, checksums, member paths and sizes), decrypt its "
                                       "secrets, and write its plan with -o, or show what it holds.")
    i.add_argument("bundle", metavar="FILE", help="the bundle file")
    i.add_argument("--passphrase-file", metavar="F", help="the passphrase the secrets were encrypted with")
    i.add_argument("-o", "--output", metavar="PLAN", help="write the plan here (mode 0600)")
    add_trust_arguments(i)
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
    f.add_argument("--ansible", action="store_true",
                   help="also write DIR/inventory.yml for the Ansible rollout (packaging/ansible/rollout.yml); "
                        "CSV columns ansible_host, ansible_user, ansible_port go to the inventory only")
    f.add_argument("--jobs", metavar="N", type=_jobs, default=None,
                   help="processes that build the boxes (1-4; default: one per CPU, at most 4, from 64 boxes on)")
    add_trust_arguments(f)
    f.set_defaults(run=run_fleet)

    r = actions.add_parser("fleet-report", help="one report (JSON and HTML) of a rollout's results",
                           description="Read a rollout's results directory (RESULTS/<box>/outcome.json and "
                                       "check.json, as packaging/ansible/rollout.yml leaves them) and write "
                                       "fleet-report.json and a self-contained fleet-report.html: per box its "
                                       "outcome, pass / warn / fail and findings; across the fleet the causes "
                                       "several boxes share. Exit 0 all pass, 1 warnings only, 2 any box failed.")
    r.add_argument("results", metavar="RESULTS_DIR", help="the rollout's results directory")
    r.add_argument("-o", "--out", metavar="DIR", help="where the two files go (default: RESULTS_DIR)")
    r.set_defaults(run=run_fleet_report)


def _jobs(text: str) -> int:
    """--jobs: a whole number of processes, 1 to installer.fleet.build.MAX_JOBS."""
    from installer.fleet.build import MAX_JOBS

    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"give a whole number from 1 to {MAX_JOBS}, not {text!r}")
    return int(text)


def add_trust_arguments(p: argparse.ArgumentParser, *, root: bool = True) -> None:
    """--trust-key, --allow-unsigned (and --root, where the command has none of its own)."""
    if root:
        p.add_argument("--root", metavar="DIR",
                       help="read the trusted keys from DIR/etc/edge-installer/trusted-keys (default: /)")
    p.add_argument("--trust-key", dest="trust_keys", action="append", default=[], metavar="KEY.pub",
                   help="also trust the public key(s) in this file (repeatable)")
    p.add_argument("--allow-unsigned", action="store_true",
                   help="use a bundle that is unsigned or signed by an untrusted key (prints a WARNING)")


def check_trust(loaded: LoadedBundle, source: str, root: str | None, trust_keys: list[str],
                allow_unsigned: bool) -> None:
    """Refuse (UsageError) a bundle not signed by a trusted key, unless allowed; say who signed it."""
    import sys

    from installer.fleet.bundle import BundleError, trust_verdict
    from installer.fleet.keys import TRUST_FILE, KeyFileError, read_trusted_keys

    try:
        line, warning = trust_verdict(loaded, read_trusted_keys(root, trust_keys), allow_unsigned,
                                      str(Path(root or "/") / TRUST_FILE))
    except KeyFileError as e:
        raise UsageError(str(e)) from None
    except BundleError as e:
        raise UsageError(f"{source}: refused: {e}") from None
    print(line, file=sys.stderr if warning else sys.stdout, flush=True)


def refuse_same_file(output: str, flag: str, inputs: dict[str, str | None]) -> None:
    """Refuse, before writing anything, an output that is one of the inputs (also via links or ..)."""
    import os

    out = Path(output)
    for what, path in inputs.items():
        if not path:
            continue
        same = out.resolve() == Path(path).resolve()
        if not same and out.exists() and Path(path).exists():
            try:
                same = os.path.samefile(out, path)
            except OSError:
                same = False
        if same:
            raise UsageError(f"{flag} {output}: is the same file as {what} {path}; write to another file")


def read_passphrase(path: str, *, for_export: bool = False) -> str:
    """The passphrase in a file: its first line, without the line break."""
    from installer.planning.yamlfile import SmallFileError, read_small

    try:
        data = read_small(path, MAX_PASSPHRASE_FILE, f"--passphrase-file {path}", "it holds one line")
    except SmallFileError as e:
        raise UsageError(str(e)) from None
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
        from installer.fleet.bundle import MIN_PASSPHRASE

        if len(passphrase) < MIN_PASSPHRASE:
            raise UsageError(f"--passphrase-file {path}: the passphrase has {len(passphrase)} characters; use at "
                             f"least {MIN_PASSPHRASE} (it guards the secrets of every box of the fleet)")
    return passphrase


def _read_report(path: str) -> dict[str, Any]:
    from installer.planning.yamlfile import SmallFileError, read_small

    try:  # a regular file only (a FIFO would wait forever), bounded
        data = read_small(path, MAX_REPORT_BYTES, f"--report {path}", "give `check --json` output")
    except SmallFileError as e:
        raise UsageError(str(e)) from None
    try:
        report = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UsageError(f"--report {path}: is not JSON; give the output of `edge-installer check --json`") from None
    if not isinstance(report, dict):
        raise UsageError(f"--report {path}: is not a check report (a JSON object from `check --json`)")
    return report


def run_keygen(args: argparse.Namespace) -> int:
    from installer.fleet.keys import KeyFileError, fingerprint, generate_signing_key, public_key_line

    try:
        raw = generate_signing_key(args.output)
    except KeyFileError as e:
        raise UsageError(str(e)) from None
    print(f"Private key written to {args.output} (mode 0600): keep it off the boxes, never share it")
    print(f"Public key written to {args.output}.pub:")
    print(f"  {public_key_line(raw)}")
    print(f"Fingerprint: {fingerprint(raw)}")
    print("Trust it on a box: add that line to /etc/edge-installer/trusted-keys (or give --trust-key "
          f"{args.output}.pub)")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from installer.fleet.bundle import export_bundle, split_secrets
    from installer.fleet.keys import KeyFileError, fingerprint, load_signing_key, raw_public_key

    refuse_same_file(args.output, "-o", {"PLAN": args.plan, "--report": args.report,
                                         "--passphrase-file": args.passphrase_file, "--sign-key": args.sign_key})
    plan = load_valid_plan(args.plan)
    secrets = list(split_secrets(plan)[1])
    if secrets and not (args.passphrase_file or args.no_secrets):
        raise UsageError(f"{args.plan}: holds {', '.join(secrets)}: give --passphrase-file F to encrypt them in the "
                         "bundle, or --no-secrets to leave them out")
    passphrase = read_passphrase(args.passphrase_file, for_export=True) if args.passphrase_file else None
    report = _read_report(args.report) if args.report else None
    try:
        key = load_signing_key(args.sign_key) if args.sign_key else None
    except KeyFileError as e:
        raise UsageError(str(e)) from None
    target = detect_target(Path("/"), args)
    manifest = export_bundle(plan, args.output, None if args.no_secrets else passphrase, report=report, target=target,
                             sign_key=key)
    state = manifest["secrets"]["state"]
    print(f"{args.output}: bundle of {args.plan} ({plan.topology} topology), rendered for "
          f"{describe_target(plan, target)}")
    for m in manifest["members"]:
        print(f"  {m['size']:7d}  {m['path']}")
    if state == "encrypted":
        print(f"Secrets encrypted with the passphrase: {', '.join(manifest['secrets']['fields'])}")
    elif state == "omitted":
        print(f"Secrets left out: {', '.join(manifest['secrets']['fields'])} (each box asks for them)")
    if key is not None:
        print(f"Signed by {fingerprint(raw_public_key(key))}")
    else:
        print("Not signed: boxes refuse it unless given --allow-unsigned (sign with --sign-key KEY)")
    return 0


def _load(args: argparse.Namespace) -> tuple[LoadedBundle, str | None]:
    """The bundle named on the command line, verified, with its secrets when a passphrase is given."""
    from installer.fleet.bundle import BundleError, load_bundle

    passphrase = read_passphrase(args.passphrase_file) if args.passphrase_file else None
    try:
        loaded = load_bundle(args.bundle, passphrase)
    except BundleError as e:
        raise UsageError(f"{args.bundle}: refused: {e}") from None
    check_trust(loaded, args.bundle, args.root, args.trust_keys, args.allow_unsigned)
    return loaded, passphrase


def run_import(args: argparse.Namespace) -> int:
    from installer.writing.writer import atomic_write

    if args.output:
        refuse_same_file(args.output, "-o", {"the bundle": args.bundle, "--passphrase-file": args.passphrase_file})
    loaded, passphrase = _load(args)
    m = loaded.manifest
    plan = loaded.plan
    # The manifest's text is the bundle's, not ours: shown escaped, never obeyed by the terminal.
    print(f"{args.bundle}: bundle format {m['format_version']}, created {ascii_safe(m['created'], SHOWN)} by "
          f"edge-installer {ascii_safe(m['edge_installer_version'], SHOWN)}; {plan.topology} topology, "
          f"host {ascii_safe(plan.hostname or '(none)', SHOWN)}")
    if loaded.report is not None:
        summary = loaded.report.get("summary")
        print(f"Check report: {ascii_safe(json.dumps(summary), SHOWN) if isinstance(summary, dict) else 'included'}")
    if passphrase is not None and m["secrets"]["state"] != "encrypted":
        print(f"The bundle holds no encrypted secrets (state {m['secrets']['state']}); the passphrase was not needed")
    if loaded.missing_secrets:
        print(f"Missing secrets: {', '.join(loaded.missing_secrets)} "
              f"({'give --passphrase-file' if m['secrets']['state'] == 'encrypted' else 'left out at export'}; "
              "give them to apply with --set-file KEY=FILE, or --set KEY to be asked, or in the wizard)")
    print(f"Per box, set: {', '.join(loaded.per_box_fields())}")
    if args.output:
        atomic_write(Path(args.output), planmod.dumps(plan).encode("utf-8"), 0o600)
        print(f"Plan written to {args.output} (mode 0600)")
    else:
        print("\n" + planmod.dumps(plan.redacted()), end="")
    return 0


def run_fleet(args: argparse.Namespace) -> int:
    from installer.fleet.build import MAX_CSV_BYTES, FleetError, read_devices, write_fleet

    loaded, _ = _load(args)
    text = _read_csv(args.devices, MAX_CSV_BYTES)
    target = loaded.target
    target = dataclasses.replace(
        target,
        netplan_version=tuple(args.netplan_version) if args.netplan_version else target.netplan_version,
        networkmanager=target.networkmanager if args.networkmanager is None else args.networkmanager,
        cloud_init=target.cloud_init if args.cloud_init is None else args.cloud_init)
    extras: list[dict[str, str]] = []
    if args.ansible:
        from installer.fleet.inventory import InventoryError, split_controller_columns

        try:
            text, extras = split_controller_columns(text, args.devices)
        except InventoryError as e:
            raise UsageError(e.lines) from None
    try:
        devices = read_devices(text, loaded.plan, missing_secrets=loaded.missing_secrets, source=args.devices)
        written = write_fleet(Path(args.out), devices, target, jobs=args.jobs)
    except FleetError as e:
        raise UsageError(e.lines) from None
    if args.ansible:
        from installer.fleet.inventory import ROLLOUT_DIR, write_inventory
        from installer.fleet.keys import public_key_line

        inventory = write_inventory(Path(args.out), devices, extras, bundle=Path(args.bundle),
                                    signer_line=public_key_line(loaded.signer) if loaded.signer else None)
        print(f"Ansible inventory: {inventory} ({len(devices)} host(s)); roll out with\n"
              f"  ansible-playbook -i {inventory} {ROLLOUT_DIR / 'rollout.yml'}")
    print(f"{len(written)} box(es) from {args.bundle}, rendered for {describe_target(loaded.plan, target)}:")
    for path in written:
        print(f"  {path}/root (the tree to install)  {path}/seed (cloud-init NoCloud: meta-data, user-data, "
              "network-config)")
    print("Use one of the two per box: the tree, or the seed through cloud-init.")
    return 0


def _read_csv(path: str, cap: int) -> str:
    from installer.planning.yamlfile import SmallFileError, read_small

    try:
        data = read_small(path, cap, f"--devices {path}", "split the fleet into several files")
    except SmallFileError as e:
        raise UsageError(str(e)) from None
    try:
        return data.decode("utf-8-sig")  # spreadsheets write a byte-order mark
    except UnicodeDecodeError as e:
        raise UsageError(f"--devices {path}: is not UTF-8 text (byte {e.start}); save it as CSV UTF-8") from None


def run_fleet_report(args: argparse.Namespace) -> int:
    from installer.fleet import report as fleetreport

    try:
        report = fleetreport.read_results(args.results)
    except fleetreport.ReportError as e:
        raise UsageError(str(e)) from None
    j, h = fleetreport.write(report, args.out or args.results)
    s = report["summary"]
    print(f"{s['boxes']} box(es): {s['pass']} pass, {s['warn']} warn, {s['fail']} fail"
          + "".join(f"; {k} {v}" for k, v in s["outcomes"].items()))
    for g in report["shared"]:
        print(f"  shared by {g['count']} boxes: {g['status'].upper()} {g['cause']}: "
              f"{ascii_safe(g['title'], SHOWN)}")
    print(f"Fleet report: {j} and {h}")
    return fleetreport.exit_code(report)
