"""A NATS-inspecting middlebox for the lab: relays a client to the real nats-server, lets the
server's INFO greeting through, and resets the connection (SO_LINGER 0: a TCP RST) as soon as
the client sends CONNECT, as an IPS or application-control rule on port 7422 does.

    python -m tests.lab.natscut LISTEN_ADDRESS LISTEN_PORT UPSTREAM_ADDRESS UPSTREAM_PORT

Run by the lab in the cloud namespace (`service()`); `Lab.nats_cut_after_connect()` points
the NATS addresses at it. Listens on its lab address only.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import sys
from pathlib import Path

from tests.lab import topology as T
from tests.lab.servers import Service

REPO = Path(__file__).resolve().parents[2]


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


async def _relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, upstream: tuple[str, int]) -> None:
    try:
        up_r, up_w = await asyncio.wait_for(asyncio.open_connection(*upstream), 5)
    except (TimeoutError, OSError):
        _reset(client_w)
        return

    async def down() -> None:  # server -> client, untouched
        try:
            while data := await up_r.read(65536):
                client_w.write(data)
                await client_w.drain()
        except OSError:
            pass
        finally:
            client_w.transport.abort()

    async def up() -> None:  # client -> server, until the client says CONNECT
        buffered = b""
        try:
            while data := await client_r.read(65536):
                seen = buffered + data  # the word may straddle two reads
                buffered = seen[-8:]
                if b"CONNECT" in seen.upper():
                    _reset(client_w)
                    up_w.transport.abort()
                    return
                up_w.write(data)
                await up_w.drain()
        except OSError:
            pass
        finally:
            up_w.transport.abort()

    await asyncio.gather(down(), up())


async def serve(address: str, port: int, upstream: tuple[str, int]) -> None:
    server = await asyncio.start_server(lambda r, w: _relay(r, w, upstream), address, port, reuse_address=True)
    async with server:
        await server.serve_forever()


def service() -> Service:
    """The middlebox as a lab service: at T.NATS_CUT:7422, relaying to the lab's nats-server."""
    return Service("nats-cut", "cloud",
                   (sys.executable, "-m", "tests.lab.natscut", T.NATS_CUT, str(T.NATS_PORT), T.CLOUD,
                    str(T.NATS_PORT)),
                   (("tcp", T.NATS_CUT, T.NATS_PORT),), env={"PYTHONPATH": str(REPO)})


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    address, port, up_address, up_port = argv
    asyncio.run(serve(address, int(port), (up_address, int(up_port))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
