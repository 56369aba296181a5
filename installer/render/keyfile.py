"""NetworkManager keyfiles (`/etc/NetworkManager/system-connections/*.nmconnection`).

Written for NetworkManager 1.42 (Debian 12) and later. The INI text is produced here, in a
fixed key order, rather than through GLib's `GKeyFile`: the box's installer must run without
python3-gi, and a fixed order is what makes the same plan give the same bytes. Values are
escaped exactly as `g_key_file_set_string()` does, and SSIDs exactly as NetworkManager's own
keyfile writer does, so whatever a technician types reads back byte for byte.

Connections:

- ``edge-machines``: the machine network. One port: an ethernet connection bound to it.
  Two or more (wireless-bridge): a bridge ``br-machines`` carrying the address, plus one
  ``edge-machines-port-<ifname>`` ethernet connection per port enslaved to it.
- ``edge-uplink``: ethernet, wifi or gsm, with the plan's addressing and DNS.
"""

from __future__ import annotations

import ipaddress

from installer.planning.fields import canonical_mac
from installer.planning.model import GOOGLE_DNS, Plan, Wifi
from installer.render.base import (
    CONN_MACHINES,
    CONN_UPLINK,
    DEFAULT_TARGET,
    KEYFILE_DIR,
    MACHINE_BRIDGE,
    RenderedFile,
    Target,
    connection_uuid,
)

MODE = 0o600  # NetworkManager ignores keyfiles readable by others, and some hold secrets

# The uplink wins whenever both could claim a device, and is the connection NetworkManager
# brings up first; the machine network never competes for the default route anyway.
PRIORITY_UPLINK = 20
PRIORITY_MACHINES = 10

# wifi-security.pmf: 2 = optional: management frames protected where the access point offers it,
# as a WPA2/WPA3 transition network does. (NetworkManager 1.42 offers SAE beside WPA-PSK on any
# wpa-psk profile whatever this says: on the real-box lab a transition network was joined with
# SAE, and a WPA2-only one with WPA-PSK.)
_PMF_OPTIONAL = "2"

Section = tuple[str, list[tuple[str, str]]]


def render(plan: Plan, target: Target = DEFAULT_TARGET) -> list[RenderedFile]:
    """The keyfiles for a validated plan: machine network (and bridge ports), then uplink.

    Sorted by path. Every file has mode 0600 and a uuid derived from its connection id, so
    the same plan always renders the same bytes. `target` is accepted for symmetry with the
    other renderers; NetworkManager 1.42 syntax is understood by every later version.
    """
    files: list[RenderedFile] = []
    if plan.machine_network is not None and plan.machine_network.interfaces:
        files += _machine_network(plan)
    if plan.uplink is not None:
        files.append(_uplink(plan))
    return sorted(files, key=lambda f: f.path)


def keyfile_path(conn_id: str) -> str:
    """Where the keyfile of connection `conn_id` lives on the box."""
    return f"{KEYFILE_DIR}/{conn_id}.nmconnection"


# ---------------------------------------------------------------------------------------
# Machine network

