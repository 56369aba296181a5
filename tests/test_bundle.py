"""Bundles: no secret in clear, round trips, the CLI, the hostile corpus, and generated bad input.

The property tests count the cases they ran and print the counts (also with pytest -q):
EDGE_INSTALLER_BUNDLE_EXAMPLES sets max_examples per property (default 1000).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import tarfile
import zlib
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer import cli
from installer.fleet import archive as A
from installer.fleet import bundle as B
from installer.planning import plan as P
from installer.render import Target, render
from tests import hostile_bundles as H

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("EDGE_INSTALLER_BUNDLE_EXAMPLES", "1000"))
TARGETS = [Target(), Target(netplan_version=(0, 107), networkmanager=True, cloud_init=True)]
SECRETS = [H.WIFI_SECRET, H.PROXY_SECRET, H.APN_SECRET]


def secret_forms(secret: str) -> list[bytes]:
    """How a secret could appear in bytes: as is, percent-encoded (URLs), JSON-escaped."""
    return sorted({secret.encode(), quote(secret, safe="").encode(), quote(secret).encode(),
                   json.dumps(secret)[1:-1].encode()})


def assert_no_secret(data: bytes, where: str) -> None:
    for secret in SECRETS:
        for form in secret_forms(secret):
            assert form not in data, f"{where} holds the secret {secret!r} in clear (as {form!r})"


def run_cli(*argv: str, capsys) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def example_plans() -> list[tuple[str, P.Plan]]:
    plans = [(p.stem, P.load(p)) for p in sorted((REPO / "examples").glob("*.yaml"))]
    return plans + [("wifi-proxy", H.base_plan()), ("cellular-credentials", H.cellular_plan())]


# ---------------------------------------------------------------------------------------
# No secret in clear.

@pytest.mark.parametrize("plan", [H.base_plan(), H.cellular_plan()], ids=["wifi-proxy", "cellular"])
@pytest.mark.parametrize("passphrase", [H.PASSPHRASE, None], ids=["encrypted", "no-secrets"])
def test_exported_bundle_holds_no_secret_in_clear(plan, passphrase, tmp_path):
    assert plan.secrets(), "the test plan must hold secrets"
    # A report that quotes the secrets, as a careless check's evidence might.
    evidence = [f"saw {s!r} and {quote(s, safe='')}" for s in plan.secrets()]
    report = {"version": 1, "checks": [{"evidence": evidence + [f"via http://u:{quote(H.PROXY_SECRET)}@proxy:3128"]}]}
    for target in TARGETS:
        data = B.build_bundle(plan, passphrase, report=report, target=target, scrypt_n=H.SCRYPT_N)
        assert_no_secret(data, "the bundle's raw bytes")
        raw_tar = zlib.decompress(data, 31)
        assert_no_secret(raw_tar, "the decompressed bundle")
        for name, content in H.members_of(data):
            assert_no_secret(content, name)
        loaded = B.loads_bundle(data, passphrase)
        assert loaded.plan == plan if passphrase else loaded.plan != plan
        assert all(f.content.count(P.REDACTED.encode()) or not f.secret for f in loaded.files)


def test_cli_export_holds_no_secret_in_clear(tmp_path, capsys):
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(P.dumps(H.base_plan()))
    (tmp_path / "pass").write_text(H.PASSPHRASE + "\n")
    out = tmp_path / "b.tar.gz"
    code, stdout, err = run_cli("bundle", "export", str(plan_file), "-o", str(out), "--passphrase-file",
                                str(tmp_path / "pass"), "--netplan-version", "0.106", capsys=capsys)
    assert code == 0, err
    assert_no_secret(stdout.encode() + err.encode(), "the command's output")
    data = out.read_bytes()
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert_no_secret(data, "the bundle file")
    assert_no_secret(zlib.decompress(data, 31), "the decompressed bundle file")


# ---------------------------------------------------------------------------------------
# Round trips.

@pytest.mark.parametrize("name,plan", example_plans(), ids=[n for n, _ in example_plans()])
def test_bundle_round_trips_into_the_same_rendered_files(name, plan):
    for target in TARGETS:
        data = B.build_bundle(plan, H.PASSPHRASE, target=target, scrypt_n=H.SCRYPT_N)
        loaded = B.loads_bundle(data, H.PASSPHRASE)
        assert loaded.plan == plan
        assert loaded.missing_secrets == [] and loaded.secrets_present == bool(plan.secrets())
        assert loaded.target == target
        assert render(loaded.plan, target) == render(plan, target)
        # The bundled files are the masked rendering, paths and modes included.
        assert loaded.files == [dataclasses.replace(f, purpose=loaded.files[0].purpose, secret=False)
                                for f in render(plan.redacted(), target)]


def test_cli_round_trip_writes_the_plan_0600(tmp_path, capsys):
    plan = H.base_plan()
    (tmp_path / "plan.yaml").write_text(P.dumps(plan))
    (tmp_path / "pass").write_text(H.PASSPHRASE)
    report = {"version": 1, "summary": {"pass": 3, "warn": 0, "fail": 1, "skip": 0}, "checks": []}
    (tmp_path / "report.json").write_text(json.dumps(report))
    bundle = tmp_path / "b.tar.gz"
    assert run_cli("bundle", "keygen", "-o", str(tmp_path / "key"), capsys=capsys)[0] == 0
    assert run_cli("bundle", "export", str(tmp_path / "plan.yaml"), "-o", str(bundle), "--passphrase-file",
                   str(tmp_path / "pass"), "--report", str(tmp_path / "report.json"), "--sign-key",
                   str(tmp_path / "key"), capsys=capsys)[0] == 0
    out = tmp_path / "imported" / "plan.yaml"
    out.parent.mkdir()
    code, stdout, err = run_cli("bundle", "import", str(bundle), "--passphrase-file", str(tmp_path / "pass"),
                                "-o", str(out), "--root", str(tmp_path), "--trust-key", str(tmp_path / "key.pub"),
                                capsys=capsys)
    assert code == 0, err
    assert "Signed by SHA256:" in stdout and err == ""
    assert P.load(out) == plan
    assert out.stat().st_mode & 0o777 == 0o600
    assert '"fail": 1' in stdout and "Per box, set: hostname, machine_network.address, uplink.address" in stdout
    assert B.load_bundle(bundle, H.PASSPHRASE).report == report


def test_manifest_names_every_member_with_size_and_digest():
    data = H.valid_bundle(report={"version": 1})
    members = H.members_of(data)
    assert members[0][0] == B.MANIFEST
    manifest = json.loads(members[0][1])
    assert manifest["format"] == "edge-installer-bundle" and manifest["format_version"] == 1
    assert manifest["created"] == "2023-11-14T22:13:20Z" and manifest["edge_installer_version"] == "test"
    listed = {m["path"]: m for m in manifest["members"]}
    assert set(listed) == {n for n, _ in members[1:]}
    assert {B.PLAN_MEMBER, B.REPORT_MEMBER, B.SECRETS_MEMBER, "files/etc/netplan/90-edge-installer.yaml"} <= set(listed)
    for name, content in members[1:]:
        assert listed[name]["size"] == len(content)
        assert listed[name]["sha256"] == hashlib.sha256(content).hexdigest()
    assert listed["files/etc/netplan/90-edge-installer.yaml"]["mode"] == "0600"
    secrets = manifest["secrets"]
    assert secrets["state"] == "encrypted" and secrets["fields"] == ["wifi.passphrase", "proxy.password"]
    assert secrets["kdf"]["name"] == "scrypt" and len(base64.b64decode(secrets["kdf"]["salt"])) == 16
    assert secrets["cipher"] == {"name": "AES-256-GCM", "nonce": secrets["cipher"]["nonce"]}
    # Two exports of one plan never share salt or nonce.
    again = json.loads(H.members_of(H.valid_bundle())[0][1])["secrets"]
    assert again["kdf"]["salt"] != secrets["kdf"]["salt"] and again["cipher"] != secrets["cipher"]


def test_no_secrets_import_reports_the_missing_secrets(tmp_path, capsys):
    plan = H.base_plan()
    loaded = B.loads_bundle(H.valid_bundle(passphrase=None), None)
    assert loaded.missing_secrets == ["wifi.passphrase", "proxy.password"]
    assert not loaded.secrets_present
    assert loaded.plan == B.split_secrets(plan)[0]
    assert loaded.manifest["secrets"] == {"state": "omitted", "fields": ["wifi.passphrase", "proxy.password"]}
    assert loaded.per_box_fields() == ["hostname", "machine_network.address", "uplink.address", "uplink.gateway",
                                       "wifi.passphrase", "proxy.password"]
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(H.valid_bundle(passphrase=None))
    code, out, err = run_cli("bundle", "import", str(bundle), "-o", str(tmp_path / "p.yaml"), "--root", str(tmp_path),
                             "--allow-unsigned", capsys=capsys)
    assert code == 0, err
    assert err.startswith("WARNING: this bundle is not signed; used anyway because of --allow-unsigned")
    assert "Missing secrets: wifi.passphrase, proxy.password (left out at export" in out
    assert P.load(tmp_path / "p.yaml").wifi.passphrase is None


def test_encrypted_bundle_without_passphrase_prefills_all_but_the_secrets():
    loaded = B.loads_bundle(H.valid_bundle(), None)
    assert loaded.missing_secrets == ["wifi.passphrase", "proxy.password"] and not loaded.secrets_present
    assert loaded.plan.secrets() == []
    full = B.loads_bundle(H.valid_bundle(), H.PASSPHRASE)
    assert full.plan == H.base_plan() and full.per_box_fields() == loaded.per_box_fields()[:4]


def test_per_box_fields_follow_the_topology():
    single = P.load(REPO / "examples/single.yaml")
    assert B.per_box_fields(single)[0] == "hostname" and "machine_network.address" not in B.per_box_fields(single)
    wifi = B.split_secrets(P.load(REPO / "examples/wifi.yaml"))[0]
    assert B.per_box_fields(wifi) == ["hostname", "machine_network.address", "wifi.passphrase"]


def test_is_bundle_tells_bundles_from_plans(tmp_path):
    (tmp_path / "b").write_bytes(H.valid_bundle())
    (tmp_path / "p").write_text(P.dumps(H.base_plan()))
    assert B.is_bundle(tmp_path / "b") and not B.is_bundle(tmp_path / "p") and not B.is_bundle(tmp_path / "x")


# ---------------------------------------------------------------------------------------
# The command line refuses clearly.

def test_export_needs_a_choice_for_the_secrets_and_a_real_passphrase(tmp_path, capsys):
    (tmp_path / "plan.yaml").write_text(P.dumps(H.base_plan()))
    code, _, err = run_cli("bundle", "export", str(tmp_path / "plan.yaml"), "-o", str(tmp_path / "b"), capsys=capsys)
    assert code == 2 and "holds wifi.passphrase, proxy.password: give --passphrase-file" in err
    (tmp_path / "short").write_text("abc\n")
    code, _, err = run_cli("bundle", "export", str(tmp_path / "plan.yaml"), "-o", str(tmp_path / "b"),
                           "--passphrase-file", str(tmp_path / "short"), capsys=capsys)
    assert code == 2 and "use at least 8" in err
    (tmp_path / "empty").write_text("\n")
    code, _, err = run_cli("bundle", "import", str(tmp_path / "b"), "--passphrase-file", str(tmp_path / "empty"),
                           capsys=capsys)
    assert code == 2 and "first line is empty" in err
    (tmp_path / "report.json").write_text("not json")
    code, _, err = run_cli("bundle", "export", str(tmp_path / "plan.yaml"), "-o", str(tmp_path / "b"), "--no-secrets",
                           "--report", str(tmp_path / "report.json"), capsys=capsys)
    assert code == 2 and "is not JSON" in err
    assert not (tmp_path / "b").exists()
    code, _, err = run_cli("bundle", capsys=capsys)
    assert code == 2 and "ACTION" in err


def test_a_plan_without_secrets_exports_without_a_choice(tmp_path, capsys):
    out = tmp_path / "b.tar.gz"
    code, stdout, err = run_cli("bundle", "export", str(REPO / "examples/isolated.yaml"), "-o", str(out),
                                "--no-cloud-init", capsys=capsys)
    assert code == 0, err
    loaded = B.load_bundle(out, None)
    assert loaded.manifest["secrets"] == {"state": "none", "fields": []} and loaded.missing_secrets == []
    assert loaded.plan == P.load(REPO / "examples/isolated.yaml") and not loaded.target.cloud_init
    code, _, err = run_cli("bundle", "export", str(REPO / "examples/isolated.yaml"), "-o", str(out), "--no-secrets",
                           "--passphrase-file", "x", capsys=capsys)
    assert code == 2 and "not allowed with argument" in err


def test_import_of_missing_directory_or_fifo_is_one_line(tmp_path, capsys):
    os.mkfifo(tmp_path / "fifo")
    for path, reason in ((tmp_path / "nope", "does not exist"), (tmp_path, "is a directory"),
                         (tmp_path / "fifo", "is not a regular file"), (Path("/dev/zero"), "is not a regular file")):
        code, _, err = run_cli("bundle", "import", str(path), capsys=capsys)
        assert code == 2 and err.count("\n") == 1 and reason in err, err


# ---------------------------------------------------------------------------------------
# The hostile corpus.

CORPUS = H.corpus()


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_hostile_bundle_is_refused_with_its_reason(case):
    with pytest.raises(B.BundleError) as refused:
        B.loads_bundle(case.data, case.passphrase)
    assert case.reason in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_cli_refuses_hostile_bundle_and_writes_nothing(case, tmp_path, capsys, monkeypatch):
    corpus_dir, work = tmp_path / "corpus", tmp_path / "work" / "deep"
    corpus_dir.mkdir()
    work.mkdir(parents=True)
    bundle = corpus_dir / f"{case.name}.tar.gz"
    bundle.write_bytes(case.data)
    argv = ["bundle", "import", str(bundle), "-o", str(work / "plan.yaml")]
    if case.passphrase:
        (corpus_dir / "pass").write_text(case.passphrase)
        argv += ["--passphrase-file", str(corpus_dir / "pass")]
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    monkeypatch.chdir(work)
    code, out, err = run_cli(*argv, capsys=capsys)
    assert code == 2, (out, err)
    assert err == f"{bundle}: refused: {err.split(': refused: ', 1)[1]}" and err.count("\n") == 1
    assert case.reason in err and "Traceback" not in err
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


def test_bomb_and_huge_member_are_refused_without_reading_them():
    bomb = next(c for c in CORPUS if c.name == "decompression-bomb").data
    stream = A._CappedGunzip(io.BytesIO(bomb), B.MAX_TOTAL_BYTES)
    with pytest.raises(A.ArchiveError, match="decompression bomb"):
        while stream.read(1 << 20):
            pass
    assert stream.produced <= B.MAX_TOTAL_BYTES + A._CHUNK
    # The 2 GB member: refused at its header, after the manifest's few KB.
    huge = next(c for c in CORPUS if c.name == "declared-2GB").data
    counting = _Counting(huge)
    with pytest.raises(B.BundleError, match="refused without reading it"):
        B._members_of(counting)
    assert counting.consumed == len(huge) < 4096


class _Counting(io.BytesIO):
    consumed = 0

    def read(self, n=-1):
        data = super().read(n)
        self.consumed = max(self.consumed, self.tell())
        return data


def test_the_corpus_builder_writes_its_files(tmp_path):
    assert H.main([str(tmp_path)]) == 0
    index = json.loads((tmp_path / "index.json").read_text())
    assert len(index) == len(CORPUS) >= 40
    assert all((tmp_path / f"{name}.tar.gz").is_file() for name in index)


# ---------------------------------------------------------------------------------------
# Generated bad input (hypothesis). Each property counts its cases; the counts are printed.

COUNTS: dict[str, int] = {}
GOOD = H.valid_bundle()
GOOD_TAR = zlib.decompress(GOOD, 31)
GOOD_MEMBERS = dict(H.members_of(GOOD))
PLAN = H.base_plan()
_settings = settings(max_examples=EXAMPLES, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


def _import_never_raises_else(data: bytes, passphrase: str | None = H.PASSPHRASE) -> B.LoadedBundle | None:
    try:
        return B.loads_bundle(data, passphrase)
    except B.BundleError as e:
        assert str(e) and "\n" not in str(e)
        return None


def _report(capsys, name: str) -> None:
    with capsys.disabled():
        print(f"\n[hypothesis] {name}: {COUNTS[name]} generated cases")
    assert COUNTS[name] >= min(EXAMPLES, 50)


def test_plan_loading_never_raises_on_arbitrary_text_or_bytes(capsys):
    @_settings
    @given(st.one_of(st.text(), st.binary(), st.text(alphabet="version: 1\n{}[]-,&*!|>'\"%@`#?:\t ").map(str)))
    def check(data):
        _count("plan.loads")
        try:
            P.loads(data)
        except P.PlanError as e:
            assert e.errors and all(isinstance(err.field, str) and err.message for err in e.errors)

    check()
    _report(capsys, "plan.loads")


def test_import_never_raises_on_random_bytes(capsys):
    @_settings
    @given(st.one_of(st.binary(max_size=4096), st.binary(max_size=4096).map(lambda b: b"\x1f\x8b" + b),
                     st.binary(max_size=4096).map(H.gz)))
    def check(data):
        _count("import random bytes")
        assert _import_never_raises_else(data) is None

    check()
    _report(capsys, "import random bytes")


_names = st.sampled_from([B.MANIFEST, B.PLAN_MEMBER, B.REPORT_MEMBER, B.SECRETS_MEMBER, "files/etc/hostname",
                          "../x", "/etc/x", "files/etc/../x", "files//etc", "a\\b", ""]) | st.text(max_size=30)
_types = st.sampled_from([tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                          tarfile.DIRTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE, b"x", b"g"])


@st.composite
def random_archives(draw):
    entries = []
    for _ in range(draw(st.integers(0, 6))):
        name = draw(_names)
        kind = draw(_types)
        data = draw(st.sampled_from([GOOD_MEMBERS.get(name, b"")]) | st.binary(max_size=256))
        info = tarfile.TarInfo(name)
        info.type = kind
        info.size = len(data) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE) else 0
        info.linkname = draw(st.sampled_from(["", "/etc/shadow", "plan.yaml"]))
        entries.append((info, data if info.size else None))
    fmt = draw(st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
    try:
        return H.gz(H.tar(entries, fmt=fmt))
    except (ValueError, UnicodeError, tarfile.TarError):
        return H.gz(b"")  # a header tarfile itself cannot write


def test_import_never_raises_on_random_archives(capsys):
    @_settings
    @given(random_archives())
    def check(data):
        _count("import random archives")
        assert _import_never_raises_else(data) is None

    check()
    _report(capsys, "import random archives")


@st.composite
def mutations(draw, base: bytes):
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["truncate", "flip", "append", "insert", "delete"]))
        if op == "truncate":
            del data[draw(st.integers(0, max(len(data) - 1, 0))):]
        elif op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=64))
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and data:
            i = draw(st.integers(0, len(data) - 1))
            del data[i:i + draw(st.integers(1, 16))]
    return bytes(data)


def test_mutated_bundles_are_refused_or_load_the_original(capsys):
    # Mutations of the compressed file (caught mostly by gzip's CRC) and of the archive inside
    # it, re-compressed (caught by tar's header checksums, the manifest's digests, the
    # AES-GCM tag). A mutation that changes no content (the gzip header's timestamp, tar
    # padding) may load: then it must load exactly the original plan.
    @_settings
    @given(st.one_of(mutations(GOOD), mutations(GOOD_TAR).map(H.gz)))
    def check(data):
        _count("import mutated bundles")
        loaded = _import_never_raises_else(data)
        if loaded is not None:
            assert loaded.plan == PLAN and loaded.missing_secrets == []

    check()
    _report(capsys, "import mutated bundles")
