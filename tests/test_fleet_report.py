"""The fleet report (installer.fleet.report, `bundle fleet-report`) and the Ansible inventory
`bundle fleet --ansible` writes (installer.fleet.inventory).

The results are crafted as the rollout role leaves them; each box's check.json is the real
`check --json` document (findings.document over real Result objects), so the report reads the
findings the product itself groups. Strings from the boxes are hostile: the page must show
them as text, never as markup.
"""

from __future__ import annotations

import json
import stat
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from installer import cli
from installer.checks import findings
from installer.checks.base import Result
from installer.checks.runner import Report
from installer.fleet import report as fleetreport
from installer.fleet.bundle import build_bundle
from installer.fleet.keys import public_key_line
from installer.planning import plan as P
from installer.render import Target
from tests import hostile_bundles as H

REPO = Path(__file__).resolve().parent.parent
# ... and a lone surrogate, which JSON can hold and UTF-8 cannot: the page must still be written.
EVIL = '<script>alert("x")</script>"><img src=x onerror=alert(1)>\x1b[31m\u202e&amp;\ud800'


def result(id_: str, target: str, status: str, diagnosis: str, **facts) -> Result:
    return Result(id_, id_.split("-")[0], target, status, diagnosis, f"{id_} {target}: {diagnosis}",
                  "open it" if status != "pass" else "", 0.1, "machinemetrics", key=f"{id_}:{target}", facts=facts)


def check_doc(*results: Result, hostname: str = "edge") -> dict:
    return findings.document(Report(list(results), 1.0), box={"hostname": hostname})


PASSING = (result("dns-resolve", "api.machinemetrics.com", "pass", "ok"),
           result("tcp-connect", "api.machinemetrics.com:443", "pass", "ok", host="api.machinemetrics.com", port=443))
NATS_REFUSED = result("tcp-connect", "nats.machinemetrics.com:7422", "fail", "tcp-refused",
                      host="nats.machinemetrics.com", port=7422)


def put(results: Path, box: str, outcome: dict | str | bytes | None, check: dict | str | bytes | None) -> None:
    d = results / box
    d.mkdir(parents=True)
    for name, data in (("outcome.json", outcome), ("check.json", check)):
        if data is None:
            continue
        raw = data if isinstance(data, bytes) else (data if isinstance(data, str) else json.dumps(data)).encode()
        (d / name).write_bytes(raw)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    r = tmp_path / "results"
    r.mkdir()
    (r / "hosts.json").write_text(json.dumps(["edge-01", "edge-02", "edge-03", "edge-04", "edge-05", "edge-06"]))
    put(r, "edge-01", {"outcome": "confirmed", "old_address": "203.0.113.101", "new_address": "203.0.113.21"},
        check_doc(*PASSING, NATS_REFUSED))
    put(r, "edge-02", {"outcome": "confirmed"}, check_doc(*PASSING, NATS_REFUSED))
    put(r, "edge-03", {"outcome": "confirmed"}, check_doc(*PASSING))
    put(r, "edge-04", {"outcome": "reverted", "detail": "cut off: reverted by itself; reached again on 203.0.113.104",
                       "old_address": "203.0.113.104", "new_address": "203.0.113.241",
                       "revert_evidence": "enp2s0 203.0.113.104/24"}, None)
    put(r, "edge-05", {"outcome": "confirmed"}, check_doc(
        *PASSING, result("ntp-sync", "ntp.plant.local", "warn", "ntp-offset")))
    # edge-06: the serial rollout stopped before it: no folder at all.
    return r


def test_each_box_has_its_outcome_status_and_findings(results):
    report = fleetreport.read_results(results)
    boxes = {b["box"]: b for b in report["boxes"]}
    assert [b["box"] for b in report["boxes"]] == ["edge-01", "edge-02", "edge-03", "edge-04", "edge-05", "edge-06"]
    assert {n: (b["outcome"], b["status"]) for n, b in boxes.items()} == {
        "edge-01": ("confirmed", "fail"), "edge-02": ("confirmed", "fail"), "edge-03": ("confirmed", "pass"),
        "edge-04": ("reverted", "fail"), "edge-05": ("confirmed", "warn"), "edge-06": ("not-run", "fail")}
    assert report["summary"] == {"boxes": 6, "pass": 1, "warn": 1, "fail": 4,
                                 "outcomes": {"confirmed": 4, "reverted": 1, "not-run": 1}}
    assert boxes["edge-01"]["summary"] == {"pass": 2, "warn": 0, "fail": 1, "skip": 0}
    assert [f["cause"] for f in boxes["edge-01"]["findings"]] == ["port-blocked"]
    assert boxes["edge-01"]["failing_checks"][0]["diagnosis"] == "tcp-refused"
    assert boxes["edge-04"]["detail"].startswith("cut off: reverted by itself")
    assert fleetreport.exit_code(report) == 2


