#!/usr/bin/env bash
# Reverse-proxy cost per request, counted (stable on a shared machine, unlike req/s):
#   - user-space instructions per request under callgrind: (Ir busy - Ir idle) / requests
#   - system calls per request under `strace -c -f` (kernel work follows the syscalls)
# for nginx proxy_pass (one worker, master_process off, upstream keep-alive) and sluice (one
# worker, bench/load/proxy.yaml on its own ports), both in front of the same nginx `return 200`.
#   bash bench/load/callgrind_proxy.sh [build/sluice]
# FULL=1: the chain users run (bench/load/proxy_full.yaml: request_id, timeout, rate_limit,
# circuit_breaker, metrics, access log, tracing at 1 %; every thread counted) against nginx
# proxy_pass + limit_req + access log (both logs to /dev/null).
# PORT_OFFSET=N moves its three ports (18290-18292) by N, for when another session runs this
# script at the same time (two runs on the same ports measure each other's servers).
# KEEP=DIR keeps the profiles there (NAME.0.out idle, NAME.1.out loaded), e.g. to count the
# calls of one function per request: callgrind_annotate --inclusive=yes DIR/sluice-full.1.out.
set -euo pipefail
off=${PORT_OFFSET:-0}
backend_port=$((18290 + off)) nginx_port=$((18291 + off)) sluice_port=$((18292 + off))
cd "$(dirname "$0")/../.."
bin=${1:-build/sluice}
work=$(mktemp -d /tmp/sluice-cgp.XXXXXX)
mkdir -p "$work/logs" "$work/backend/logs"
source bench/load/nginx_confs.sh
nginx_backend_conf "$work/backend" "$backend_port"
config=bench/load/proxy.yaml label=empty
if [ -n "${FULL:-}" ]; then config=bench/load/proxy_full.yaml label=full; fi
nginx_proxy_conf "$work" "$nginx_port" "$backend_port" "${FULL:-}"
sed -e "s/127.0.0.1:18083/127.0.0.1:$sluice_port/" -e "s/127.0.0.1:18090/127.0.0.1:$backend_port/" \
  "$config" >"$work/sluice.yaml"
if (exec 3<>"/dev/tcp/127.0.0.1/$backend_port") 2>/dev/null; then
  echo "port $backend_port is already in use (another run of this script? PORT_OFFSET=N moves the ports)" >&2
  exit 1
fi
taskset -c 1 nginx -p "$work/backend" -c "$work/backend/nginx.conf" >/dev/null 2>&1 &
backend=$!
cleanup() {
  kill "$backend" 2>/dev/null || true
  [ -n "${KEEP:-}" ] && { mkdir -p "$KEEP"; cp "$work"/*.out "$KEEP"/ 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

source bench/load/callgrind_lib.sh
wait_port "$backend_port"

# syscalls NAME PORT PATH CMD... -> system calls per request over 20,000 requests
syscalls() {
  local name=$1 port=$2 path=$3; shift 3
  "$@" >/dev/null 2>&1 &
  local pid=$!
  wait_port "$port"
  wrk -t1 -c4 -d1s "http://127.0.0.1:$port$path" >/dev/null  # warm pools
  strace -c -f -p "$pid" -o "$work/$name.strace" &
  local st=$!
  sleep 0.5
  local n
  n=$(wrk -t1 -c4 -d3s "http://127.0.0.1:$port$path" | awk '/requests in/ {print $1}')
  kill -INT "$st"; wait "$st" 2>/dev/null || true
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  awk -v n="$n" -v name="$name" '/^-+/ {next} /total/ {total=$4} END { printf "%s syscalls_per_request=%.2f\n", name, total / n }' "$work/$name.strace"
  grep -E '^ *[0-9]' "$work/$name.strace" | sort -k4 -n -r | head -8 | awk -v n="$n" '{ printf "    %-14s %.2f\n", $NF, $4 / n }'
}


measure nginx-proxy "$nginx_port" / nginx -p "$work" -c "$work/nginx.conf" | tee "$work/nginx.txt"
measure "sluice-$label" "$sluice_port" / "$bin" run -c "$work/sluice.yaml" | tee "$work/empty.txt"
if [ -n "${FULL:-}" ]; then
  awk -v e="$(sed -n 's/.*instructions_per_request=\([0-9]*\).*/\1/p' "$work/empty.txt")" \
    -v n="$(sed -n 's/.*instructions_per_request=\([0-9]*\).*/\1/p' "$work/nginx.txt")" \
    'BEGIN { printf "instructions ratio to nginx (full chain vs limit_req + access log): %.2f\n", e/n }'
  exit 0
fi
measure sluice-chain "$sluice_port" /chain "$bin" run -c "$work/sluice.yaml" | tee "$work/chain.txt"
ipr() { sed -n 's/.*instructions_per_request=\([0-9]*\).*/\1/p' "$1"; }
awk -v e="$(ipr "$work/empty.txt")" -v c="$(ipr "$work/chain.txt")" -v n="$(ipr "$work/nginx.txt")" \
  'BEGIN { printf "instructions ratio to nginx: empty chain %.2f, request_id+timeout %.2f\n", e/n, c/n }'
if command -v strace >/dev/null; then
  syscalls nginx-proxy "$nginx_port" / nginx -p "$work" -c "$work/nginx.conf"
  syscalls sluice-empty "$sluice_port" / "$bin" run -c "$work/sluice.yaml"
fi
