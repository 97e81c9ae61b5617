#!/usr/bin/env python3
"""A fixed-rate HTTP client for the netns experiments: RATE requests per second (open loop: a
request is sent on schedule whatever the earlier ones do) on keep-alive connections to
127.0.0.1:PORT from START_EPOCH for DURATION seconds, each with a client timeout of TIMEOUT_S.
Prints one line per request: "<start offset s> <latency ms> <status or 0> <X-Sluice-Fallback or ->".
With METHOD POST, each request is a write with a small body and its own Idempotency-Key
("w-<n>"), printed as a fifth column.
plus " stale" when a pooled connection had been closed by the server and the GET was sent again.

    load.py PORT PATH RATE START_EPOCH DURATION_S TIMEOUT_S [METHOD]
"""
import asyncio
import sys
import time


async def one(port, path, timeout, pool, method="GET", key=None, fresh=False):
    pooled = bool(pool) and not fresh
    try:
        if pooled:
            reader, writer = pool.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        if method == "GET":
            writer.write(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        else:
            body = b'{"write":"%s"}' % key.encode()
            writer.write(b"%s %s HTTP/1.1\r\nHost: x\r\nIdempotency-Key: %s\r\n"
                         b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                         % (method.encode(), path.encode(), key.encode(), len(body), body))
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            # A kept-alive connection the server closed while it sat idle in the pool (sluice's
            # idle_timeout), found out before any byte of an answer: like any HTTP client (and
            # sluice's own upstream pool), send a GET again once on a fresh connection (a write
            # is not resent: the caller sees the failure).
            if method == "GET" and pooled and (
                    not isinstance(e, asyncio.IncompleteReadError) or not e.partial):
                writer.close()
                status, fallback, _ = await one(port, path, timeout, pool, fresh=True)
                return status, fallback, True
            raise
        status, length, fallback = int(head.split(b" ", 2)[1]), 0, "-"
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"x-sluice-fallback":
                fallback = value.strip().decode()
        await reader.readexactly(length)
        pool.append((reader, writer))
        return status, fallback, False
    except Exception:
        return 0, "-", False


async def main():
    port, path, rate = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    start_epoch, duration, timeout = float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
    method = sys.argv[7] if len(sys.argv) > 7 else "GET"
    pool, tasks, out = [], [], []
    await asyncio.sleep(max(0.0, start_epoch - time.time()))
    t0 = time.monotonic()

    async def timed(offset, n):
        start = time.monotonic()
        key = "w-%d" % n
        status, fallback, stale = await one(port, path, timeout, pool, method, key)
        line = "%.3f %.2f %d %s%s" % (offset, (time.monotonic() - start) * 1000, status, fallback,
                                      " stale" if stale else "")
        out.append(line if method == "GET" else line + " " + key)

    i = 0
    while True:
        due = t0 + i / rate
        if due - t0 >= duration:
            break
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
        tasks.append(asyncio.ensure_future(timed(due - t0, i)))
        i += 1
    await asyncio.gather(*tasks)
    sys.stdout.write("\n".join(out) + "\n")


asyncio.run(main())
