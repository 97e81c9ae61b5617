#!/usr/bin/env bash
# Direct-response comparison: sluice (one worker, 5-middleware chain, and empty chain) side by
# side with nginx `return 200` (one worker), in one sitting. Server on CPU 0, wrk on CPU 1.
#   bash bench/load/run.sh            (after `make build`; RUNS/SECONDS_PER_RUN as in peers/)
set -euo pipefail
cd "$(dirname "$0")/../.."
peers=${PEERS:-../shared/bench/peers}
bin=${SLUICE_BIN:-build/sluice}
dir=$("$peers/nginx.sh" direct 18081)
# Sessions of their own, as the daemonized nginx has: CPU is shared between sessions first
# (autogroups), see tls_ab.sh.
setsid taskset -c 0 "$bin" run -c bench/load/direct.yaml 2>/dev/null </dev/null &
chain_pid=$!
setsid taskset -c 0 "$bin" run -c bench/load/direct_empty.yaml 2>/dev/null </dev/null &
empty_pid=$!
trap 'kill $chain_pid $empty_pid 2>/dev/null; "$peers/nginx.sh" stop "$dir"' EXIT
sleep 0.5
SERVER_PID=$(cat "$dir/nginx.pid") "$peers/wrk-bench.sh" nginx http://127.0.0.1:18081/ | tee /tmp/bench-nginx.txt
SERVER_PID=$chain_pid "$peers/wrk-bench.sh" sluice-5mw http://127.0.0.1:18080/ | tee /tmp/bench-chain.txt
SERVER_PID=$empty_pid "$peers/wrk-bench.sh" sluice-empty http://127.0.0.1:18082/ | tee /tmp/bench-empty.txt
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$2"; }
for f in chain empty; do
  awk -v a="$(field req_s /tmp/bench-$f.txt)" -v b="$(field req_s /tmp/bench-nginx.txt)" \
      -v c="$(field cpu_us_per_req /tmp/bench-$f.txt)" -v d="$(field cpu_us_per_req /tmp/bench-nginx.txt)" \
      -v p="$(field p99_ms /tmp/bench-$f.txt)" -v q="$(field p99_ms /tmp/bench-nginx.txt)" \
      -v n="$f" 'BEGIN { printf "ratio %s/nginx: req_s %.2f  p99 %.2f  cpu_per_req %.2f (lower is better)\n", n, a/b, p/q, c/d }'
done
