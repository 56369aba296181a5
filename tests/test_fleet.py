"""Fleet: devices.csv rows through --set and validation, one rendered tree and one cloud-init
NoCloud seed per box, judged by the real tools.

Judges: every seed's network-config is read by cloud-init itself
(`cloud-init devel net-convert --network-data F --kind yaml --output-kind netplan
--distro debian --directory OUT`, cloud-init 22.4.2), and the netplan it writes must be
accepted by netplan's generator with nothing on stderr; every user-data must pass
`cloud-init schema --config-file F`. cloud-init only ever runs on files in tmp dirs, and a
test checks that this machine's cloud-init and netplan state did not change.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from installer import cli
from installer.fleet.build import MACHINES_NETPLAN_FILE, OUTPUT_RECORD, FleetError, read_devices, seed_files
from installer.fleet.bundle import build_bundle, per_box_fields, split_secrets
from installer.planning import plan as P
from installer.planning.setfield import apply_sets
from installer.render import Target, dropins, render
from installer.render import netplan as netplan_renderer
from tests import hostile_bundles as H
from tests.judges import judge_trees, netplan_generate, require_tools

REPO = Path(__file__).resolve().parent.parent
TARGET = Target()  # netplan 0.106 (Debian 12), networkd where the plan allows it
CLOUD_INIT = shutil.which("cloud-init", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin", "/usr/sbin"]))
SYSTEM_STATE = ("/etc/netplan", "/etc/cloud", "/var/lib/cloud", "/run/cloud-init", "/var/log/cloud-init.log",
                "/etc/hostname", "/etc/systemd/network", "/run/netplan")


def require_cloud_init() -> str:
    if CLOUD_INIT is None:
        if os.environ.get("CI") or os.geteuid() == 0:
            pytest.fail("cloud-init is required here (Debian package cloud-init)", pytrace=False)
        pytest.skip("cloud-init not found (Debian package cloud-init)")
    return CLOUD_INIT


def cases() -> list[tuple[str, P.Plan]]:
    plans = [(p.stem, P.load(p)) for p in sorted((REPO / "examples").glob("*.yaml"))]
    return plans + [("wifi-proxy-static", H.base_plan()), ("cellular-credentials", H.cellular_plan())]


def devices_csv(plan: P.Plan, boxes: int = 2) -> tuple[str, list[P.Plan]]:
    """A devices.csv whose header is what the wizard would ask per box, and the plans it means."""
    header = [f for f in per_box_fields(plan, []) if f not in P.SECRET_FIELDS]
    rows, expected = [",".join(header)], []
    for n in range(boxes):
        values = []
        for key in header:
            if key == "hostname":
                values.append(f"{plan.topology}-{n + 1:02d}")
            elif key == "uplink.gateway":
                values.append(plan.uplink.gateway)
            elif key.startswith("ports.") and key.endswith(".mac"):  # each box's own port (issue 12)
                values.append(f"52:54:00:00:{n // 256:02x}:{n % 256 + 1:02x}")
            else:
                iface = ipaddress.IPv4Interface(flat_get(plan, key))
                values.append(f"{iface.network.network_address + 100 + n}/{iface.network.prefixlen}")
        rows.append(",".join(values))
        expected.append(apply_sets(plan, [f"{k}={v}" for k, v in zip(header, values, strict=True)]))
    return "\n".join(rows) + "\n", expected


def flat_get(plan: P.Plan, key: str) -> str:
    section, name = key.split(".")
    return getattr(getattr(plan, section), name)


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {"/" + str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mode & 0o777)
            for p in sorted(root.rglob("*")) if p.is_file()}


def system_state() -> dict[str, tuple[int, int]]:
    state = {}
    for top in SYSTEM_STATE:
        base = Path(top)
        for p in [base, *(base.rglob("*") if base.is_dir() else [])]:
            try:
                st = p.lstat()
            except FileNotFoundError:
                continue
            state[str(p)] = (st.st_mtime_ns, st.st_size)
    return state


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Every case exported (passphrase), fleeted through the CLI, two boxes each."""
    base = tmp_path_factory.mktemp("fleet")
    (base / "pass").write_text(H.PASSPHRASE + "\n")
    out = base / "out"
    boxes: list[tuple[str, P.Plan, Path]] = []
    for name, plan in cases():
        bundle = base / f"{name}.tar.gz"
        bundle.write_bytes(build_bundle(plan, H.PASSPHRASE, target=TARGET, scrypt_n=H.SCRYPT_N))
        text, expected = devices_csv(plan)
        csv_file = base / f"{name}.csv"
        csv_file.write_text(text)
        code = cli.main(["bundle", "fleet", str(bundle), "--allow-unsigned", "--devices", str(csv_file),
                         "--out", str(out / name), "--passphrase-file", str(base / "pass")])
        assert code == 0, name
        boxes += [(name, p, out / name / p.hostname) for p in expected]
    return base, boxes


