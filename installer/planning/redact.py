"""Masking secrets in text a person or a file will see: diffs, reports, bundles, messages.

One masker for every secret form: the values themselves (as typed and percent-encoded; one
under 4 characters only where it stands alone, so a password "ab" does not cut every word
holding those letters apart), lines whose key names a secret in the formats we render or
find (netplan/YAML `password:`, keyfile `psk=`, wpa_supplicant), passwords inside URLs, and
HTTP Basic credentials. Standard library only.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote

from installer.planning.plan import REDACTED

_SECRET_LINE = re.compile(r"^(\s*[\"']?(?:password|passphrase|psk|pin|wep-key\d|private-key-password|"
                          r"[a-z_-]*[-_]password)[\"']?\s*[:=]\s*).+$", re.I | re.M)
_URL_CREDENTIALS = re.compile(r"(://[^\s:/@\"']*:)[^\s@\"']+@")
_BASIC_AUTH = re.compile(r"(\bBasic\s+)([A-Za-z0-9+/_-]{4,}=*)", re.I)


def _mask_basic(m: re.Match[str]) -> str:
    """`Basic <base64 of user:password>` (HTTP Basic auth) masked; other words after "Basic" kept."""
    token = m.group(2)
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_" if "-" in token or "_" in token
                                   else None, validate=True)
    except ValueError:
        return m.group(0)
    return m.group(1) + REDACTED if b":" in decoded else m.group(0)


def masker(secrets: Iterable[str] = ()) -> Callable[[str], str]:
    """A function masking every form of these secrets (and of any secret it recognises) in a text."""
    forms = sorted({form for s in secrets if s for form in (s, quote(s, safe=""), quote(s))}, key=len, reverse=True)
    # One pass: a mask is never searched again.
    pattern = re.compile("|".join(re.escape(f) if len(f) >= 4 else rf"(?<![A-Za-z0-9]){re.escape(f)}(?![A-Za-z0-9])"
                                  for f in forms)) if forms else None

    def mask(text: str) -> str:
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        text = _SECRET_LINE.sub(lambda m: m.group(1) + REDACTED, text)
        text = _BASIC_AUTH.sub(_mask_basic, text)
        return _URL_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED + "@", text)

    return mask
