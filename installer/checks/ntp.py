"""NTP: does a planned time server answer on 123/udp, is it synchronised itself, and how far
is this box's clock from it.

The clock matters beyond timestamps on the machines' data: every TLS check (and the Edge's own
connections to its cloud) judges certificate validity by this clock, so a wrong clock turns
into failures that look like interception or expiry. Seed 000 lists 123/udp among the
required outbound ports ("Firewall Requirements", "Network Checklist") and names pool.ntp.org
as the default, with internal servers by DHCP ("NTP Configuration").

The servers handed out by DHCP are read from the network stack's lease files by
`dhcp_ntp_servers`, so the planner can check the servers the box would really use.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import ntplib

from installer.checks.base import Context, Outcome, Result

NTP_PORT = 123
NTP_VERSION = 4

# Above one second the clock is visibly wrong in the machines' data and in logs compared
# across systems (the SPEC's warning threshold); certificates are still judged correctly.
WARN_OFFSET_S = 1.0
# Where a wrong clock starts to break things, rather than just look untidy:
# - TLS: public CAs back-date notBefore by as little as about an hour (Let's Encrypt: one
#   hour; others less, or not at all). A box that far behind sees certificates issued within
#   that margin as "not yet valid", one that far ahead sees those in their last hour as
#   expired; with the cloud's fleets of frequently renewed certificates, that means TLS
#   failures that come and go. One hour is therefore the outer bound.
# - Seed 000's domain list sends the data uploads and container layers to AWS S3 and ECR,
#   which refuse requests signed with a clock more than 15 minutes off (RequestTimeTooSkewed).
# So we fail at 15 minutes: inside the one-hour TLS margin, with room for CAs that back-date
# less, and at the point where the uploads themselves would be refused.
FAIL_OFFSET_S = 15 * 60.0

# A pool name resolves to several addresses; asking a few at once bounds the check by one
# timeout however many of them are blocked.
MAX_ADDRESSES = 4

# Kiss-o'-Death codes (RFC 5905, 7.4) by which a server refuses to serve a client.
_REFUSALS = {"DENY": "access denied", "RSTR": "access restricted", "RATE": "rate limited",
             "NKEY": "no key", "CRYP": "authentication failed"}

_SEED_PORTS = "MachineMetrics' Network Requirements, \"Firewall Requirements\" and \"Network Checklist\""
_SEED_NTP = "MachineMetrics' Network Requirements, \"NTP Configuration\""


@dataclass(frozen=True)
class _Answer:
    address: str
    stratum: int
    leap: int
    offset: float
    delay: float
    ref_id: int
    mode: int
    tx_timestamp: float


@dataclass(frozen=True)
class _NoAnswer:
    address: str
    diagnosis: str
    words: str
    local: bool = False  # this box's own firewall refused to send


async def ntp_server(ctx: Context, prereqs: Mapping[str, Result], *, server: str,
                     resolve_key: str | None) -> Outcome:
    """Ask one planned NTP server for the time and judge the answer.

    `server` is the name or address from the plan. With `resolve_key`, the addresses come
    from that DNS check's facts (resolved with the plan's resolvers, not the box's current
    ones); without it, `server` must be an IP address. Up to four addresses are asked at once,
    each bounded by ctx.timeout; the best synchronised answer decides.

    Diagnoses: ok; ntp-timeout (no answer: 123/udp dropped or blocked); ntp-unreachable (no
    route); ntp-unsynchronised (the server answers but has no time to give: stratum 16 or
    leap "alarm"); ntp-denied (a Kiss-o'-Death refusal); ntp-bad-reply (not an NTP server
    reply); ntp-no-address (nothing to ask); clock-skew (warn beyond 1 s, fail beyond 15 min).
    """
    addresses = _addresses(server, resolve_key, prereqs)
    if not addresses:
        how = (f"the DNS check {resolve_key} gave no address" if resolve_key
               else "it is a name and no DNS check resolved it")
        return Outcome("fail", "ntp-no-address", f"{server}: nothing to ask ({how})",
                       remediation=f"Give NTP servers that resolve with the plan's DNS servers, or give "
                                   f"their IP addresses ({_SEED_NTP}).")
    asked = addresses[:MAX_ADDRESSES]
    replies = await asyncio.gather(*(_ask(a, ctx.timeout) for a in asked))
    answers = [r for r in replies if isinstance(r, _Answer)]
    failures = [r for r in replies if isinstance(r, _NoAnswer)]
    label = server if server in asked else f"{server} ({', '.join(asked)})"
    others = "".join(f"; {f.address}: {f.words}" for f in failures) if answers else ""

    if not answers:
        return _no_answer(server, label, failures, ctx.timeout)

    good = [a for a in answers if a.mode == 4 and a.tx_timestamp and not _refusal(a) and _synchronised(a)]
    if not good:
        return _unusable(server, answers[0], others)

    best = min(good, key=lambda a: (a.stratum, a.delay))
    facts = {"address": best.address, "stratum": best.stratum, "offset_s": best.offset,
             "delay_s": best.delay}
    who = server if best.address == server else f"{server} at {best.address}"
    details = (f"stratum {best.stratum}, offset {round(best.offset, 3) + 0.0:+.3f} s, "
               f"delay {best.delay * 1000:.1f} ms")
    size = abs(best.offset)
    if size <= WARN_OFFSET_S:
        return Outcome("pass", "ok", f"{who}: {details}{others}", facts)
    # ntplib's offset is the server's time minus ours: positive means this box is behind.
    where = "behind" if best.offset > 0 else "ahead of"
    skew = f"this box's clock is {_duration(size)} {where} {who} ({details}){others}"
    if size > FAIL_OFFSET_S:
        return Outcome("fail", "clock-skew", skew, facts, remediation=(
            f"The box's clock is off by more than {_duration(FAIL_OFFSET_S)}: certificates may be judged "
            "wrongly (the TLS checks of this run included), and AWS S3, where MachineMetrics' uploads go, "
            "refuses requests signed with a clock this far off. Let the box synchronise with this "
            "server (apply the plan; the time service then steps the clock) or set the clock by hand, "
            "and re-run the checks. If the box's clock is "
            f"right, this NTP server is wrong: use another ({_SEED_NTP}; \"Network Checklist\": NTP "
            "synchronization is available)."))
    return Outcome("warn", "clock-skew", skew, facts, remediation=(
        f"The box's clock is off by more than {WARN_OFFSET_S:g} s but less than {_duration(FAIL_OFFSET_S)}: "
        "certificates are still judged correctly, but timestamps of the machines' data are off. Once "
        "the plan is applied the time service corrects it from this server; if the offset comes back, "
        "check that NTP synchronisation keeps working (MachineMetrics' Network Requirements, "
        "\"Intermittent Connectivity\": Check NTP synchronization)."))


def _addresses(server: str, resolve_key: str | None, prereqs: Mapping[str, Result]) -> list[str]:
    if resolve_key is not None:
        result = prereqs.get(resolve_key)
        found = list(result.facts.get("addresses", ())) if result is not None else []
        return list(dict.fromkeys(found))
    try:
        ipaddress.ip_address(server)
    except ValueError:
        # Never let ntplib resolve a name itself: it would use the box's current resolvers,
        # not the plan's, and the check would prove something other than the plan.
        return []
    return [server]


async def _ask(address: str, timeout: float) -> _Answer | _NoAnswer:
    """One NTP request. ntplib blocks, so it runs in a thread with its own socket timeout; the
    outer wait only guards against a thread that outlives it."""
    try:
        stats = await asyncio.wait_for(asyncio.to_thread(_request, address, timeout), timeout + 1.0)
    except TimeoutError:
        return _NoAnswer(address, "ntp-timeout", f"no answer within {timeout:g} s")
    except ntplib.NTPException as e:
        # ntplib turns its socket timeout into NTPException; what it wraps tells the cases apart.
        if isinstance(e.__context__, TimeoutError):
            return _NoAnswer(address, "ntp-timeout", f"no answer on 123/udp within {timeout:g} s")
        return _NoAnswer(address, "ntp-bad-reply", f"not an NTP reply ({e})")
    except OSError as e:
        if e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
            return _NoAnswer(address, "ntp-unreachable",
                             f"no route to {address} ({errno.errorcode.get(e.errno, e.errno)})")
        if e.errno in (errno.EPERM, errno.EACCES):
            # A rule in this box's own output chain: the packet never left, so it is the same
            # "123/udp blocked" as a drop further out, but the rule to remove is here.
            return _NoAnswer(address, "ntp-timeout", "this box's own firewall refuses outbound 123/udp "
                                                     f"({errno.errorcode.get(e.errno, e.errno)})", local=True)
        return _NoAnswer(address, "ntp-unreachable", f"{type(e).__name__}: {e}")
    return _Answer(address, stats.stratum, stats.leap, stats.offset, stats.delay, stats.ref_id,
                   stats.mode, stats.tx_timestamp)


def _request(address: str, timeout: float) -> ntplib.NTPStats:
    # A numeric port: the service name "ntp" would need /etc/services, absent on minimal boxes.
    return ntplib.NTPClient().request(address, version=NTP_VERSION, port=NTP_PORT, timeout=timeout)


def _refusal(a: _Answer) -> str | None:
    """The Kiss-o'-Death code of a stratum-0 answer, or None."""
    if a.stratum != 0:
        return None
    code = a.ref_id.to_bytes(4, "big").decode("ascii", "replace").strip("\0 ")
    return code if code in _REFUSALS else None


