#!/usr/bin/env bash
# Two sluice binaries and nginx proxy_pass, alternated in one sitting (a change's effect is smaller
# than the differences between sittings on a shared machine). Same set-up as proxy.sh: nginx
# `return 200` backend on CPU 1 beside wrk, each proxy on CPU 0 with one worker.
#   bash bench/load/proxy_ab.sh OLD_BIN NEW_BIN [path]   (ROUNDS, default 3; CONNECTIONS; SECONDS_PER_RUN)
# Prints each run, then means: req/s, p99, CPU µs per request for A (old), B (new), N (nginx).
# Add SPLIT=1 to also print each one's user/system CPU split (utime/stime in /proc).
# FULL=1: the chain users run (bench/load/proxy_full.yaml: request_id, timeout, rate_limit,
# circuit_breaker, metrics, access log, tracing at 1 %) against nginx proxy_pass + limit_req +
# access log (to /dev/null, as sluice's).
set -euo pipefail
cd "$(dirname "$0")/../.."
peers=../shared/bench/peers
a=${1:?old binary}; b=${2:?new binary}; path=${3:-/}
export RUNS=1 SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
out=$(mktemp /tmp/sluice-proxy-ab.XXXXXX)
second=$(mktemp /tmp/sluice-proxy-ab.XXXXXX.yaml)
config=bench/load/proxy.yaml; mode=proxy
if [ -n "${FULL:-}" ]; then config=bench/load/proxy_full.yaml; mode=proxy-limit; export NGINX_ACCESS_LOG=/dev/null; fi
sed 's/127.0.0.1:18083/127.0.0.1:18093/' "$config" >"$second"
backend=$(NGINX_ACCESS_LOG= NGINX_CPU=1 "$peers/nginx.sh" direct 18090)
front=$("$peers/nginx.sh" "$mode" 18084 18090)
taskset -c 0 "$a" run -c "$config" >/dev/null 2>&1 &
pa=$!
taskset -c 0 "$b" run -c "$second" >/dev/null 2>&1 &
pb=$!
trap '"$peers/nginx.sh" stop "$backend"; "$peers/nginx.sh" stop "$front"; kill $pa $pb 2>/dev/null || true; rm -f "$out" "$second"' EXIT
for port in 18083 18093; do
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
pn=$(cat "$front/nginx.pid")
ticks() { # utime stime of a process and its children
  local u=0 s=0 p
  for p in $1 $(ps -o pid= --ppid "$1" 2>/dev/null); do
    read -r pu ps < <(awk '{sub(/^.*\) /,""); print $12, $13}' "/proc/$p/stat")
    u=$((u + pu)); s=$((s + ps))
  done
  echo "$u $s"
}
one() { # NAME PID PORT
  local u0 s0 u1 s1
  read -r u0 s0 < <(ticks "$2")
  SERVER_PID=$2 "$peers/wrk-bench.sh" "$1" "http://127.0.0.1:$3$path" | tee -a "$out"
  read -r u1 s1 < <(ticks "$2")
  if [ -n "${SPLIT:-}" ]; then # over the warm-up and the run: a share, not a per-request time
    echo "$1 user_share=$((100 * (u1 - u0) / (u1 - u0 + s1 - s0 + 1)))% (user $((u1 - u0)), system $((s1 - s0)) ticks)"
  fi
}
for _ in $(seq "${ROUNDS:-3}"); do
  one A $pa 18083
  one B $pb 18093
  one N $pn 18084
done
for s in A B N; do
  grep "^$s " "$out" | awk -v s=$s '{for (i = 2; i <= 4; i++) {split($i, kv, "="); v[kv[1]] += kv[2]}; n++}
    END {printf "%s mean req_s=%.0f p99_ms=%.2f cpu_us_per_req=%.2f\n", s, v["req_s"]/n, v["p99_ms"]/n, v["cpu_us_per_req"]/n}'
done
