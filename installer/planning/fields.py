"""Field-level rules: one value at a time, each returning what would be valid, or None.

The wizard's inputs, the fleet's `--set`, the profiles' parameters and the whole-plan
validation all use these same functions, so a technician sees the same message wherever
a value is typed. Every address rule is built on the standard library's `ipaddress`.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import string
from urllib.parse import urlsplit

IPv4Interface = ipaddress.IPv4Interface

_IFNAME = re.compile(r"^[A-Za-z0-9_.\-]{1,15}$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_APN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,99}$")
_HEX64 = re.compile(r"^[0-9A-Fa-f]{64}$")
_PRINTABLE = set(string.printable) - set("\t\n\r\x0b\x0c")


def check_interface_address(value: str | None, *, what: str = "address") -> str | None:
    """An IPv4 host address with its prefix length, usable on an interface."""
    if not value:
        return f"required: an IPv4 {what} with prefix length, e.g. 192.168.50.2/24"
    if "/" not in value:
        try:
            ipaddress.IPv4Address(value)
            return f"add the prefix length, e.g. {value}/24"
        except ValueError:
            pass
    try:
        iface = IPv4Interface(value)
    except (ipaddress.AddressValueError, ipaddress.NetmaskValueError, ValueError):
        return f"{value!r} is not an IPv4 address with prefix length, e.g. 192.168.50.2/24"
    return _host_problem(iface.ip, iface.network)


def _host_problem(ip: ipaddress.IPv4Address, net: ipaddress.IPv4Network | None) -> str | None:
    if ip.is_loopback:
        return f"{ip} is a loopback address; use an address of the network the port is on"
    if ip.is_multicast:
        return f"{ip} is a multicast address; use a unicast host address"
    if ip.is_unspecified:
        return f"{ip} is the unspecified address; use a real host address"
    if ip.is_link_local:
        return f"{ip} is link-local (169.254.0.0/16, assigned automatically); choose a static address outside it"
    if ip.is_reserved or ip == ipaddress.IPv4Address("255.255.255.255"):
        return f"{ip} is a reserved address; use a unicast host address"
    if net is not None:
        if net.prefixlen == 0:
            return "a /0 prefix covers the whole internet; use the network's real prefix, e.g. /24"
        if net.prefixlen == 32:
            return f"a /32 leaves no room for other hosts; use the network's real prefix, e.g. {ip}/24"
        if net.prefixlen <= 30:
            if ip == net.network_address:
                return f"{ip} is the network address of {net}; use a host address such as {net.network_address + 1}"
            if ip == net.broadcast_address:
                return f"{ip} is the broadcast address of {net}; use a host address such as {net.broadcast_address - 1}"
    return None


def check_host_address(value: str | None, *, within: ipaddress.IPv4Network | None = None,
                       what: str = "address") -> str | None:
    """An IPv4 host address without prefix, optionally inside `within`."""
    if not value:
        return f"required: an IPv4 {what} such as 192.168.50.21"
    try:
        ip = ipaddress.IPv4Address(value)
    except ValueError:
        if "/" in value:
            return f"give the {what} without a prefix length, e.g. {value.split('/')[0]}"
        return f"{value!r} is not an IPv4 address such as 192.168.50.21"
    problem = _host_problem(ip, within)
    if problem:
        return problem
    if within is not None and ip not in within:
        return f"{ip} is outside {within}; use an address inside it"
    return None


def check_ssid(value: str | None) -> str | None:
    """An SSID: 1-32 bytes (UTF-8), the 802.11 limit."""
    if not value:
        return "required: the WiFi network name (1-32 bytes)"
    n = len(value.encode("utf-8"))
    if n > 32:
        return f"is {n} bytes; an SSID is at most 32 bytes"
    if has_control(value):
        return (f"{value.encode('unicode_escape').decode()!r} holds a control or text-direction character, "
                "which would be obeyed by the terminal that shows it; an SSID here is printable text")
    return None


_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def has_control(text: str) -> bool:
    """True when text holds a C0/C1 control character (ESC, NUL, line breaks) or a bidirectional
    override, which a terminal or an editor would obey rather than show."""
    import unicodedata

    return any(unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS for c in text)


def check_passphrase(value: str | None, security: str | None) -> str | None:
    """A WPA passphrase: 8-63 printable ASCII characters, or 64 hex digits (a raw WPA2 key)."""
    if not value:
        return "required: the WiFi passphrase (8-63 printable ASCII characters)"
    if _HEX64.match(value):
        if security == "wpa3-sae":
            return "a 64-hex raw key works only with WPA2; WPA3-SAE needs a passphrase of 8-63 characters"
        return None
    if any(ch not in _PRINTABLE for ch in value):
        return "use printable ASCII characters only (letters, digits, spaces and punctuation)"
    if len(value) < 8:
        return f"is {len(value)} characters; a WPA passphrase has 8-63 characters"
    if len(value) > 63:
        return f"is {len(value)} characters; a WPA passphrase has 8-63 characters, or is exactly 64 hex digits"
    return None


def check_hostname(value: str | None) -> str | None:
    """A host name: letters, digits and hyphens in dot-separated labels, at most 64 characters."""
    if value is None:
        return None
    if not value or len(value) > 64:
        return "a host name has 1-64 characters, e.g. edge-01"
    if not all(_HOST_LABEL.match(label) for label in value.split(".")):
        return (f"{value!r} is not a valid host name: use letters, digits and hyphens "
                "(not at the start or end of a label), e.g. edge-01")
    return None


def check_host_or_ip(value: str | None, *, what: str = "host") -> str | None:
    """A DNS host name or an IP address (v4 or v6)."""
    if not value:
        return f"required: a {what} name or IP address"
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    name = value[:-1] if value.endswith(".") else value
    if len(name) > 253 or not all(_HOST_LABEL.match(label) for label in name.split(".")):
        return f"{value!r} is neither a host name (e.g. ntp.plant.local) nor an IP address"
    return None


def check_ifname(value: str | None) -> str | None:
    """A Linux interface name: 1-15 characters, no spaces, slashes or colons."""
    if not value:
        return "required: an interface name such as eno1"
    if not _IFNAME.match(value) or value in (".", ".."):
        return f"{value!r} is not an interface name: 1-15 letters, digits, '-', '_' or '.', e.g. eno1"
    return None


def check_proxy_url(value: str | None) -> str | None:
    """A proxy URL with scheme http or https, a host and a port, and no credentials in it."""
    if not value:
        return "required: the proxy URL with scheme, host and port, e.g. http://proxy.plant.local:3128"
    if "@" in value:
        # user:password@ in the URL: never repeat the URL, the password would be shown.
        return "put the user name and password in proxy.username and proxy.password, not in the URL"
    if "://" not in value:
        return f"add the scheme, e.g. http://{value}" + ("" if ":" in value else ":3128")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return f"{value!r} is not a URL such as http://proxy.plant.local:3128 (port 1-65535)"
    if parts.scheme not in ("http", "https"):
        return f"starts with {parts.scheme}://; use http:// or https://, e.g. http://proxy.plant.local:3128"
    if parts.username is not None or parts.password is not None:
        return "put the user name and password in proxy.username and proxy.password, not in the URL"
    if not parts.hostname:
        return "has no host; e.g. http://proxy.plant.local:3128"
    host_problem = check_host_or_ip(parts.hostname, what="proxy host")
    if host_problem:
        return host_problem
    if port is None:
        return f"add the port, e.g. {parts.scheme}://{parts.hostname}:3128"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return f"a proxy URL has no path; use {parts.scheme}://{parts.hostname}:{port}"
    return None


def check_apn(value: str | None) -> str | None:
    """An access point name: letters, digits, dots and hyphens, up to 100 characters."""
    if not value:
        return "required: the APN your cellular provider gives, e.g. internet"
    if not _APN.fullmatch(value):
        return f"{value!r} is not an APN: letters, digits, '.' and '-' (up to 100), e.g. internet"
    return None


# What the modem stacks keep whole: NetworkManager and netplan cut a value at a NUL, and
# ModemManager passes these to the modem as one line.
MAX_APN_CREDENTIAL = 64


def check_apn_credential(value: str | None, what: str, *, secret: bool = False) -> str | None:
    """The cellular user name or password: 1-64 printable characters, no NUL, line break or
    other control character. A secret's value is never repeated."""
    if value is None:
        return None
    shown = "" if secret else f"{value!r} "
    if value == "":
        return f"is empty; give the {what} your provider gives, or remove the key"
    if len(value) > MAX_APN_CREDENTIAL:
        return f"is {len(value)} characters; the {what} has 1-{MAX_APN_CREDENTIAL} characters"
    if not value.isprintable():
        return (f"{shown}has a NUL, line break or other control character; the {what} is 1-{MAX_APN_CREDENTIAL} "
                "printable characters")
    return None


