#!/usr/bin/env bash
# The seed's partition with writes: reads and writes at a fixed rate each while the upstream's
# link is cut for CUT_FOR seconds (a black hole: connects time out, nothing is refused). Reads
# are answered from the cache_snapshot fallback during the cut; writes go into a store-and-forward
# queue (fallback kind: queue) and are replayed once the link is back. Prints, per phase, the 2xx
# share and p50/p99 of reads and of writes (a 202 counts as accepted), the time from the link's
# return to an empty queue, and the writes lost (accepted, never delivered) and delivered twice.
# The upstream lives in its own network namespace. Root only; bounded in time.
#   sudo bash bench/load/partition_writes.sh [build/sluice]   RATE=100 BEFORE=30 CUT_FOR=90 AFTER=30
#   CONCURRENCY=64 (the queue's replays in flight)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-build/sluice}")
RATE=${RATE:-100} BEFORE=${BEFORE:-30} CUT_FOR=${CUT_FOR:-90} AFTER=${AFTER:-30}
CONCURRENCY=${CONCURRENCY:-64}  # the queue's replays in flight
here=bench/load/netns
source "$here/netns_lib.sh"
experiment_start sluice-partition-writes

breaker='{ type: circuit_breaker, strategy: error_ratio, threshold: 0.2, min_request_amount: 10, stat_interval_ms: 1000, retry_timeout_ms: 1000 }'
cat >"$work/partition.yaml" <<YAML
workers: 2
listen: 127.0.0.1:19592
admin: { listen: 127.0.0.1:19593 }
upstreams:
  backend: { endpoints: ["$UPSTREAM_IP:8080"], connect_timeout_ms: 100, retries: { max: 0 } }
routes:
  - name: writes
    match: { prefix: /api/orders }
    middlewares:
      - type: fallback
        fallbacks:
          - name: later
            kind: queue
            cluster: backend
            when: { status: [5xx] }
            queue: { dir: $work/queue, fsync: interval, concurrency: $CONCURRENCY, backoff_base_ms: 50,
                     backoff_max_ms: 200, replay_timeout_ms: 500 }
      - $breaker
      - { type: timeout, timeout_ms: 300 }
    handler: { type: proxy, cluster: backend }
  - name: reads
    match: { prefix: /api }
    middlewares:
      - type: fallback
        snapshots: { ttl_ms: 600000 }
        fallbacks:
          - { name: snapshot, kind: cache_snapshot, when: { status: [5xx] } }
      - $breaker
      - { type: timeout, timeout_ms: 300 }
    handler: { type: proxy, cluster: backend }
YAML
t0=$(python3 -c 'import time; print(time.time() + 3)')
ip netns exec "$NS" python3 "$here/upstream.py" "$UPSTREAM_IP" 8080 0 0 0 1 "$work/max" "$work/keys" &
pids+=("$!")
"$bin" run -c "$work/partition.yaml" 2>"$work/sluice.log" &
pids+=("$!")
for _ in $(seq 100); do curl -s -o /dev/null 127.0.0.1:19592/api/item && break; sleep 0.05; done
(  # the queue's depth every 50 ms: "<epoch> <depth>"
  while :; do
    d=$(curl -s --max-time 1 127.0.0.1:19593/queues |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["queues"][0]["depth"])' 2>/dev/null || echo -)
    echo "$(date +%s.%N) $d" >>"$work/depth"
    sleep 0.05
  done
) &
pids+=("$!")
(
  python3 -c "import time; time.sleep(max(0, $t0 + $BEFORE - time.time()))"
  netns_blackhole on
  python3 -c "import time; time.sleep(max(0, $t0 + $BEFORE + $CUT_FOR - time.time()))"
  netns_blackhole off
) &
pids+=("$!")
total=$((BEFORE + CUT_FOR + AFTER))
python3 "$here/load.py" 19592 /api/orders "$RATE" "$t0" "$total" 5 POST >"$work/writes.txt" &
writer=$!
python3 "$here/load.py" 19592 /api/item "$RATE" "$t0" "$total" 5 >"$work/reads.txt"
wait "$writer"
for _ in $(seq 300); do  # up to 30 s more for the queue to empty
  [ "$(tail -1 "$work/depth" | cut -d' ' -f2)" = 0 ] && break
  sleep 0.1
done
sleep 1  # the upstream's key file is line-buffered; the last replays' lines
echo "partition with writes (rate $RATE reads/s + $RATE writes/s, link cut from ${BEFORE} s for ${CUT_FOR} s, a black hole, replay concurrency $CONCURRENCY):"
echo " reads:"
python3 "$here/summarize.py" "$work/reads.txt" "$BEFORE" $((BEFORE + CUT_FOR))
echo " writes (2xx includes 202 queued):"
python3 "$here/summarize.py" "$work/writes.txt" "$BEFORE" $((BEFORE + CUT_FOR))
python3 - "$work/writes.txt" "$work/keys" "$work/depth" "$(python3 -c "print($t0 + $BEFORE + $CUT_FOR)")" <<'PY'
import collections, sys
writes = [l.split() for l in open(sys.argv[1]) if l.strip()]
accepted = {w[4] for w in writes if 200 <= int(w[2]) < 300}
queued = sum(1 for w in writes if int(w[2]) == 202)
refused = len(writes) - len(accepted)
seen = collections.Counter(l.strip() for l in open(sys.argv[2]) if l.strip().startswith("w-"))
lost = accepted - set(seen)
twice = sum(1 for k, n in seen.items() if n > 1)
back = float(sys.argv[4])
rows = [l.split() for l in open(sys.argv[3]) if l.strip()]
depth_at_back = next((r[1] for r in rows if float(r[0]) >= back), "-")
empty = next((float(r[0]) - back for r in rows if float(r[0]) >= back and r[1] == "0"), None)
print("  writes: %d sent, %d accepted (%d of them queued, answered 202), %d not accepted"
      % (len(writes), len(accepted), queued, refused))
print("  queue depth when the link returned: %s; empty %s after it"
      % (depth_at_back, "%.2f s" % empty if empty is not None else "never"))
print("  delivered: %d distinct writes; lost (accepted, never delivered): %d; delivered more than once: %d"
      % (len(seen), len(lost), twice))
if lost:
    print("  lost keys: " + " ".join(sorted(lost)[:20]))
PY
grep -c "dead letter" "$work/sluice.log" | sed 's/^/  dead letters logged: /' || true
