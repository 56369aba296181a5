"""The plan in words, and what writing it would change on disk.

`describe` turns a plan into short plain sentences for the wizard's review and done steps
and for reports: what a technician would say aloud to the plant's IT team. It never shows a
secret (a passphrase or password is only said to be set) and never raises on an unfinished
plan: a missing section is said to be missing.

`diff` compares rendered files with what is on disk under a root, as unified diffs. Secret
values are masked on both sides, so a diff never shows a passphrase, old or new.
"""

from __future__ import annotations

import difflib
import stat
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from installer.planning.plan import GOOGLE_DNS, POOL_NTP, Plan, Wifi
from installer.render import RenderedFile
from installer.vendors.profiles import Catalog

TOPOLOGY_WORDS = {
    "single": "one port on the company network; machines share that network",
    "isolated": "isolated networks, two ports (recommended): machines on their own network, "
                "the company network on the other port",
    "wifi": "wireless LAN: machines on an Ethernet port, the box on the corporate WiFi",
    "wireless-bridge": "fully wireless: the box bridges its Ethernet ports to the machines and "
                       "reaches the company network over WiFi",
    "cellular": "cellular: machines on an Ethernet port, the box online through its modem "
                "(the seed's least preferred option, at your own risk)",
}
SECURITY_WORDS = {"wpa2-psk": "WPA2-Personal", "wpa3-sae": "WPA3-Personal (SAE)",
                  "wpa2-wpa3": "WPA2/WPA3 transition mode", "wpa2-enterprise": "WPA2-Enterprise (802.1X)",
                  "wpa3-enterprise": "WPA3-Enterprise (802.1X)"}
EAP_WORDS = {"peap": "PEAP with MSCHAPv2", "tls": "EAP-TLS"}
MAX_DISK_BYTES = 1_000_000  # a configuration file is a few KB; compare no more than this


def describe(plan: Plan, catalog: Catalog) -> list[str]:
    """The plan as plain sentences, one per aspect, in the order of the wizard's steps.

    Secrets are only said to be set; an unfinished plan is described as far as it goes.
    """
    out: list[str] = []
    topo = plan.topology
    if topo is None:
        out.append("No topology chosen yet.")
    else:
        out.append(f"Topology: {TOPOLOGY_WORDS.get(topo, topo)}.")
    if plan.hostname:
        out.append(f"Host name: {plan.hostname}.")

    mn = plan.machine_network
    if mn is not None:
        ports = _words(mn.interfaces) or "(no port chosen)"
        how = f"bridged ports {ports}" if len(mn.interfaces) > 1 else f"port {ports}"
        out.append(f"Machine network on {how}: static address {mn.address or '(not set)'}, no gateway, "
                   "so the machines get no internet access through this box.")
    elif topo == "single":
        out.append("Machines are reached over the company network (no separate machine network).")

    up = plan.uplink
    if up is None:
        out.append("No uplink chosen yet.")
    else:
        iface = up.interface or "(no interface chosen)"
        if up.ipv4 == "static":
            out.append(f"Uplink on {iface}: static address {up.address or '(not set)'}, "
                       f"gateway {up.gateway or '(not set)'}.")
        else:
            source = "the cellular network" if topo == "cellular" else "the company network's DHCP"
            out.append(f"Uplink on {iface}: address from {source}.")
    if plan.ports:
        from installer.box.ports import binding_words

        bound = [f"{p.name} is the port with {binding_words(p)}" for p in plan.ports if p.binding]
        if bound:
            out.append(f"Ports found by their hardware, whatever this box calls them: {'; '.join(bound)}.")

    if plan.wifi is not None:
        w = plan.wifi
        hidden = ", hidden network" if w.hidden else ""
        secret = "the passphrase is set (not shown)" if w.passphrase else "NO passphrase given yet"
        if w.eap_method or w.security in ("wpa2-enterprise", "wpa3-enterprise"):
            secret = _eap_words(w)
        country = f"; regulatory country {w.country}" if w.country else ""
        out.append(f"WiFi network {w.ssid!r} with {SECURITY_WORDS.get(w.security, w.security)}{hidden}; "
                   f"{secret}{country}.")
    if plan.cellular is not None:
        c = plan.cellular
        login = ""
        if c.username:
            login = f", user {c.username}" + (" with a password (not shown)" if c.password else "")
        cap = f"; data cap {c.data_cap_mb} MB a month" if c.data_cap_mb else ""
        ack = ("risk accepted" if c.acknowledge_unsupported else "risk NOT accepted yet")
        out.append(f"Cellular: APN {c.apn or '(not set)'}{login}{cap}; not supported by MachineMetrics, {ack}.")

    out.append(_dns_words(plan))
    out.append(_ntp_words(plan))
    p = plan.proxy
    if p is not None and p.url:
        login = ""
        if p.username:
            login = f" as user {p.username}" + (" with a password (not shown)" if p.password else "")
        bypass = f"; reached directly: {', '.join(p.no_proxy)}" if p.no_proxy else ""
        out.append(f"Web traffic goes through the proxy {_without_userinfo(p.url)}{login}{bypass}.")
    else:
        out.append("No proxy: the box connects to the cloud directly.")
    if plan.tls.extra_ca_file:
        out.append(f"Also trusts the CA certificates in {plan.tls.extra_ca_file}.")

    out.append(_profiles_words(plan, catalog))
    out.append(_machines_words(plan, catalog))
    if plan.renderer == "networkmanager":
        out.append("Written as NetworkManager connection files (keyfiles), with systemd settings for DNS, "
                   "time and isolation.")
    else:
        out.append("Written as one netplan file, with systemd settings for DNS, time and isolation.")
    return out


