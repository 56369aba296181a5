"""`edge-installer confirm [--root DIR] [--wait S]`: keep a change that `apply` made and waits
to have confirmed, from another session: a controller (Ansible, a technician's second SSH
session) that reached the box again over its new path runs it there, so a box the change cut
off is never confirmed and reverts by itself.

It asks; the waiting `apply` answers: it records the confirmation and ends (exit 0), and this
command waits (up to --wait seconds) to see the change recorded as kept. Exit 1, with one line,
when nothing waits for a confirmation or the waiting process did not take it in time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from installer.commands import check_root


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("confirm", help="keep a change that `apply` waits to have confirmed",
                       description="Keep the change an `apply` made and waits to have confirmed (it was "
                                   "started with --await-confirm, or asks at a terminal): run from another "
                                   "session, e.g. by a controller that reached the box over its new path. "
                                   "Exit 0 once the change is recorded as kept; 1 when nothing waits or the "
                                   "waiting apply did not take the confirmation in time.")
    p.add_argument("--root", metavar="DIR", default="/", help="the box's files are under DIR (default /)")
    p.add_argument("--wait", type=float, default=30.0, metavar="S",
                   help="seconds to wait for the change to be recorded as kept (default 30)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from installer.writing.writer import awaiting_confirmation, backup_state, request_confirmation

    check_root(args.root)
    waiting = awaiting_confirmation(Path(args.root))
    if not waiting:
        print("edge-installer: confirm: no applied change waits for a confirmation (already kept, reverted, "
              "or its apply ended)", file=sys.stderr)
        return 1
    for backup, _ in waiting:
        request_confirmation(backup)
    deadline = time.monotonic() + max(0.0, min(args.wait, 600.0))
    left = {backup for backup, _ in waiting}
    while left:
        for backup in sorted(left):
            state = backup_state(backup)
            if state != "unconfirmed":
                left.discard(backup)
                pids = ", ".join(str(m.get("awaiting", {}).get("pid")) for b, m in waiting if b == backup)
                if state == "confirmed":
                    print(f"confirmed: the change of {backup.name} is kept (apply, process {pids})")
                else:
                    print(f"edge-installer: confirm: {backup.name} was {state or 'changed'} before the "
                          "confirmation arrived", file=sys.stderr)
                    return 1
        if left and time.monotonic() >= deadline:
            names = ", ".join(b.name for b in sorted(left))
            print(f"edge-installer: confirm: asked, but the waiting apply did not record it within "
                  f"{args.wait:g} s ({names}); it is still waiting, or it asks only at its own terminal",
                  file=sys.stderr)
            return 1
        if left:
            time.sleep(0.1)
    return 0
