"""WPA2-Enterprise (802.1X) uplinks on booted Debian 12 boxes (tests/box), with the kernel's
simulated radios: proof from both ends of the air that what `edge-installer apply` renders for
802.1X really logs the box in.

The access point is hostapd 2.10 in the guest namespace `ap` with its internal EAP server
(`ieee8021x=1`, `eap_server=1`, `wpa_key_mgmt=WPA-EAP`), bridged to the lab's cloud segment as
in tests/test_box_wifi.py. Each test makes a fresh test-only PKI (a CA, the RADIUS server's
certificate, the box's client certificate with an encrypted key), copies the box's part where the
plan's `ca_certificate` / `client_certificate` / `private_key` say, applies the plan, and checks:
wlan0 associated to the AP's BSSID (`iw dev wlan0 link`), hostapd lists exactly the box's station,
authorized, with the 802.1X AKM (00-0f-ac-1, WPA-EAP), hostapd's log shows the EAP method
completing for the box's MAC, and the uplink gets its DHCP address and reaches the cloud by name.

| box      | stack                                | case                                             |
|----------|--------------------------------------|--------------------------------------------------|
| nm       | netplan, NetworkManager backend      | PEAP/MSCHAPv2; then a wrong password: refused    |
|          |                                      | WPA3-Enterprise PEAP with country DE             |
| stock    | NetworkManager keyfiles              | EAP-TLS (client certificate, encrypted key)      |
|          |                                      | WPA3-Enterprise EAP-TLS with country DE, then a  |
|          |                                      | power cycle: joined again, country DE again      |
| networkd | netplan + wpa_supplicant (no NM)     | PEAP/MSCHAPv2 with country DE                    |

WPA3-Enterprise's access point offers only WPA-EAP-SHA256 (00-0f-ac-5) with management-frame
protection required (ieee80211w=2): the station must show that AKM and hostapd's [MFP] flag.
The country is proven by the kernel: `iw reg get` (global) and `iw phy PHY reg get` say
"country DE", and channel 13 (no-IR in the world domain 00) is usable; apply says it set it
(`iw reg set`, installer.writing.apply.set_country), since NetworkManager has no setting for it and the
modprobe drop-in acts only when cfg80211 loads (which it does at boot, as the power cycle shows).

Measured (2 shared cores, TCG): PEAP on nm 171 s and on networkd 143 s, EAP-TLS on stock 107 s,
each including the cold boot; the wrong password 46 s more. hostapd's internal EAP server logs
"authenticated - EAP type: 0 (unknown)" (the type is known only with an external RADIUS server),
so the method is read from the methods it proposed in the exchange that succeeded.
"""

from __future__ import annotations

import datetime
import re
import time

import pytest

from tests import test_box_wifi as BW
from tests.box import product as P
from tests.box import wifi as W
from tests.box.fixtures import boot_box, box_images, box_session, installed, pyz  # noqa: F401  (fixtures)

pytestmark = pytest.mark.box

SSID = "Plant-Secure"
PKI_DIR = "/etc/ssl/plant"
CA_PATH = f"{PKI_DIR}/radius-ca.pem"
CERT_PATH = f"{PKI_DIR}/edge-04.pem"
KEY_PATH = f"{PKI_DIR}/edge-04.key"
IDENTITY = "edge-04@plant.example"
ANONYMOUS = "anonymous@plant.example"
EAP_PASSWORD = "edge-04 radius secret"
KEY_PASSWORD = "K3y-Pa55word"
TLS_IDENTITY = "edge-04"
# The method hostapd's EAP server proposed last (IANA EAP method types: 13 TLS, 25 PEAP).
EAP_TYPE = {"peap": 25, "tls": 13}


