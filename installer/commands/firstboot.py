"""`edge-installer firstboot [--root DIR] [--device PATH] [--label EDGE-SETUP] [--boot-dir DIR ...]
[--console TTY ...] [--wait S] [--trust-key KEY.pub ...] [--force]`: zero-touch set-up from a
setup medium (installer/fleet/firstboot.py), run at boot by edge-installer-zerotouch.service.

Exit 0: the change was kept (or staged), or there was nothing to do (no medium; the same
bundle and devices list as the last time); 1: applied and reverted, refused, or the medium
could not be mounted; 2: bad setup files (no row for this box, two rows, a bad devices list,
an untrusted bundle). Whatever happened is a few lines on the consoles, never a traceback.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from installer.commands import check_root, check_seconds, seconds_type


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from installer.fleet import firstboot as fb

    p = sub.add_parser("firstboot", help="zero-touch set-up from a USB stick or the boot partition (at boot)",
                       description=f"Find the setup medium (a filesystem labelled {fb.LABEL}, or a folder "
                                   f"{fb.FOLDER}/ on the boot partition) holding a signed bundle and "
                                   f"{fb.DEVICES_FILE}; take the row whose ports.NAME.mac is one of this box's "
                                   "MACs; apply the bundle with that row's values as `apply --keep-if-healthy` "
                                   "does (kept only when the re-check fails nothing); run the checks; write the "
                                   "report back to the medium and show the result on the consoles. Runs once "
                                   "per bundle and devices list.")
    p.add_argument("--root", metavar="DIR", default=None,
                   help="stage under DIR: the boot folders, trusted keys, /sys/class/net and the state are "
                        "read under DIR; nothing is mounted, applied or checked")
    p.add_argument("--device", metavar="PATH", help="the setup medium's block device (default: found by its label)")
    p.add_argument("--label", default=fb.LABEL, metavar="LABEL",
                   help=f"the setup medium's filesystem label (default {fb.LABEL})")
    p.add_argument("--boot-dir", dest="boot_dirs", action="append", metavar="DIR",
                   help=f"look for {fb.FOLDER}/ here (repeatable; default: {', '.join(fb.BOOT_DIRS)})")
    p.add_argument("--console", dest="consoles", action="append", metavar="TTY",
                   help="show the result on this terminal (repeatable; default: /dev/tty1 and /dev/ttyS0 on "
                        "the box, none under --root)")
    p.add_argument("--wait", type=seconds_type(0, 600), default=0.0, metavar="S",
                   help="wait up to S seconds for the medium to appear, when this box was never set up "
                        "(default 0; the boot unit gives 15)")
    p.add_argument("--check-timeout", type=check_seconds, default=3.0, metavar="S",
                   help="per-check timeout (default 3)")
    p.add_argument("--trust-key", dest="trust_keys", action="append", default=[], metavar="KEY.pub",
                   help="also trust the public key(s) in this file (repeatable)")
    p.add_argument("--force", action="store_true",
                   help="apply even when this bundle and devices list were applied before")
    p.set_defaults(run=run)




def run(args: argparse.Namespace) -> int:
    from installer.fleet import firstboot as fb
    from installer.writing.writer import box_path

    check_root(args.root)
    root = Path(args.root) if args.root else Path("/")
    set_up_before = (box_path(root, fb.STAMP).exists() or box_path(root, fb.PLAN_FILE).exists())
    opts = fb.Options(root=root, device=args.device, label=args.label,
                      boot_dirs=tuple(args.boot_dirs or fb.BOOT_DIRS),
                      wait_s=0.0 if set_up_before else args.wait, check_timeout=args.check_timeout,
                      trust_keys=tuple(args.trust_keys), force=args.force)
    out = fb.run(opts)
    consoles = tuple(args.consoles) if args.consoles else fb.default_consoles(root)
    if out.outcome == "no-medium" and set_up_before:
        consoles = ()  # a box set up before boots without its medium: nothing to say on the screens
    fb.show(out, consoles)
    return out.exit_code
