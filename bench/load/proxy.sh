#!/usr/bin/env bash
# Proxy comparison in one sitting: an nginx `return 200` backend (CPU 1, beside wrk), then on
# CPU 0 in turn sluice (one worker, bench/load/proxy.yaml) with an empty chain and with
# `request_id, timeout`, and nginx (one worker) proxy_pass with upstream keep-alive.
# The three are interleaved, one wrk run each per round (ROUNDS, default 3), so a burst of other
# work on the machine hits all of them alike; medians over the rounds are compared.
# Prints each result and the ratios sluice/nginx (target: req/s >= 1.25, p99 <= 0.8).
#   bash bench/load/proxy.sh [build/sluice]        (ROUNDS; SECONDS_PER_RUN as in wrk-bench.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/sluice}
peers=../shared/bench/peers
export RUNS=1 SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
rounds=${ROUNDS:-3}
out=$(mktemp /tmp/sluice-proxy-bench.XXXXXX)
backend=$(NGINX_CPU=1 "$peers/nginx.sh" direct 18090)
front=$("$peers/nginx.sh" proxy 18084 18090)
# A session of its own, as the daemonized nginx has: CPU is shared between sessions first
# (autogroups), see tls_ab.sh.
setsid taskset -c 0 "$bin" run -c bench/load/proxy.yaml >/dev/null 2>&1 </dev/null &
sluice=$!
trap '"$peers/nginx.sh" stop "$backend"; "$peers/nginx.sh" stop "$front"; kill $sluice 2>/dev/null || true; sleep 0.3; rm -rf "$backend" "$front" "$out"' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/18083) 2>/dev/null && break; sleep 0.1; done

front_pid=$(cat "$front/nginx.pid")
for round in $(seq "$rounds"); do
  SERVER_PID=$sluice "$peers/wrk-bench.sh" sluice-empty http://127.0.0.1:18083/ | tee -a "$out"
  SERVER_PID=$sluice "$peers/wrk-bench.sh" sluice-chain http://127.0.0.1:18083/chain | tee -a "$out"
  SERVER_PID=$front_pid "$peers/wrk-bench.sh" nginx-proxy http://127.0.0.1:18084/ | tee -a "$out"
done

field() { # median of one field over the rounds
  grep "^$1 " "$out" | sed -n "s/.* $2=\([0-9.]*\).*/\1/p" | sort -g |
    awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}
for s in sluice-empty sluice-chain nginx-proxy; do
  echo "median $s req_s=$(field $s req_s) p99_ms=$(field $s p99_ms) cpu_us_per_req=$(field $s cpu_us_per_req)"
done
for s in sluice-empty sluice-chain; do
  awk -v name="$s" -v r="$(field $s req_s)" -v nr="$(field nginx-proxy req_s)" \
      -v p="$(field $s p99_ms)" -v np="$(field nginx-proxy p99_ms)" \
      -v c="$(field $s cpu_us_per_req)" -v nc="$(field nginx-proxy cpu_us_per_req)" \
      'BEGIN { printf "%s / nginx-proxy: req/s %.2fx  p99 %.2fx  cpu/req %.2fx\n", name, r/nr, p/np, c/nc }'
done

