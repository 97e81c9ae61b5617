#!/usr/bin/env python3
"""Reads bench/load/alloc_counter.c's per-thread counts (used by bench/load/allocs_proxy.sh).

  alloc_read.py snap FILE PID          -> one line per thread: name allocs reallocs frees bytes small
  alloc_read.py diff S0 S1 S2 REQUESTS -> per request, per thread and in all: ((S2 - S1) - (S1 - S0)) / REQUESTS
S0..S2 are snapshots taken before an idle interval, after it, and after a loaded interval of the
same length, so what the process does on its own (timers, flushes) is taken out.
"""
import struct
import sys

FIELDS = ("allocs", "reallocs", "frees", "bytes", "small")
SLOT = struct.Struct("<8Q")


def snap(path, pid):
    data = open(path, "rb").read()
    for off in range(0, len(data), SLOT.size):
        tid, allocs, reallocs, frees, nbytes, small, _, _ = SLOT.unpack_from(data, off)
        if tid == 0:
            continue
        try:
            name = open(f"/proc/{pid}/task/{tid}/comm").read().strip().replace(" ", "_")
        except OSError:
            name = "exited"
        print(f"{tid}:{name} {allocs} {reallocs} {frees} {nbytes} {small}")


def load(path):
    rows = {}
    for line in open(path):
        key, *vals = line.split()
        rows[key] = [int(v) for v in vals]
    return rows


def diff(p0, p1, p2, requests):
    s0, s1, s2 = load(p0), load(p1), load(p2)
    zero = [0] * len(FIELDS)
    total = [0.0] * len(FIELDS)
    print(f"    {'thread':<28}" + "".join(f"{f:>10}" for f in FIELDS))
    for key in s2:
        a, b, c = s0.get(key, zero), s1.get(key, zero), s2[key]
        per = [((c[i] - b[i]) - (b[i] - a[i])) / requests for i in range(len(FIELDS))]
        total = [t + p for t, p in zip(total, per)]
        if any(abs(p) >= 0.005 for p in per):
            print(f"    {key:<28}" + "".join(f"{p:>10.2f}" for p in per))
    print(f"    {'per request, all threads':<28}" + "".join(f"{t:>10.2f}" for t in total))
    return total


if __name__ == "__main__":
    if sys.argv[1] == "snap":
        snap(sys.argv[2], sys.argv[3])
    else:
        diff(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