def _machine_network(plan: Plan) -> list[RenderedFile]:
    mn = plan.machine_network
    assert mn is not None and mn.address is not None
    ipv4 = _static_no_gateway(mn.address)
    ipv6 = [("method", "disabled")]  # the plan's machine network is IPv4 only
    if len(mn.interfaces) == 1:
        ifname = mn.interfaces[0]
        sections = [
            ("connection", _connection_keys(CONN_MACHINES, "ethernet", ifname, PRIORITY_MACHINES)),
            ("ethernet", []),  # libnm's verify() refuses an ethernet connection without it
            ("ipv4", ipv4),
            ("ipv6", ipv6),
        ]
        return [_file(CONN_MACHINES, _bound(plan, ifname, sections),
                      f"NetworkManager connection of the machine network on {_port_words(plan, ifname)}")]

    bridge_uuid = connection_uuid(CONN_MACHINES)
    bridge = [
        ("connection", _connection_keys(CONN_MACHINES, "bridge", MACHINE_BRIDGE, PRIORITY_MACHINES)
         # Bringing the bridge up brings its ports up too, whichever order NM found them in.
         + [("autoconnect-slaves", "1")]),
        # A machine segment has no redundant links for STP to break, and with STP on each
        # port sits in listening/learning for ~30 s after every link change.
        ("bridge", [("stp", "false")]),
        ("ipv4", ipv4),
        ("ipv6", ipv6),
    ]
    files = [_file(CONN_MACHINES, bridge,
                   f"NetworkManager bridge {MACHINE_BRIDGE} of the machine network "
                   f"({', '.join(mn.interfaces)})")]
    for ifname in mn.interfaces:
        conn_id = f"{CONN_MACHINES}-port-{ifname}"
        keys = _connection_keys(conn_id, "ethernet", ifname, PRIORITY_MACHINES)
        # NetworkManager 1.42 knows only master=/slave-type=: it silently ignores the newer
        # controller=/port-type= names, which would leave the port outside the bridge.
        keys[4:4] = [("master", bridge_uuid), ("slave-type", "bridge")]
        sections = [
            ("connection", keys),
            ("ethernet", []),
            ("bridge-port", []),  # verify() requires it on a bridge port
        ]  # a port carries no IP settings: the bridge does
        files.append(_file(conn_id, _bound(plan, ifname, sections),
                           f"NetworkManager port {_port_words(plan, ifname)} of bridge {MACHINE_BRIDGE}"))
    return files


def _bound(plan: Plan, ifname: str, sections: list[Section]) -> list[Section]:
    """The connection bound by NetworkManager's own matching when the plan binds the port to the
    hardware (plan `ports`): `mac-address` of [ethernet]/[wifi], or [match] driver= / path=
    (NetworkManager 1.26 and later), in place of interface-name.

    NetworkManager does not rename a port, so on this renderer the plan's name is the plan's
    label for the port, not the kernel's: the profile follows the hardware at once, with no
    reboot for a udev rename to happen, and the bridge takes its ports by connection, not by
    name. `check` finds the port by the same binding (installer.box.ports)."""
    port = plan.port(ifname)
    if port is None or port.binding is None:
        return sections
    kind, value = port.binding
    out: list[Section] = []
    for name, keys in sections:
        if name == "connection":
            keys = [(k, v) for k, v in keys if k != "interface-name"]
        elif kind == "mac" and name in ("ethernet", "wifi"):
            keys = keys + [("mac-address", canonical_mac(value).upper())]
        out.append((name, keys))
        if name == "connection" and kind != "mac":
            out.append(("match", [(kind, value)]))
    return out


def _port_words(plan: Plan, ifname: str) -> str:
    port = plan.port(ifname)
    if port is None or port.binding is None:
        return ifname
    kind, value = port.binding
    return f"{ifname} (the port with {'MAC' if kind == 'mac' else kind} {value})"


def _static_no_gateway(address: str) -> list[tuple[str, str]]:
    # never-default: even if someone adds a gateway later, this network must never carry
    # the default route (seed 000: machines have no internet access through the box).
    return [("method", "manual"), ("address1", address), ("never-default", "true")]


# ---------------------------------------------------------------------------------------
# Uplink

def _uplink(plan: Plan) -> RenderedFile:
    up = plan.uplink
    assert up is not None and up.interface is not None
    if plan.topology == "cellular":
        kind, body, secret = "gsm", _gsm(plan), bool(plan.cellular and plan.cellular.password)
        what = f"the cellular modem {up.interface}"
    elif plan.wifi is not None:
        w = plan.wifi
        kind, body = "wifi", _wifi(plan)
        secret = bool(w.eap_password or w.private_key_password) if w.eap_method else True
        what = f"the WiFi network on {up.interface}"
    else:
        kind, body, secret = "ethernet", [("ethernet", [])], False
        what = f"the company network on {up.interface}"
    keys = _connection_keys(CONN_UPLINK, kind, up.interface, PRIORITY_UPLINK)
    # 0 = retry forever. NetworkManager's default gives up after 4 failures (until a timer or
    # a reboot), and an unattended box whose access point rebooted must come back by itself.
    keys.append(("autoconnect-retries", "0"))
    ipv4, ipv6 = _uplink_ip(plan)
    sections = [("connection", keys), *body, ("ipv4", ipv4), ("ipv6", ipv6)]
    if kind != "gsm":  # a modem is ModemManager's to find, never bound by the plan's `ports`
        sections = _bound(plan, up.interface, sections)
    return _file(CONN_UPLINK, sections, f"NetworkManager connection of the uplink: {what}", secret=secret)


