#!/usr/bin/env bash
# wrk through the gateway: the same route with and without circuit_breaker + rate_limit, side
# by side in one run. Prints requests/s of each and their ratio. Loopback only, short.
#
#   bench/load/resilience.sh [path/to/sluice] [duration_s] [connections]
# Run only when the machine is quiet (`uptime` load well below the core count).
set -euo pipefail
SLUICE=${1:-build/sluice}
DURATION=${2:-5}
CONNS=${3:-32}
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }
DIR=$(mktemp -d)
trap 'kill ${PID:-} 2>/dev/null || true; rm -rf "$DIR"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(port); A=$(port)
cat >"$DIR/sluice.yaml" <<YAML
listen: 127.0.0.1:$P
admin: { listen: 127.0.0.1:$A }
workers: 1
log_level: warn
routes:
  - name: bare
    match: { prefix: /bare }
    handler: { type: respond, body: "ok\n" }
  - name: guarded
    match: { prefix: /guarded }
    middlewares:
      - { type: circuit_breaker, strategy: error_ratio, threshold: 0.5 }
      - { type: rate_limit, limits: [ { name: per_ip, key: client_ip, rate: 1000000000, burst: 1000000000 } ] }
    handler: { type: respond, body: "ok\n" }
YAML
"$SLUICE" run -c "$DIR/sluice.yaml" >"$DIR/log" 2>&1 &
PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$P/bare" >/dev/null && break; sleep 0.1; done
rps() { wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$P/$1" | awk '/Requests\/sec/ {print $2}'; }
uptime
BARE=$(rps bare)
GUARDED=$(rps guarded)
BARE2=$(rps bare)
echo "bare:    $BARE req/s (again: $BARE2)"
echo "guarded: $GUARDED req/s (circuit_breaker + rate_limit)"
python3 -c "print('guarded/bare ratio: %.3f' % ($GUARDED / ((${BARE} + ${BARE2}) / 2)))"
