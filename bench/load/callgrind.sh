#!/usr/bin/env bash
# Instructions per request, counted by callgrind (stable on a shared machine, unlike req/s):
#   (Ir of a run serving N requests - Ir of an idle run) / N
# for nginx `return 200` (one worker, master_process off) and sluice on bench/load configs.
#   bash bench/load/callgrind.sh [build/sluice] [more binaries...]
# PORT_OFFSET=N moves its three ports (18191, 18182, 18180) by N, for when another session runs
# this script at the same time (two runs on the same ports measure each other's servers).
# With several binaries (e.g. before and after a change), each is measured on both configs in
# the same sitting against the same nginx run.
set -euo pipefail
off=${PORT_OFFSET:-0}
nginx_port=$((18191 + off)) empty_port=$((18182 + off)) chain_port=$((18180 + off))
cd "$(dirname "$0")/../.."
bin=${1:-build/sluice}
work=$(mktemp -d /tmp/sluice-cg.XXXXXX)
mkdir -p "$work/logs"
cat >"$work/nginx.conf" <<NGX
master_process off;
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/logs/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
       server { listen 127.0.0.1:$nginx_port; location / { return 200 "ok"; } } }
NGX

source bench/load/callgrind_lib.sh


measure nginx "$nginx_port" / nginx -p "$work" -c "$work/nginx.conf" | tee "$work/nginx.txt"
# Own ports, so a load benchmark running at the same time cannot answer for us.
sed "s/127.0.0.1:18082/127.0.0.1:$empty_port/" bench/load/direct_empty.yaml >"$work/empty.yaml"
sed "s/127.0.0.1:18080/127.0.0.1:$chain_port/" bench/load/direct.yaml >"$work/chain.yaml"
[ $# -gt 1 ] || set -- "$bin"
for b in "$@"; do
  name=$([ $# -gt 1 ] && echo "$(basename "$b")-" || true)
  measure "${name}sluice-empty" "$empty_port" / "$b" run -c "$work/empty.yaml" | tee "$work/empty.txt"
  measure "${name}sluice-5mw" "$chain_port" / "$b" run -c "$work/chain.yaml" | tee "$work/chain.txt"
  ipr() { sed -n 's/.*instructions_per_request=\([0-9]*\).*/\1/p' "$1"; }
  awk -v e="$(ipr "$work/empty.txt")" -v c="$(ipr "$work/chain.txt")" -v n="$(ipr "$work/nginx.txt")" -v b="$b" \
    'BEGIN { printf "%s ratio to nginx: empty chain %.2f, 5-middleware chain %.2f\n", b, e/n, c/n }'
done
rm -rf "$work"
