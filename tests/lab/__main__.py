"""Start, inspect and remove a lab by hand (a demo): python -m tests.lab up|down|status.

    sudo .venv/bin/python -m tests.lab up      # lab "eilab", files and plan in /tmp/eilab
    sudo .venv/bin/python -m tests.lab status
    sudo .venv/bin/python -m tests.lab down

The lab's servers keep running after `up` returns; `down` (from any process) removes them.
Faults are a Python API (tests.lab.Lab) for tests, not commands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tests.lab.lab import REPO, Lab, LabError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument("--name", default="eilab", help="lab name (namespaces <name>-edge, -cloud, -plant)")
    parser.add_argument("--workdir", type=Path, help="configs, certificates, logs and plan (default /tmp/<name>)")
    args = parser.parse_args(argv)
    lab = Lab(args.name, args.workdir or Path("/tmp") / args.name)
    if args.command == "down":
        lab.down()
        for problem in lab.down_problems:
            print(f"warning: {problem}", file=sys.stderr)
        print(f"lab {lab.name} removed")
        return 0
    if args.command == "status":
        return _status(lab)
    try:
        lab.up()
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    plan = lab.write_plan(lab.workdir / "plan.yaml")
    lab.write_plan(lab.workdir / "plan-proxy.yaml", proxy=lab.proxy_settings())
    python = REPO / ".venv" / "bin" / "edge-installer"
    tool = ".venv/bin/edge-installer" if python.exists() else "edge-installer"
    print(f"""lab {lab.name} is up in {lab.timings['up']:.2f} s (namespaces {', '.join(lab.ns.values())})
  plan:           {plan}   (and plan-proxy.yaml: the same through the proxy)
  public CA:      {lab.public_ca_file}
  proxy:          {lab.proxy_url}  user {lab.proxy_user!r} password {lab.proxy_password!r}
  logs:           {lab.workdir / 'logs'}

Run the checks inside the edge namespace (from {REPO}):
  sudo ip netns exec {lab.ns['edge']} {tool} check --plan {plan}
A shell on the edge box:
  sudo ip netns exec {lab.ns['edge']} bash
Remove the lab:
  sudo tests/lab/down{'' if lab.name == 'eilab' else f' --name {lab.name}'}""")
    return 0


def _status(lab: Lab) -> int:
    report = lab.status()
    if not any(report.values()):
        print(f"lab {lab.name}: not running")
        return 1
    for role, info in report.items():
        if info is None:
            print(f"{role}: missing (namespace {lab.ns[role]})")
            continue
        print(f"{role}: {info['namespace']}, {len(info['processes'])} processes")
        for pid, cmd in info["processes"]:
            print(f"  {pid:>7}  {cmd[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
