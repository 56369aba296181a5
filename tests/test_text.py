"""installer/text.py: what text from outside the program may show on a terminal.

Every place that shows such text (interface names, SSIDs, bundle manifests, records, other
programs' output) goes through these two functions; the properties below hold for any text.
"""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from installer import cli
from installer.text import ascii_safe, unicode_safe
from tests import hostile_bundles as H

# Any str Python can hold: surrogateescape's undecodable bytes and lone surrogates included.
ANY_TEXT = st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=60)
ESCAPE = re.compile(r"\\x([0-9a-f]{2})")


def unescaped(shown: str) -> bytes:
    """The bytes a backslash=True result stands for."""
    out = bytearray()
    pos = 0
    for m in ESCAPE.finditer(shown):
        out += shown[pos:m.start()].encode("utf-8")
        out.append(int(m[1], 16))
        pos = m.end()
    return bytes(out + shown[pos:].encode("utf-8"))


def original_bytes(text: str) -> bytes:
    """The text's bytes: an undecodable byte (surrogateescape) as itself, a lone surrogate as
    the three bytes UTF-8's encoder would write for it."""
    out = b""
    for ch in text:
        try:
            out += ch.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            out += ch.encode("utf-8", "surrogatepass")
    return out


@given(ANY_TEXT)
def test_ascii_safe_shows_only_printable_ascii_and_reads_back_to_the_exact_bytes(text):
    for backslash in (False, True):
        shown = ascii_safe(text, backslash=backslash)
        assert all(" " <= ch <= "~" for ch in shown), shown
    assert unescaped(ascii_safe(text, backslash=True)) == original_bytes(text)


@given(ANY_TEXT)
def test_unicode_safe_shows_no_control_format_or_separator_character_and_reads_back(text):
    shown = unicode_safe(text, backslash=True)
    assert not any(ch != " " and unicodedata.category(ch)[0] in "CZ" for ch in shown), ascii(shown)
    assert unescaped(shown) == original_bytes(text)


@given(ANY_TEXT, st.integers(min_value=0, max_value=40))
def test_a_limit_cuts_between_whole_characters_and_escapes(text, limit):
    for show in (ascii_safe, unicode_safe):
        whole = show(text)
        cut = show(text, limit)
        if len(whole) <= limit:
            assert cut == whole
        else:
            assert cut.endswith("...") and len(cut) - 3 <= limit
            # What is kept is what the first characters show, whole: never half an escape.
            assert cut[:-3] in {show(text[:k]) for k in range(len(text) + 1)}, cut


def test_what_each_form_keeps_and_escapes():
    assert ascii_safe("eth0") == "eth0"
    assert ascii_safe("e\x1b[2Jx") == r"e\x1b[2Jx"
    assert ascii_safe("Caf\u00e9") == r"Caf\xc3\xa9"
    assert ascii_safe("a\udcffb") == r"a\xffb"  # an undecodable byte from os or iw
    assert ascii_safe("a\ud800b") == r"a\xed\xa0\x80b"  # a lone surrogate from JSON: no UnicodeEncodeError
    assert ascii_safe(r"C:\x41") == r"C:\x41" and ascii_safe(r"C:\x41", backslash=True) == r"C:\x5cx41"
    assert unicode_safe("Caf\u00e9 \u5de5\u5834") == "Caf\u00e9 \u5de5\u5834"
    assert unicode_safe("admin\u202egpj.exe") == r"admin\xe2\x80\xaegpj.exe"  # right-to-left override
    assert unicode_safe("a\u00a0b\u2028c") == r"a\xc2\xa0b\xe2\x80\xa8c"  # no-break space, line separator
    assert ascii_safe("abcdef", 4) == "abcd..." and ascii_safe("ab\x1bcdef", 4) == "ab..."
    assert ascii_safe(None) == "None" and ascii_safe(42, 1) == "4..."


def test_a_bundle_whose_manifest_holds_a_lone_surrogate_is_shown_escaped_not_an_internal_error(tmp_path, capsys):
    """Valid JSON may hold "\\ud800", which UTF-8 cannot encode: showing the manifest's `created`
    used to end in UnicodeEncodeError (exit 70) instead of a line."""
    def edit(manifest):
        manifest["created"] = "2026-12-07\ud800\u001b[2J"
        manifest["edge_installer_version"] = "9.9\u202e"
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(H.repack(H.members_of(H.valid_bundle(passphrase=None)), manifest_edit=edit))
    code = cli.main(["bundle", "import", str(bundle), "-o", str(tmp_path / "p.yaml"), "--root", str(tmp_path),
                     "--allow-unsigned"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert r"created 2026-12-07\xed\xa0\x80\x1b[2J by edge-installer 9.9\xe2\x80\xae;" in out
    assert "\x1b" not in out + err
