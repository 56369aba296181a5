"""A wireless medium for mac80211_hwsim with a settable received signal, run INSIDE a box
(python3 hwsim_medium.py CONFIG): what wmediumd does (Debian 12 does not package it), reduced
to the one thing the tests need: every frame is delivered to every other radio, with the
signal in dBm that CONFIG gives for its transmitter.

Without a medium, hwsim delivers each frame itself and the receiver reads "transmit power
- 50 dBm": 0..20 dBm of txpower (mac80211 refuses negative or fractional values) gives only
-50..-30 dBm, never a weak signal. With this program registered (HWSIM_CMD_REGISTER over
generic netlink), the kernel hands it every transmitted frame (HWSIM_CMD_FRAME); it sends the
frame back to each other radio with HWSIM_ATTR_SIGNAL set (the kernel puts that in the
frame's rx status, where nl80211 and iw read it, as from a real driver) and reports the
transmission's status (HWSIM_CMD_TX_INFO_FRAME, acknowledged unless the frame wanted none).

CONFIG is JSON: {"default": -30, "42:00:00:00:01:00": -72, ...}: the signal at which a
radio's frames are heard, keyed by the radio's second hwsim address (the one the kernel names
transmitters and receivers by: 42:00:00:00:<idx>:00 for radio idx); re-read when it changes.
The kernel drops the registration when this process exits: hwsim delivers directly again.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys

NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME = 3, 1, 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2
# include/uapi/.../mac80211_hwsim.h (drivers/net/wireless/virtual/mac80211_hwsim.h)
CMD_REGISTER, CMD_FRAME, CMD_TX_INFO_FRAME = 1, 2, 3
A_RECEIVER, A_TRANSMITTER, A_FRAME, A_FLAGS, A_RX_RATE, A_SIGNAL, A_TX_INFO, A_COOKIE = 1, 2, 3, 4, 5, 6, 7, 8
A_FREQ = 19
TX_CTL_NO_ACK, TX_STAT_ACK = 1 << 1, 1 << 2


def attr(kind: int, data: bytes) -> bytes:
    raw = struct.pack("HH", 4 + len(data), kind) + data
    return raw + b"\0" * (-len(raw) % 4)


def attrs(data: bytes) -> dict[int, bytes]:
    out, i = {}, 0
    while i + 4 <= len(data):
        length, kind = struct.unpack_from("HH", data, i)
        if length < 4:
            break
        out[kind & 0x3FFF] = data[i + 4:i + length]
        i += (length + 3) & ~3
    return out


class Genl:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, 0))
        self.seq = 0

    def send(self, family: int, cmd: int, payload: bytes, flags: int = NLM_F_REQUEST) -> None:
        self.seq += 1
        body = struct.pack("BBH", cmd, 1, 0) + payload
        self.sock.send(struct.pack("IHHII", 16 + len(body), family, flags, self.seq, 0) + body)

    def messages(self):
        data = self.sock.recv(1 << 17)
        i = 0
        while i + 16 <= len(data):
            length, kind, _, _, _ = struct.unpack_from("IHHII", data, i)
            yield kind, data[i + 16:i + length]
            i += (length + 3) & ~3

    def family(self, name: str) -> int:
        self.send(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, attr(CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0"))
        for kind, body in self.messages():
            if kind == NLMSG_ERROR:
                raise SystemExit(f"no generic netlink family {name} (is mac80211_hwsim loaded?)")
            return struct.unpack_from("H", attrs(body[4:])[CTRL_ATTR_FAMILY_ID])[0]
        raise SystemExit("no answer from the generic netlink controller")


def mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def main(config_path: str, radios: int) -> None:
    nl = Genl()
    hwsim = nl.family("MAC80211_HWSIM")
    nl.send(hwsim, CMD_REGISTER, b"", NLM_F_REQUEST | NLM_F_ACK)
    for kind, body in nl.messages():
        if kind == NLMSG_ERROR and struct.unpack_from("i", body)[0] != 0:
            raise SystemExit(f"HWSIM_CMD_REGISTER refused: errno {-struct.unpack_from('i', body)[0]}")
    receivers = [bytes([0x42, 0, 0, 0, i, 0]) for i in range(radios)]
    config, stamp = {}, None
    print(f"medium registered for {radios} radios", flush=True)
    while True:
        try:
            now = os.stat(config_path).st_mtime_ns
            if now != stamp:
                with open(config_path) as f:
                    config, stamp = json.load(f), now
        except (OSError, ValueError):
            pass
        for kind, body in nl.messages():
            if kind != hwsim or body[0] != CMD_FRAME:
                continue
            a = attrs(body[4:])
            tx = a.get(A_TRANSMITTER)
            frame, flags, cookie = a.get(A_FRAME), a.get(A_FLAGS), a.get(A_COOKIE)
            info = a.get(A_TX_INFO, b"")
            if tx is None or frame is None or flags is None or cookie is None:
                continue
            signal = int(config.get(mac(tx), config.get("default", -30)))
            rate = struct.unpack_from("b", info)[0] if info else 0
            freq = a.get(A_FREQ)
            for rx in receivers:
                if rx == tx:
                    continue
                payload = (attr(A_RECEIVER, rx) + attr(A_FRAME, frame) + attr(A_RX_RATE, struct.pack("I", max(rate, 0)))
                           + attr(A_SIGNAL, struct.pack("i", signal)) + (attr(A_FREQ, freq) if freq else b""))
                try:
                    nl.send(hwsim, CMD_FRAME, payload)
                except OSError:
                    pass  # a receiver that is gone (or a full queue) loses this frame, as in the air
            (flag,) = struct.unpack("I", flags[:4])
            if not flag & TX_CTL_NO_ACK:
                flag |= TX_STAT_ACK
            rates = bytearray(info or b"\xff\x00" * 4)
            if len(rates) >= 2 and rates[0] != 0xFF:
                rates[1] = 1  # sent once, at the first rate
                for j in range(2, len(rates), 2):
                    rates[j], rates[j + 1] = 0xFF, 0
            status = (attr(A_TRANSMITTER, tx) + attr(A_FLAGS, struct.pack("I", flag)) + attr(A_COOKIE, cookie)
                      + attr(A_SIGNAL, struct.pack("i", signal)) + attr(A_TX_INFO, bytes(rates))
                      + (attr(A_FREQ, freq) if freq else b""))
            try:
                nl.send(hwsim, CMD_TX_INFO_FRAME, status)
            except OSError:
                pass


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2)
