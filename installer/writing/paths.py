"""Paths of the box under a root, and the error every write raises.

Everything edge-installer writes lands under a root (``/`` on the box, a staging directory
with ``--root``): `box_path` says where a path of the box lands there and refuses one that
would leave it (``..``, or a symbolic link that points out). Kept apart from
`installer.writing.writer`, which re-exports both, so that what only needs to know where a
file is (the wizard's draft, before its first frame) does not import the writer.
"""

from __future__ import annotations

import os
from pathlib import Path


class WriteError(OSError):
    """A write that could not be done; the message names the file and the reason. An OSError,
    so that code which copes with a failed write (a full disk) copes with this one too."""


def box_path(root: Path, path: str) -> Path:
    """Where a path of the box lands under root; refuses paths that would leave root."""
    if not path.startswith("/"):
        raise WriteError(f"{path}: not an absolute path")
    parts = Path(path).parts[1:]
    if any(p in ("..", "") for p in parts):
        raise WriteError(f"{path}: '..' is not allowed in a path")
    target = root.joinpath(*parts)
    check_inside(root, target.parent)
    return target


def check_inside(root: Path, directory: Path) -> None:
    """WriteError unless directory is inside root once links are followed (its deepest existing
    ancestor is resolved: a symlinked directory must not point outside root)."""
    real_root = os.path.realpath(root)
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    real = os.path.realpath(probe)
    if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
        raise WriteError(f"{directory}: leads outside {root} (through a symbolic link); refusing to write there")
