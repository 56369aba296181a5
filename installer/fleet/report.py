"""The fleet report: every box's rollout outcome and check result, and the causes they share.

A rollout (packaging/ansible: the `edge_installer_rollout` role) leaves one folder per box in a
results directory:

    RESULTS/hosts.json              the boxes the rollout was given (inventory order)
    RESULTS/<box>/outcome.json      what the rollout did there: {"outcome": ..., "detail": ...,
                                    "old_address", "new_address", "apply_rc", "apply_output", ...}
    RESULTS/<box>/check.json        `edge-installer check --json` on the box after the change

`read_results` turns that into one document (`fleet-report.json`), `html` into one
self-contained page (`fleet-report.html`: inline style, no script, no link to anything, every
string from a box escaped). Per box: the outcome, pass / warn / fail, its findings. Across the
fleet: the causes that several boxes share (the same finding, e.g. one proxy refusing 7422, on
N boxes), so a plant's IT team fixes one thing instead of reading N reports.

Everything in RESULTS came from the boxes or from a playbook run: it is read bounded, and a
missing, oversized or malformed file is that box's failure, never this command's.
"""

from __future__ import annotations

import html as _html
import json
import re
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

REPORT_JSON = "fleet-report.json"
REPORT_HTML = "fleet-report.html"
HOSTS_FILE = "hosts.json"
OUTCOME_FILE = "outcome.json"
CHECK_FILE = "check.json"
MAX_RESULT_BYTES = 4 << 20
MAX_BOXES = 5000
MAX_TEXT = 4000  # one string shown from a box (an apply's output tail, a title)

# What the rollout did on a box (the role writes one of these in outcome.json).
OUTCOMES = OrderedDict([
    ("confirmed", "applied, reached again over its new path, confirmed"),
    ("reverted", "cut off by the new configuration: reverted by itself, reached again on its old address"),
    ("cut-off", "cut off by the new configuration and not reached again on its old address either"),
    ("not-confirmed", "reached again, but the confirmation was not taken: the change was reverted"),
    ("apply-failed", "apply refused or failed: nothing was changed"),
    ("unreachable", "not reached before the rollout started"),
    ("not-run", "not rolled out (a serial rollout stopped at an earlier failure, or the play ended)"),
])
_RANK = {"fail": 0, "warn": 1, "pass": 2}
_HOST = re.compile(r"^[A-Za-z0-9_.-]{1,253}$")
# Control and bidi characters, and lone surrogates (valid in JSON, not encodable as UTF-8).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


class ReportError(Exception):
    """The results directory cannot be read at all (one line)."""


def _clean(value: Any, limit: int = MAX_TEXT) -> str:
    """Text from a box, as data: a string, control and bidi characters and lone surrogates replaced, bounded."""
    text = value if isinstance(value, str) else ("" if value is None else json.dumps(value, default=str))
    text = _CONTROL.sub("\ufffd", text)
    return text if len(text) <= limit else text[:limit] + " [...]"


