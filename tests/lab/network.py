"""The lab's links, addresses and routes (tests/lab/topology.py says which), made and changed
with `ip` inside the namespaces only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tests.lab import netns
from tests.lab import topology as T
from tests.lab.errors import LabError

# IPv6 off (nothing in the lab uses it, and no router solicitations), forwarding off.
_QUIET = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1",
          "net.ipv4.ip_forward": "0"}


def build(ns: Mapping[str, str], public_addresses: Sequence[str]) -> None:
    """Create the three namespaces, the two veth links between them, addresses and routes.

    `public_addresses` are the translated public addresses (NATS IPs, Google DNS) the
    cloud's proxy may dial; they get a route in the cloud so its output NAT sees them.
    """
    e, c, p = ns["edge"], ns["cloud"], ns["plant"]
    netns.run(["ip", "-batch", "-"], input="".join(f"netns add {n}\n" for n in (e, c, p)))
    for result in netns.in_netns_all([(n, netns.write_sysctls, (_QUIET,)) for n in (e, c, p)]):
        if isinstance(result, BaseException):
            raise LabError(f"cannot set the namespaces' sysctls: {result}")
    # Both ends are created inside the namespaces: nothing appears in the host's.
    netns.run(["ip", "-batch", "-"], input=(
        f"link add {T.UPLINK_IF} netns {e} type veth peer name {T.CLOUD_IF} netns {c}\n"
        f"link add {T.MACHINE_IF} netns {e} type veth peer name {T.PLANT_IF} netns {p}\n"))
    batches = {
        e: [f"addr add {T.EDGE_UPLINK}/{T.PREFIX} dev {T.UPLINK_IF}",
            f"addr add {T.EDGE_MACHINE}/{T.PREFIX} dev {T.MACHINE_IF}",
            f"link set {T.UPLINK_IF} up", f"link set {T.MACHINE_IF} up",
            f"route add default via {T.GATEWAY} dev {T.UPLINK_IF}"],
        c: [f"addr add {a}/{T.PREFIX} dev {T.CLOUD_IF}" for a in T.CLOUD_ADDRESSES]
           + [f"link set {T.CLOUD_IF} up"]
           # Routed at the edge's link, where the output NAT turns them into lab addresses
           # before anything is sent; unmatched packets only reach the edge, which drops them.
           + _public_routes(public_addresses),
        p: [f"addr add {m.address}/{T.PREFIX} dev {T.PLANT_IF}" for m in T.MACHINES]
           + [f"link set {T.PLANT_IF} up"],
    }
    for n, lines in batches.items():
        netns.run(["ip", "-n", n, "-batch", "-"], input="\n".join(["link set lo up", *lines]) + "\n")
    for n in (e, c, p):
        netns.write_etc(n, T.DNS)


def _public_routes(public_addresses: Sequence[str]) -> list[str]:
    """The cloud's routes for the public addresses (ip -batch lines; `replace`: also when present)."""
    return [f"route replace {a}/32 dev {T.CLOUD_IF}" for a in sorted(public_addresses)]


def set_no_route(edge_ns: str, want: set[str], have: set[str]) -> None:
    """Unreachable routes in the edge for `want` (removing those of `have` no longer wanted)."""
    lines = [f"route del unreachable {a}/32" for a in sorted(have - want)]
    lines += [f"route replace unreachable {a}/32" for a in sorted(want - have)]
    if lines:
        netns.run(["ip", "-n", edge_ns, "-batch", "-"], input="\n".join(lines) + "\n")


def set_unplugged(ns: Mapping[str, str], want: set[str], have: set[str],
                  public_addresses: Sequence[str] = ()) -> None:
    """Take down the far end of each edge interface in `want` (it loses carrier); bring back
    those of `have` no longer wanted. Taking the cloud's end down drops every route through
    it, the public addresses' among them (see build): they are routed again when it comes
    back, or the cloud's proxy could never again dial a NATS address (connect: ENETUNREACH)."""
    far = {T.UPLINK_IF: ("cloud", T.CLOUD_IF), T.MACHINE_IF: ("plant", T.PLANT_IF)}
    for iface in sorted(want ^ have):
        role, peer = far[iface]
        netns.run(["ip", "-n", ns[role], "link", "set", peer, "down" if iface in want else "up"])
        if iface == T.UPLINK_IF and iface not in want and public_addresses:
            netns.run(["ip", "-n", ns[role], "-batch", "-"],
                      input="".join(f"{line}\n" for line in _public_routes(public_addresses)))
