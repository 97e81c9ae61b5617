#!/usr/bin/env python3
"""Per thread of a callgrind run (--separate-threads=yes --collect-bus=yes): requests served, and
per request every function that executes atomic instructions (callgrind's "Ge", global bus
events: lock-prefixed and xchg instructions) or takes a pthread mutex, with its callers.

    python3 bench/load/callgrind_atomics.py OUT_PREFIX REQUEST_FUNCTION [MIN_PER_REQUEST]

OUT_PREFIX: the --callgrind-out-file given to valgrind (files OUT_PREFIX-01, -02, ...).
REQUEST_FUNCTION: a substring of a function called once per request (its calls count requests).
Functions below MIN_PER_REQUEST (default 0.01) atomics or calls per request are left out.
Used by bench/load/callgrind_workers.sh; an atomic is not a shared write by itself: whose memory
it writes is read from the callers (per connection, per worker, or process-wide).
"""
import glob
import re
import sys
from collections import defaultdict


def parse(path):
    names = {}  # compressed id -> name, for fn/cfn
    events = []
    self_cost = defaultdict(lambda: defaultdict(int))  # fn -> event -> self cost
    calls = defaultdict(lambda: defaultdict(int))  # callee -> caller -> calls
    fn = cfn = None
    pending_calls = None
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("events:"):
            events = line.split()[1:]
            continue
        m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line)
        if m:
            kind, ident, name = m.groups()
            if name is not None:
                names[ident] = name
            if kind == "fn":
                fn = names.get(ident, ident)
            else:
                cfn = names.get(ident, ident)
            continue
        if line.startswith("calls="):
            pending_calls = int(line.split("=")[1].split()[0])
            continue
        if line and (line[0].isdigit() or line[0] in "+-*"):
            parts = line.split()
            values = [int(v) for v in parts[1:]]
            if pending_calls is not None:
                # the cost line after calls= is the call's inclusive cost, not fn's own
                calls[cfn][fn] += pending_calls
                pending_calls = None
            else:
                for e, v in zip(events, values):
                    self_cost[fn][e] += v
    return self_cost, calls


def short(name, n=110):
    name = re.sub(r"\(.*", "", name)
    return name if len(name) <= n else name[: n - 3] + "..."


def main():
    prefix, request_fn = sys.argv[1], sys.argv[2]
    floor = float(sys.argv[3]) if len(sys.argv) > 3 else 0.01
    for path in sorted(glob.glob(prefix + "-*")):
        self_cost, calls = parse(path)
        requests = sum(n for callee, by in calls.items() if request_fn in callee for n in by.values())
        total_ir = sum(c.get("Ir", 0) for c in self_cost.values())
        total_ge = sum(c.get("Ge", 0) for c in self_cost.values())
        print(f"== {path}: {requests} requests, {total_ir:,} instructions, {total_ge:,} atomics")
        if requests == 0:
            continue
        print(f"   per request: {total_ir / requests:,.0f} instructions, {total_ge / requests:.2f} atomics")
        rows = sorted(((c.get("Ge", 0) / requests, f) for f, c in self_cost.items() if c.get("Ge", 0)), reverse=True)
        for per, f in rows:
            if per < floor:
                continue
            print(f"   {per:6.2f} atomics/req  {short(f)}")
            for caller, n in sorted(calls.get(f, {}).items(), key=lambda kv: -kv[1]):
                if n / requests >= floor:
                    print(f"            {n / requests:6.2f} calls/req from {short(caller, 100)}")
        for f, by in calls.items():
            if "pthread_mutex_lock" in f and not f.startswith("0x"):
                n = sum(by.values())
                print(f"   pthread_mutex_lock: {n / requests:.2f} calls/req")
                for caller, c in sorted(by.items(), key=lambda kv: -kv[1]):
                    if c / requests >= floor:
                        print(f"            {c / requests:6.2f} from {short(caller, 100)}")


if __name__ == "__main__":
    main()