def _wifi(plan: Plan) -> list[Section]:
    w = plan.wifi
    assert w is not None and w.ssid is not None
    wifi = [("mode", "infrastructure"), ("ssid", ssid_value(w.ssid))]
    if w.hidden:
        wifi.append(("hidden", "true"))  # probe for it by name: it is not in any beacon
    if w.security in ("wpa2-enterprise", "wpa3-enterprise"):
        return [("wifi", wifi), *_enterprise(w)]
    assert w.passphrase is not None
    if w.security == "wpa3-sae":
        security = [("key-mgmt", "sae")]
    elif w.security == "wpa2-wpa3":
        security = [("key-mgmt", "wpa-psk"), ("pmf", _PMF_OPTIONAL)]
    else:
        security = [("key-mgmt", "wpa-psk")]
    # psk-flags=0: NetworkManager keeps the passphrase in this file (no secret agent runs
    # on an unattended box to be asked for it).
    security += [("psk", w.passphrase), ("psk-flags", "0")]
    return [("wifi", wifi), ("wifi-security", security)]


# wifi-security.pmf: 3 = required. WPA3-Enterprise (the non-192-bit mode) is WPA-EAP with protected
# management frames required; NetworkManager then also offers WPA-EAP-SHA256. key-mgmt
# wpa-eap-suite-b-192 is the separate 192-bit mode (GCMP-256, EAP-TLS with Suite B ciphers only),
# which a plant network would name as such: not what "WPA3-Enterprise" means here.
_PMF_REQUIRED = "3"


def _enterprise(w: Wifi) -> list[Section]:
    """[wifi-security] and [802-1x] for PEAP (MSCHAPv2 inside) or EAP-TLS. The *-flags=0 keep the
    secrets in this root-only file: no secret agent runs on an unattended box to be asked."""
    # Validation requires the identity and the CA, and each method's own credentials.
    assert w.identity is not None and w.ca_certificate is not None
    security = [("key-mgmt", "wpa-eap")]
    if w.security == "wpa3-enterprise":
        security.append(("pmf", _PMF_REQUIRED))
    dot1x = [("eap", f"{w.eap_method};"), ("identity", w.identity)]
    if w.anonymous_identity:
        dot1x.append(("anonymous-identity", w.anonymous_identity))
    dot1x.append(("ca-cert", w.ca_certificate))
    if w.eap_method == "peap":
        assert w.eap_password is not None
        dot1x += [("phase2-auth", "mschapv2"), ("password", w.eap_password), ("password-flags", "0")]
    else:
        assert w.client_certificate is not None and w.private_key is not None
        dot1x += [("client-cert", w.client_certificate), ("private-key", w.private_key)]
        if w.private_key_password:
            dot1x += [("private-key-password", w.private_key_password), ("private-key-password-flags", "0")]
    return [("wifi-security", security), ("802-1x", dot1x)]


def _gsm(plan: Plan) -> list[Section]:
    c = plan.cellular
    assert c is not None and c.apn is not None
    gsm = [("apn", c.apn)]
    if c.username is not None:
        gsm.append(("username", c.username))
    if c.password is not None:
        gsm += [("password", c.password), ("password-flags", "0")]
    return [("gsm", gsm)]