def make_pki() -> dict[str, bytes]:
    """A test CA, the RADIUS server's certificate (serverAuth) and key, the box's client
    certificate (clientAuth) and its key encrypted with KEY_PASSWORD, as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject: str, key, issuer_key, ca: bool, usage=None) -> x509.Certificate:
        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name("Plant RADIUS CA"))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if usage:
            b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    ca_key, server_key, box_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    return {
        "ca": cert("Plant RADIUS CA", ca_key, ca_key, True).public_bytes(pem),
        "server": cert("radius.plant.example", server_key, ca_key, False,
                       ExtendedKeyUsageOID.SERVER_AUTH).public_bytes(pem),
        "server_key": server_key.private_bytes(pem, pkcs8, serialization.NoEncryption()),
        "client": cert(TLS_IDENTITY, box_key, ca_key, False, ExtendedKeyUsageOID.CLIENT_AUTH).public_bytes(pem),
        "client_key": box_key.private_bytes(pem, pkcs8, serialization.BestAvailableEncryption(KEY_PASSWORD.encode())),
    }


def access_point(pki: dict[str, bytes], security: str = "wpa2-enterprise") -> W.AccessPoint:
    # hostapd uses the first line matching the outer identity: the box's TLS identity before the
    # wildcard that sends every other one (PEAP's anonymous identity) to PEAP.
    users = (f'"{TLS_IDENTITY}" TLS', "* PEAP", f'"{IDENTITY}" MSCHAPV2 "{EAP_PASSWORD}" [2]')
    return W.AccessPoint(SSID, security, "", eap=W.Eap(users, pki["ca"], pki["server"], pki["server_key"]))


def wifi_section(method: str, *, password: str = EAP_PASSWORD, country: str | None = None,
                 security: str = "wpa2-enterprise") -> dict:
    """The plan's `wifi` for the access point: PEAP (identity, anonymous identity, password) or
    EAP-TLS (the client certificate and its encrypted key), always with the CA."""
    w: dict = {"ssid": SSID, "security": security, "eap_method": method, "ca_certificate": CA_PATH}
    if method == "peap":
        w.update(identity=IDENTITY, anonymous_identity=ANONYMOUS, eap_password=password)
    else:
        w.update(identity=TLS_IDENTITY, client_certificate=CERT_PATH, private_key=KEY_PATH,
                 private_key_password=KEY_PASSWORD)
    if country:
        w["country"] = country
    return w


def put_pki(box, pki: dict[str, bytes]) -> None:
    """The box's part of the PKI where the plan names it (the key 0600)."""
    box.exec(["mkdir", "-p", PKI_DIR], check=True)
    box.write_file(CA_PATH, pki["ca"], 0o644)
    box.write_file(CERT_PATH, pki["client"], 0o644)
    box.write_file(KEY_PATH, pki["client_key"], 0o600)


def hostapd_log(box) -> list[str]:
    return box.exec(["cat", W.HOSTAPD_LOG]).stdout.splitlines()


def eap_evidence(box, method: str, since: int = 0) -> list[str]:
    """hostapd's log lines (from line `since`) showing the box's station completing `method`."""
    mac = W.station_mac(box)
    log = hostapd_log(box)[since:]
    done = [i for i, ln in enumerate(log) if re.search(rf"CTRL-EVENT-EAP-SUCCESS2? {mac}", ln, re.I)]
    assert done, f"no EAP success for {mac} in hostapd's log:\n" + "\n".join(log[-40:])
    # The exchange that succeeded: from its CTRL-EVENT-EAP-STARTED to its success; the methods
    # the server proposed in it (their lines carry no address), the last being the one completed.
    start = max(i for i, ln in enumerate(log[:done[-1]]) if re.search(rf"CTRL-EVENT-EAP-STARTED {mac}", ln, re.I))
    proposed = [int(m.group(1)) for ln in log[start:done[-1]]
                if (m := re.search(r"PROPOSED-METHOD vendor=0 method=(\d+)", ln))]
    assert proposed and proposed[-1] == EAP_TYPE[method], \
        f"{method}: proposed {proposed}\n" + "\n".join(log[start:done[-1] + 1])
    return [f"proposed methods {proposed}", log[done[-1]].split(": ", 1)[-1].strip()]


# The AKM suite selectors hostapd reports (IEEE 802.11 Table 9-151).
SELECTOR = {"WPA-EAP": "00-0f-ac-1", "WPA-EAP-SHA256": "00-0f-ac-5"}


def joined(box, variant: str, method: str, plan_wifi: dict, akm: str = "WPA-EAP") -> dict:
    """Apply the plan and prove the 802.1X join from both ends (with the AKM `akm`, and
    management-frame protection for WPA3-Enterprise); what was seen, for the report."""
    plan = BW.wifi_plan(box.lab, W.AccessPoint(SSID, "wpa2-psk", "unused passphrase"),
                        renderer=BW.RENDERER[variant], uplink="dhcp")
    plan["wifi"] = plan_wifi
    P.put_plan(box, plan)
    done = P.apply(box, P.PLAN, "--no-confirm")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{W.diagnostics(box)}"
    assert "Traceback" not in done.stderr
    ap = W.AccessPoint(SSID, plan_wifi["security"], "")
    seen = BW.expect_joined(box, ap, "dhcp", f"{variant}-{method}", akm)
    (sta,) = W.stations(box)
    assert "[AUTHORIZED]" in sta.get("flags", ""), sta
    assert sta["AKMSuiteSelector"] == SELECTOR[akm], sta
    if plan_wifi["security"] == "wpa3-enterprise":
        assert "[MFP]" in sta["flags"], sta  # management frames protected (the AP requires it)
    seen["log"] = eap_evidence(box, method)
    seen["flags"] = sta["flags"]
    seen["selector"] = sta["AKMSuiteSelector"]
    seen["apply"] = done.stdout
    return seen