def is_ip(text: str) -> bool:
    """True for an IPv4 or IPv6 address literal."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------------------------------
# WiFi: regulatory country and WPA-Enterprise (802.1X) fields.

REGULATORY_DB = "/lib/firmware/regulatory.db"  # Debian package wireless-regdb (kernel's format)
_REGDB_MAGIC = 0x52474442  # "RGDB"
# The countries of wireless-regdb 2026.09.03 (Debian 12's wireless-regdb, regulatory.db), read
# from that file; used where the package is not installed. "00" is the world domain. A country
# that wireless-regdb has no rules for cannot be set: the kernel would stay on the world domain.
REGDB_COUNTRIES = frozenset(["00", "AD", "AE", "AF", "AI", "AL", "AM", "AN", "AR", "AS", "AT", "AU", "AW", "AZ", "BA",
                             "BB", "BD", "BE", "BF", "BG", "BH", "BL", "BM", "BN", "BO", "BR", "BS", "BT", "BW", "BY",
                             "BZ", "CA", "CF", "CH", "CI", "CL", "CN", "CO", "CR", "CU", "CX", "CY", "CZ", "DE", "DK",
                             "DM", "DO", "DZ", "EC", "EE", "EG", "ES", "ET", "FI", "FM", "FO", "FR", "GB", "GD", "GE",
                             "GF", "GH", "GI", "GL", "GP", "GR", "GT", "GU", "GY", "HK", "HN", "HR", "HT", "HU", "ID",
                             "IE", "IL", "IM", "IN", "IR", "IS", "IT", "JM", "JO", "JP", "KE", "KH", "KN", "KP", "KR",
                             "KW", "KY", "KZ", "LB", "LC", "LI", "LK", "LS", "LT", "LU", "LV", "MA", "MC", "MD", "ME",
                             "MF", "MH", "MK", "MN", "MO", "MP", "MQ", "MR", "MT", "MU", "MV", "MW", "MX", "MY", "NA",
                             "NG", "NI", "NL", "NO", "NP", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM",
                             "PR", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SE", "SG", "SI", "SK",
                             "SM", "SN", "SR", "SV", "SX", "SY", "TC", "TD", "TG", "TH", "TN", "TR", "TT", "TW", "TZ",
                             "UA", "UG", "US", "UY", "UZ", "VA", "VC", "VE", "VI", "VN", "VU", "WF", "WS", "YE", "YT",
                             "ZA", "ZW"])


@functools.lru_cache(maxsize=8)  # read once: validation runs on every field of every step
def regdb_countries(path: str = REGULATORY_DB) -> frozenset[str]:
    """The countries of the installed wireless-regdb (the kernel's regulatory.db format: "RGDB",
    version, then 4-byte entries alpha2 + collection pointer up to a null pointer), else the
    table above."""
    import struct

    try:
        with open(path, "rb") as f:
            data = f.read(1_000_000)
        magic, _version = struct.unpack(">II", data[:8])
        if magic != _REGDB_MAGIC:
            return REGDB_COUNTRIES
        found = set()
        for i in range(8, len(data) - 3, 4):
            alpha2, pointer = data[i:i + 2], struct.unpack(">H", data[i + 2:i + 4])[0]
            if pointer == 0:
                break
            found.add(alpha2.decode("ascii"))
        return frozenset(found) or REGDB_COUNTRIES
    except (OSError, struct.error, UnicodeDecodeError):
        return REGDB_COUNTRIES


def check_country(value: str | None, countries: frozenset[str] | None = None) -> str | None:
    """The radio's regulatory domain: an upper-case ISO 3166-1 alpha-2 code wireless-regdb has
    rules for (e.g. DE), or 00 for the world domain. None (not set) is valid."""
    if value is None:
        return None
    known = countries if countries is not None else regdb_countries()
    if value.upper() in known and value != value.upper():
        return f"write the country code in capitals: {value.upper()}"
    if value in known:
        return None
    shown = value if value.isprintable() and len(value) <= 8 else value[:8].encode("unicode_escape").decode() + "..."
    if len(value) != 2 or not value.isalpha():
        return (f"{shown!r} is not a country code: give the ISO 3166-1 two-letter code of the country the box "
                "is in, e.g. DE, US or GB (00: the world domain, the most restrictive)")
    return (f"{shown!r} has no regulatory rules in wireless-regdb, so the radio would stay on the world domain; "
            "give the two-letter code of the country the box is in, e.g. DE, US or GB")


def check_eap_text(value: str | None, what: str, *, required: bool = False) -> str | None:
    """An EAP identity: one line of printable text, at most 253 characters (a NAI's limit)."""
    if value is None:
        return f"required: the {what}, e.g. edge-01@plant.example" if required else None
    if value == "" or value.strip() != value:
        return f"the {what} is one line of text without leading or trailing spaces, e.g. edge-01@plant.example"
    if has_control(value):
        return f"the {what} holds a control or text-direction character; it is one line of printable text"
    if len(value) > 253:
        return f"is {len(value)} characters; the {what} has at most 253"
    return None


def check_eap_secret(value: str | None, what: str, *, required: bool = False) -> str | None:
    """An EAP password or private-key password: one line, no control character. Never repeated."""
    if value is None or value == "":
        return f"required: the {what} (never shown)" if required else (
            None if value is None else f"is empty; give the {what} or remove the key")
    if has_control(value):
        return f"the {what} holds a line break or other control character; it is one line (never shown)"
    if len(value) > 256:
        return f"is {len(value)} characters; the {what} has at most 256"
    return None


def check_pem_path(value: str | None, what: str, *, required: bool = False) -> str | None:
    """The absolute path of a PEM file on the box (a certificate or a private key)."""
    if value is None or value == "":
        return f"required: the absolute path of the {what} on the box, e.g. /etc/ssl/plant/ca.pem" if required else None
    if has_control(value) or any(c in value for c in "\"'\\;"):
        return (f"the path of the {what} holds a quote, backslash, ';' or control character; use a plain "
                "absolute path such as /etc/ssl/plant/ca.pem")
    if not value.startswith("/"):
        return f"{value!r} is relative; give the absolute path of the {what} on the box, e.g. /etc/ssl/plant/{value}"
    if value.endswith("/") or "/../" in value + "/" or "//" in value:
        return f"{value!r} is not a file's path; give the absolute path of the {what}, e.g. /etc/ssl/plant/ca.pem"
    if len(value) > 1024:
        return f"the path of the {what} is longer than 1024 characters"
    return None


# ---------------------------------------------------------------------------------------
# Ports bound to the hardware (plan `ports`), and the cellular data cap.

_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
_DRIVER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.]{0,63}$")
# udev's ID_PATH: a bus word, then bus addresses joined by '-' (pci-0000:02:00.0,
# pci-0000:00:14.0-usb-0:2:1.0, platform-fe300000.ethernet).
_ID_PATH = re.compile(r"^[a-z][a-z0-9]*-[A-Za-z0-9:._+\-]{1,200}$")