def test_each_box_gets_the_tree_render_would_write(fleet):
    _, boxes = fleet
    assert len(boxes) == 2 * len(cases())
    for name, plan, box in boxes:
        assert sorted(os.listdir(box)) == [OUTPUT_RECORD, "root", "seed"]
        expected = {f.path: (f.content, f.mode) for f in render(plan, TARGET)}
        assert tree(box / "root") == expected, name


def test_the_real_tools_accept_every_box_tree(fleet):
    require_tools()
    _, boxes = fleet
    assert judge_trees([box / "root" for _, _, box in boxes]) == []


def test_seeds_carry_hostname_dropins_and_the_netplan_network(fleet):
    _, boxes = fleet
    for name, plan, box in boxes:
        seed = box / "seed"
        meta = yaml.safe_load((seed / "meta-data").read_text())
        assert meta["local-hostname"] == plan.hostname and meta["instance-id"].startswith(plan.hostname + "-")
        user_text = (seed / "user-data").read_text()
        assert user_text.startswith("#cloud-config\n")
        user = yaml.safe_load(user_text)
        assert user["hostname"] == plan.hostname
        wanted = {f.path: f for f in dropins.render(plan, TARGET) if f.path in (
            dropins.RESOLVED_FILE, dropins.TIMESYNCD_FILE, dropins.PROXY_FILE, dropins.PROXY_ENV_FILE,
            dropins.SYSCTL_FILE)}
        assert {w["path"]: (w["content"], w["permissions"], w["owner"]) for w in user["write_files"]
                if w["path"] != MACHINES_NETPLAN_FILE} == {
            p: (f.text, f"{f.mode:04o}", "root:root") for p, f in wanted.items()}
        network = yaml.safe_load((seed / "network-config").read_text())
        assert network["version"] == 2
        whole = yaml.safe_load(netplan_renderer.render(plan, TARGET)[0].content)["network"]
        if plan.topology == "wireless-bridge":
            # The bridge travels in its own netplan file (netplan 0.106, see fleet.seed_network).
            extra = yaml.safe_load(user["write_files"][0]["content"])["network"]
            assert user["write_files"][0]["path"] == MACHINES_NETPLAN_FILE
            assert user["write_files"][0]["permissions"] == "0600" and user["runcmd"][0] == ["netplan", "apply"]
            assert set(network) & set(extra) == {"version", "renderer"}
            network = {**network, **extra}
        assert network == whole, name
        secret = bool(plan.secrets())
        modes = {f: (seed / f).stat().st_mode & 0o777 for f in ("meta-data", "user-data", "network-config")}
        assert modes["meta-data"] == 0o644
        assert modes["network-config"] == (0o600 if (plan.wifi or (plan.cellular and plan.cellular.password))
                                          else 0o644), name
        assert modes["user-data"] == (0o600 if plan.proxy and plan.proxy.password else 0o644), name
        assert (box.stat().st_mode & 0o777) == (0o700 if secret else 0o755), name
        for s in plan.secrets():  # each secret is in the seed (as is, or in a proxy URL), in 0600 files only
            forms = (s.encode(), quote(s, safe="").encode())
            holders = [f for f in seed.iterdir() if any(form in f.read_bytes() for form in forms)]
            assert holders and all(f.stat().st_mode & 0o777 == 0o600 for f in holders), (name, s)


