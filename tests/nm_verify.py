"""libnm as a judge of keyfiles. Run by /usr/bin/python3 (Debian's python3-gi), never imported.

Reads {"paths": [...], "add_uuid": bool} as JSON on stdin and prints one JSON object,
path -> {"error": str | null, "warnings": [str], "settings": {"group.key": value}}.
`tests/judges.py` wraps it; see `judges.nm_verify` for what the fields mean.
"""

import json
import os
import re
import sys
import uuid

import gi

gi.require_version("NM", "1.0")
from gi.repository import NM, GLib, GObject  # noqa: E402

# NetworkManager's keyfile names for three settings (nm-keyfile-utils.c); the rest use
# the setting's own name.
ALIASES = {"802-3-ethernet": "ethernet", "802-11-wireless": "wifi", "802-11-wireless-security": "wifi-security"}
UNALIAS = {v: k for k, v in ALIASES.items()}

# Keys the keyfile format has beyond the settings' properties.
PSEUDO_KEYS = {
    "ipv4": re.compile(r"^(address|addresses|route|routes)\d*(_options)?$|^routing-rule\d+$"),
    "ipv6": re.compile(r"^(address|addresses|route|routes)\d*(_options)?$|^routing-rule\d+$"),
}
# Groups whose keys are free-form (options, peers, per-feature keys): not checked key by key.
FREE_GROUPS = {"vpn", "vpn-secrets", "ethtool", "user", "tc", "sriov", "bond", "ovs-external-ids",
               "ovs-other-config", "ethernet-s390-options", "wireguard", "team", "team-port"}


def unknown_keys(kf):
    """Keys the reader skips without a word: a `controller=` that NetworkManager 1.42 does
    not know is silently dropped, which is exactly what a judge must not let pass."""
    found = []
    for group in kf.get_groups()[0]:
        if group in FREE_GROUPS or "." in group or group.startswith("vpn"):
            continue
        gtype = NM.Setting.lookup_type(UNALIAS.get(group, group))
        if gtype.name == "invalid":
            continue  # the reader itself warns about unknown groups
        setting = GObject.new(gtype)
        pseudo = PSEUDO_KEYS.get(group)
        for key in kf.get_keys(group)[0]:
            if setting.find_property(key) is None and not (pseudo and pseudo.match(key)):
                found.append(f"[{group}] {key}: unknown to libnm {NM.MAJOR_VERSION}.{NM.MINOR_VERSION}, ignored")
    return found


def plain(value):
    """A property value as JSON data."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, GLib.Bytes):
        return {"bytes": (value.get_data() or b"").hex()}
    if isinstance(value, NM.IPAddress):
        return f"{value.get_address()}/{value.get_prefix()}"
    if isinstance(value, NM.IPRoute):
        hop = f" via {value.get_next_hop()}" if value.get_next_hop() else ""
        return f"{value.get_dest()}/{value.get_prefix()}{hop} metric {value.get_metric()}"
    if isinstance(value, NM.IPRoutingRule):
        return value.to_string(NM.IPRoutingRuleAsStringFlags.NONE, None)
    if isinstance(value, GLib.Variant):
        return value.print_(False)
    if isinstance(value, (GObject.GEnum, GObject.GFlags)):
        return int(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def settings_of(conn):
    out = {}
    for setting in conn.get_settings():
        name = setting.get_name()
        group = ALIASES.get(name, name)
        for spec in setting.list_properties():
            if spec.name == "name":
                continue
            try:
                out[f"{group}.{spec.name}"] = plain(setting.get_property(spec.name))
            except Exception as e:  # a property PyGObject cannot convert must not hide the rest
                out[f"{group}.{spec.name}"] = f"<unreadable: {e}>"
    return out


def judge(path, add_uuid, normalize_first=False):
    result = {"error": None, "warnings": [], "settings": {}}
    kf = GLib.KeyFile()
    try:
        kf.load_from_file(path, GLib.KeyFileFlags.NONE)
    except GLib.Error as e:
        result["error"] = f"GKeyFile: {e.message}"
        return result
    if add_uuid and not _has_key(kf, "connection", "uuid"):
        # What NetworkManager does when it loads a keyfile without one (netplan's).
        kf.set_string("connection", "uuid", str(uuid.uuid5(uuid.NAMESPACE_URL, "file://" + path)))
    result["warnings"] += unknown_keys(kf)

    def handler(_kf, _conn, htype, data, *_user):
        if htype == NM.KeyfileHandlerType.WARN:
            (message, _severity), (group, key, _setting, _prop) = data.warn_get(), data.get_context()
            where = f"[{group}] {key}: " if key else f"[{group}]: " if group else ""
            result["warnings"].append(f"{where}{message}")
        return True

    try:
        conn = NM.keyfile_read(kf, os.path.dirname(os.path.abspath(path)), NM.KeyfileHandlerFlags.NONE,
                               handler, None)
    except GLib.Error as e:
        result["error"] = f"keyfile_read: {e.message}"
        return result
    try:
        if normalize_first:
            # How the daemon loads a keyfile: normalize (fill in what may be implied, such
            # as netplan's bridge ports without a [bridge-port] group), then verify.
            conn.normalize()
        conn.verify()
        conn.verify_secrets()
    except GLib.Error as e:
        result["error"] = e.message
        result["settings"] = settings_of(conn)
        return result
    # What the daemon uses: it normalizes every connection it loads.
    conn.normalize()
    result["settings"] = settings_of(conn)
    return result


def _has_key(kf, group, key):
    try:
        kf.get_value(group, key)  # PyGObject does not expose g_key_file_has_key()
        return True
    except GLib.Error:
        return False


def main():
    request = json.load(sys.stdin)
    out = {}
    for p in request["paths"]:
        try:
            out[p] = judge(p, bool(request.get("add_uuid")), bool(request.get("normalize_first")))
        except Exception as e:  # one file that breaks the judge must not hide the others' results
            out[p] = {"error": f"nm_verify crashed: {type(e).__name__}: {e}", "warnings": [], "settings": {}}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