def check_mac(value: str | None) -> str | None:
    """A port's MAC address: six colon-separated hex bytes, unicast, not all zeros."""
    if not value:
        return "required: the port's MAC address, e.g. 52:54:00:12:34:56 (ip link shows it as link/ether)"
    if not _MAC.match(value):
        return f"{value!r} is not a MAC address: six hex bytes with colons, e.g. 52:54:00:12:34:56"
    first = int(value[:2], 16)
    if first & 1:
        return f"{value} is a multicast address; a port's own MAC is unicast (its first byte is even)"
    if value.replace(":", "").strip("0") == "":
        return "00:00:00:00:00:00 is no port's address; give the MAC that ip link shows for the port"
    return None


def check_driver(value: str | None) -> str | None:
    """A kernel driver name as udev's ID_NET_DRIVER and ethtool -i show it (igb, r8169, e1000e)."""
    if not value:
        return "required: the port's kernel driver, e.g. igb (ethtool -i PORT shows it)"
    if not _DRIVER.match(value):
        return (f"{value!r} is not a driver name: letters, digits, '_', '-' or '.', no wildcards, e.g. igb "
                "(ethtool -i PORT shows it)")
    return None


def check_port_path(value: str | None) -> str | None:
    """udev's ID_PATH of a port: the socket on this box model, e.g. pci-0000:02:00.0."""
    if not value:
        return ("required: the port's udev path, e.g. pci-0000:02:00.0 (udevadm info /sys/class/net/PORT "
                "shows it as ID_PATH)")
    if not _ID_PATH.match(value) or "*" in value or "?" in value:
        return (f"{value!r} is not a udev ID_PATH: a bus and its addresses joined by '-', no spaces or "
                "wildcards, e.g. pci-0000:02:00.0 (udevadm info /sys/class/net/PORT shows it as ID_PATH)")
    return None