def _synchronised(a: _Answer) -> bool:
    # Leap indicator 3 is the "alarm" (clock not synchronised); stratum 0 without a known
    # refusal and 16 both mean the server has no time source it trusts.
    return a.leap != 3 and 1 <= a.stratum <= 15


def _no_answer(server: str, label: str, failures: list[_NoAnswer], timeout: float) -> Outcome:
    # The most telling failure decides: a route problem or a garbled reply says more than a
    # timeout, which is what a blocked port looks like.
    order = ("ntp-bad-reply", "ntp-unreachable", "ntp-timeout")
    worst = min(failures, key=lambda f: order.index(f.diagnosis) if f.diagnosis in order else 0)
    evidence = f"{label}: " + "; ".join(
        (f"{f.address}: " if len(failures) > 1 else "") + f.words for f in failures)
    if worst.diagnosis == "ntp-unreachable":
        text = ("The box has no route to the NTP server: check the uplink's gateway and that the uplink "
                f"is up; the server must be reachable on outbound 123/udp ({_SEED_PORTS}).")
    elif worst.diagnosis == "ntp-bad-reply":
        text = (f"Something answered on 123/udp but not as an NTP server: check that {server} is an NTP "
                f"server, and that no firewall or proxy rewrites 123/udp ({_SEED_NTP}).")
    elif any(f.local for f in failures):
        text = ("This box's own firewall (nftables/iptables output rules) blocks outbound 123/udp: allow it "
                f"there ({_SEED_PORTS}: outbound 123/udp is required).")
    else:
        text = (f"No NTP answer from {server} within {timeout:g} s: a firewall drops outbound 123/udp. "
                f"Ask IT to allow outbound UDP port 123 ({_SEED_PORTS}). Public NTP pools cannot be "
                "allowed by IP address, so the rule must allow the port; or give the box internal NTP "
                f"servers, for example by DHCP ({_SEED_NTP}).")
    return Outcome("fail", worst.diagnosis, evidence, remediation=text)


