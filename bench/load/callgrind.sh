#!/usr/bin/env bash
# Instructions per request, counted by callgrind (stable on a shared machine, unlike req/s):
#   (Ir of a run serving N requests - Ir of an idle run) / N
# for nginx `return 200` (one worker, master_process off) and sluice on bench/load configs.
#   bash bench/load/callgrind.sh [build/sluice] [more binaries...]
# With several binaries (e.g. before and after a change), each is measured on both configs in
# the same sitting against the same nginx run.
set -euo pipefail
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
       server { listen 127.0.0.1:18191; location / { return 200 "ok"; } } }
NGX

source bench/load/callgrind_lib.sh


measure nginx 18191 / nginx -p "$work" -c "$work/nginx.conf" | tee "$work/nginx.txt"
# Own ports, so a load benchmark running at the same time cannot answer for us.
sed 's/127.0.0.1:18082/127.0.0.1:18182/' bench/load/direct_empty.yaml >"$work/empty.yaml"
sed 's/127.0.0.1:18080/127.0.0.1:18180/' bench/load/direct.yaml >"$work/chain.yaml"
[ $# -gt 1 ] || set -- "$bin"
for b in "$@"; do
  name=$([ $# -gt 1 ] && echo "$(basename "$b")-" || true)
  measure "${name}sluice-empty" 18182 / "$b" run -c "$work/empty.yaml" | tee "$work/empty.txt"
  measure "${name}sluice-5mw" 18180 / "$b" run -c "$work/chain.yaml" | tee "$work/chain.txt"
  ipr() { sed -n 's/.*instructions_per_request=\([0-9]*\).*/\1/p' "$1"; }
  awk -v e="$(ipr "$work/empty.txt")" -v c="$(ipr "$work/chain.txt")" -v n="$(ipr "$work/nginx.txt")" -v b="$b" \
    'BEGIN { printf "%s ratio to nginx: empty chain %.2f, 5-middleware chain %.2f\n", b, e/n, c/n }'
done
rm -rf "$work"
