#!/usr/bin/env bash
# Heap calls and bytes per proxied request, counted (load-independent, no valgrind): each server
# runs with bench/load/alloc_counter.c LD_PRELOADed, and per request =
# (counts over a loaded interval - counts over an idle interval of the same length) / requests.
#   bash bench/load/allocs_proxy.sh [BIN...]   (default build/sluice; several binaries: before/after)
# The chain users run (bench/load/proxy_full.yaml, as callgrind_proxy.sh FULL=1) against nginx
# proxy_pass + limit_req + access log, both in front of the same nginx `return 200`.
# CONNECTIONS (64) and SECONDS_PER_RUN (3) set the wrk load (`wrk -t1`); PORT_OFFSET=N moves the
# three ports (18290-18292) by N. Prints, per server, the threads that allocate and the total.
set -euo pipefail
off=${PORT_OFFSET:-0}
backend_port=$((18290 + off)) nginx_port=$((18291 + off)) sluice_port=$((18292 + off))
secs=${SECONDS_PER_RUN:-3} conns=${CONNECTIONS:-64}
cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || set -- build/sluice
work=$(mktemp -d /tmp/sluice-allocs.XXXXXX)
mkdir -p "$work/logs" "$work/backend/logs"
cc -O2 -shared -fPIC -o "$work/alloc_counter.so" bench/load/alloc_counter.c
source bench/load/nginx_confs.sh
nginx_backend_conf "$work/backend" "$backend_port"
nginx_proxy_conf "$work" "$nginx_port" "$backend_port" full  # the users' chain's peer
sed -e "s/127.0.0.1:18083/127.0.0.1:$sluice_port/" -e "s/127.0.0.1:18090/127.0.0.1:$backend_port/" \
  bench/load/proxy_full.yaml >"$work/sluice.yaml"
if (exec 3<>"/dev/tcp/127.0.0.1/$backend_port") 2>/dev/null; then
  echo "port $backend_port is already in use (PORT_OFFSET=N moves the ports)" >&2
  exit 1
fi
nginx -p "$work/backend" -c "$work/backend/nginx.conf" >/dev/null 2>&1 &
backend=$!
trap 'kill "$backend" 2>/dev/null || true; rm -rf "$work"' EXIT
source bench/load/callgrind_lib.sh # wait_port
wait_port "$backend_port"

# count NAME PORT CMD... -> the per-thread table and "NAME allocs_per_request=... bytes_per_request=..."
count() {
  local name=$1 port=$2; shift 2
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "$name: port $port is already in use" >&2
    exit 1
  fi
  ALLOC_COUNT_FILE="$work/$name.counts" LD_PRELOAD="$work/alloc_counter.so" "$@" >/dev/null 2>&1 &
  local pid=$!
  wait_port "$port"
  wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$port/" >/dev/null # pools, connections, caches warm
  local file="$work/$name.counts.$pid"
  snap() { python3 bench/load/alloc_read.py snap "$file" "$pid" >"$work/$name.$1"; }
  snap 0
  sleep "$secs"
  snap 1
  local n out
  out=$(wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$port/")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  grep -E 'Non-2xx|Socket errors' <<<"$out" >&2 || true # a failing server would count its errors
  snap 2
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  echo "$name requests=$n (wrk -t1 -c$conns -d${secs}s)"
  python3 bench/load/alloc_read.py diff "$work/$name.0" "$work/$name.1" "$work/$name.2" "$n"
}

count nginx-proxy "$nginx_port" nginx -p "$work" -c "$work/nginx.conf"
for bin in "$@"; do
  count "sluice-full_$(basename "$(dirname "$bin")")_$(basename "$bin")" "$sluice_port" \
    "$bin" run -c "$work/sluice.yaml"
done
