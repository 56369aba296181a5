"""Field-level rules: one value at a time, each returning what would be valid, or None.

The wizard's inputs, the fleet's `--set`, the profiles' parameters and the whole-plan
validation all use these same functions, so a technician sees the same message wherever
a value is typed. Every address rule is built on the standard library's `ipaddress`.
"""

from __future__ import annotations

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