def test_causes_shared_by_several_boxes_are_found_once(results):
    shared = fleetreport.read_results(results)["shared"]
    blocked = [g for g in shared if g["kind"] == "finding"]
    assert len(blocked) == 1
    assert blocked[0]["cause"] == "port-blocked" and blocked[0]["ports"] == [7422]
    assert blocked[0]["boxes"] == ["edge-01", "edge-02"] and blocked[0]["count"] == 2
    # One box's own warning is not shared; the lone reverted box is not a fleet cause either.
    assert not [g for g in shared if g["cause"] in ("time-offset", "reverted")]
    assert {g["cause"] for g in shared} == {"port-blocked"}


def test_a_second_reverted_box_makes_reverting_a_shared_cause(results):
    put(results, "edge-07", {"outcome": "reverted"}, None)
    shared = fleetreport.read_results(results)["shared"]
    assert [(g["kind"], g["cause"], g["boxes"]) for g in shared if g["kind"] == "outcome"] == [
        ("outcome", "reverted", ["edge-04", "edge-07"])]


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "ul", "li", "b", "br",
                "span", "table", "tr", "th", "td", "a", "details", "summary", "pre"}


def test_hostile_strings_are_shown_as_text_never_as_markup(tmp_path):
    r = tmp_path / "results"
    r.mkdir()
    evil_finding = {"summary": {"pass": 0, "warn": 0, "fail": 1, "skip": 0},
                    "checks": [{"id": EVIL, "target": EVIL, "status": "fail", "diagnosis": EVIL, "evidence": EVIL}],
                    "findings": [{"cause": EVIL, "status": "fail", "title": EVIL, "hosts": [EVIL], "ports": [7422],
                                  "checks": [EVIL], "remediation": EVIL}]}
    put(r, "edge-a", {"outcome": "confirmed", "detail": EVIL, "old_address": EVIL}, evil_finding)
    put(r, "edge-b", {"outcome": "confirmed"}, evil_finding)
    put(r, "edge-c", {"outcome": EVIL, "apply_output": EVIL * 3}, None)
    (r / "hosts.json").write_text(json.dumps(["<b>x</b>", "edge-a", "../../etc", "edge-b", "edge-c"]))
    report = fleetreport.read_results(r)
    assert [b["box"] for b in report["boxes"]] == ["edge-a", "edge-b", "edge-c"]  # bad names are not boxes
    page = fleetreport.html(report)
    parser = _Tags()
    parser.feed(page)
    assert set(parser.tags) <= ALLOWED_TAGS, set(parser.tags) - ALLOWED_TAGS
    assert "script" not in parser.tags and "img" not in parser.tags
    assert {name for name, _ in parser.attrs} <= {"lang", "charset", "http-equiv", "content", "class", "href", "id",
                                                  "open", "style"}
    assert all(v.startswith("#box-") for k, v in parser.attrs if k == "href")  # nothing outside the page
    assert "<script" not in page and "<img" not in page and "onerror=alert(1)>" not in page
    assert "\x1b" not in page and "\u202e" not in page
    page.encode("utf-8")
    assert cli.main(["bundle", "fleet-report", str(r)]) == 2 and (r / "fleet-report.html").is_file()
    text = "".join(parser.text)
    assert '<script>alert("x")</script>' in text  # shown, as text
    assert "&amp;amp;" in page  # an entity from a box is shown as written, not interpreted
    # The shared cause is found through hostile text as well, and the unknown outcome is a failure.
    assert report["shared"][0]["count"] == 2
    assert {b["box"]: b["outcome"] for b in report["boxes"]}["edge-c"] == "apply-failed"


def test_the_page_is_self_contained(results):
    page = fleetreport.html(fleetreport.read_results(results))
    assert "default-src 'none'" in page
    for marker in ("http://", "https://", "src=", "<link", "@import", "url("):
        assert marker not in page, marker
    for name in ("edge-01", "edge-04", "port-blocked", "reverted", "not-run"):
        assert name in page


