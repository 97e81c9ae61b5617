#!/usr/bin/env python3
"""Summarizes load.py's lines by phase: before [0, A), during [A, B), after [B, end).
    summarize.py FILE A B
Prints, per phase: requests, the share answered 2xx, p50 / p99 latency, answers by a fallback."""
import sys


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
a, b = float(sys.argv[2]), float(sys.argv[3])
for name, lo, hi in (("before", 0, a), ("during", a, b), ("after", b, 1e18)):
    phase = [r for r in rows if lo <= float(r[0]) < hi]
    if not phase:
        continue
    ok = sum(1 for r in phase if 200 <= int(r[2]) < 300)
    lat = [float(r[1]) for r in phase]
    fb = sum(1 for r in phase if r[3] != "-")
    print("  %-6s requests=%d 2xx=%.3f%% p50=%.1fms p99=%.1fms by_fallback=%d"
          % (name, len(phase), 100.0 * ok / len(phase), pct(lat, 0.5), pct(lat, 0.99), fb))