def report(variant: str, method: str, seen: dict, clock) -> None:
    print(f"\n{variant} {method}: iw: connected to {seen['bssid']} SSID {seen['SSID']} freq {seen.get('freq')}; "
          f"hostapd: {seen['akm']} ({seen['selector']}) {seen['flags']}; wlan0 {seen['address']}; "
          f"log: {' | '.join(seen['log'])}; {clock}")


def test_peap_mschapv2_on_netplan_with_networkmanager_and_a_wrong_password_refused(installed):
    clock = BW.Clock()
    box = installed("nm")
    pki = make_pki()
    put_pki(box, pki)
    W.access_point(box, access_point(pki), wired=BW.T.UPLINK_IF)
    clock("restored, access point")
    seen = joined(box, "nm", "peap", wifi_section("peap"))
    charge = BW.backend_in_charge(box, "nm")
    assert charge == f"GENERAL.STATE:100 (connected) GENERAL.CONNECTION:netplan-wlan0-{SSID}", charge
    clock("joined")
    report("nm", "peap", seen, clock)

    # The same box, a wrong password: the RADIUS side refuses it and the box is never let in
    # with it. apply then either rolls back (the uplink did not come up: the previous, right
    # password logs in again) or, had it kept the change, the box stays out.
    mark = len(hostapd_log(box))
    # The station's own MAC, read while associated: once out, NetworkManager scans with a random one.
    mac = W.station_mac(box)
    plan = BW.wifi_plan(box.lab, W.AccessPoint(SSID, "wpa2-psk", "unused passphrase"),
                        renderer="netplan", uplink="dhcp")
    plan["wifi"] = wifi_section("peap", password="not the radius secret")
    P.put_plan(box, plan)
    done = P.apply(box, P.PLAN, "--no-confirm")
    assert "Traceback" not in done.stderr
    assert "not the radius secret" not in done.stdout + done.stderr

    def failures() -> list[int]:
        return [i for i, ln in enumerate(hostapd_log(box)[mark:])
                if re.search(rf"CTRL-EVENT-EAP-FAILURE2? {mac}", ln, re.I)]
    try:
        first = P.wait_until(failures, 90, "hostapd refusing the wrong password")[0]
    except AssertionError as exc:
        raise AssertionError(f"{exc}\napply: {done.returncode}\n{done.stdout}\n{done.stderr}\n"
                             f"{W.diagnostics(box)}") from None
    log = hostapd_log(box)[mark:]
    assert not [ln for ln in log[:first] if "CTRL-EVENT-EAP-SUCCESS" in ln], log[:first + 1]
    rolled_back = done.returncode != 0 and "rolling back" in done.stdout + done.stderr
    if rolled_back:
        P.wait_until(lambda: [ln for ln in hostapd_log(box)[mark + first:]
                              if re.search(rf"CTRL-EVENT-EAP-SUCCESS2? {mac}", ln, re.I)], 120,
                     "the restored configuration logging in again")
        W.wait_associated(box, SSID)
        again = eap_evidence(box, "peap", since=mark + first)
        (sta,) = W.stations(box)
        assert "[AUTHORIZED]" in sta["flags"], sta
        outcome = f"apply exit {done.returncode}, rolled back; the previous password logged in again: {again}"
    else:
        deadline, polls = time.monotonic() + 10, 0
        while time.monotonic() < deadline:
            authorized = [s for s in W.stations(box) if "[AUTHORIZED]" in s.get("flags", "")]
            assert authorized == [], authorized
            polls += 1
            time.sleep(1)
        assert not [ln for ln in hostapd_log(box)[mark:] if "CTRL-EVENT-EAP-SUCCESS" in ln]
        outcome = f"apply exit {done.returncode}, kept; no station authorized in {polls} polls over 10 s"
    clock("wrong password refused")
    print(f"nm peap, wrong password: hostapd: {log[first].split(': ', 1)[-1].strip()}; {outcome}; "
          f"apply said: {(done.stdout + done.stderr).strip().splitlines()[-3:]}; {clock}")


def test_eap_tls_on_networkmanager_keyfiles(installed):
    clock = BW.Clock()
    box = installed("stock")
    pki = make_pki()
    put_pki(box, pki)
    W.access_point(box, access_point(pki), wired=BW.T.UPLINK_IF)
    clock("restored, access point")
    seen = joined(box, "stock", "tls", wifi_section("tls"))
    charge = BW.backend_in_charge(box, "stock")
    assert charge == "GENERAL.STATE:100 (connected) GENERAL.CONNECTION:edge-uplink", charge
    clock("joined")
    report("stock", "tls", seen, clock)