def _words(items: Iterable[str]) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _without_userinfo(url: str) -> str:
    # Validation refuses credentials in the URL; a hand-edited plan may still carry them.
    try:
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
            return f"{parts.scheme}://{host}{port}"
    except ValueError:
        pass
    return url


def _dns_words(plan: Plan) -> str:
    mode = plan.dns.mode
    if mode == "google":
        return (f"DNS: Google ({_words(GOOGLE_DNS)}), falling back to the resolvers the company "
                "network's DHCP provides when Google DNS is blocked.")
    if mode == "dhcp":
        return "DNS: the resolvers the company network's DHCP provides."
    if mode == "custom":
        return f"DNS: the plant's resolvers {_words(plan.dns.servers) or '(none given yet)'}."
    return f"DNS: mode {mode!r} (not valid)."


def _ntp_words(plan: Plan) -> str:
    mode = plan.ntp.mode
    if mode == "pool":
        return f"Time: the public pool ({POOL_NTP[0]} to {POOL_NTP[-1]})."
    if mode == "dhcp":
        return "Time: the servers the company network's DHCP provides (the pool when it gives none)."
    if mode == "custom":
        return f"Time: the plant's servers {_words(plan.ntp.servers) or '(none given yet)'}."
    return f"Time: mode {mode!r} (not valid)."


def _profiles_words(plan: Plan, catalog: Catalog) -> str:
    if not plan.profiles:
        return "No cloud selected: the checks only cover the links, DNS, time and the machines."
    names = []
    for pid in plan.profiles:
        profile = catalog.profiles.get(pid)
        name = profile.title if profile is not None else f"{pid} (unknown)"
        params = plan.profile_params.get(pid, {})
        if params:
            name += " (" + ", ".join(f"{k}: {v}" for k, v in params.items()) + ")"
        names.append(name)
    return f"Cloud to reach: {'; '.join(names)}."


def _machines_words(plan: Plan, catalog: Catalog) -> str:
    if not plan.machines:
        return "No machines listed to check."
    parts = []
    for m in plan.machines:
        c = catalog.controllers.get(m.controller or "")
        what = f"{c.label}, port {c.port}/{c.protocol}" if c is not None else (m.controller or "no controller")
        parts.append(f"{m.name or '(unnamed)'} at {m.address or '(no address)'} ({what})")
    n = len(plan.machines)
    return f"{n} machine{'s' if n != 1 else ''} to check: {'; '.join(parts)}."


# ---------------------------------------------------------------------------------------
# What writing would change.

def _eap_words(w: Wifi) -> str:
    """An 802.1X login in words: method, identity, CA; secrets only said to be set."""
    method = EAP_WORDS.get(w.eap_method or "", w.eap_method or "NO EAP method chosen yet")
    words = f"{method} as {w.identity or '(no identity)'}"
    if w.anonymous_identity:
        words += f" (outer identity {w.anonymous_identity})"
    words += f", server checked against the CA in {w.ca_certificate}" if w.ca_certificate else ", NO CA certificate"
    if w.eap_method == "peap":
        words += ", the password is set (not shown)" if w.eap_password else ", NO password given yet"
    elif w.eap_method == "tls":
        words += f", client certificate {w.client_certificate or '(not set)'}, key {w.private_key or '(not set)'}"
        if w.private_key_password:
            words += " (its password is set, not shown)"
    return words


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Text with every secret value replaced by asterisks: known secret keys, credentials in
    URLs and HTTP Basic auth, and any of `secrets` wherever they appear (installer.planning.redact)."""
    from installer.planning.redact import masker

    return masker(secrets)(text)


def diff(root: Path, files: Iterable[RenderedFile], *, secrets: Iterable[str] = ()) -> list[tuple[str, str]]:
    """For each rendered file, (path on the box, what writing it changes): "new file", a
    unified diff against the file under root, or "unchanged". Secret values are masked on
    both sides, so render the redacted plan and pass the plan's secrets to be safe."""
    root = Path(root)
    secrets = list(secrets)
    out: list[tuple[str, str]] = []
    for f in files:
        on_disk = root.joinpath(*Path(f.path).parts[1:])
        try:
            st = on_disk.lstat()
        except FileNotFoundError:
            out.append((f.path, "new file"))
            continue
        except OSError as e:
            out.append((f.path, f"cannot be read ({e.strerror}); it will be replaced"))
            continue
        if not stat.S_ISREG(st.st_mode):
            out.append((f.path, "exists and is not a regular file: writing will refuse it"))
            continue
        try:
            with open(on_disk, "rb") as fh:
                old_bytes = fh.read(MAX_DISK_BYTES + 1)
        except OSError as e:
            out.append((f.path, f"cannot be read ({e.strerror}); it will be replaced"))
            continue
        old = mask_secrets(old_bytes[:MAX_DISK_BYTES].decode("utf-8", "replace"), secrets)
        new = mask_secrets(f.content.decode("utf-8", "replace"), secrets)
        mode_note = ""
        if stat.S_IMODE(st.st_mode) != f.mode:
            mode_note = f"mode {stat.S_IMODE(st.st_mode):04o} -> {f.mode:04o}"
        if old == new:
            out.append((f.path, "unchanged" + (f", {mode_note}" if mode_note else "")))
            continue
        lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), fromfile=f"{f.path} (on disk)",
                                          tofile=f"{f.path} (new)", lineterm=""))
        if len(old_bytes) > MAX_DISK_BYTES:
            lines.append(f"(only the first {MAX_DISK_BYTES} bytes on disk were compared)")
        if mode_note:
            lines.insert(0, mode_note)
        out.append((f.path, "\n".join(lines)))
    return out
