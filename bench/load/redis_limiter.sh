#!/usr/bin/env bash
# rate_limit through the gateway, per backend: local bucket, Redis per-request EVALSHA, Redis
# leased. One sluice worker on CPU 0, wrk on CPU 1, a real redis-server on loopback; the limit
# is set high so nothing is rejected and every request pays for a decision.
#   bash bench/load/redis_limiter.sh [build/sluice] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/sluice}
secs=${2:-5}
work=$(mktemp -d /tmp/sluice-rl.XXXXXX)
redis-server --port 16399 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --pidfile "$work/redis.pid" --logfile "$work/redis.log" --dir "$work"
pids=()
trap 'kill ${pids[*]} 2>/dev/null; kill $(cat "$work/redis.pid") 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.3
config() {  # port backend mode
  cat <<YAML
listen: 127.0.0.1:$1
workers: 1
admin: { enabled: false }
metrics: { enabled: false }
routes:
  - name: bench
    middlewares:
      - type: rate_limit
        headers: false
        backend: $2
        limits: [ { name: all, key: route, rate: 10000000, burst: 10000000 } ]
$( [ "$2" = redis ] && echo "        redis: { address: \"127.0.0.1:16399\", mode: $3, command_timeout_ms: 200 }" )
    handler: { type: respond, status: 200, body: ok }
YAML
}
config 18301 local - >"$work/local.yaml"
config 18302 redis per_request >"$work/per_request.yaml"
config 18303 redis leased >"$work/leased.yaml"
cat >"$work/none.yaml" <<YAML
listen: 127.0.0.1:18300
workers: 1
admin: { enabled: false }
metrics: { enabled: false }
routes: [ { name: bench, handler: { type: respond, status: 200, body: ok } } ]
YAML
for name in none local per_request leased; do
  taskset -c 0 "$bin" run -c "$work/$name.yaml" 2>"$work/$name.log" &
  pids+=($!)
done
sleep 0.5
port=18300
for name in none local per_request leased; do
  redis-cli -p 16399 config resetstat >/dev/null
  out=$(taskset -c 1 wrk -t1 -c32 -d"${secs}s" --latency "http://127.0.0.1:$port/")
  calls=$(redis-cli -p 16399 info commandstats | awk -F'[:=,]' '/cmdstat_evalsha/ {print $3}')
  awk -v name="$name" -v calls="${calls:-0}" '
    /requests in/ {n=$1} /Non-2xx/ {bad=$NF} /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    END { printf "%-12s req_s=%s p50=%s p99=%s requests=%d non_2xx=%d evalsha=%d (%.3f%% of requests)\n",
          name, rps, p50, p99, n, bad, calls, 100*calls/n }' <<<"$out"
  port=$((port + 1))
done
