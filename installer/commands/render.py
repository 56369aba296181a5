"""`edge-installer render PLAN [--root DIR]`: the files the plan needs.

With --root, write them under DIR (atomically, with modes and backups; files that would
merge with ours are moved aside into the backup set). Without it, show them and report what
on this box would conflict, writing nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from installer.commands import check_root, load_valid_plan
from installer.existing import find_conflicts, move_aside_paths
from installer.render import Target, netplan_backend, render
from installer.writer import write_files


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="render a plan into netplan/NetworkManager files and drop-ins",
                       description="Render a plan. With --root DIR, write the files under DIR; without it, "
                                   "print them (secrets masked) and list conflicting configuration.")
    p.add_argument("plan", metavar="PLAN", help="the plan file (YAML)")
    p.add_argument("--root", metavar="DIR", help="write under DIR instead of showing the files")
    add_target_arguments(p)
    p.set_defaults(run=run)


def add_target_arguments(p: argparse.ArgumentParser) -> None:
    """Options that override what is detected about the box (for staging another box's files)."""
    p.add_argument("--netplan-version", metavar="X.Y", type=_version,
                   help="render for this netplan version (default: the box's, else 0.106 as on Debian 12)")
    p.add_argument("--networkmanager", action=argparse.BooleanOptionalAction, default=None,
                   help="NetworkManager is (or is not) the stack in charge (default: detected)")
    p.add_argument("--cloud-init", action=argparse.BooleanOptionalAction, default=None,
                   help="cloud-init is (or is not) installed (default: detected under the root)")


def _version(text: str) -> tuple[int, ...]:
    try:
        parts = tuple(int(x) for x in text.split("."))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version such as 0.106") from None
    if len(parts) < 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version such as 0.106")
    return parts


def detect_target(root: Path, args: argparse.Namespace) -> Target:
    """The Target for the box under root, with the command line's overrides."""
    from installer.discover import detect_stack

    stack = detect_stack(root)
    # Unknown or absent netplan: render for 0.106 (Debian 12), whose syntax later versions accept.
    known = stack.netplan_version if stack.netplan_version and stack.netplan_version > (0,) else None
    version = args.netplan_version or known or Target().netplan_version
    nm = args.networkmanager if args.networkmanager is not None else stack.in_charge == "networkmanager"
    ci = args.cloud_init if args.cloud_init is not None else stack.cloud_init_installed
    return Target(netplan_version=tuple(version), networkmanager=nm, cloud_init=ci)


def describe_target(plan, target: Target) -> str:
    """One line: what the files were rendered for."""
    v = ".".join(str(x) for x in target.netplan_version)
    if plan.renderer == "networkmanager":
        stack = "NetworkManager keyfiles"
    else:
        stack = f"netplan {v}, {netplan_backend(plan, target)} backend"
    return f"{stack}; cloud-init {'installed' if target.cloud_init else 'not installed'}"


def run(args: argparse.Namespace) -> int:
    plan = load_valid_plan(args.plan)
    root = Path(args.root) if args.root else Path("/")
    check_root(args.root)
    target = detect_target(root, args)
    files = render(plan, target)
    conflicts = find_conflicts(root, plan, files)
    print(f"{args.plan}: {plan.topology} topology, rendered for {describe_target(plan, target)}")
    if not args.root:
        # Shown, not written: secrets masked by rendering the redacted plan.
        for f in render(plan.redacted(), target):
            print(f"\n--- {f.path} (mode {f.mode:04o}) {f.purpose}")
            print(f.text, end="" if f.text.endswith("\n") else "\n")
        _report_conflicts(conflicts, written=False)
        print("\nNothing written. Add --root DIR to write these files under DIR.")
        return 0
    result = write_files(root, files, move_aside_paths(conflicts))
    shown = str(root)
    print(f"\nUnder {shown}:")
    for f in files:
        state = "unchanged" if f.path in result.unchanged else (
            "replaced" if f.path in result.backed_up else "written")
        print(f"  {f.mode:04o}  {f.path}  ({state}: {f.purpose})")
    if result.backup_dir:
        print(f"Backups of what was replaced or moved: {result.backup_dir} (under {shown})")
    _report_conflicts(conflicts, written=True)
    return 0


def _report_conflicts(conflicts, *, written: bool) -> None:
    moves = [c for c in conflicts if c.action == "move-aside"]
    manual = [c for c in conflicts if c.action != "move-aside"]
    if moves:
        print("\nMoved aside (kept in the backup set):" if written else
              "\nExisting configuration that would change the result (writing moves it aside):")
        for c in moves:
            print(f"  {c.path}: {c.reason}")
    if manual:
        print("\nTo change by hand:")
        for c in manual:
            print(f"  {c.path}: {c.reason}")
