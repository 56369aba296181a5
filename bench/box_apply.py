"""What an apply costs a booted box (bench/box.py calls this per variant): how long `apply`
takes until the box reaches its cloud again over the new configuration, how long the box is
off the network meanwhile, and how long a change nobody confirms takes to be undone.

"Off the network" is measured from inside the box: a probe opens TCP to the lab's cloud
(203.0.113.10:443, by address) every 0.1 s and logs the successes; the longest gap between two
successes during the apply is the outage.
"""

from __future__ import annotations

import itertools
import shlex
import time

from tests.box import product as P
from tests.lab import topology as T

PROBE = "/run/eibench-probe.log"
_PROBE_CODE = f"""
import socket, time
with open({PROBE!r}, "a", buffering=1) as log:
    while True:
        try:
            socket.create_connection(({T.CLOUD!r}, 443), timeout=0.3).close()
            log.write("%.3f\\n" % time.monotonic())
        except OSError:
            pass
        time.sleep(0.1)
"""

PLANS = {
    "networkd": {"renderer": "netplan", "uplink": "static", "dns": "custom", "ntp": "custom"},
    "nm": {"renderer": "netplan", "uplink": "static", "dns": "custom", "ntp": "custom"},
    "stock": {"renderer": "networkmanager", "uplink": "static", "dns": "custom", "ntp": "custom"},
}


def _guest_now(box) -> float:
    return float(box.exec(["python3", "-c", "import time; print('%.3f' % time.monotonic())"]).stdout)


def _successes(box) -> list[float]:
    return [float(x) for x in box.exec(["cat", PROBE]).stdout.split()]


def measure(box, variant: str) -> dict:
    """Apply (kept) on a box with edge-installer installed, on its initial configuration (a
    DHCP uplink). Seconds: the apply command, the longest time the box could not reach its
    cloud, and when it reached it again, counted from the start of the apply."""
    P.put_plan(box, P.plan_for(box.lab, **PLANS[variant]))
    box.sh(f"rm -f {PROBE}; setsid -f sh -c 'echo $$ >{PROBE}.pid; exec python3 -c \"$0\"' "
           f"{shlex.quote(_PROBE_CODE)} >/dev/null 2>&1")
    P.wait_until(lambda: box.exec(["test", "-s", PROBE]).returncode == 0, 30, "the probe reaching the cloud")
    start = _guest_now(box)
    t0 = time.monotonic()
    done = P.apply(box, P.PLAN, "--no-confirm")
    apply_s = time.monotonic() - t0
    if done.returncode != 0:
        return {"error": (done.stdout + done.stderr)[-400:]}
    end = _guest_now(box)
    P.wait_until(lambda: any(t > end for t in _successes(box)), 60, "the cloud again after apply")
    seen = _successes(box)
    before = [t for t in seen if t < start]
    times = ([before[-1]] if before else [start]) + [t for t in seen if t >= start]
    gaps = [(b - a, b) for a, b in itertools.pairwise(times)]
    outage, back = max(gaps, default=(0.0, start))
    box.sh(f"kill $(cat {PROBE}.pid) || true")
    return {"apply_s": round(apply_s, 1), "offline_s": round(outage, 1),
            "cloud_again_after_s": round(max(0.0, back - start), 1)}


def measure_revert(box, variant: str, confirm_timeout: float = 5) -> dict:
    """A change nobody confirms: seconds from the end of the wait until the box's old
    addresses are back, on a freshly restored box."""
    before = P.state(box)["addresses"]
    P.put_plan(box, P.plan_for(box.lab, **PLANS[variant]))
    t0 = time.monotonic()
    done = P.apply(box, P.PLAN, "--confirm-timeout", f"{confirm_timeout:g}")
    whole = time.monotonic() - t0
    P.wait_until(lambda: P.state(box)["addresses"] == before, 120, "the old addresses back", every=0.5)
    back = time.monotonic() - t0
    return {"unconfirmed_apply_s": round(whole, 1), "old_addresses_back_s": round(back, 1),
            "exit": done.returncode}

