"""The suite's network interlock (installer/checks/netguard.py, switched on by tests/conftest.py):
from this machine's own network namespace nothing but loopback may be reached. Proved in a
throw-away empty network namespace (`unshare --net`: even a broken guard could send nothing
there), with the guard told that namespace is the machine's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

PROBE = textwrap.dedent("""
    import socket, sys
    import installer.checks.netguard as guard
    guard._own_namespace = lambda: True     # as if this empty namespace were the machine's own
    guard.install(sys.argv[1])
    def attempt(what, fn):
        try:
            fn()
            print(what, "allowed")
        except PermissionError:
            print(what, "refused")
        except OSError:
            print(what, "allowed")          # got as far as the kernel (no route, refused)
    attempt("tcp-out", lambda: socket.create_connection(("203.0.113.99", 443), timeout=1))
    attempt("udp-out", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53)))
    attempt("name", lambda: socket.getaddrinfo("api.machinemetrics.com", 443))
    attempt("tcp-lo", lambda: socket.create_connection(("127.0.0.1", 9), timeout=1))
    attempt("name-lo", lambda: socket.getaddrinfo("localhost", 9))
""")


def test_the_suite_runs_with_the_guard_on():
    assert os.environ.get("EDGE_INSTALLER_NET_GUARD"), "tests/conftest.py sets it for every test"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="NEEDS ROOT: unshare --net makes the empty namespace the guard is tried in")
def test_the_guard_refuses_everything_but_loopback(tmp_path):
    log = tmp_path / "refused.log"
    r = subprocess.run(["unshare", "--net", sys.executable, "-c", PROBE, str(log)], capture_output=True,
                       text=True, cwd=REPO, env={**os.environ, "EDGE_INSTALLER_NET_GUARD": ""}, timeout=30)
    assert r.returncode == 0, r.stderr
    seen = dict(line.split() for line in r.stdout.splitlines())
    assert seen == {"tcp-out": "refused", "udp-out": "refused", "name": "refused",
                    "tcp-lo": "allowed", "name-lo": "allowed"}
    refused = log.read_text()
    assert "203.0.113.99" in refused and "8.8.8.8" in refused and "api.machinemetrics.com" in refused