def test_cloud_init_reads_every_seed_and_netplan_accepts_what_it_writes(fleet, tmp_path):
    cloud_init = require_cloud_init()
    require_tools()
    _, boxes = fleet
    before = system_state()

    def convert(i_box):
        i, (name, plan, box) = i_box
        out = tmp_path / f"convert{i}"
        proc = subprocess.run([cloud_init, "devel", "net-convert", "--network-data", str(box / "seed/network-config"),
                               "--kind", "yaml", "--output-kind", "netplan", "--distro", "debian",
                               "--directory", str(out)], capture_output=True, text=True, timeout=120)
        return name, plan, out, proc

    def schema(box):
        return subprocess.run([cloud_init, "schema", "--config-file", str(box / "seed/user-data")],
                              capture_output=True, text=True, timeout=120)

    with ThreadPoolExecutor(max_workers=4) as pool:
        converted = list(pool.map(convert, enumerate(boxes)))
        schemas = list(pool.map(schema, [box for _, _, box in boxes]))
    for (name, plan, out, proc), (_, _, box) in zip(converted, boxes, strict=True):
        assert proc.returncode == 0, (name, proc.stderr)
        written = out / "etc/netplan/50-cloud-init.yaml"
        network = yaml.safe_load(written.read_text())["network"]
        assert network == yaml.safe_load((box / "seed/network-config").read_text()), name  # read, not altered
        # A root holding cloud-init's netplan at the mode netplan wants (cloud-init 22.4
        # writes 0644, which only draws netplan's permission warning).
        root = tmp_path / f"judge-{plan.hostname}-{name}"
        (root / "etc/netplan").mkdir(parents=True)
        target = root / "etc/netplan/50-cloud-init.yaml"
        target.write_bytes(written.read_bytes())
        target.chmod(0o600)
        for w in yaml.safe_load((box / "seed/user-data").read_text())["write_files"]:
            if w["path"].startswith("/etc/netplan/"):  # what user-data adds beside it
                extra = root / w["path"].lstrip("/")
                extra.write_text(w["content"])
                extra.chmod(int(w["permissions"], 8))
        ok, stderr = netplan_generate(root)
        assert ok and stderr == "", (name, stderr)
    for proc, (name, _, box) in zip(schemas, boxes, strict=True):
        assert proc.returncode == 0, (name, proc.stdout, proc.stderr)
        assert proc.stdout.strip() == f"Valid cloud-config: {box / 'seed/user-data'}", (name, proc.stdout)
        assert "deprecat" not in (proc.stdout + proc.stderr).lower(), name
    assert system_state() == before, "cloud-init or netplan touched this machine's configuration"


# ---------------------------------------------------------------------------------------
# Bad input: line numbers and fields, secrets, existing output.

def fleet_errors(text: str, plan: P.Plan | None = None, missing=()) -> list[str]:
    with pytest.raises(FleetError) as e:
        read_devices(text, plan or H.base_plan(), missing_secrets=list(missing), source="devices.csv")
    return e.value.lines


def test_bad_rows_name_their_line_and_field():
    text = ("hostname,machine_network.address,uplink.address,uplink.gateway\n"
            "edge-02,192.168.50.3/24,10.20.0.16/24,10.20.0.1\n"
            "\n"
            "edge-03,192.168.50.300/24,10.20.0.17/24,10.20.0.1\n"
            "edge-04,192.168.50.5/24,10.30.0.18/24,10.20.0.1\n"
            "edge-02,192.168.50.6/24,10.20.0.19/24,10.20.0.1\n"
            "edge-06,192.168.50.7/24,10.20.0.16/24,10.20.0.1\n"
            "edge-07,192.168.50.8/24\n"
            "edge_08,192.168.50.9/24,10.20.0.20/24,10.20.0.1\n")
    assert fleet_errors(text) == [
        "devices.csv line 4: machine_network.address: '192.168.50.300/24' is not an IPv4 address with prefix length, "
        "e.g. 192.168.50.2/24",
        "devices.csv line 5: uplink.gateway: 10.20.0.1 is outside 10.30.0.0/24; use an address inside it",
        "devices.csv line 6: hostname: edge-02 is already line 2's; each box needs its own",
        "devices.csv line 7: uplink.address: 10.20.0.16 is already line 2's; each box needs its own",
        "devices.csv line 8: has 2 values; the header names 4 fields",
        "devices.csv line 9: hostname: 'edge_08' is not a valid host name: use letters, digits and hyphens (not at "
        "the start or end of a label), e.g. edge-01",
    ]


