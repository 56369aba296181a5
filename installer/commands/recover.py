"""`edge-installer recover [--root DIR] [--boot]`: finish or discard a write run that was
interrupted, and undo a change that was applied and never confirmed.

Run at boot by edge-installer-recover.service (`--boot`), before the network starts, so a
power cut in the middle of a write leaves the box with the old files or the new ones, never
a mix, and a box whose new configuration cut the technician off comes back with the old one
after a power cycle. Run by hand on a running box, it also applies the restored files again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from installer.commands import check_root
from installer.writing.writer import WriteError, recover


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("recover", help="finish or undo a configuration write that was interrupted",
                       description="Finish or undo a write run that was interrupted (power cut, kill): "
                                   "before its commit point the old files stay, after it the new files "
                                   "are completed, an interrupted rollback is finished, and a change "
                                   "applied but never confirmed is undone (its files put back and, "
                                   "without --boot, applied again). Only files under the root and "
                                   "only the stack commands apply runs are ever touched or run. "
                                   "Prints what it did; exit 0, or 1 with one line naming the file "
                                   "that blocks it and why.")
    p.add_argument("--root", metavar="DIR", default="/", help="the box's files are under DIR (default /)")
    p.add_argument("--boot", action="store_true",
                   help="at boot, before the network starts: put files back only, run no stack command")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from installer.box.system import System
    from installer.writing.apply import undo_unconfirmed

    check_root(args.root)
    root = Path(args.root)
    done = []
    try:
        for line, ran in undo_unconfirmed(System(root), reapply=not args.boot):
            done += [line] + [r.describe() for r in ran]
        done += recover(root)
    except WriteError as e:
        # One line: the backup set, the file that blocks it and why (what was done is kept).
        for line in done:
            print(f"recovered: {line}")
        print(f"edge-installer: recover: {e}", file=sys.stderr)
        return 1
    for line in done:
        print(f"recovered: {line}")
    if not done:
        print("nothing to recover")
    return 0
