#!/usr/bin/env python3
"""The upstream of the netns experiments (bench/load/grey_failure.sh, partition.sh): HTTP/1.1
keep-alive on HOST:PORT, answers {"n": <count>} at once — except during the slow window, when
every EVERY-th call waits SLOW_MS first (a grey failure: slow, not failing). Writes the highest
number of calls it held at once to MAXFILE when stopped (SIGTERM). With KEYFILE, the
Idempotency-Key of every call that has one is appended to it, a line each.

    upstream.py HOST PORT SLOW_START_EPOCH SLOW_FOR_S SLOW_MS EVERY MAXFILE [KEYFILE]
"""
import asyncio
import signal
import sys
import time


async def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    slow_start, slow_for = float(sys.argv[3]), float(sys.argv[4])
    slow_s, every, maxfile = float(sys.argv[5]) / 1000.0, int(sys.argv[6]), sys.argv[7]
    state = {"n": 0, "in_flight": 0, "max": 0}
    keys = open(sys.argv[8], "a", buffering=1) if len(sys.argv) > 8 else None

    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length" and int(value.strip()):
                        await reader.readexactly(int(value.strip()))
                    if keys and name.strip().lower() == b"idempotency-key":
                        keys.write(value.strip().decode() + "\n")
                state["n"] += 1
                n = state["n"]
                state["in_flight"] += 1
                state["max"] = max(state["max"], state["in_flight"])
                try:
                    now = time.time()
                    if slow_start <= now < slow_start + slow_for and n % every == 0:
                        await asyncio.sleep(slow_s)
                finally:
                    state["in_flight"] -= 1
                body = b'{"n":%d}' % n
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError,
                asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, host, port, backlog=4096)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
    with open(maxfile, "w") as f:
        f.write("%d %d\n" % (state["max"], state["n"]))


asyncio.run(main())