def test_bad_headers_are_refused_before_any_row():
    assert fleet_errors("machine_network.address\n192.168.50.3/24\n") == [
        "devices.csv line 1: needs a hostname column: each box needs its own host name"]
    assert fleet_errors("hostname,uplink.gatway\nedge-02,10.20.0.1\n") == [
        "devices.csv line 1: uplink.gatway: unknown key; did you mean 'uplink.gateway'? (settable here: "
        "uplink.interface, uplink.ipv4, uplink.address, uplink.gateway)"]
    assert fleet_errors("hostname,hostname\na,b\n") == ["devices.csv line 1: hostname: named twice"]
    assert fleet_errors("hostname,machines[3].address\na,b\n")[0].startswith(
        "devices.csv line 1: machines[3].address: index 3 is out of range")
    assert fleet_errors("") == ["devices.csv: is empty; the first line names the fields, e.g. "
                                "hostname,machine_network.address"]
    assert fleet_errors("hostname\n\n") == ["devices.csv: has a header but no boxes; add one line per box"]
    assert fleet_errors('hostname\n"edge-01\n')[0].startswith("devices.csv line")


def test_missing_secrets_need_the_passphrase_or_a_column():
    without = split_secrets(P.load(REPO / "examples/wifi.yaml"))[0]
    assert fleet_errors("hostname\nedge-02\n", without, ["wifi.passphrase"]) == [
        "the bundle's secrets are not available (wifi.passphrase): give --passphrase-file with the bundle's "
        "passphrase, or a column for each in devices.csv"]
    devices = read_devices("hostname;wifi.passphrase\nedge-02; spaces kept \nedge-03;other passphrase\n", without,
                           missing_secrets=["wifi.passphrase"])
    assert [d.plan.wifi.passphrase for d in devices] == [" spaces kept ", "other passphrase"]
    assert fleet_errors("hostname,wifi.passphrase\nedge-02,short\n", without, ["wifi.passphrase"]) == [
        "devices.csv line 2: wifi.passphrase: is 5 characters; a WPA passphrase has 8-63 characters"]


