#!/usr/bin/env bash
# The seed's case study, reproduced: steady load on a route with a circuit breaker and a
# cache-snapshot fallback while the upstream's link is cut for CUT_FOR seconds — a black hole
# (every packet dropped, connects time out), not a refusal. The upstream lives in its own network
# namespace. Prints the 2xx share and p50/p99 before / during / after, answers by the fallback,
# the time from the cut to the first fallback answer, and from the link's return to the breaker
# closing. The seed reports 99.98 % success; sluice's goal is >= 99.99 % with p99 during the
# partition <= 2x before. Root only; bounded in time; loopback and its namespace only.
#   sudo bash bench/load/partition.sh [build/sluice]      RATE=200 BEFORE=30 CUT_FOR=90 AFTER=30
#   HEDGE_MS=5: the fallback also hedges reads (answers from the snapshot after 5 ms)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-build/sluice}")
RATE=${RATE:-200} BEFORE=${BEFORE:-30} CUT_FOR=${CUT_FOR:-90} AFTER=${AFTER:-30}
HEDGE_MS=${HEDGE_MS:-}
hedge=""
hedged=""
if [ -n "$HEDGE_MS" ]; then
  hedge="hedge: { cluster: backend, after_ms: $HEDGE_MS, timeout_ms: 1000, max_background: 1024 }"
  hedged="- { name: hedged, kind: cache_snapshot, when: { detail: [hedged] } }"
fi
here=bench/load/netns
source "$here/netns_lib.sh"
experiment_start sluice-partition

cat >"$work/partition.yaml" <<YAML
workers: 2
listen: 127.0.0.1:19590
admin: { listen: 127.0.0.1:19591 }
upstreams:
  backend: { endpoints: ["$UPSTREAM_IP:8080"], connect_timeout_ms: 100, retries: { max: 0 } }
routes:
  - name: api
    match: { prefix: /api }
    middlewares:
      - type: fallback
        # A snapshot must outlive the partition to answer all of it (the default ttl is 60 s).
        snapshots: { ttl_ms: 600000 }
        $hedge
        fallbacks:
          $hedged
          - { name: snapshot, kind: cache_snapshot, when: { status: [5xx] } }
      - type: circuit_breaker
        strategy: error_ratio
        threshold: 0.2
        min_request_amount: 10
        stat_interval_ms: 1000
        retry_timeout_ms: 1000
      - { type: timeout, timeout_ms: 300 }
    handler: { type: proxy, cluster: backend }
YAML
t0=$(python3 -c 'import time; print(time.time() + 3)')
# The upstream is never slow here (slow window in the past): only the link fails.
ip netns exec "$NS" python3 "$here/upstream.py" "$UPSTREAM_IP" 8080 0 0 0 1 "$work/max" &
pids+=("$!")
"$bin" run -c "$work/partition.yaml" 2>"$work/sluice.log" &
pids+=("$!")
for _ in $(seq 100); do curl -s -o /dev/null 127.0.0.1:19590/api/item && break; sleep 0.05; done
poll_breakers 19591 "$work/poll" &
pids+=("$!")
(
  python3 -c "import time; time.sleep(max(0, $t0 + $BEFORE - time.time()))"
  netns_blackhole on
  python3 -c "import time; time.sleep(max(0, $t0 + $BEFORE + $CUT_FOR - time.time()))"
  netns_blackhole off
) &
pids+=("$!")
python3 "$here/load.py" 19590 /api/item "$RATE" "$t0" $((BEFORE + CUT_FOR + AFTER)) 5 >"$work/load.txt"
echo "partition (rate $RATE/s, link cut from ${BEFORE} s for ${CUT_FOR} s, a black hole${HEDGE_MS:+, hedge ${HEDGE_MS} ms}):"
python3 "$here/summarize.py" "$work/load.txt" "$BEFORE" $((BEFORE + CUT_FOR))
first_fallback=$(awk -v a="$BEFORE" '$1 >= a && $4 != "-" { printf "%.2f s", $1 - a; exit }' "$work/load.txt")
echo "  first fallback answer ${first_fallback:-never} after the cut; breaker closed $(closed_after "$work/poll" "$(python3 -c "print($t0 + $BEFORE + $CUT_FOR)")") after the link returned"
