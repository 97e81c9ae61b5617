#!/usr/bin/env bash
# A grey failure, reproduced: the upstream, in its own network namespace, answers every second
# call after SLOW_MS for SLOW_FOR seconds under a fixed request rate, once per defence:
#   breaker   circuit_breaker (slow_request_ratio) + cache_snapshot fallback
#   ramp      the same breaker with half-open probes and a ramp back
#   hedge     fallback hedge: the snapshot at HEDGE_MS while the call goes on
#   adaptive  adaptive_concurrency + fallback for what it sheds
# Prints per defence: 2xx share and p50/p99 before / during / after, answers by a fallback, the
# most upstream calls in flight at once, and the time from recovery to the breaker closing.
# Root (it makes a network namespace); bounded in time; touches loopback and its namespace only.
#   sudo bash bench/load/grey_failure.sh [build/sluice]
#   RATE=200 BEFORE=30 SLOW_FOR=90 AFTER=30 SLOW_MS=2000 HEDGE_MS=5 DEFENCES="breaker ramp hedge adaptive"
#   HEDGE_P99=1.5 HEDGE_FLOOR_MS=1: the hedge's budget from the p99 of its answered calls instead
#   (replaces HEDGE_MS)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-build/sluice}")
RATE=${RATE:-200} BEFORE=${BEFORE:-30} SLOW_FOR=${SLOW_FOR:-90} AFTER=${AFTER:-30}
SLOW_MS=${SLOW_MS:-2000} HEDGE_MS=${HEDGE_MS:-5} HEDGE_P99=${HEDGE_P99:-} HEDGE_FLOOR_MS=${HEDGE_FLOOR_MS:-1}
if [ -n "$HEDGE_P99" ]; then
  budget="p99_multiple: $HEDGE_P99, floor_ms: $HEDGE_FLOOR_MS, max_ms: 300"
else
  budget="after_ms: $HEDGE_MS"
fi
DEFENCES=${DEFENCES:-"breaker ramp hedge adaptive"}
here=bench/load/netns
source "$here/netns_lib.sh"
experiment_start sluice-grey

breaker='{ type: circuit_breaker, strategy: slow_request_ratio, max_allowed_rt_ms: 200,
          threshold: 0.3, min_request_amount: 20, stat_interval_ms: 1000, retry_timeout_ms: 2000'
snapshot='{ name: snapshot, kind: cache_snapshot, when: { status: [5xx] } }'
middlewares() {
  case "$1" in
    breaker) echo "[ { type: fallback, fallbacks: [ $snapshot ] }, $breaker }, { type: timeout, timeout_ms: 300 } ]" ;;
    ramp) echo "[ { type: fallback, fallbacks: [ $snapshot ] }, $breaker, half_open_success_probes: 5,
          ramp_ms: 10000, ramp_start_percent: 10, ramp_min_request_amount: 10 }, { type: timeout, timeout_ms: 300 } ]" ;;
    hedge) echo "[ { type: fallback, hedge: { cluster: backend, $budget, timeout_ms: 3000, max_background: 1024 },
          fallbacks: [ { name: hedged, kind: cache_snapshot, when: { detail: [hedged] } }, $snapshot ] },
          { type: timeout, timeout_ms: 300 } ]" ;;
    adaptive) echo "[ { type: fallback, fallbacks: [ { name: snapshot, kind: cache_snapshot,
          when: { status: [5xx], concurrency_limited: true } } ] },
          { type: adaptive_concurrency, update_interval_ms: 100, min_rtt_requests: 20 },
          { type: timeout, timeout_ms: 300 } ]" ;;
  esac
}

for defence in $DEFENCES; do
  cat >"$work/$defence.yaml" <<YAML
workers: 2
listen: 127.0.0.1:19580
admin: { listen: 127.0.0.1:19581 }
upstreams:
  backend: { endpoints: ["$UPSTREAM_IP:8080"], retries: { max: 0 } }
routes:
  - name: api
    match: { prefix: /api }
    middlewares: $(middlewares "$defence")
    handler: { type: proxy, cluster: backend }
YAML
  t0=$(python3 -c 'import time; print(time.time() + 3)')
  slow_start=$(python3 -c "print($t0 + $BEFORE)")
  recovery=$(python3 -c "print($t0 + $BEFORE + $SLOW_FOR)")
  ip netns exec "$NS" python3 "$here/upstream.py" "$UPSTREAM_IP" 8080 "$slow_start" "$SLOW_FOR" \
    "$SLOW_MS" 2 "$work/$defence.max" &
  upstream=$!
  pids+=("$upstream")
  "$bin" check -c "$work/$defence.yaml" >/dev/null || { "$bin" check -c "$work/$defence.yaml"; exit 1; }
  "$bin" run -c "$work/$defence.yaml" 2>"$work/$defence.log" &
  gw=$!
  pids+=("$gw")
  for _ in $(seq 100); do curl -s -o /dev/null 127.0.0.1:19580/api/item && break; sleep 0.05; done
  poll_breakers 19581 "$work/$defence.poll" &
  poller=$!
  pids+=("$poller")
  python3 "$here/load.py" 19580 /api/item "$RATE" "$t0" $((BEFORE + SLOW_FOR + AFTER)) 5 \
    >"$work/$defence.txt"
  if ! kill -0 "$gw" 2>/dev/null; then
    echo "$defence: sluice exited during the run; its log ends with:" >&2
    tail -n 20 "$work/$defence.log" >&2
  fi
  kill "$poller" "$gw" 2>/dev/null || true
  kill -TERM "$upstream" 2>/dev/null || true
  wait "$upstream" "$gw" "$poller" 2>/dev/null || true
  echo "$defence (rate $RATE/s, every 2nd call +${SLOW_MS} ms from ${BEFORE} s for ${SLOW_FOR} s):"
  python3 "$here/summarize.py" "$work/$defence.txt" "$BEFORE" $((BEFORE + SLOW_FOR))
  read -r most calls <"$work/$defence.max" || { most=?; calls=?; }
  echo "  upstream: $calls calls, at most $most at once; breaker closed $(closed_after "$work/$defence.poll" "$recovery") after recovery"
done
