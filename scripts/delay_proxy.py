"""A TCP proxy on 127.0.0.1 that holds every chunk for DELAY seconds in each direction, in order: a registry
on loopback then answers as if it were DELAY * 2 of round trip away. For the bench (no `tc netem` here).

    python scripts/delay_proxy.py TARGET_HOST:PORT DELAY_SECONDS     # prints the port it listens on

Bandwidth is not limited; only latency is added, which is what dominates metadata requests far away.
"""

from __future__ import annotations

import asyncio
import sys


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await queue.get()
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            if not data:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while data := await reader.read(1 << 20):
            queue.put_nowait((loop.time() + delay, data))
    except ConnectionError:
        pass
    queue.put_nowait((loop.time() + delay, b""))
    try:
        await sender
    except ConnectionError:
        pass


async def _serve(target: str, delay: float) -> None:
    host, _, port = target.rpartition(":")

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(host, int(port))
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_forward(client_r, server_w, delay), _forward(server_r, client_w, delay),
                             return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    asyncio.run(_serve(sys.argv[1], float(sys.argv[2])))
