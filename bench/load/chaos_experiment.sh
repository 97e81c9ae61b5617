#!/usr/bin/env bash
# The docs/CHAOS.md experiment, scripted: steady load, the upstream made unavailable through
# the admin API for 15 s, the breaker opening and the cache-snapshot fallback answering.
#   bash bench/load/chaos_experiment.sh [build/sluice]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/sluice}
peers=${PEERS:-../shared/bench/peers}
work=$(mktemp -d /tmp/sluice-chaos.XXXXXX)
backend_dir=$(NGINX_CPU=1 "$peers/nginx.sh" direct 19400)
cat >"$work/experiment.yaml" <<YAML
workers: 2
listen: 127.0.0.1:19480
admin: { listen: 127.0.0.1:19481 }
upstreams:
  backend: { endpoints: ["127.0.0.1:19400"] }
routes:
  - name: api
    match: { prefix: /api }
    middlewares:
      - type: fallback
        fallbacks:
          - { name: snapshot, kind: cache_snapshot, when: { status: [5xx] } }
      - type: circuit_breaker
        strategy: error_ratio
        threshold: 0.5
        min_request_amount: 20
        stat_interval_ms: 2000
        retry_timeout_ms: 2000
      - type: fault
        seed: 42
        faults:
          - { name: backend-down, enabled: false, dependency_unavailable: { cluster: backend } }
    handler: { type: proxy, cluster: backend }
YAML
"$bin" run -c "$work/experiment.yaml" 2>"$work/sluice.log" &
pid=$!
trap 'kill $pid 2>/dev/null; "$peers/nginx.sh" stop "$backend_dir"; rm -rf "$work"' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/19480) 2>/dev/null && break; sleep 0.1; done
url=http://127.0.0.1:19480/api/item
wrk -t1 -c16 -d10s --latency "$url" >"$work/before.txt"
curl -s -XPOST 127.0.0.1:19481/faults/backend-down/enable >/dev/null
wrk -t1 -c16 -d15s --latency "$url" >"$work/during.txt"
breakers=$(curl -s 127.0.0.1:19481/breakers | tr -d '\n ' | head -c 300)
curl -s -XPOST 127.0.0.1:19481/faults/backend-down/disable >/dev/null
sleep 3  # retry_timeout_ms: the breaker half-opens and the probe closes it
wrk -t1 -c16 -d10s --latency "$url" >"$work/after.txt"
summary() {  # phase file
  awk -v phase="$1" '
    /requests in/ {n=$1} /Non-2xx/ {bad=$NF} /Socket errors/ {err=$0}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Requests\/sec/ {rps=$2}
    END { if (bad=="") bad=0; printf "%s: requests=%d non_2xx=%d success=%.2f%% req_s=%s p50=%s p99=%s %s\n",
          phase, n, bad, 100*(n-bad)/n, rps, p50, p99, err }' "$2"
}
summary before "$work/before.txt"
summary during "$work/during.txt"
summary after "$work/after.txt"
echo "breakers during the fault: $breakers"
curl -s 127.0.0.1:19481/metrics | grep -E '^sluice_(faults_injected_total|fallback_total|circuit_breaker_transitions_total)' || true
