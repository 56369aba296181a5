"""systemd drop-ins and small system files that complete the network configuration, each
for the software the box really runs (installer.render.Target says which):

- DNS (Google with DHCP fallback, DHCP only, or custom), seed 000 "DNS Configuration":
  a systemd-resolved drop-in where resolved runs; where NetworkManager sets the resolvers, its
  profile carries them and it writes resolv.conf; otherwise /etc/resolv.conf itself;
- NTP (pool.ntp.org, DHCP-provided, or internal servers), seed 000 "NTP Configuration":
  a timesyncd drop-in, or chrony's configuration where chrony is the time service;
- the proxy for every system service, seed 000 "Proxy Configuration": a drop-in for all
  services that reads the proxy from a root-only file (the password never enters the
  manager's environment, which every local user can read);
- NetworkManager told to leave alone the ports netplan hands to systemd-networkd;
- forwarding off wherever a machine network exists: "Machines have no internet access" (seed 000);
- cloud-init's network configuration disabled where cloud-init is installed, as subiquity does;
- /etc/hostname when the plan names the box.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import quote, urlsplit

from installer.planning.model import GOOGLE_DNS, POOL_NTP, REDACTED, Plan, Port
from installer.render.base import LEGACY_PROXY_FILE as LEGACY_PROXY_FILE  # installer.writing.apply reads it here
from installer.render.base import (
    MACHINE_BRIDGE,
    RenderedFile,
    Target,
    dns_by_networkmanager,
    netplan_backend,
    plan_interfaces,
)

RESOLVED_FILE = "/etc/systemd/resolved.conf.d/60-edge-installer.conf"
RESOLV_CONF_FILE = "/etc/resolv.conf"
TIMESYNCD_FILE = "/etc/systemd/timesyncd.conf.d/60-edge-installer.conf"
CHRONY_FILE = "/etc/chrony/chrony.conf"
PROXY_FILE = "/etc/systemd/system/service.d/60-edge-installer-proxy.conf"
PROXY_ENV_FILE = "/etc/edge-installer/proxy.env"
NM_UNMANAGED_FILE = "/etc/NetworkManager/conf.d/60-edge-installer-unmanaged.conf"
SYSCTL_FILE = "/etc/sysctl.d/60-edge-installer-isolation.conf"
CLOUD_INIT_FILE = "/etc/cloud/cloud.cfg.d/99-edge-installer-disable-network-config.cfg"
HOSTNAME_FILE = "/etc/hostname"
LINK_DIR = "/etc/systemd/network"  # udev's .link files: which name a port gets when it appears
REGDOM_FILE = "/etc/modprobe.d/60-edge-installer-regdom.conf"

_HEADER = "# Written by edge-installer from the plan; the next run replaces this file.\n"


def render(plan: Plan, target: Target) -> list[RenderedFile]:
    """The drop-ins the plan needs on the box `target` describes."""
    files = []
    if target.resolved:
        files.append(_resolved(plan))
    elif not dns_by_networkmanager(plan, target) and plan.dns.mode != "dhcp":
        files.append(_resolv_conf(plan))
    if target.time_daemon == "chrony":
        files.append(_chrony(plan))
    elif target.time_daemon == "timesyncd":
        files.append(_timesyncd(plan))
    if plan.proxy is not None and plan.proxy.url is not None:
        files += _proxy(plan)
    if plan.machine_network is not None:
        files.append(_sysctl())
    if plan.renderer == "netplan":
        files += [_port_link(port) for port in plan.ports if port.path is not None]
    if plan.wifi is not None and plan.wifi.country and plan.topology in ("wifi", "wireless-bridge"):
        files.append(_regdom(plan.wifi.country))
    if (target.networkmanager_installed and plan.renderer == "netplan"
            and netplan_backend(plan, target) == "networkd"):
        files.append(_nm_unmanaged(plan))
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
                        "# uplink and answer when Google DNS is blocked (MachineMetrics, Network Requirements, "
                        "'DNS Configuration').")
        lines.append("DNS=" + " ".join(GOOGLE_DNS))
    elif mode == "custom":
        lines.insert(1, "# The plant's own resolvers, for every name.")
        lines.append("DNS=" + " ".join(plan.dns.servers))
        lines.append("Domains=~.")
    else:
        lines.insert(1, "# The resolvers the plant's DHCP hands out, set per link; none globally.")
        lines.append("DNS=")
    return RenderedFile(RESOLVED_FILE, ("\n".join(lines) + "\n").encode(), 0o644, f"DNS resolvers ({mode})")


def _resolv_conf(plan: Plan) -> RenderedFile:
    servers = GOOGLE_DNS if plan.dns.mode == "google" else plan.dns.servers
    note = ("# Google DNS (MachineMetrics, Network Requirements, 'DNS Configuration').\n"
            "# This box has no systemd-resolved, so the plant's DHCP resolvers cannot be added as\n"
            "# the fallback: install systemd-resolved for it.\n"
            if plan.dns.mode == "google" else "# The plant's own resolvers.\n")
    # resolv.conf reads at most three nameservers (resolv.conf(5), MAXNS).
    text = (_HEADER + "# This box has neither systemd-resolved nor NetworkManager to set its resolvers.\n" + note
            + "".join(f"nameserver {s}\n" for s in list(servers)[:3]))
    return RenderedFile(RESOLV_CONF_FILE, text.encode(), 0o644, f"DNS resolvers ({plan.dns.mode})")


def _chrony(plan: Plan) -> RenderedFile:
    mode = plan.ntp.mode
    if mode == "pool":
        sources = ["# The public pool.ntp.org fleet (MachineMetrics, Network Requirements, 'NTP Configuration')."] + [
            f"pool {p} iburst" for p in POOL_NTP]
    elif mode == "custom":
        sources = ["# The plant's internal time servers only: plants that name their own usually block",
                   "# the public pool."] + [f"server {s} iburst" for s in plan.ntp.servers]
    else:
        sources = ["# The servers the plant's DHCP hands out (MachineMetrics, Network Requirements: "
                   "'Internal NTP servers can be",
                   "# specified via DHCP'), which Debian's DHCP hooks write to /run/chrony-dhcp.",
                   "sourcedir /run/chrony-dhcp"]
    # Debian's own chrony.conf, less its pool line, which would add servers the plan did not name.
    debian = ["", "# Debian's settings.", "confdir /etc/chrony/conf.d", "sourcedir /etc/chrony/sources.d",
              "keyfile /etc/chrony/chrony.keys", "driftfile /var/lib/chrony/chrony.drift",
              "ntsdumpdir /var/lib/chrony", "logdir /var/log/chrony", "maxupdateskew 100.0", "rtcsync",
              "makestep 1 3", "leapsectz right/UTC"]
    text = _HEADER + "\n".join(sources + debian) + "\n"
    return RenderedFile(CHRONY_FILE, text.encode(), 0o644, f"time servers for chrony ({mode})")


def _nm_unmanaged(plan: Plan) -> RenderedFile:
    names = sorted(plan_interfaces(plan))
    if plan.machine_network is not None and len(plan.machine_network.interfaces) >= 2:
        names.append(MACHINE_BRIDGE)
    text = (_HEADER + "# These ports are systemd-networkd's (netplan, networkd backend): NetworkManager would\n"
            "# otherwise run its own DHCP on them and take their addresses away.\n"
            "[keyfile]\nunmanaged-devices=" + ";".join(f"interface-name:{n}" for n in names) + "\n")
    return RenderedFile(NM_UNMANAGED_FILE, text.encode(), 0o644, "keeps NetworkManager off networkd's ports")


def _timesyncd(plan: Plan) -> RenderedFile:
    mode = plan.ntp.mode
    lines = [_HEADER.rstrip("\n")]
    if mode == "pool":
        lines += ["# The public pool.ntp.org fleet (MachineMetrics, Network Requirements, 'NTP Configuration').",
                  "[Time]",
                  "NTP=" + " ".join(POOL_NTP)]
    elif mode == "custom":
        # Internal servers only: plants that name their own usually block the public pool.
        lines += ["# The plant's internal time servers.", "[Time]",
                  "NTP=" + " ".join(plan.ntp.servers), "FallbackNTP="]
    else:
        lines += ["# The servers the plant's DHCP hands out (MachineMetrics, Network Requirements: "
                  "'Internal NTP servers can be",
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
    # A set beside the list: a membership test on the list made 90,000 entries quadratic.
    seen = set(entries)
    for e in plan.proxy.no_proxy if plan.proxy else ():
        if e not in seen:
            seen.add(e)
            entries.append(e)
    return entries


def _env_value(value: str) -> str:
    """A value for a systemd EnvironmentFile: double-quoted, its specials escaped. Such files
    are not subject to %-specifier expansion (unit files and DefaultEnvironment= are: there
    systemd drops a percent-encoded password with "Failed to resolve specifiers")."""
    return '"' + "".join("\\" + c if c in '"\\`$' else c for c in value) + '"'


def _proxy(plan: Plan) -> list[RenderedFile]:
    url = proxy_url(plan) or ""
    no_proxy = ",".join(no_proxy_list(plan))
    lines = [f"{name}={_env_value(url)}" for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")]
    lines += [f"{name}={_env_value(no_proxy)}" for name in ("no_proxy", "NO_PROXY")]
    secret = plan.proxy is not None and plan.proxy.password is not None
    env = RenderedFile(PROXY_ENV_FILE, (_HEADER + "# The plant's proxy (MachineMetrics, Network Requirements, "
                                        "'Proxy Configuration'), read by "
                                        "systemd for every service;\n# readable by root only: it may hold the "
                                        "proxy's password.\n" + "\n".join(lines) + "\n").encode(),
                       0o600, "the proxy for system services (root only)", secret=secret)
    # A drop-in for every service (systemd's top-level service.d): systemd reads the file as
    # root when it starts a service, so the password reaches the services and nobody else
    # (`systemctl show-environment` and the units' properties show only the file's name).
    dropin = RenderedFile(PROXY_FILE, (_HEADER + "# Every system service gets the plant's proxy from a root-only "
                                       "file (the leading '-':\n# a service still starts if the file is "
                                       "gone).\n[Service]\nEnvironmentFile=-" + PROXY_ENV_FILE + "\n").encode(),
                          0o644, "gives every system service the proxy")
    return [dropin, env]


def _regdom(country: str) -> RenderedFile:
    """The WiFi regulatory country for the kernel (cfg80211), which NetworkManager has no setting
    for: read when cfg80211 loads, i.e. at the next boot, before any driver scans. At apply time
    installer.writing.apply.set_country puts it in effect (`iw reg set`) on every stack."""
    text = (_HEADER + "# The WiFi regulatory domain of the country the box is in: which channels and transmit\n"
            "# power the radio may use (needs the Debian package wireless-regdb; takes effect when\n"
            "# cfg80211 loads, at the next boot).\n"
            f"options cfg80211 ieee80211_regdom={country}\n")
    return RenderedFile(REGDOM_FILE, text.encode(), 0o644, f"WiFi regulatory country {country}")


def port_link_path(name: str) -> str:
    """Where the .link file naming the port `name` lives (before 99-default.link, which it replaces)."""
    return f"{LINK_DIR}/10-edge-installer-{name}.link"


def _port_link(port: Port) -> RenderedFile:
    """A port the plan binds to its socket (plan `ports`, `path`): netplan cannot match udev's
    ID_PATH, so udev itself names the port, by a systemd .link file (systemd.link(5)), as netplan
    does for its own set-name. Read when the port appears: at boot (and in the initramfs once
    update-initramfs has copied it), or when the adapter is plugged in."""
    text = (_HEADER + f"# The port in socket {port.path} is called {port.name} on every box of this model.\n"
            f"[Match]\nPath={port.path}\n\n[Link]\nName={port.name}\n")
    return RenderedFile(port_link_path(port.name), text.encode(), 0o644,
                        f"names the port at {port.path} {port.name}")


def _sysctl() -> RenderedFile:
    text = (_HEADER + "# The machine network stays isolated: the box never routes between it and the\n"
            "# uplink, so machines have no internet access (MachineMetrics, Network Requirements, isolated networks).\n"
            "net.ipv4.ip_forward = 0\n"
            "net.ipv4.conf.all.forwarding = 0\n"
            "net.ipv6.conf.all.forwarding = 0\n")
    return RenderedFile(SYSCTL_FILE, text.encode(), 0o644, "no forwarding between machine network and uplink")
