#!/usr/bin/env bash
# What two workers write with atomic instructions or under a mutex, per request, per thread
# (issue 20: "no lock, shared counter or shared cache line written per request"). perf c2c needs
# memory-sampling PMU events this VM does not have; callgrind counts instead: each thread of a
# 2-worker gateway gets its own profile (--separate-threads=yes), with "Ge" (--collect-bus=yes),
# the number of atomic instructions (lock-prefixed, xchg) each function executes. An atomic or a
# mutex is not a shared write by itself; bench/load/callgrind_atomics.py lists each one with its
# callers, so whose memory it writes (the connection's, the worker's, the process's) can be read
# from the code. The same counts for a worker thread of each profile are what to compare.
#   bash bench/load/callgrind_workers.sh [build/sluice]
# Default: bench/load/direct.yaml (direct answers, 5 middlewares) with workers: 2.
# FULL=1: bench/load/proxy_full.yaml (the users' proxy chain) with workers: 2 (LEASES=1: and the
# rate limit's worker_leases: true) in front of an
# nginx `return 200`. CONNECTIONS (default 8: both workers get some), SECONDS_PER_RUN (default 8),
# PORT_OFFSET=N moves its two ports (18390, 18391). KEEP=DIR keeps the profiles there.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/sluice}
off=${PORT_OFFSET:-0}
port=$((18390 + off)) backend_port=$((18391 + off))
work=$(mktemp -d /tmp/sluice-cgw.XXXXXX)
mkdir -p "$work/logs"
backend=""
cleanup() {
  [ -n "$backend" ] && kill "$backend" 2>/dev/null
  [ -n "${KEEP:-}" ] && { mkdir -p "$KEEP"; cp "$work"/cg.out* "$KEEP"/; }
  rm -rf "$work"
  return 0
}
trap cleanup EXIT
for p in $port $backend_port; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "port $p is already in use (another run of this script? PORT_OFFSET=N moves the ports)" >&2
    exit 1
  fi
done
wait_port() { for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.2; done; return 1; }
source bench/load/nginx_confs.sh
if [ -n "${FULL:-}" ]; then
  nginx_backend_conf "$work" "$backend_port"
  nginx -p "$work" -c "$work/nginx.conf" &
  backend=$!
  wait_port "$backend_port"
  sed -e "s/127.0.0.1:18083/127.0.0.1:$port/" -e "s/127.0.0.1:18090/127.0.0.1:$backend_port/" \
    -e "s/^workers: 1/workers: 2/" bench/load/proxy_full.yaml >"$work/config.yaml"
  # LEASES=1: the rate limit with worker_leases (off by default: the exact, shared bucket).
  if [ "${LEASES:-0}" = 1 ]; then
    sed -i -e '/^        headers: false/a\        worker_leases: true' "$work/config.yaml"
    grep -q "worker_leases: true" "$work/config.yaml" || { echo "could not set worker_leases" >&2; exit 1; }
  fi
else
  sed -e "s/127.0.0.1:18080/127.0.0.1:$port/" -e "s/^workers: 1/workers: 2/" \
    bench/load/direct.yaml >"$work/config.yaml"
fi
grep -q "^workers: 2" "$work/config.yaml" || { echo "could not set workers: 2" >&2; exit 1; }
valgrind --tool=callgrind --separate-threads=yes --collect-bus=yes \
  --callgrind-out-file="$work/cg.out" "$bin" run -c "$work/config.yaml" >"$work/valgrind.log" 2>&1 &
server=$!
wait_port "$port"
wrk -t1 -c"${CONNECTIONS:-8}" -d"${SECONDS_PER_RUN:-8}s" "http://127.0.0.1:$port/" | grep "requests in"
kill -TERM "$server"
wait "$server" 2>/dev/null || true
# Exchange::reset runs once per request on the thread that serves it.
python3 bench/load/callgrind_atomics.py "$work/cg.out" "sluice::Exchange::reset" "${MIN_PER_REQUEST:-0.01}"