def test_broken_results_are_that_boxs_failure_not_the_commands(tmp_path):
    r = tmp_path / "results"
    r.mkdir()
    put(r, "edge-a", "{not json", None)
    put(r, "edge-b", {"outcome": "confirmed"}, "[1, 2]")
    put(r, "edge-c", {"outcome": "confirmed"}, b"\xff\xfe")
    put(r, "edge-d", {"outcome": "confirmed"}, None)
    put(r, "edge-e", {"outcome": "confirmed"}, {"summary": {"pass": -3, "warn": "x", "fail": True, "skip": 1}})
    (r / "edge-f").mkdir()
    (r / "edge-f" / "outcome.json").write_text(json.dumps({"outcome": "confirmed"}))
    (r / "edge-f" / "check.json").write_bytes(b" " * (fleetreport.MAX_RESULT_BYTES + 1))
    (r / "hosts.json").write_text("[[[[")
    report = fleetreport.read_results(r)
    boxes = {b["box"]: b for b in report["boxes"]}
    assert all(b["status"] == "fail" for n, b in boxes.items() if n != "edge-e")
    assert boxes["edge-a"]["problems"] == ["outcome.json: not readable JSON (JSONDecodeError)"]
    assert boxes["edge-b"]["problems"] == ["check.json: not a `check --json` document"]
    assert boxes["edge-c"]["problems"] == ["check.json: not readable JSON (UnicodeDecodeError)"]
    assert boxes["edge-d"]["problems"] == ["check.json: missing"]
    assert boxes["edge-f"]["problems"] == [f"check.json: larger than {fleetreport.MAX_RESULT_BYTES} bytes"]
    # Numbers that are not counts count as none.
    assert boxes["edge-e"]["summary"] == {"pass": 0, "warn": 0, "fail": 0, "skip": 1}
    assert boxes["edge-e"]["status"] == "pass"


def test_cli_writes_both_files_and_exits_as_check_does(results, tmp_path, capsys):
    out = tmp_path / "report"
    assert cli.main(["bundle", "fleet-report", str(results), "-o", str(out)]) == 2
    said = capsys.readouterr().out
    assert "6 box(es): 1 pass, 1 warn, 4 fail; confirmed 4; reverted 1; not-run 1" in said
    assert "shared by 2 boxes: FAIL port-blocked" in said
    doc = json.loads((out / "fleet-report.json").read_text())
    assert doc["summary"]["boxes"] == 6
    assert (out / "fleet-report.html").read_text().startswith("<!DOCTYPE html>")
    # Only passing boxes: 0; a warning: 1.
    ok = tmp_path / "ok"
    ok.mkdir()
    put(ok, "edge-01", {"outcome": "confirmed"}, check_doc(*PASSING))
    assert cli.main(["bundle", "fleet-report", str(ok)]) == 0
    put(ok, "edge-02", {"outcome": "confirmed"}, check_doc(*PASSING, result("ntp-sync", "x", "warn", "ntp-offset")))
    assert cli.main(["bundle", "fleet-report", str(ok)]) == 1
    assert (ok / "fleet-report.html").is_file()


