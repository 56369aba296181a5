"""systemd drop-ins and small system files that complete the network configuration.

- resolved: DNS (Google with DHCP fallback, DHCP only, or custom), seed 000 "DNS Configuration";
- timesyncd: NTP (pool.ntp.org, DHCP-provided, or internal servers), seed 000 "NTP Configuration";
- the proxy environment for every service the manager starts, seed 000 "Proxy Configuration";
- forwarding off wherever a machine network exists: "Machines have no internet access" (seed 000);
- cloud-init's network configuration disabled where cloud-init is installed, as subiquity does;
- /etc/hostname when the plan names the box.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import quote, urlsplit

from installer.plan import GOOGLE_DNS, POOL_NTP, REDACTED, Plan
from installer.render import RenderedFile, Target

RESOLVED_FILE = "/etc/systemd/resolved.conf.d/60-edge-installer.conf"
TIMESYNCD_FILE = "/etc/systemd/timesyncd.conf.d/60-edge-installer.conf"
PROXY_FILE = "/etc/systemd/system.conf.d/60-edge-installer-proxy.conf"
SYSCTL_FILE = "/etc/sysctl.d/60-edge-installer-isolation.conf"
CLOUD_INIT_FILE = "/etc/cloud/cloud.cfg.d/99-edge-installer-disable-network-config.cfg"
HOSTNAME_FILE = "/etc/hostname"

_HEADER = "# Written by edge-installer from the plan; the next run replaces this file.\n"


def render(plan: Plan, target: Target) -> list[RenderedFile]:
    """The drop-ins the plan needs."""
    files = [_resolved(plan), _timesyncd(plan)]
    if plan.proxy is not None:
        files.append(_proxy(plan))
    if plan.machine_network is not None:
        files.append(_sysctl())
    if target.cloud_init:
        files.append(RenderedFile(
            CLOUD_INIT_FILE,
            (_HEADER + "# cloud-init would otherwise rewrite /etc/netplan at the next boot.\n"
             "network: {config: disabled}\n").encode(), 0o644,
            "stops cloud-init from replacing the network configuration"))
    if plan.hostname:
        files.append(RenderedFile(HOSTNAME_FILE, f"{plan.hostname}\n".encode(), 0o644, "the box's host name"))
    return files


def _resolved(plan: Plan) -> RenderedFile:
    mode = plan.dns.mode
    lines = [_HEADER.rstrip("\n"), "[Resolve]"]
    if mode == "google":
        lines.insert(1, "# Google DNS first; the resolvers the plant's DHCP hands out stay configured on the\n"
                        "# uplink and answer when Google DNS is blocked (seed 000, DNS Configuration).")
        lines.append("DNS=" + " ".join(GOOGLE_DNS))
    elif mode == "custom":
        lines.insert(1, "# The plant's own resolvers, for every name.")
        lines.append("DNS=" + " ".join(plan.dns.servers))
        lines.append("Domains=~.")
    else:
        lines.insert(1, "# The resolvers the plant's DHCP hands out, set per link; none globally.")
        lines.append("DNS=")
    return RenderedFile(RESOLVED_FILE, ("\n".join(lines) + "\n").encode(), 0o644, f"DNS resolvers ({mode})")


def _timesyncd(plan: Plan) -> RenderedFile:
    mode = plan.ntp.mode
    lines = [_HEADER.rstrip("\n")]
    if mode == "pool":
        lines += ["# The public pool.ntp.org fleet (seed 000, NTP Configuration).", "[Time]",
                  "NTP=" + " ".join(POOL_NTP)]
    elif mode == "custom":
        # Internal servers only: plants that name their own usually block the public pool.
        lines += ["# The plant's internal time servers.", "[Time]",
                  "NTP=" + " ".join(plan.ntp.servers), "FallbackNTP="]
    else:
        lines += ["# The servers the plant's DHCP hands out (seed 000: 'Internal NTP servers can be",
                  "# specified via DHCP'); the pool only when DHCP gives none.", "[Time]", "NTP=",
                  "FallbackNTP=" + " ".join(POOL_NTP)]
    return RenderedFile(TIMESYNCD_FILE, ("\n".join(lines) + "\n").encode(), 0o644, f"time servers ({mode})")


def proxy_url(plan: Plan) -> str | None:
    """The proxy URL with credentials percent-encoded (so `@ : # ! [` in a password work)."""
    p = plan.proxy
    if p is None or p.url is None:
        return None
    parts = urlsplit(p.url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    auth = ""
    if p.username is not None:
        auth = quote(p.username, safe="")
        if p.password is not None:
            # A redacted plan's mask stays readable instead of becoming %2A%2A...
            auth += ":" + (REDACTED if p.password == REDACTED else quote(p.password, safe=""))
        auth += "@"
    return f"{parts.scheme}://{auth}{host}:{parts.port}"


def no_proxy_list(plan: Plan) -> list[str]:
    """What bypasses the proxy: loopback, the machine network, and the plan's own entries."""
    entries = ["localhost", "127.0.0.1", "::1"]
    if plan.machine_network is not None and plan.machine_network.address:
        entries.append(str(ipaddress.IPv4Interface(plan.machine_network.address).network))
    for e in plan.proxy.no_proxy if plan.proxy else ():
        if e not in entries:
            entries.append(e)
    return entries


def _proxy(plan: Plan) -> RenderedFile:
    url = proxy_url(plan)
    no_proxy = ",".join(no_proxy_list(plan))
    # system.conf does not expand %-specifiers (only unit files do), so percent-encoded
    # credentials pass through unchanged; every value is quoted as one assignment.
    env = []
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.append(f'"{name}={url}"')
    for name in ("no_proxy", "NO_PROXY"):
        env.append(f'"{name}={no_proxy}"')
    text = (_HEADER + "# The plant's proxy for every service (seed 000, Proxy Configuration).\n"
            "[Manager]\nDefaultEnvironment=" + " ".join(env) + "\n")
    secret = plan.proxy is not None and plan.proxy.password is not None
    return RenderedFile(PROXY_FILE, text.encode(), 0o600 if secret else 0o644,
                        "proxy environment for system services", secret=secret)


def _sysctl() -> RenderedFile:
    text = (_HEADER + "# The machine network stays isolated: the box never routes between it and the\n"
            "# uplink, so machines have no internet access (seed 000, isolated networks).\n"
            "net.ipv4.ip_forward = 0\n"
            "net.ipv4.conf.all.forwarding = 0\n"
            "net.ipv6.conf.all.forwarding = 0\n")
    return RenderedFile(SYSCTL_FILE, text.encode(), 0o644, "no forwarding between machine network and uplink")