def canonical_mac(value: str) -> str:
    """A MAC address as the kernel prints it: lower case."""
    return value.lower()


# A data cap in the plan is in MB; a technician types what the SIM's contract says. GB and TB
# count 1000 MB and 1000 GB: the smaller reading, so the warning comes early whichever way
# the carrier counts.
DATA_CAP_UNITS = {"": 1, "m": 1, "mb": 1, "g": 1000, "gb": 1000, "t": 1_000_000, "tb": 1_000_000}
_DATA_CAP = re.compile(r"^(?P<num>-?\d{1,9}(?:[ ,_']\d{3})*(?:\.\d+)?)\s*(?P<unit>[A-Za-z]*)$")
DATA_CAP_HINT = "a monthly volume in MB or GB, e.g. 5000, 5000 MB or 2 GB (1 GB = 1000 MB)"


def parse_data_cap(value: object) -> tuple[int | None, str | None]:
    """A cellular data cap as a whole number of MB, from a number (MB) or text such as "2GB",
    "2 GB", "2 gb", "1.5 GB", "500 MB", "5,000": (megabytes, None) or (None, what would be valid).
    An empty value is (None, None): no cap."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, bool):
        return None, f"got a yes/no value; give {DATA_CAP_HINT}"
    if isinstance(value, int):
        mb = value
    elif isinstance(value, float):
        return None, f"{value} MB is not a whole number of MB; give {DATA_CAP_HINT}"
    elif isinstance(value, str):
        m = _DATA_CAP.match(value.strip())
        unit = m.group("unit").lower() if m else ""
        if not m or unit not in DATA_CAP_UNITS:
            printable = len(value) <= 40 and value.isprintable()
            shown = value.strip() if printable else value[:40].encode("unicode_escape").decode()
            return None, f"{shown!r} is not a data cap; give {DATA_CAP_HINT}"
        number = float(re.sub(r"[ ,_']", "", m.group("num")))
        exact = number * DATA_CAP_UNITS[unit]
        if exact != int(exact):
            return None, f"{value.strip()!r} is not a whole number of MB; give {DATA_CAP_HINT}"
        mb = int(exact)
    else:
        return None, f"give {DATA_CAP_HINT}"
    if mb <= 0:
        return None, f"the monthly data cap must be a positive number; give {DATA_CAP_HINT}"
    if mb > 10**12:
        return None, f"{mb} MB is more than any data plan; give {DATA_CAP_HINT}"
    return mb, None
