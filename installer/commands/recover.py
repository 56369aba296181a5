"""`edge-installer recover [--root DIR]`: finish or discard a write run that was interrupted.

Run at boot by edge-installer-recover.service, before the network starts, so a power cut in
the middle of a write leaves the box with the old files or the new ones, never a mix.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from installer.commands import UsageError
from installer.writer import recover


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recover", help="finish or undo a configuration write that was interrupted",
                       description="Finish or undo a write run that was interrupted (power cut, kill): "
                                   "before its commit point the old files stay, after it the new files "
                                   "are completed, an interrupted rollback is finished. Prints what it "
                                   "did; exit 0.")
    p.add_argument("--root", metavar="DIR", default="/", help="the box's files are under DIR (default /)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if not root.is_dir():
        raise UsageError(f"edge-installer recover: --root {args.root}: not a directory")
    done = recover(root)
    for line in done:
        print(f"recovered: {line}")
    if not done:
        print("nothing to recover")
    return 0
