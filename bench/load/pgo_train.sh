#!/usr/bin/env bash
# Training run for the profile-guided build (`make build-pgo`, docs/PERFORMANCE.md "Build flags"):
# runs an instrumented sluice (-fprofile-generate) on the configs whose cost issue 20 measures —
# the users' proxy chain (proxy_full.yaml), the plain proxy (proxy.yaml, / and /chain) and the
# direct 5-middleware chain (direct.yaml) — each under wrk for SECONDS_PER_RUN (default 5) and
# then stopped with TERM, so the process exits normally and writes its .gcda counts.
#   bash bench/load/pgo_train.sh BUILD_DIR/sluice
# PORT_OFFSET=N moves its two ports (18390, 18391) by N. Needs nginx (the backend) and wrk, which
# scripts/bootstrap installs.
set -euo pipefail
off=${PORT_OFFSET:-0}
backend_port=$((18390 + off)) port=$((18391 + off))
secs=${SECONDS_PER_RUN:-5}
cd "$(dirname "$0")/../.."
bin=${1:?instrumented sluice binary}
work=$(mktemp -d /tmp/sluice-pgo.XXXXXX)
mkdir -p "$work/logs"
source bench/load/nginx_confs.sh
nginx_backend_conf "$work" "$backend_port"
wait_port() { for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.2; done; return 1; }
for p in "$backend_port" "$port"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "port $p is already in use (PORT_OFFSET=N moves the ports)" >&2
    exit 1
  fi
done
nginx -p "$work" -c "$work/nginx.conf" >/dev/null 2>&1 &
backend=$!
trap 'kill "$backend" 2>/dev/null || true; wait "$backend" 2>/dev/null || true; rm -rf "$work"' EXIT
wait_port "$backend_port"

# train CONFIG PATH... : one sluice process on CONFIG, wrk on each PATH in turn, then TERM.
train() {
  local config=$1; shift
  sed -e "s/^listen: 127.0.0.1:[0-9]*/listen: 127.0.0.1:$port/" -e "s/127.0.0.1:18090/127.0.0.1:$backend_port/" "bench/load/$config" >"$work/sluice.yaml"
  "$bin" run -c "$work/sluice.yaml" >"$work/sluice.log" 2>&1 &
  local pid=$!
  wait_port "$port" || { cat "$work/sluice.log" >&2; return 1; }
  for path in "$@"; do
    local n
    n=$(wrk -t1 -c8 -d"${secs}s" "http://127.0.0.1:$port$path" | awk '/requests in/ {print $1}')
    echo "pgo_train: $config $path: $n requests"
  done
  kill -TERM "$pid"
  # The counts are written when the process exits; a non-zero status means they may not be.
  wait "$pid" || { echo "pgo_train: sluice on $config exited with $?" >&2; cat "$work/sluice.log" >&2; return 1; }
}

train proxy_full.yaml /
train proxy.yaml / /chain
train direct.yaml /