def country_in_effect(box, country: str) -> str:
    """The kernel's regulatory domain is `country`'s, globally and for the box's radio (its phy),
    and the radio follows it (channel 13, no-IR in the world domain 00, is usable in DE): what
    `iw` shows, as evidence for the report."""
    phy = box.read_file(f"/sys/class/net/{W.STATION}/phy80211/name").decode().strip()
    glob = box.exec(["iw", "reg", "get"]).stdout
    mine = box.exec(["iw", "phy", phy, "reg", "get"]).stdout
    assert re.search(rf"^global\s*\ncountry {country}:", glob, re.M), glob
    assert re.search(rf"^country {country}:", mine, re.M), mine
    # iw lists a channel's flags on the lines after it, up to the next channel ("* ...").
    ch13 = re.search(r"\* 2472 MHz \[13\][^*]*", box.exec(["iw", "phy", phy, "channels"]).stdout)
    assert ch13 and "disabled" not in ch13.group(0) and "No IR" not in ch13.group(0), ch13
    first = lambda text: next(ln.strip() for ln in text.splitlines() if ln.startswith("country"))  # noqa: E731
    channel = [ln.strip() for ln in ch13.group(0).splitlines() if ln.strip()]
    return (f"iw reg get: {first(glob)}; iw phy {phy} reg get: {first(mine)}; "
            f"{channel[0]} {'; '.join(channel[1:3])}")


def test_peap_mschapv2_on_netplan_with_networkd_and_the_country(installed):
    clock = BW.Clock()
    box = installed("networkd")
    pki = make_pki()
    put_pki(box, pki)
    W.access_point(box, access_point(pki), wired=BW.T.UPLINK_IF)
    clock("restored, access point")
    seen = joined(box, "networkd", "peap", wifi_section("peap", country="DE"))
    assert BW.backend_in_charge(box, "networkd") == "active"
    clock("joined")
    report("networkd", "peap", seen, clock)
    # apply set the country itself (iw reg set), and the kernel took it (wireless-regdb's database).
    assert "WiFi country DE in effect" in seen["apply"], seen["apply"]
    print(f"networkd country DE: {country_in_effect(box, 'DE')}")


@pytest.mark.parametrize("variant,method", [("nm", "peap"), ("stock", "tls")])
def test_wpa3_enterprise_and_the_country_on_networkmanager(installed, variant, method):
    """WPA3-Enterprise: the plan's `security: wpa3-enterprise` (802.1X, PMF required: netplan's
    passthrough on the nm box, the keyfile on stock) joins an access point that accepts only
    WPA-EAP-SHA256 with management frames protected (ieee80211w=2); with country DE, in effect
    after apply on NetworkManager, and on stock after a power cycle too (the modprobe drop-in,
    read when cfg80211 loads)."""
    clock = BW.Clock()
    box = installed(variant)
    pki = make_pki()
    put_pki(box, pki)
    ap = access_point(pki, "wpa3-enterprise")
    W.access_point(box, ap, wired=BW.T.UPLINK_IF)
    clock("restored, access point")
    seen = joined(box, variant, method, wifi_section(method, country="DE", security="wpa3-enterprise"),
                  akm="WPA-EAP-SHA256")
    charge = BW.backend_in_charge(box, variant)
    profile = f"netplan-wlan0-{SSID}" if variant == "nm" else "edge-uplink"
    assert charge == f"GENERAL.STATE:100 (connected) GENERAL.CONNECTION:{profile}", charge
    pmf = box.exec(["nmcli", "-g", "802-11-wireless-security.pmf,802-11-wireless-security.key-mgmt",
                    "connection", "show", profile]).stdout.split()
    assert pmf == ["3", "wpa-eap"], pmf
    clock("joined")
    report(variant, f"{method} wpa3-enterprise", seen, clock)
    assert "WiFi country DE in effect" in seen["apply"], seen["apply"]
    print(f"{variant} country DE after apply: {country_in_effect(box, 'DE')}")
    if variant != "stock":
        return
    # The power pulled and put back (a new QEMU on the same disk): the radios come again when
    # their driver loads, cfg80211 with them, and the country with it, from the drop-in.
    box.exec(["sync"], timeout=120, check=True)
    box.power_cut()
    box.start()
    box.wait_ready()
    clock("power cycle")
    W.access_point(box, ap, wired=BW.T.UPLINK_IF)
    W.wait_associated(box, SSID, timeout=120)
    (sta,) = P.wait_until(lambda: [s for s in W.stations(box) if "[AUTHORIZED]" in s.get("flags", "")], 60,
                          "the box's station authorized after the power cycle")
    assert sta["AKMSuiteSelector"] == SELECTOR["WPA-EAP-SHA256"] and "[MFP]" in sta["flags"], sta
    clock("joined again")
    print(f"stock after a power cycle: {sta['AKMSuiteSelector']} {sta['flags']}; "
          f"{country_in_effect(box, 'DE')}; {clock}")