def _read_json(path: Path) -> tuple[Any, str | None]:
    """(data, None) or (None, why it could not be used)."""
    try:
        if not path.is_file():
            return None, f"{path.name}: missing"
        if path.stat().st_size > MAX_RESULT_BYTES:
            return None, f"{path.name}: larger than {MAX_RESULT_BYTES} bytes"
        with open(path, "rb") as f:
            data = f.read(MAX_RESULT_BYTES + 1)
        return json.loads(data.decode("utf-8")), None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        return None, f"{path.name}: not readable JSON ({type(e).__name__})"


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _findings(check: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for f in check.get("findings") or []:
        if not isinstance(f, dict):
            continue
        status = f.get("status") if f.get("status") in ("fail", "warn", "skip", "pass") else "fail"
        out.append({"cause": _clean(f.get("cause"), 80), "status": status, "title": _clean(f.get("title")),
                    "hosts": [_clean(h, 300) for h in (f.get("hosts") or []) if isinstance(h, (str, int))][:50],
                    "ports": [p for p in (f.get("ports") or []) if isinstance(p, int) and not isinstance(p, bool)][:50],
                    "checks": [_clean(c, 300) for c in (f.get("checks") or []) if isinstance(c, str)][:200],
                    "remediation": _clean(f.get("remediation"))})
    return out


def _failing_checks(check: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for c in check.get("checks") or []:
        if isinstance(c, dict) and c.get("status") in ("fail", "warn"):
            out.append({"id": _clean(c.get("id"), 80), "target": _clean(c.get("target"), 300),
                        "status": c["status"], "diagnosis": _clean(c.get("diagnosis"), 120),
                        "evidence": _clean(c.get("evidence"), 600)})
    return out


def box_result(name: str, folder: Path | None) -> dict[str, Any]:
    """One box's entry: its outcome, its check verdict (pass / warn / fail) and findings."""
    entry: dict[str, Any] = {"box": name, "outcome": "not-run", "status": "fail", "detail": "", "problems": [],
                             "summary": None, "findings": [], "failing_checks": []}
    if folder is None or not folder.is_dir():
        entry["detail"] = OUTCOMES["not-run"]
        return entry
    outcome, why = _read_json(folder / OUTCOME_FILE)
    if why or not isinstance(outcome, dict):
        entry["problems"].append(why or f"{OUTCOME_FILE}: not an object")
        entry["outcome"] = "not-run"
        entry["detail"] = "the rollout left no readable outcome for this box"
        return entry
    kind = outcome.get("outcome")
    entry["outcome"] = kind if kind in OUTCOMES else "apply-failed"
    if kind not in OUTCOMES:
        entry["problems"].append(f"{OUTCOME_FILE}: unknown outcome {_clean(kind, 80)!r}")
    entry["detail"] = _clean(outcome.get("detail")) or OUTCOMES[entry["outcome"]]
    for key in ("old_address", "new_address", "apply_rc", "apply_output", "revert_evidence", "batch"):
        if key in outcome:
            entry[key] = outcome[key] if isinstance(outcome[key], int) and not isinstance(outcome[key], bool) \
                else _clean(outcome[key])
    check, why = _read_json(folder / CHECK_FILE)
    if entry["outcome"] != "confirmed":
        entry["status"] = "fail"  # the rollout did not take: whatever the old configuration checks
        return entry
    if why or not isinstance(check, dict) or not isinstance(check.get("summary"), dict):
        entry["problems"].append(why or f"{CHECK_FILE}: not a `check --json` document")
        entry["status"] = "fail"
        return entry
    summary = {k: _int(check["summary"].get(k)) for k in ("pass", "warn", "fail", "skip")}
    entry["summary"] = summary
    entry["status"] = "fail" if summary["fail"] else "warn" if summary["warn"] else "pass"
    entry["findings"] = _findings(check)
    entry["failing_checks"] = _failing_checks(check)
    return entry


def _hosts(results: Path) -> list[str]:
    """The boxes of the rollout: hosts.json's list (in order), then any other box folder."""
    names: list[str] = []
    listed, why = _read_json(results / HOSTS_FILE)
    if why is None and isinstance(listed, list):
        names = [h for h in listed if isinstance(h, str) and _HOST.match(h)]
    try:
        folders = sorted(p.name for p in results.iterdir() if p.is_dir() and _HOST.match(p.name))
    except OSError as e:
        raise ReportError(f"{results}: cannot be listed ({e.strerror})") from None
    names += [n for n in folders if n not in names]
    seen = list(OrderedDict.fromkeys(names))
    if len(seen) > MAX_BOXES:
        raise ReportError(f"{results}: more than {MAX_BOXES} boxes; report on part of the fleet")
    return seen


def shared_causes(boxes: Iterable[Mapping[str, Any]], minimum: int = 2) -> list[dict[str, Any]]:
    """The causes several boxes share: the same finding (cause, destinations, ports) on each,
    worst and most widespread first; and boxes that ended the same way other than confirmed."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
    for box in boxes:
        for f in box.get("findings", []):
            if f["status"] not in ("fail", "warn"):
                continue
            key: tuple[Any, ...] = ("finding", f["cause"], tuple(sorted(f["hosts"])), tuple(sorted(f["ports"])))
            g = groups.setdefault(key, {"kind": "finding", "cause": f["cause"], "status": f["status"],
                                        "title": f["title"], "hosts": f["hosts"], "ports": f["ports"],
                                        "remediation": f["remediation"], "boxes": []})
            if _RANK[f["status"]] < _RANK[g["status"]]:
                g["status"] = f["status"]
            if box["box"] not in g["boxes"]:
                g["boxes"].append(box["box"])
        if box.get("outcome") not in ("confirmed", None):
            key = ("outcome", box["outcome"])
            g = groups.setdefault(key, {"kind": "outcome", "cause": box["outcome"], "status": "fail",
                                        "title": OUTCOMES.get(box["outcome"], box["outcome"]), "hosts": [],
                                        "ports": [], "remediation": "", "boxes": []})
            g["boxes"].append(box["box"])
    out = [g for g in groups.values() if len(g["boxes"]) >= minimum]
    out.sort(key=lambda g: (_RANK[g["status"]], -len(g["boxes"]), g["kind"] != "finding"))
    for g in out:
        g["count"] = len(g["boxes"])
    return out


def read_results(results: Path | str, *, now: float | None = None) -> dict[str, Any]:
    """The fleet report's document for a results directory (see the module docstring)."""
    results = Path(results)
    if not results.is_dir():
        raise ReportError(f"{results}: no such directory; give the results directory of a rollout")
    boxes = [box_result(name, results / name if (results / name).is_dir() else None) for name in _hosts(results)]
    statuses = {s: sum(1 for b in boxes if b["status"] == s) for s in ("pass", "warn", "fail")}
    outcomes = {k: sum(1 for b in boxes if b["outcome"] == k) for k in OUTCOMES}
    return {"version": 1,
            "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "summary": {"boxes": len(boxes), **statuses, "outcomes": {k: v for k, v in outcomes.items() if v}},
            "shared": shared_causes(boxes),
            "boxes": boxes}


def exit_code(report: Mapping[str, Any]) -> int:
    """0 every box passed, 1 warnings only, 2 any box failed (as `check`)."""
    s = report["summary"]
    return 2 if s["fail"] else 1 if s["warn"] else 0


# --- the page ---------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#111;background:#fff;max-width:72em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}h3{font-size:1em;margin:0}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #bbb;padding:.3em .5em;text-align:left;
vertical-align:top}th{background:#eee}.pass{background:#dfd}.warn{background:#ffd}.fail{background:#fdd}
.tag{font-weight:bold;padding:0 .4em;border-radius:.3em}details{border:1px solid #bbb;margin:.5em 0;padding:.4em}
summary{cursor:pointer}pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:.4em}
ul{margin:.2em 0}
"""


def _e(value: Any) -> str:
    return _html.escape(_clean(value), quote=True)


def _tag(status: str) -> str:
    status = status if status in _RANK else "fail"
    return f'<span class="tag {status}">{status.upper()}</span>'


def html(report: Mapping[str, Any]) -> str:
    """The fleet report as one self-contained HTML page (no script, no external reference)."""
    s = report["summary"]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           # Nothing on the page may load or run anything, whatever a box wrote into its results.
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
           "<title>edge-installer fleet report</title>", f"<style>{_STYLE}</style></head><body>",
           "<h1>edge-installer fleet report</h1>",
           f"<p>{_e(s['boxes'])} boxes, generated {_e(report['generated'])}: "
           f"{_tag('pass')} {_e(s['pass'])} &nbsp; {_tag('warn')} {_e(s['warn'])} &nbsp; "
           f"{_tag('fail')} {_e(s['fail'])}</p>"]
    if s["outcomes"]:
        out.append("<ul>" + "".join(f"<li>{_e(k)}: {_e(v)} ({_e(OUTCOMES.get(k, ''))})</li>"
                                    for k, v in s["outcomes"].items()) + "</ul>")
    out.append("<h2>Causes shared by several boxes</h2>")
    if report["shared"]:
        out.append("<table><tr><th>Status</th><th>Boxes</th><th>Cause</th><th>What to do</th></tr>")
        for g in report["shared"]:
            where = ", ".join(g["hosts"]) + (f" (ports {', '.join(map(str, g['ports']))})" if g["ports"] else "")
            out.append(f"<tr class=\"{_e(g['status'])}\"><td>{_tag(g['status'])}</td><td>{_e(g['count'])}: "
                       f"{_e(', '.join(g['boxes']))}</td><td><b>{_e(g['cause'])}</b>: {_e(g['title'])}"
                       f"{'<br>' + _e(where) if where else ''}</td><td>{_e(g['remediation'])}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>None: no cause appears on more than one box.</p>")
    out.append("<h2>Boxes</h2><table><tr><th>Box</th><th>Result</th><th>Rollout</th><th>Checks</th></tr>")
    for b in report["boxes"]:
        counts = (f"{b['summary']['pass']} pass, {b['summary']['warn']} warn, {b['summary']['fail']} fail, "
                  f"{b['summary']['skip']} skipped" if b.get("summary") else "not run")
        out.append(f"<tr class=\"{_e(b['status'])}\"><td><a href=\"#box-{_e(_anchor(b['box']))}\">{_e(b['box'])}</a>"
                   f"</td><td>{_tag(b['status'])}</td><td>{_e(b['outcome'])}</td><td>{_e(counts)}</td></tr>")
    out.append("</table>")
    for b in report["boxes"]:
        out.append(f"<details id=\"box-{_e(_anchor(b['box']))}\"{' open' if b['status'] != 'pass' else ''}>"
                   f"<summary><h3 style=\"display:inline\">{_e(b['box'])}</h3> {_tag(b['status'])} "
                   f"{_e(b['outcome'])}</summary><p>{_e(b['detail'])}</p>")
        addresses = [f"{label} {b[k]}" for k, label in (("old_address", "old address"), ("new_address", "new address"))
                     if b.get(k)]
        if addresses:
            out.append(f"<p>{_e('; '.join(addresses))}</p>")
        for p in b["problems"]:
            out.append(f"<p class=\"fail\">{_e(p)}</p>")
        if b["findings"]:
            out.append("<ul>" + "".join(
                f"<li>{_tag(f['status'])} <b>{_e(f['cause'])}</b>: {_e(f['title'])}"
                f"{' - ' + _e(f['remediation']) if f['remediation'] else ''}</li>" for f in b["findings"]) + "</ul>")
        if b["failing_checks"]:
            out.append("<table><tr><th>Check</th><th>Target</th><th>Status</th><th>Diagnosis</th></tr>" + "".join(
                f"<tr class=\"{_e(c['status'])}\"><td>{_e(c['id'])}</td><td>{_e(c['target'])}</td>"
                f"<td>{_e(c['status'])}</td><td>{_e(c['diagnosis'])}</td></tr>" for c in b["failing_checks"])
                + "</table>")
        for key, label in (("revert_evidence", "After the revert"), ("apply_output", "apply's output")):
            if b.get(key):
                out.append(f"<p>{label}:</p><pre>{_e(b[key])}</pre>")
        out.append("</details>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _anchor(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def write(report: Mapping[str, Any], out: Path | str) -> tuple[Path, Path]:
    """fleet-report.json and fleet-report.html in `out` (created), each written atomically."""
    from installer.writing.writer import atomic_write

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    j, h = out / REPORT_JSON, out / REPORT_HTML
    atomic_write(j, (json.dumps(report, indent=2) + "\n").encode("utf-8"), 0o644)
    atomic_write(h, html(report).encode("utf-8"), 0o644)
    return j, h