def _unusable(server: str, a: _Answer, others: str) -> Outcome:
    refusal = _refusal(a)
    if refusal:
        return Outcome("fail", "ntp-denied",
                       f"{a.address} refused to serve this box: Kiss-o'-Death {refusal} "
                       f"({_REFUSALS[refusal]}){others}",
                       remediation=f"The NTP server {server} answers but will not serve this box: ask its "
                                   "administrator to allow the Edge's address, or use another server "
                                   f"({_SEED_NTP}: pool.ntp.org, or internal servers by DHCP).")
    if a.mode != 4 or not a.tx_timestamp:
        return Outcome("fail", "ntp-bad-reply",
                       f"{a.address} answered, but not as an NTP server (mode {a.mode}){others}",
                       remediation=f"Check that {server} is an NTP server, and that nothing between the "
                                   f"box and it rewrites 123/udp ({_SEED_NTP}).")
    leap = ntplib.leap_to_text(a.leap) if a.leap in ntplib.NTP.LEAP_TABLE else str(a.leap)
    return Outcome("fail", "ntp-unsynchronised",
                   f"{a.address} answers but is not synchronised itself: stratum {a.stratum}, "
                   f"leap indicator {leap}{others}",
                   remediation=f"The NTP server {server} has lost its own time source, so its time cannot "
                               "be trusted: repair its upstream synchronisation (it must itself reach its "
                               "sources on 123/udp), or use another server "
                               f"({_SEED_NTP}: pool.ntp.org, or internal servers by DHCP).")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