def _uplink_ip(plan: Plan) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    up = plan.uplink
    assert up is not None
    dhcp = up.ipv4 == "dhcp"
    if dhcp:
        ipv4 = [("method", "auto")]
    else:
        ipv4 = [("method", "manual"), ("address1", f"{up.address},{up.gateway}")]

    mode = plan.dns.mode
    servers = GOOGLE_DNS if mode == "google" else plan.dns.servers if mode == "custom" else ()
    v4 = [s for s in servers if ipaddress.ip_address(s).version == 4]
    v6 = [str(ipaddress.ip_address(s)) for s in servers if ipaddress.ip_address(s).version == 6]
    if v4:
        ipv4.append(("dns", _list(v4)))
    if dhcp and mode == "google":
        # Google first, the DHCP server's resolvers after them as the fallback (seed 000).
        ipv4.append(("ignore-auto-dns", "false"))
    elif dhcp and mode == "custom":
        # Custom means only these: a DHCP server's resolvers would answer too, and differently.
        ipv4.append(("ignore-auto-dns", "true"))

    if not v6:
        # The plan describes an IPv4 uplink, and the checks and the firewall request prove
        # IPv4 paths only: an IPv6 route the site never opened would be an unproven one.
        return ipv4, [("method", "disabled")]
    # NetworkManager refuses ipv6.dns with method disabled or ignore, and an IPv6 resolver
    # needs IPv6 on the link: take what the router advertises, but not its resolvers.
    return ipv4, [("method", "auto"), ("dns", _list(v6)), ("ignore-auto-dns", "true")]


# ---------------------------------------------------------------------------------------
# Keyfile syntax

def _connection_keys(conn_id: str, kind: str, ifname: str, priority: int) -> list[tuple[str, str]]:
    return [
        ("id", conn_id),
        ("uuid", connection_uuid(conn_id)),
        ("type", kind),
        ("interface-name", ifname),
        ("autoconnect", "true"),
        ("autoconnect-priority", str(priority)),
    ]


def _file(conn_id: str, sections: list[Section], purpose: str, secret: bool = False) -> RenderedFile:
    return RenderedFile(path=keyfile_path(conn_id), content=keyfile_text(sections).encode("utf-8"),
                        mode=MODE, purpose=purpose, secret=secret)


def keyfile_text(sections: list[Section]) -> str:
    """INI text of `sections` in the given order, each value escaped as GKeyFile does."""
    out: list[str] = []
    for name, keys in sections:
        if out:
            out.append("")
        out.append(f"[{name}]")
        out += [f"{key}={escape_value(value)}" for key, value in keys]
    return "\n".join(out) + "\n"


def _list(items: list[str] | tuple[str, ...]) -> str:
    # GKeyFile's list syntax: every item followed by the separator, the last one included.
    return "".join(f"{item};" for item in items)


def escape_value(value: str) -> str:
    """`value` escaped as `g_key_file_set_string()` writes it, so GKeyFile reads it back as is.

    Backslash and line breaks are always escaped; spaces and tabs only while they lead the
    value (GKeyFile strips leading whitespace after '=', but keeps trailing whitespace).
    '#', ';' and '=' need nothing inside a value.
    """
    out = []
    leading = True
    for ch in value:
        if ch == " " and leading:
            out.append("\\s")
        elif ch == "\t" and leading:
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\\":
            out.append("\\\\")
            leading = False
        else:
            out.append(ch)
            if ch not in " \t":
                leading = False
    return "".join(out)


def ssid_value(ssid: str) -> str:
    """The SSID as NetworkManager's keyfile writer stores it (before GKeyFile escaping).

    Printable ASCII is kept as text with each ';' written '\\;', so that an SSID such as
    "1;2;" is not mistaken for a list of byte values; anything else (UTF-8 beyond ASCII,
    control characters) is written as the list of its bytes, e.g. "80;108;195;182;".
    """
    raw = ssid.encode("utf-8")
    if all(0x20 <= b <= 0x7E for b in raw):
        return ssid.replace(";", "\\;")
    return _list([str(b) for b in raw])
