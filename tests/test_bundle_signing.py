"""Signed bundles (issue 11): keygen, export --sign-key, trust at import/apply/fleet, tampering,
secrets downgrades, output-equals-input, fleet folders it did not write, and manifest text
that must not reach the terminal raw.

Every crafted bundle starts from a valid one and is re-packed as a forger who knows the
format would: digests recomputed, the manifest rewritten, the signature kept or re-made.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from installer import cli
from installer.fleet import bundle as B
from installer.fleet import keys as K
from installer.planning import plan as P
from tests import hostile_bundles as H

REPO = Path(__file__).resolve().parent.parent


def run_cli(*argv: str, capsys) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def keypair(directory: Path, name: str = "key"):
    """A key made by `bundle keygen` (through the library), loaded: (private key, raw public key)."""
    raw = K.generate_signing_key(directory / name)
    return K.load_signing_key(directory / name), raw


def signed(key, plan: P.Plan | None = None, passphrase: str | None = H.PASSPHRASE) -> bytes:
    return B.build_bundle(plan or H.base_plan(), passphrase, created=1_700_000_000, version="test",
                          scrypt_n=H.SCRYPT_N, sign_key=key)


def trusting_root(tmp_path: Path, *raws: bytes) -> Path:
    """A --root whose trust file lists these public keys."""
    root = tmp_path / "box"
    (root / "etc/edge-installer").mkdir(parents=True, exist_ok=True)
    (root / K.TRUST_FILE).write_text("# keys of the IT desk\n" + "".join(K.public_key_line(r) + "\n" for r in raws))
    return root


def import_argv(bundle: Path, root: Path, *more: str) -> list[str]:
    return ["bundle", "import", str(bundle), "--root", str(root), *more]


# ---------------------------------------------------------------------------------------
# keygen

def test_keygen_writes_a_0600_pem_and_a_pub_and_never_overwrites(tmp_path, capsys):
    key = tmp_path / "signing.key"
    code, out, err = run_cli("bundle", "keygen", "-o", str(key), capsys=capsys)
    assert code == 0, err
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    raw = K.parse_public_keys((tmp_path / "signing.key.pub").read_text(), "pub")[0]
    digest = hashlib.sha256(raw).hexdigest()
    assert K.fingerprint(raw) == "SHA256:" + ":".join(digest[i:i + 4] for i in range(0, 64, 4))
    assert f"Fingerprint: {K.fingerprint(raw)}" in out and K.public_key_line(raw) in out
    assert key.read_bytes().decode() not in out  # the private key is never printed
    before = key.read_bytes(), (tmp_path / "signing.key.pub").read_bytes()
    code, out, err = run_cli("bundle", "keygen", "-o", str(key), capsys=capsys)
    assert code == 2 and "exists; a key is never overwritten" in err and err.count("\n") == 1
    assert (key.read_bytes(), (tmp_path / "signing.key.pub").read_bytes()) == before
    # A stray KEY.pub is not overwritten either, and then no private key is left behind.
    (tmp_path / "other.pub").write_text("mine\n")
    assert run_cli("bundle", "keygen", "-o", str(tmp_path / "other"), capsys=capsys)[0] == 2
    assert not (tmp_path / "other").exists() and (tmp_path / "other.pub").read_text() == "mine\n"


def test_sign_key_that_is_not_a_private_key_is_one_line(tmp_path, capsys):
    _, raw = keypair(tmp_path)
    (tmp_path / "plan.yaml").write_text(P.dumps(H.base_plan()))
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "shared.key").write_bytes((tmp_path / "key").read_bytes())
    os.chmod(tmp_path / "shared.key", 0o644)
    for bad, reason in ((tmp_path / "key.pub", "is not an unencrypted PEM private key"),
                        (tmp_path / "nope", "does not exist"),
                        (tmp_path / "fifo", "not a regular file"),  # refused at once, never waited on
                        (tmp_path / "shared.key", "is readable by others (mode 0644)")):
        code, _, err = run_cli("bundle", "export", str(tmp_path / "plan.yaml"), "-o", str(tmp_path / "b"),
                               "--no-secrets", "--sign-key", str(bad), capsys=capsys)
        assert code == 2 and reason in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "b").exists()


def test_a_report_that_is_not_a_regular_file_is_refused_at_once(tmp_path, capsys):
    (tmp_path / "plan.yaml").write_text(P.dumps(H.base_plan()))
    os.mkfifo(tmp_path / "report.json")
    code, _, err = run_cli("bundle", "export", str(tmp_path / "plan.yaml"), "-o", str(tmp_path / "b"),
                           "--no-secrets", "--report", str(tmp_path / "report.json"), capsys=capsys)
    assert code == 2 and f"--report {tmp_path / 'report.json'}" in err and "not a regular file" in err
    assert not (tmp_path / "b").exists()


# ---------------------------------------------------------------------------------------
# What is signed

def test_signature_member_is_outside_the_manifest_and_holds_no_private_key(tmp_path):
    key, raw = keypair(tmp_path)
    data = signed(key)
    members = dict(H.members_of(data))
    manifest = json.loads(members[B.MANIFEST])
    assert B.SIGNATURE_MEMBER not in {m["path"] for m in manifest["members"]}
    sig = json.loads(members[B.SIGNATURE_MEMBER])
    assert sig["algorithm"] == "ed25519" and base64.b64decode(sig["public_key"]) == raw
    from cryptography.hazmat.primitives import serialization

    private = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    pem = (tmp_path / "key").read_bytes()
    for blob in members.values():
        assert private not in blob and base64.b64encode(private) not in blob and pem not in blob
    assert B.loads_bundle(data, H.PASSPHRASE).signer == raw


def _tamper_plan(members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return [(n, d.replace(b"edge-01", b"edge-66") if n == B.PLAN_MEMBER else d) for n, d in members]


def _omit_secrets(manifest: dict) -> None:
    manifest["secrets"] = {"state": "omitted", "fields": manifest["secrets"]["fields"]}
    manifest["members"] = [m for m in manifest["members"] if m["path"] != B.SECRETS_MEMBER]


def _without(members, name):
    return [(n, d) for n, d in members if n != name]


def test_unchanged_repack_still_verifies(tmp_path):
    # The control for the tampering tests below: re-packing alone breaks nothing.
    key, raw = keypair(tmp_path)
    assert B.loads_bundle(H.repack(H.members_of(signed(key))), H.PASSPHRASE).signer == raw


@pytest.mark.parametrize("case", ["plan-byte-digests-recomputed", "state-flipped-to-omitted",
                                  "manifest-created-edited", "file-member-digests-recomputed"])
def test_any_change_under_the_signature_is_always_refused(case, tmp_path, capsys):
    key, raw = keypair(tmp_path)
    members = H.members_of(signed(key))
    if case == "plan-byte-digests-recomputed":
        data = H.repack(_tamper_plan(members), refresh=(B.PLAN_MEMBER,))
    elif case == "state-flipped-to-omitted":
        data = H.repack(_without(members, B.SECRETS_MEMBER), manifest_edit=_omit_secrets)
    elif case == "manifest-created-edited":
        data = H.repack(members, manifest_edit=lambda m: m.update(created="2030-01-01T00:00:00Z"))
    else:
        name = "files/etc/hostname"
        data = H.repack([(n, b"evil\n" if n == name else d) for n, d in members], refresh=(name,))
    with pytest.raises(B.BundleError, match=r"the signature does not match manifest\.json"):
        B.loads_bundle(data, H.PASSPHRASE)
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(data)
    (tmp_path / "pass").write_text(H.PASSPHRASE)
    root = trusting_root(tmp_path, raw)
    # Refused even with the signer trusted, a passphrase and --allow-unsigned.
    code, out, err = run_cli(*import_argv(bundle, root, "--passphrase-file", str(tmp_path / "pass"),
                                          "--allow-unsigned", "-o", str(tmp_path / "p.yaml")), capsys=capsys)
    assert code == 2 and "signature does not match" in err and err.count("\n") == 1
    assert not (tmp_path / "p.yaml").exists() and "Signed by" not in out


def test_a_changed_member_byte_without_new_digests_is_refused(tmp_path):
    key, _ = keypair(tmp_path)
    data = H.repack(_tamper_plan(H.members_of(signed(key))))
    with pytest.raises(B.BundleError, match="SHA-256 does not match"):
        B.loads_bundle(data, H.PASSPHRASE)


def test_a_bad_signature_member_is_one_line(tmp_path):
    key, _ = keypair(tmp_path)
    members = H.members_of(signed(key))
    for doc, reason in (({"algorithm": "rsa", "public_key": "", "signature": ""}, "algorithm must be 'ed25519'"),
                        ({"algorithm": "ed25519", "public_key": "AAAA", "signature": "AAAA"}, "public_key must be 32"),
                        ([], "must hold exactly")):
        data = H.repack([(n, json.dumps(doc).encode() if n == B.SIGNATURE_MEMBER else d) for n, d in members])
        with pytest.raises(B.BundleError, match=reason):
            B.loads_bundle(data, None)


# ---------------------------------------------------------------------------------------
# Secrets downgrades, signed or not

def test_stripped_or_flipped_secrets_are_refused_even_with_the_passphrase(tmp_path):
    key, _ = keypair(tmp_path)
    for data in (signed(key), H.valid_bundle()):
        members = H.members_of(data)
        sig = "signature does not match|" if B.SIGNATURE_MEMBER in dict(members) else ""
        # secrets.enc removed from the archive: the manifest still lists it.
        with pytest.raises(B.BundleError, match=r"listed in manifest\.json but missing"):
            B.loads_bundle(H.repack(_without(members, B.SECRETS_MEMBER)), H.PASSPHRASE)
        # ... and from the manifest's members too, the state left "encrypted".
        drop = lambda m: m.update(members=[e for e in m["members"] if e["path"] != B.SECRETS_MEMBER])  # noqa: E731
        with pytest.raises(B.BundleError, match=sig + "state encrypted needs member secrets.enc"):
            B.loads_bundle(H.repack(_without(members, B.SECRETS_MEMBER), manifest_edit=drop), H.PASSPHRASE)
        # state flipped to omitted while secrets.enc is still there.
        flip = lambda m: m.update(secrets={"state": "omitted", "fields": m["secrets"]["fields"]})  # noqa: E731
        with pytest.raises(B.BundleError, match=sig + "state omitted has no key material and no secrets.enc"):
            B.loads_bundle(H.repack(members, manifest_edit=flip), H.PASSPHRASE)
    # The full downgrade (state omitted, no secrets.enc) is consistent: only a signature tells.
    members = H.members_of(signed(key))
    with pytest.raises(B.BundleError, match="signature does not match"):
        B.loads_bundle(H.repack(_without(members, B.SECRETS_MEMBER), manifest_edit=_omit_secrets), H.PASSPHRASE)


# ---------------------------------------------------------------------------------------
# Trust, at import

def test_trusted_signer_is_shown_untrusted_or_unsigned_refused_unless_allowed(tmp_path, capsys):
    key, raw = keypair(tmp_path, "ours")
    other, other_raw = keypair(tmp_path, "theirs")
    root = trusting_root(tmp_path, raw)
    cases = {"ours": signed(key), "theirs": signed(other), "unsigned": H.valid_bundle()}
    for name, data in cases.items():
        (tmp_path / f"{name}.tar.gz").write_bytes(data)
    code, out, err = run_cli(*import_argv(tmp_path / "ours.tar.gz", root), capsys=capsys)
    assert code == 0, err
    assert out.splitlines()[0] == f"Signed by {K.fingerprint(raw)}" and err == ""
    # Re-signed by a forger's key: refused, naming the key, the trust file and the ways on.
    code, out, err = run_cli(*import_argv(tmp_path / "theirs.tar.gz", root), capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and out == ""
    assert f"is signed by {K.fingerprint(other_raw)}, which is not a trusted key" in err
    assert str(root / K.TRUST_FILE) in err and "--trust-key" in err and "--allow-unsigned" in err
    code, out, err = run_cli(*import_argv(tmp_path / "unsigned.tar.gz", root), capsys=capsys)
    assert code == 2 and "refused: is not signed" in err and err.count("\n") == 1
    # --trust-key adds a key for this run.
    code, out, err = run_cli(*import_argv(tmp_path / "theirs.tar.gz", root, "--trust-key",
                                          str(tmp_path / "theirs.pub")), capsys=capsys)
    assert code == 0 and f"Signed by {K.fingerprint(other_raw)}" in out
    # --allow-unsigned: used, with a WARNING on stderr.
    for name, why in (("theirs", "which is not a trusted key"), ("unsigned", "is not signed")):
        code, out, err = run_cli(*import_argv(tmp_path / f"{name}.tar.gz", root, "--allow-unsigned"), capsys=capsys)
        assert code == 0 and err.startswith("WARNING: this bundle ") and why in err and "Signed by" not in out


def test_a_bad_trust_file_line_is_one_line_naming_it(tmp_path, capsys):
    key, _ = keypair(tmp_path)
    root = trusting_root(tmp_path)
    (root / K.TRUST_FILE).write_text("# ok\nssh-rsa AAAAB3Nza\n")
    (tmp_path / "b.tar.gz").write_bytes(signed(key))
    code, _, err = run_cli(*import_argv(tmp_path / "b.tar.gz", root), capsys=capsys)
    assert code == 2 and err == f"{root / K.TRUST_FILE} line 2: is not a public key; each line holds " \
                                "`ed25519 BASE64` as `bundle keygen` writes it to KEY.pub (or a # comment)\n"
    code, _, err = run_cli(*import_argv(tmp_path / "b.tar.gz", tmp_path / "empty-root", "--trust-key",
                                        str(tmp_path / "key")), capsys=capsys)
    assert code == 2 and f"--trust-key {tmp_path / 'key'} line 1: is not a public key" in err


# ---------------------------------------------------------------------------------------
# Trust, at apply and fleet

def test_apply_of_a_bundle_checks_its_signer(tmp_path, capsys):
    key, raw = keypair(tmp_path)
    other, _ = keypair(tmp_path, "other")
    (tmp_path / "pass").write_text(H.PASSPHRASE)
    for name, data in (("ours", signed(key)), ("theirs", signed(other)), ("unsigned", H.valid_bundle())):
        (tmp_path / f"{name}.tar.gz").write_bytes(data)
    root = trusting_root(tmp_path, raw)

    def apply(name: str, *more: str):
        return run_cli("apply", str(tmp_path / f"{name}.tar.gz"), "--root", str(root), "--passphrase-file",
                       str(tmp_path / "pass"), "--no-confirm", "--no-cloud-init", "--set", "hostname=edge-07", *more,
                       capsys=capsys)

    for name in ("theirs", "unsigned"):
        code, _, err = apply(name)
        assert code == 2 and "refused: is" in err and err.count("\n") == 1, err
        assert not (root / "etc/hostname").exists()
    code, out, err = apply("ours")
    assert code == 0, err
    assert f"Signed by {K.fingerprint(raw)}" in out and (root / "etc/hostname").read_text() == "edge-07\n"
    code, out, err = apply("unsigned", "--allow-unsigned")
    assert code == 0 and "WARNING: this bundle is not signed" in err


def test_fleet_checks_its_signer(tmp_path, capsys):
    key, raw = keypair(tmp_path)
    (tmp_path / "pass").write_text(H.PASSPHRASE)
    (tmp_path / "devices.csv").write_text("hostname,uplink.address\nedge-02,10.20.0.16/24\n")
    (tmp_path / "b.tar.gz").write_bytes(H.valid_bundle())
    (tmp_path / "s.tar.gz").write_bytes(signed(key))
    root = trusting_root(tmp_path, raw)
    argv = ["--devices", str(tmp_path / "devices.csv"), "--passphrase-file", str(tmp_path / "pass"),
            "--root", str(root)]
    code, _, err = run_cli("bundle", "fleet", str(tmp_path / "b.tar.gz"), "--out", str(tmp_path / "o1"), *argv,
                           capsys=capsys)
    assert code == 2 and "refused: is not signed" in err and not (tmp_path / "o1").exists()
    code, out, err = run_cli("bundle", "fleet", str(tmp_path / "s.tar.gz"), "--out", str(tmp_path / "o2"), *argv,
                             capsys=capsys)
    assert code == 0 and f"Signed by {K.fingerprint(raw)}" in out and (tmp_path / "o2/edge-02/seed").is_dir()


# ---------------------------------------------------------------------------------------
# Output bugs

def test_export_onto_an_input_is_refused_before_writing(tmp_path, capsys):
    plan = tmp_path / "sub" / "p.yaml"
    plan.parent.mkdir()
    plan.write_text(P.dumps(H.base_plan()))
    original = plan.read_bytes()
    (tmp_path / "link.yaml").symlink_to(plan)
    os.link(plan, tmp_path / "hard.yaml")
    (tmp_path / "pass").write_text(H.PASSPHRASE)
    for output in (plan, tmp_path / "link.yaml", tmp_path / "sub" / ".." / "sub" / "p.yaml", tmp_path / "hard.yaml"):
        code, _, err = run_cli("bundle", "export", str(plan), "-o", str(output), "--passphrase-file",
                               str(tmp_path / "pass"), capsys=capsys)
        assert code == 2 and "is the same file as PLAN" in err and err.count("\n") == 1, (output, err)
        assert plan.read_bytes() == original
    code, _, err = run_cli("bundle", "export", str(plan), "-o", str(tmp_path / "pass"), "--passphrase-file",
                           str(tmp_path / "pass"), capsys=capsys)
    assert code == 2 and "is the same file as --passphrase-file" in err
    assert (tmp_path / "pass").read_text() == H.PASSPHRASE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.yaml", "link.yaml", "pass", "sub"]


def test_import_onto_its_bundle_is_refused(tmp_path, capsys):
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(H.valid_bundle(passphrase=None))
    code, _, err = run_cli("bundle", "import", str(bundle), "-o", str(bundle), "--allow-unsigned", capsys=capsys)
    assert code == 2 and "is the same file as the bundle" in err
    assert bundle.read_bytes()[:2] == b"\x1f\x8b"


def test_fleet_never_replaces_a_folder_it_did_not_write(tmp_path, capsys):
    key, raw = keypair(tmp_path)
    (tmp_path / "s.tar.gz").write_bytes(signed(key))
    (tmp_path / "pass").write_text(H.PASSPHRASE)
    (tmp_path / "devices.csv").write_text("hostname,uplink.address\nedge-02,10.20.0.16/24\n")
    out = tmp_path / "out"
    argv = ["bundle", "fleet", str(tmp_path / "s.tar.gz"), "--devices", str(tmp_path / "devices.csv"), "--out",
            str(out), "--passphrase-file", str(tmp_path / "pass"), "--root", str(trusting_root(tmp_path, raw))]
    # A folder of someone's own, shaped like a box's output (root/ and seed/), is not replaced.
    for sub in ("root", "seed"):
        (out / "edge-02" / sub).mkdir(parents=True)
        (out / "edge-02" / sub / "precious.txt").write_text("not ours")
    code, _, err = run_cli(*argv, capsys=capsys)
    assert code == 2 and "is not the output of a previous fleet run" in err and err.count("\n") == 1
    assert (out / "edge-02/root/precious.txt").read_text() == "not ours"
    assert (out / "edge-02/seed/precious.txt").read_text() == "not ours"
    assert sorted(os.listdir(out)) == ["edge-02"]
    # Its own previous output, and an empty folder, are replaced.
    (out / "edge-02/root/precious.txt").unlink()
    (out / "edge-02/seed/precious.txt").unlink()
    (out / "edge-02/root").rmdir()
    (out / "edge-02/seed").rmdir()
    assert run_cli(*argv, capsys=capsys)[0] == 0
    assert run_cli(*argv, capsys=capsys)[0] == 0
    # Its output, but for another host (the seed says so): not replaced.
    (tmp_path / "devices.csv").write_text("hostname,uplink.address\nedge-03,10.20.0.17/24\n")
    os.rename(out / "edge-02", out / "edge-03")
    code, _, err = run_cli(*argv, capsys=capsys)
    assert code == 2 and "previous fleet run for edge-03" in err
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(*argv[:6], str(tmp_path / "file"), *argv[7:], capsys=capsys)
    assert code == 2 and "is not a directory" in err and err.count("\n") == 1


# ---------------------------------------------------------------------------------------
# Manifest text reaches the terminal escaped

def test_escape_sequences_in_the_manifest_print_harmlessly(tmp_path, capsys):
    key, raw = keypair(tmp_path)
    hostile = "\x1b[2K\rSignature: VALID"
    members = H.members_of(H.valid_bundle(passphrase=None))
    data = H.repack(members, manifest_edit=lambda m: m.update(created=hostile, edge_installer_version=hostile + "\x07"))
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(data)
    assert B.loads_bundle(data, None).manifest["created"] == hostile  # accepted as text, shown escaped
    code, out, err = run_cli("bundle", "import", str(bundle), "--root", str(trusting_root(tmp_path, raw)),
                             "--allow-unsigned", capsys=capsys)
    assert code == 0, err
    assert not any(ch in out + err for ch in "\x1b\r\x07")
    assert "created \\x1b[2K\\x0dSignature: VALID by edge-installer \\x1b[2K\\x0dSignature: VALID\\x07;" in out