def test_cli_fleet_without_passphrase_refuses_and_writes_nothing(tmp_path, capsys):
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(H.valid_bundle())
    (tmp_path / "devices.csv").write_text("hostname,machine_network.address\nedge-02,192.168.50.3/24\n")
    code = cli.main(["bundle", "fleet", str(bundle), "--allow-unsigned", "--devices", str(tmp_path / "devices.csv"),
                     "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "the bundle's secrets are not available (wifi.passphrase, proxy.password)" in err
    assert not (tmp_path / "out").exists()


def test_a_bundle_without_secrets_needs_no_passphrase(tmp_path, capsys):
    plan = P.load(REPO / "examples/isolated.yaml")
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(build_bundle(plan, None, target=TARGET))
    (tmp_path / "devices.csv").write_text("\ufeffhostname,machine_network.address\r\nedge-02,192.168.50.3/24\r\n")
    code = cli.main(["bundle", "fleet", str(bundle), "--allow-unsigned", "--devices", str(tmp_path / "devices.csv"),
                     "--out", str(tmp_path / "out"), "--cloud-init"])
    assert code == 0, capsys.readouterr().err
    box = tmp_path / "out/edge-02"
    assert (box / "root/etc/hostname").read_text() == "edge-02\n"
    # --cloud-init overrides the bundle's target: the tree then keeps cloud-init off the network.
    assert (box / ("root" + dropins.CLOUD_INIT_FILE)).is_file()
    assert all((box / "seed" / f).stat().st_mode & 0o777 == 0o644 for f in ("meta-data", "user-data", "network-config"))


def test_rerun_replaces_a_box_whole_and_refuses_foreign_directories(tmp_path, capsys):
    plan = H.base_plan()
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(build_bundle(plan, H.PASSPHRASE, target=TARGET, scrypt_n=H.SCRYPT_N))
    (tmp_path / "pass").write_text(H.PASSPHRASE)
    csv_file = tmp_path / "devices.csv"
    csv_file.write_text("hostname,uplink.address\nedge-02,10.20.0.16/24\n")
    argv = ["bundle", "fleet", str(bundle), "--allow-unsigned", "--devices", str(csv_file),
            "--out", str(tmp_path / "out"), "--passphrase-file", str(tmp_path / "pass")]
    assert cli.main(argv) == 0
    box = tmp_path / "out/edge-02"
    # What a run wrote is replaced whole, also when the new plan renders other files.
    older = box / "root/etc/NetworkManager/system-connections/old.nmconnection"
    older.parent.mkdir(parents=True)
    older.write_text("[connection]\n")
    record = json.loads((box / OUTPUT_RECORD).read_text())
    record["files"][older.relative_to(box).as_posix()] = hashlib.sha256(older.read_bytes()).hexdigest()
    (box / OUTPUT_RECORD).write_text(json.dumps(record))
    assert cli.main(argv) == 0
    assert not older.exists() and (box / "root/etc/hostname").exists()
    assert sorted(os.listdir(tmp_path / "out")) == ["edge-02"]  # no partial or old directories left
    # A file added or changed by hand inside it is never deleted: the rerun refuses, naming it.
    for damage, words in ((lambda: (box / "root/etc/notes.txt").write_text("mine"),
                           "root/etc/notes.txt was not written"),
                          (lambda: (box / "root/etc/hostname").write_text("edited\n"), "root/etc/hostname was changed"),
                          (lambda: (box / "seed/meta-data").unlink(), "seed/meta-data was removed")):
        assert cli.main(argv) == 0
        damage()
        capsys.readouterr()
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 2, err  # the unsigned WARNING, then the one line
        (box / "root/etc/notes.txt").unlink(missing_ok=True)
        shutil.rmtree(box)
    csv_file.write_text("hostname,uplink.address\nedge-03,10.20.0.17/24\n")
    (tmp_path / "out/edge-03").mkdir()
    (tmp_path / "out/edge-03/precious.txt").write_text("not ours")
    capsys.readouterr()
    assert cli.main(argv) == 2
    assert "exists and is not the output of a previous fleet run" in capsys.readouterr().err
    assert (tmp_path / "out/edge-03/precious.txt").read_text() == "not ours"


def test_instance_id_follows_the_configuration_not_the_secrets():
    plan = H.base_plan()
    ids = {}
    for name, p in (("same", plan), ("other-secret", apply_sets(plan, ["wifi.passphrase=another secret 1"])),
                    ("other-dns", apply_sets(plan, ["dns.servers=10.20.0.54"]))):
        meta = yaml.safe_load(seed_files(p, TARGET)[0].content)
        ids[name] = meta["instance-id"]
    assert ids["same"] == ids["other-secret"] != ids["other-dns"]


def test_why_the_wireless_bridge_seed_keeps_its_bridge_apart(tmp_path):
    # cloud-init writes network-config back with sorted keys (bridges before ethernets);
    # netplan 0.106 then parses twice and calls the WiFi access point a duplicate.
    require_tools()
    plan = P.load(REPO / "examples/wireless-bridge.yaml")
    whole = yaml.safe_load(netplan_renderer.render(plan, TARGET)[0].content)
    (tmp_path / "etc/netplan").mkdir(parents=True)
    written = tmp_path / "etc/netplan/50-cloud-init.yaml"
    written.write_text(yaml.safe_dump(whole, sort_keys=True))
    written.chmod(0o600)
    ok, stderr = netplan_generate(tmp_path)
    if ok:
        pytest.skip("this netplan parses the sorted file (LP: #1809994 fixed): fleet.seed_network's split is "
                    "no longer needed for it")
    assert "Duplicate access point SSID 'Plant-Floor'" in stderr


SEED_EXAMPLES = int(os.environ.get("EDGE_INSTALLER_SET_EXAMPLES", "200"))


def test_generated_plans_give_seeds_that_read_back_exactly(capsys):
    # Any valid plan (SSIDs and passwords with every quoting hazard): the seed's YAML reads
    # back as the renderer's network and the drop-ins' exact bytes.
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tests.strategies import valid_plans

    count = 0

    @settings(max_examples=SEED_EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(valid_plans(), st.from_regex(r"\A[a-z][a-z0-9-]{0,20}[a-z0-9]\Z"))
    def check(plan, hostname):
        nonlocal count
        count += 1
        plan = apply_sets(plan, [f"hostname={hostname}"])
        meta, user, net = seed_files(plan, TARGET)
        network = yaml.safe_load(net.content)
        doc = yaml.safe_load(user.content)
        extra = [w for w in doc["write_files"] if w["path"] == MACHINES_NETPLAN_FILE]
        if extra:
            network = {**network, **yaml.safe_load(extra[0]["content"])["network"]}
        assert network == yaml.safe_load(netplan_renderer.render(plan, TARGET)[0].content)["network"]
        files = {f.path: f.text for f in dropins.render(plan, TARGET)}
        assert all(files[w["path"]] == w["content"] for w in doc["write_files"] if w["path"] in files)
        assert yaml.safe_load(meta.content)["local-hostname"] == hostname

    check()
    with capsys.disabled():
        print(f"\n[hypothesis] seeds read back exactly: {count} generated cases")


# ---------------------------------------------------------------------------------------
# Speed without other bytes (issue 13: 5,000 boxes; figures in bench/fleet.py).

# Every quoting hazard a seed's strings can hold: YAML's implicit types, indicators, spaces
# and line breaks where block scalars need hints, document markers, long lines.
HAZARDS = ["", " ", "  lead", "trail ", "a  b", "yes", "No", "off", "ON", "null", "~", "Null", "true", "1", "-1",
           "0x1f", "0o17", "017", "1e3", ".5", "1_000", ".inf", "-.Inf", ".nan", "2001-12-14",
           "2001-12-14t21:59:43.10-05:00", "12:30:45", "<<", "=", "-", "- x", "--- x", "---", "...", "? x", "?x", ": x",
           "a: b", "a:b", "a #b", "a#b", "#x", "&a", "*a", "!tag", "|", ">", "'", '"', "%x", "@x", "`x", "[a]", "{a}",
           "a,b", "a[b]", "x: [1]", "\n", "\n\n", "a\n", "a\n\n", "a\n\n\n", "\na", "\n\nx", " a\nb\n", "a \nb\n",
           "a\n b\n", "a\n  b  \n", " \n",
           "line one\nline two", "#!/bin/sh\necho 'x' \"y\"\n", "key=value # not a comment\n", "http://u:p@h:3128/",
           "p%40ss%3Aw%23rd", "Plant-Floor", "wlan0", "192.168.50.2/24", "fe80::1", "52:54:00:00:00:01", "0644", "0600",
           "x" * 399, "y " * 199 + "y", ("z" * 399 + "\n") * 3, "edge-01"]


def test_the_fast_emitter_writes_what_pyyaml_writes():
    from installer.fleet import build as fleet
    from installer.render import yamltext

    if fleet._FastSeedDumper is None:
        pytest.skip("PyYAML without libyaml here: the seeds are written by its pure-Python emitter only")

    class Plain(yaml.SafeDumper):  # PyYAML's own emitter and resolver, nothing remembered
        pass

    Plain.add_representer(str, fleet._represent_str)

    def reference(data):
        return yaml.dump(data, Dumper=Plain, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1000)

    by_libyaml = 0
    for text in HAZARDS:
        for data in ({"k": text}, {text or "e": [text, {"content": text, "n": 1, "b": False, "z": None}]},
                     {"write_files": [{"path": "/etc/x", "content": text + "\n" + text}], "runcmd": [["a", text]]}):
            assert fleet._dump(data) == reference(data), repr(text)
            by_libyaml += yamltext.tame(data)
    assert by_libyaml > 2.5 * len(HAZARDS)  # nearly all of them went the fast way
    # Why only tame data: the two emitters differ at the edges. An astral character: PyYAML
    # writes it as it is, libyaml escapes it in double quotes; kept line breaks at the end of
    # a block: libyaml adds "..." after the document. Such data goes the slow way.
    for odd in ({"ssid": "x\U0001F600y"}, {"content": "a\n\n", "z": 1}):
        fast = yaml.dump(odd, Dumper=fleet._FastSeedDumper, sort_keys=False, default_flow_style=False,
                         allow_unicode=True, width=1000)
        assert fast != reference(odd) and not yamltext.tame(odd) and fleet._dump(odd) == reference(odd)
    assert not any(yamltext.tame({"k": v}) for v in ("x" * 401, "caf\u00e9", 1.5))


def test_generated_plans_give_the_seed_bytes_of_the_plain_pyyaml_path(monkeypatch):
    # The seed of any valid plan, written the fast way (libyaml's emitter and parser, the
    # netplan file shared with the tree, resolution remembered), byte for byte as PyYAML's
    # pure-Python emitter and parser write it from a fresh rendering.
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from installer.fleet import build as fleet
    from tests.strategies import valid_plans

    class Plain(yaml.SafeDumper):
        pass

    Plain.add_representer(str, fleet._represent_str)

    def reference_seed(plan):
        with monkeypatch.context() as m:
            m.setattr(fleet, "_FastSeedDumper", None)
            m.setattr(fleet, "_SeedDumper", Plain)
            m.setattr(fleet, "_NETPLAN_LOADER", yaml.SafeLoader)
            return seed_files(plan, TARGET)

    @settings(max_examples=SEED_EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(valid_plans(), st.from_regex(r"\A[a-z][a-z0-9-]{0,20}[a-z0-9]\Z"))
    def check(plan, hostname):
        plan = apply_sets(plan, [f"hostname={hostname}"])
        files = render(plan, TARGET)
        shared = next((f for f in files if f.path == netplan_renderer.NETPLAN_FILE), None)
        fast = seed_files(plan, TARGET, shared if plan.renderer == "netplan" else None)
        assert [(f.path, f.content, f.mode, f.secret) for f in fast] == [
            (f.path, f.content, f.mode, f.secret) for f in reference_seed(plan)]

    check()


def full_tree(top: Path) -> dict[str, tuple[str, int, bytes | None]]:
    """Every entry under top: kind, mode and (files) bytes."""
    entries = {}
    for p in sorted(top.rglob("*")):
        st = p.lstat()
        entries[p.relative_to(top).as_posix()] = ("dir" if p.is_dir() else "file", st.st_mode & 0o7777,
                                                  p.read_bytes() if p.is_file() else None)
    return entries


def base_devices(boxes: int) -> tuple[list, list[P.Plan]]:
    plan = H.base_plan()
    text, expected = devices_csv(plan, boxes)
    return read_devices(text, plan), expected


def test_workers_write_the_boxes_one_process_writes(tmp_path, monkeypatch):
    from installer.fleet import build as fleet

    monkeypatch.setattr(fleet, "COMMIT_BATCH", 7)  # several batches, one left over
    monkeypatch.setattr(fleet, "CHUNK", 3)
    devices, expected = base_devices(23)
    assert [d.plan for d in devices] == expected  # each box's plan, from its row again
    one = fleet.write_fleet(tmp_path / "one", devices, TARGET, jobs=1)
    two = fleet.write_fleet(tmp_path / "two", devices, TARGET, jobs=2)
    assert [p.name for p in one] == [p.name for p in two] == [p.hostname for p in expected]
    assert full_tree(tmp_path / "one") == full_tree(tmp_path / "two")
    assert sorted(os.listdir(tmp_path / "two")) == sorted(p.hostname for p in expected)  # nothing half-built left
    for plan in expected:
        box = tmp_path / "two" / plan.hostname
        assert tree(box / "root") == {f.path: (f.content, f.mode) for f in render(plan, TARGET)}
        assert {f.path: f.content for f in seed_files(plan, TARGET)} == {
            f.name: f.read_bytes() for f in (box / "seed").iterdir()}
    # A rerun by workers replaces them whole, as one process does.
    assert fleet.write_fleet(tmp_path / "one", devices, TARGET, jobs=2) == one
    assert full_tree(tmp_path / "one") == full_tree(tmp_path / "two")
    assert fleet.default_jobs(fleet.PARALLEL_FROM - 1) == 1 and 1 <= fleet.default_jobs(5000) <= fleet.MAX_JOBS


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_box_that_cannot_be_written_leaves_whole_boxes_only(tmp_path, monkeypatch, jobs):
    from installer.fleet import build as fleet
    from installer.writing.writer import WriteError

    monkeypatch.setattr(fleet, "COMMIT_BATCH", 4)
    monkeypatch.setattr(fleet, "CHUNK", 2)
    devices, expected = base_devices(12)
    build = fleet._build_box

    def failing(tmp, hostname, plan, target):  # the 10th box hits a full disk
        build(tmp, hostname, plan, target)
        if hostname == expected[9].hostname:
            raise WriteError(f"{tmp}/seed/user-data: no space left on device writing it")

    monkeypatch.setattr(fleet, "_build_box", failing)
    with pytest.raises(WriteError, match="no space left"):
        fleet.write_fleet(tmp_path / "out", devices, TARGET, jobs=jobs)
    names = sorted(os.listdir(tmp_path / "out"))
    # Only named boxes remain (no .partial folder), whole, from the first batches, in order.
    assert names == [p.hostname for p in expected[:len(names)]] and len(names) in (4, 8)
    assert all(fleet._not_ours(tmp_path / "out" / n, n) is None for n in names)


def test_workers_end_with_a_killed_parent(tmp_path):
    # A fleet killed outright (SIGKILL: no clean-up runs) leaves no worker waiting forever.
    import signal
    import subprocess
    import sys
    import time

    plan = H.base_plan()
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(build_bundle(plan, H.PASSPHRASE, target=TARGET, scrypt_n=H.SCRYPT_N))
    (tmp_path / "pass").write_text(H.PASSPHRASE)
    text, _ = devices_csv(plan, 150)
    (tmp_path / "devices.csv").write_text(text)
    proc = subprocess.Popen([sys.executable, "-m", "installer", "bundle", "fleet", str(bundle), "--allow-unsigned",
                             "--devices", str(tmp_path / "devices.csv"), "--out", str(tmp_path / "out"),
                             "--passphrase-file", str(tmp_path / "pass")], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def children(pid):
        found = []
        for entry in Path("/proc").iterdir():
            try:
                stat = (entry / "stat").read_text()
            except (OSError, ValueError):
                continue
            if entry.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        return found

    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers := children(proc.pid)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) >= 2, "no workers started"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{w}").exists() and "zombie" not in Path(f"/proc/{w}/status").read_text().lower()
                  for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        alive = [w for w in workers if Path(f"/proc/{w}").exists()
                 and "zombie" not in Path(f"/proc/{w}/status").read_text().lower()]
        assert not alive, f"workers left running: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        for w in workers:  # a failed run leaves none behind either
            try:
                os.kill(w, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_cli_jobs_chooses_the_workers_and_refuses_what_it_cannot_use(tmp_path, capsys, monkeypatch):
    from installer.fleet import build as fleet

    seen = []
    real = fleet.write_fleet
    monkeypatch.setattr(fleet, "write_fleet", lambda *a, **kw: seen.append(kw.get("jobs")) or real(*a, **kw))
    plan = P.load(REPO / "examples/isolated.yaml")
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(build_bundle(plan, None, target=TARGET))
    (tmp_path / "devices.csv").write_text("hostname\nedge-02\nedge-03\n")
    argv = ["bundle", "fleet", str(bundle), "--allow-unsigned", "--devices", str(tmp_path / "devices.csv")]
    assert cli.main([*argv, "--out", str(tmp_path / "one"), "--jobs", "1"]) == 0, capsys.readouterr().err
    assert cli.main([*argv, "--out", str(tmp_path / "two"), "--jobs", "2"]) == 0, capsys.readouterr().err
    assert seen == [1, 2] and full_tree(tmp_path / "one") == full_tree(tmp_path / "two")
    capsys.readouterr()
    for bad in ("0", "5", "two", "-1"):
        assert cli.main([*argv, "--out", str(tmp_path / "bad"), "--jobs", bad]) == 2
        err = capsys.readouterr().err
        assert "--jobs: give a whole number from 1 to 4" in err and err.count("\n") == 1, err
    assert not (tmp_path / "bad").exists()
