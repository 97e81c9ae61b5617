#!/usr/bin/env bash
# TLS termination, sluice against nginx `ssl`, alternated in one sitting: the same certificate
# (ECDSA P-256, made here), one worker each on CPU 0, wrk on CPU 1 (peers/wrk-bench.sh), both
# answering `200 ok` directly. Two shapes:
#   keep-alive  — 64 connections, many requests each: TLS record cost per request;
#   handshake   — `Connection: close` on every request: one TLS handshake per request, so
#                 req/s is handshakes/s. wrk keeps each connection's SSL object across reconnects
#                 (SSL_clear), so it offers the last session's ticket and both servers resume it:
#                 these are resumed TLS 1.3 handshakes (ECDHE, no certificate signature), not full.
#   full        — `openssl s_time -new`: one connection at a time, never resumed, so every one
#                 is a full handshake (certificate signature included); one client process, so
#                 the rate is bound by the client's own handshake work: compare CPU per handshake.
# Each server runs in a session of its own (nginx daemonizes with setsid; sluice is started with
# setsid): with sched_autogroup_enabled=1 the scheduler shares CPU between sessions first, and a
# sluice left in this shell's session shared one CPU weight with wrk (busy on the other CPU), so
# on a loaded machine it got about half nginx's CPU share and half its handshakes/s (issue 14's
# 0.42x; docs/PERFORMANCE.md). SLUICE_SESSION=shared starts it the old way, to show that.
#   bash bench/load/tls_ab.sh [SLUICE_BIN]     (ROUNDS, default 3; SECONDS_PER_RUN, default 5)
# Prints each run, then the means and the ratios sluice/nginx: CPU µs per request (keep-alive,
# target <= 1.1) and handshakes/s (target >= 0.9), with the CPU µs per handshake beside them.
set -euo pipefail
cd "$(dirname "$0")/../.."
peers=../shared/bench/peers
bin=${1:-build/sluice}
export RUNS=1 SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
dir=$(mktemp -d /tmp/sluice-tls-ab.XXXXXX)
out=$dir/results
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
  -keyout "$dir/site.key" -out "$dir/site.pem" 2>/dev/null

mkdir -p "$dir/nginx/logs"
cat >"$dir/nginx/nginx.conf" <<NGX
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:SSL:10m;
  ssl_session_tickets on;
  server {
    listen 127.0.0.1:18444 ssl;
    ssl_certificate $dir/site.pem;
    ssl_certificate_key $dir/site.key;
    location / { return 200 "ok"; }
  }
}
NGX
cat >"$dir/sluice.yaml" <<YAML
listen:
  - address: 127.0.0.1:18443
    tls: { cert_file: $dir/site.pem, key_file: $dir/site.key }
workers: 1
admin: { enabled: false }
routes:
  - name: bench
    handler: { type: respond, status: 200, body: ok }
YAML
taskset -c 0 nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf"
if [ "${SLUICE_SESSION:-own}" = shared ]; then
  taskset -c 0 "$bin" run -c "$dir/sluice.yaml" >"$dir/sluice.log" 2>&1 &
else
  setsid taskset -c 0 "$bin" run -c "$dir/sluice.yaml" >"$dir/sluice.log" 2>&1 </dev/null &
fi
ps=$!  # setsid (not a group leader here) and taskset exec: this is sluice's pid
trap 'kill "$(cat "$dir/nginx/nginx.pid")" $ps 2>/dev/null || true; rm -rf "$dir"' EXIT
for port in 18443 18444; do
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
pn=$(cat "$dir/nginx/nginx.pid")
[ "$(readlink /proc/$ps/exe)" = "$(readlink -f "$bin")" ] || { echo "pid $ps is not $bin" >&2; exit 1; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); sluice $(cat /proc/$ps/autogroup 2>/dev/null), nginx $(cat /proc/"$(ps -o pid= --ppid "$pn" | head -1 | tr -d ' ')"/autogroup 2>/dev/null)"

