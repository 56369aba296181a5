"""`edge-installer render PLAN [--root DIR]`: the files the plan needs.

With --root, write them under DIR (atomically, with modes and backups; files that would
merge with ours are moved aside into the backup set). Without it, show them and report what
on this box would conflict, writing nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from installer.commands import check_root, load_valid_plan
from installer.render import Target, dns_by_networkmanager, netplan_backend, render
from installer.writing.existing import find_conflicts, move_aside_paths
from installer.writing.writer import write_files

if TYPE_CHECKING:
    from installer.planning.plan import Plan
    from installer.writing.existing import Conflict


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    from installer.box.stack import detect_stack
    from installer.render import target_for

    return target_for(detect_stack(root), netplan_version=getattr(args, "netplan_version", None),
                      networkmanager=getattr(args, "networkmanager", None),
                      cloud_init=getattr(args, "cloud_init", None))


def describe_target(plan: Plan, target: Target) -> str:
    """One line: what the files were rendered for."""
    v = ".".join(str(x) for x in target.netplan_version)
    if plan.renderer == "networkmanager":
        stack = "NetworkManager keyfiles"
    else:
        stack = f"netplan {v}, {netplan_backend(plan, target)} backend"
    dns = ("systemd-resolved" if target.resolved else
           "NetworkManager's resolvers" if dns_by_networkmanager(plan, target) else "/etc/resolv.conf")
    ntp = {"none": "no time service"}.get(target.time_daemon, target.time_daemon)
    cloud_init = "installed" if target.cloud_init else "not installed"
    return f"{stack}; DNS through {dns}; NTP through {ntp}; cloud-init {cloud_init}"


def run(args: argparse.Namespace) -> int:
    root = Path(args.root) if args.root else Path("/")
    check_root(args.root)
    target = detect_target(root, args)
    from installer.planning.validate import default_context

    plan = load_valid_plan(args.plan, default_context(target=target))
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


def _report_conflicts(conflicts: list[Conflict], *, written: bool) -> None:
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
