#!/usr/bin/env python3
"""An HTTP/1.1 upstream of known capacity for tests: at most CAPACITY requests are served at once
(the rest wait their turn, as in an overloaded service's queue), each takes DELAY_MS, keep-alive
connections are all accepted. Prints its port on the first line of stdout, serves until killed.

    capacity_upstream.py CAPACITY DELAY_MS
"""
import asyncio
import sys


async def main(capacity: int, delay: float) -> None:
    slots = asyncio.Semaphore(capacity)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                if length:
                    await reader.readexactly(length)
                async with slots:
                    await asyncio.sleep(delay)
                body = b"fresh"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError,
                asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]) / 1000.0))
