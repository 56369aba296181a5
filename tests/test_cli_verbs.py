"""The command line imports only the verb it runs (issue 14's start-up): the wizard none,
--help and a word that is no verb all of them, so argparse lists every verb."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from installer import cli

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("argv,needed", [
    ([], []),
    (["--plan", "apply", "--root", "check"], []),  # option values, not verbs: the wizard
    (["--plain", "--resume"], []),
    (["apply", "plan.yaml"], ["apply"]),
    (["--root", "/tmp/x", "firewall-request", "p.yaml"], ["firewall-request"]),
    (["--help"], None), (["-h", "apply"], None), (["bogus"], None), (["--ro", "x", "apply"], None),
])
def test_the_verbs_a_command_line_needs(argv, needed):
    assert cli._verbs_needed(argv, cli._top_parser()) == needed


def test_every_verb_module_registers_its_verb():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "verb")
    assert sorted(sub.choices) == sorted(cli.VERBS)


def test_the_wizard_imports_no_verb_module():
    code = ("import sys; from installer import cli; top = cli._top_parser();"
            "cli._add_verbs(top, cli._verbs_needed(sys.argv[1:], top));"
            "print(sorted(m for m in sys.modules if m.startswith('installer.commands.')))")
    for argv, expected in ((["--plan", "x.yaml"], "[]"), (["status"], "['installer.commands.status']")):
        done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=REPO,
                              timeout=60)
        assert done.stdout.strip() == expected, done.stdout + done.stderr