# --------------------------------------------------------------------- servers from DHCP


def dhcp_ntp_servers(run_dir: Path = Path("/run"), *, lib_dir: Path = Path("/var/lib"),
                     since: float | None = None) -> list[str]:
    """The NTP server addresses DHCP handed to this box, in order, without duplicates.

    Read from systemd-networkd's leases (`run_dir`/systemd/netif/leases/*, `NTP=`), then from
    the DHCP lease files NetworkManager and dhclient keep under `lib_dir`
    (NetworkManager/*.lease with `NTP=` or dhclient's `option ntp-servers`, dhcp/dhclient*.leases).
    Those under `lib_dir` survive reboots, so only files written since `since` (default: this
    boot) count: a lease from the network the box was staged on must not stand in for this
    site's. NetworkManager's own state under `run_dir`/NetworkManager/devices/ holds no DHCP
    options, and its current internal client saves only the address in its lease file, so a
    NetworkManager box may have its DHCP NTP servers only on D-Bus (`nmcli`); then this
    returns []. Only IP addresses are returned (DHCPv4 option 42 carries addresses).
    """
    found: list[str] = []
    for path in _files(run_dir / "systemd/netif/leases", "*"):
        found += _env_list(_read(path), "NTP")
    if since is None:
        since = _boot_time()
    for path in _files(lib_dir / "NetworkManager", "*.lease") + _files(lib_dir / "dhcp", "dhclient*.leases"):
        try:
            if path.stat().st_mtime < since:
                continue
        except OSError:
            continue
        text = _read(path)
        found += _env_list(text, "NTP") + _dhclient_ntp(text)
    out = []
    for value in found:
        try:
            address = str(ipaddress.ip_address(value))
        except ValueError:
            continue
        if address not in out:
            out.append(address)
    return out


def _files(directory: Path, pattern: str) -> list[Path]:
    try:
        return sorted(p for p in directory.glob(pattern) if p.is_file())
    except OSError:
        return []


def _read(path: Path) -> str:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as f:
            return f.read(65536)  # a lease is a few hundred bytes; a huge file is not a lease
    except OSError:
        return ""


def _env_list(text: str, key: str) -> list[str]:
    """Values of KEY=a b c lines (systemd's lease and link state format)."""
    out: list[str] = []
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            out += value.split()
    return out


def _dhclient_ntp(text: str) -> list[str]:
    """`option ntp-servers a, b;` of the last lease block: dhclient appends, newest last."""
    blocks = text.split("lease {")
    if len(blocks) < 2:
        return []
    for line in blocks[-1].splitlines():
        words = line.strip().rstrip(";").split(None, 2)
        if len(words) == 3 and words[:2] == ["option", "ntp-servers"]:
            return [v.strip() for v in words[2].split(",") if v.strip()]
    return []


def _boot_time(proc_stat: Path = Path("/proc/stat")) -> float:
    try:
        for line in proc_stat.read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return time.time() - time.monotonic()