cpu_ticks() { # PID: user+system ticks of the process and its children
  local t
  t=$(awk '{sub(/^.*\) /,""); print $12 + $13}' "/proc/$1/stat")
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do t=$((t + $(awk '{sub(/^.*\) /,""); print $12 + $13}' "/proc/$c/stat"))); done
  echo "$t"
}
one() { # NAME PID PORT SHAPE
  local extra=""
  if [ "$4" = full ]; then
    local t0 t1 o n secs
    t0=$(cpu_ticks "$2")
    o=$(taskset -c "${WRK_CPU:-1}" openssl s_time -connect "127.0.0.1:$3" -new -time "$SECONDS_PER_RUN" 2>/dev/null)
    t1=$(cpu_ticks "$2")
    read -r n secs < <(sed -nE 's/^([0-9]+) connections in ([0-9.]+)s;.*/\1 \2/p' <<<"$o" | head -1)
    echo "$1-$4 req_s=$(awk -v n="$n" -v s="$secs" 'BEGIN {printf "%.2f", n / s}') p99_ms=0 cpu_us_per_req=$(awk -v d=$((t1 - t0)) -v n="$n" -v h="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", d / h * 1e6 / n}')" | tee -a "$out"
    return
  fi
  [ "$4" = handshake ] && extra="close"
  if [ -n "$extra" ]; then
    # wrk-bench.sh takes no header option: wrk directly, the same counting.
    local tck t0 t1 o n
    tck=$(getconf CLK_TCK)
    t0=$(awk '{sub(/^.*\) /,""); print $12 + $13}' "/proc/$2/stat")
    for c in $(ps -o pid= --ppid "$2" 2>/dev/null); do t0=$((t0 + $(awk '{sub(/^.*\) /,""); print $12 + $13}' "/proc/$c/stat"))); done
    o=$(taskset -c "${WRK_CPU:-1}" wrk -t1 -c"${CONNECTIONS:-64}" -d"${SECONDS_PER_RUN}s" -H "Connection: close" "https://127.0.0.1:$3/")
    t1=$(awk '{sub(/^.*\) /,""); print $12 + $13}' "/proc/$2/stat")
    for c in $(ps -o pid= --ppid "$2" 2>/dev/null); do t1=$((t1 + $(awk '{sub(/^.*\) /,""); print $12 + $13}' "/proc/$c/stat"))); done
    n=$(awk '/requests in/ {print $1}' <<<"$o")
    grep -q 'Non-2xx\|Socket errors' <<<"$o" && echo "$1 $4: $(grep 'Non-2xx\|Socket errors' <<<"$o")" >&2
    echo "$1-$4 req_s=$(awk '/Requests\/sec/ {print $2}' <<<"$o") p99_ms=0 cpu_us_per_req=$(awk -v d=$((t1 - t0)) -v n="$n" -v h="$tck" 'BEGIN {printf "%.2f", d / h * 1e6 / n}')" | tee -a "$out"
  else
    SERVER_PID=$2 "$peers/wrk-bench.sh" "$1-$4" "https://127.0.0.1:$3/" | tee -a "$out"
  fi
}
for _ in $(seq "${ROUNDS:-3}"); do
  for shape in keepalive handshake full; do
    one S $ps 18443 $shape
    one N $pn 18444 $shape
  done
done
for s in S-keepalive N-keepalive S-handshake N-handshake S-full N-full; do
  grep "^$s " "$out" | awk -v s=$s '{for (i = 2; i <= 4; i++) {split($i, kv, "="); v[kv[1]] += kv[2]}; n++}
    END {printf "%s mean req_s=%.0f cpu_us_per_req=%.2f\n", s, v["req_s"]/n, v["cpu_us_per_req"]/n}'
done | tee "$dir/means"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk '{split($3, r, "="); split($4, c, "="); req[$1] = r[2]; cpu[$1] = c[2]}
  END {
    printf "ratio keep-alive cpu_us_per_req sluice/nginx = %.3f (target <= 1.1)\n", cpu["S-keepalive"] / cpu["N-keepalive"]
    printf "ratio handshakes/s sluice/nginx = %.3f (target >= 0.9); cpu_us_per_handshake sluice/nginx = %.3f\n", req["S-handshake"] / req["N-handshake"], cpu["S-handshake"] / cpu["N-handshake"]
    printf "full handshakes (s_time -new): rate sluice/nginx = %.3f; cpu_us_per_handshake sluice/nginx = %.3f\n", req["S-full"] / req["N-full"], cpu["S-full"] / cpu["N-full"]
  }' "$dir/means"
