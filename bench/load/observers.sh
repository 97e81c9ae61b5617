#!/usr/bin/env bash
# wrk against two sluice processes in one run: all observers on (metrics, tracing at 100 %
# sampling, access log to /dev/null) versus all off. Same route and chain (request_id), one
# worker each, servers on CPU 0, wrk on CPU 1 (../shared/bench/peers/wrk-bench.sh). Prints
# req/s, p99 and server CPU per request of each, and the ratio on/off (target >= 0.85).
# The exporter points at a closed loopback port, so spans are built, queued and dropped: the
# request-path cost is all there; the cost of sending them is not.
#
#   bash bench/load/observers.sh [path/to/sluice]     (RUNS / SECONDS_PER_RUN as in peers/)
# Run only when the machine is quiet (`uptime` load well below the core count).
set -euo pipefail
cd "$(dirname "$0")/../.."
peers=${PEERS:-../shared/bench/peers}
bin=${1:-${SLUICE_BIN:-build/sluice}}
export RUNS=${RUNS:-3} SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
dir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
routes='routes:
  - name: api
    match: { prefix: / }
    middlewares: [ { type: request_id } ]
    handler: { type: respond, status: 200, body: "ok\n" }'

on_port=$(port); off_port=$(port)
cat >"$dir/on.yaml" <<YAML
listen: 127.0.0.1:$on_port
admin: { listen: 127.0.0.1:$(port) }
workers: 1
log_level: warn
tracing:
  endpoint: http://127.0.0.1:1
  sampler: always_on
  batch: { max_retries: 0 }
access_log: { path: /dev/null }
$routes
YAML
cat >"$dir/off.yaml" <<YAML
listen: 127.0.0.1:$off_port
admin: { listen: 127.0.0.1:$(port) }
workers: 1
log_level: warn
metrics: { enabled: false }
$routes
YAML

taskset -c 0 "$bin" run -c "$dir/on.yaml" 2>"$dir/on.log" & pids+=($!); on_pid=$!
taskset -c 0 "$bin" run -c "$dir/off.yaml" 2>"$dir/off.log" & pids+=($!); off_pid=$!
sleep 0.5
off=$(SERVER_PID=$off_pid "$peers/wrk-bench.sh" observers-off "http://127.0.0.1:$off_port/")
on=$(SERVER_PID=$on_pid "$peers/wrk-bench.sh" observers-on "http://127.0.0.1:$on_port/")
echo "$off"
echo "$on"
rps() { sed -n 's/.*req_s=\([0-9.]*\).*/\1/p' <<<"$1"; }
cpu() { sed -n 's/.*cpu_us_per_req=\([0-9.]*\).*/\1/p' <<<"$1"; }
awk -v on="$(rps "$on")" -v off="$(rps "$off")" -v con="$(cpu "$on")" -v coff="$(cpu "$off")" \
  'BEGIN { printf "ratio on/off req_s=%.3f cpu_us_per_req on-off=%.2f\n", on / off, con - coff }'