def test_cli_refuses_a_missing_directory_in_one_line(tmp_path, capsys):
    assert cli.main(["bundle", "fleet-report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such directory" in err and "Traceback" not in err


# --- the inventory ------------------------------------------------------------------------------

def _fleet(tmp_path: Path, csv_text: str, plan: P.Plan, passphrase: str | None = None, sign=None) -> tuple[int, Path]:
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(build_bundle(plan, passphrase, target=Target(), scrypt_n=H.SCRYPT_N, sign_key=sign))
    (tmp_path / "devices.csv").write_text(csv_text)
    args = ["bundle", "fleet", str(bundle), "--devices", str(tmp_path / "devices.csv"), "--out", str(tmp_path / "out"),
            "--ansible"]
    if passphrase:
        (tmp_path / "pass").write_text(passphrase + "\n")
        args += ["--passphrase-file", str(tmp_path / "pass")]
    if sign is None:
        args.append("--allow-unsigned")
    else:
        pub = tmp_path / "signer.pub"
        pub.write_text(public_key_line(sign.public_key().public_bytes_raw()) + "\n")
        args += ["--trust-key", str(pub)]
    return cli.main(args), tmp_path / "out"


def test_fleet_ansible_writes_an_inventory_with_each_boxs_values(tmp_path, capsys):
    plan = P.load(REPO / "examples/isolated.yaml")
    csv_text = ("hostname,ansible_host,uplink.ipv4,uplink.address,uplink.gateway,ansible_user\n"
                "edge-11,203.0.113.111,static,203.0.113.21/24,203.0.113.1,root\n"
                "\n"
                "edge-12,203.0.113.112,dhcp,,,\n")
    code, out = _fleet(tmp_path, csv_text, plan, sign=H.signing_key(1))
    said = capsys.readouterr()
    assert code == 0, said.err
    inv = yaml.safe_load((out / "inventory.yml").read_text())
    group = inv["all"]["vars"]
    assert group["edge_installer_bundle"] == str((tmp_path / "b.tar.gz").resolve())
    assert group["edge_installer_trust_key_line"] == public_key_line(H.signing_key(1).public_key().public_bytes_raw())
    hosts = inv["all"]["children"]["edge_boxes"]["hosts"]
    plan_file = Path(hosts["edge-11"].pop("edge_installer_plan_file"))
    assert hosts["edge-11"] == {
        "ansible_host": "203.0.113.111", "ansible_user": "root", "edge_installer_new_host": "203.0.113.21",
        "edge_installer_hostname": "edge-11",
        "edge_installer_sets": ["hostname=edge-11", "uplink.ipv4=static", "uplink.address=203.0.113.21/24",
                                "uplink.gateway=203.0.113.1"]}
    box_plan = P.load(plan_file)  # the box's own plan, for its check after the change
    assert (box_plan.hostname, box_plan.uplink.address) == ("edge-11", "203.0.113.21/24")
    assert stat.S_IMODE(plan_file.stat().st_mode) == 0o600
    assert hosts["edge-12"]["ansible_host"] == hosts["edge-12"]["edge_installer_new_host"] == "203.0.113.112"
    assert "ansible_user" not in hosts["edge-12"]
    # The controller's columns never reach the boxes' plans.
    assert "ansible" not in (out / "edge-11/root/etc/netplan").joinpath(
        next(p.name for p in (out / "edge-11/root/etc/netplan").iterdir())).read_text()
    assert "ansible-playbook -i" in said.out


def test_fleet_ansible_keeps_secrets_out_of_the_inventory(tmp_path, capsys):
    plan = H.base_plan()
    header = "hostname,proxy.password,ansible_host"
    code, out = _fleet(tmp_path, f"{header}\nedge-21,S3cr3t-Proxy-Pw,203.0.113.121\n", plan, passphrase=H.PASSPHRASE)
    assert code == 0, capsys.readouterr().err
    text = (out / "inventory.yml").read_text()
    assert "S3cr3t-Proxy-Pw" not in text
    host = yaml.safe_load(text)["all"]["children"]["edge_boxes"]["hosts"]["edge-21"]
    secret = Path(host["edge_installer_secret_files"]["proxy.password"])
    assert secret.read_text() == "S3cr3t-Proxy-Pw\n"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
    assert not any("proxy.password" in s for s in host["edge_installer_sets"])
    assert P.load(Path(host["edge_installer_plan_file"])).proxy.password == "S3cr3t-Proxy-Pw"


def test_fleet_ansible_refuses_bad_controller_columns_in_one_line_each(tmp_path, capsys):
    plan = P.load(REPO / "examples/isolated.yaml")
    code, out = _fleet(tmp_path, "hostname,ansible_host,ansible_port\nedge-31,not an address!,99999\n", plan)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "devices.csv line 2: ansible_host: 'not an address!' is not an address or a host name" in err
    assert "devices.csv line 2: ansible_port: '99999' is not a port; give 1 to 65535" in err
    assert not out.exists()
    # Without --ansible the column is what it always was: not a field of the plan.
    (tmp_path / "devices.csv").write_text("hostname,ansible_host\nedge-31,203.0.113.1\n")
    code = cli.main(["bundle", "fleet", str(tmp_path / "b.tar.gz"), "--allow-unsigned", "--devices",
                     str(tmp_path / "devices.csv"), "--out", str(tmp_path / "out")])
    assert code == 2 and "ansible_host" in capsys.readouterr().err
