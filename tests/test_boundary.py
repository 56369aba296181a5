"""The core never imports the UI: every installer module loads without Textual or Rich."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import installer

REPO = Path(__file__).resolve().parent.parent


def core_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(installer.__path__, "installer.")
                  if m.name != "installer.__main__")


def test_core_imports_no_textual_or_rich():
    modules = core_modules()
    assert "installer.planning.plan" in modules and "installer.render.netplan" in modules
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "", f"installer/ pulled in UI modules: {r.stdout.strip()}"


def test_no_source_file_in_core_mentions_textual_imports():
    for path in (REPO / "installer").rglob("*.py"):
        text = path.read_text()
        assert "import textual" not in text and "from textual" not in text, path
        assert "import rich" not in text and "from rich" not in text, path
