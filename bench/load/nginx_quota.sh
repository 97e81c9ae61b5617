#!/usr/bin/env bash
# nginx `return 200` under workers_quota.sh's method (issue 20: is 2 workers < 1.8x one worker a
# property of sluice or of the measurement?). One run of SECONDS_PER_RUN (default 5, after 1 s
# of warm-up) of one set-up, in a cgroup (v1 cpu) with 0.4 CPU per nginx worker, 10 ms period:
#   bash bench/load/nginx_quota.sh 1|2|p
#   1: one nginx, worker_processes 1, one wrk -t1 -c32              (like sluice's 1w)
#   2: one nginx, worker_processes 2, `listen ... reuseport`, two wrk -t1 -c32 on that one port:
#      each client's connections spread over both workers            (like 2w and 2ps)
#   p: two nginx of one worker each on two ports, one wrk each       (like 2p)
# Prints req/s, nginx's CPU (schedstat of every process in the cgroup), CPU per request and the
# rescheduling IPIs per 1,000 requests (/proc/interrupts, machine-wide). Alternate the set-ups,
# each in an autogroup of its own:
#   setsid bash -c 'echo -15 > /proc/self/autogroup; exec bash bench/load/nginx_quota.sh 2'
# PORT_OFFSET=N moves its ports (18431, 18432, 18437). Needs root, nginx, wrk and cgroup v1.
set -euo pipefail
tag=${1:?1, 2 or p} secs=${SECONDS_PER_RUN:-5}
case $tag in 1) n=1 nw=1 ;; 2) n=2 nw=2 ;; p) n=2 nw=1 ;; *) echo "1, 2 or p" >&2; exit 1 ;; esac
port=$((18430 + n + ${PORT_OFFSET:-0}))
d=$(mktemp -d /tmp/sluice-ngq.XXXXXX)
cg=/sys/fs/cgroup/cpu/sluice-ngq-$$
mkdir "$cg"
echo 10000 >"$cg/cpu.cfs_period_us"; echo $((4000 * n)) >"$cg/cpu.cfs_quota_us"; echo 262144 >"$cg/cpu.shares"
masters=""
cleanup() { local m; for m in $masters; do kill "$m" 2>/dev/null && wait "$m" 2>/dev/null; done; sleep 0.2; rmdir "$cg" 2>/dev/null; rm -rf "$d"; return 0; }
trap cleanup EXIT
start() { # DIR PORT: one nginx (master in the foreground of its shell, workers as children) in the cgroup
  mkdir -p "$1/logs"
  cat >"$1/nginx.conf" <<C
worker_processes $nw; daemon off; pid $1/nginx.pid; error_log $1/logs/error.log;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$2 reuseport; location / { return 200 "ok"; } } }
C
  bash -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' _ "$cg" nginx -p "$1" -c "$1/nginx.conf" &
  masters="$masters $!"
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && break; sleep 0.1; done
}
start "$d/a" "$port"
targets="$port $port"; [ "$tag" = 1 ] && targets=$port
if [ "$tag" = p ]; then start "$d/b" $((port + 5)); targets="$port $((port + 5))"; fi
cpu_ns() { local t=0 p; for p in $(cat "$cg/cgroup.procs"); do t=$((t + $(cut -d' ' -f1 "/proc/$p/schedstat"))); done; echo $t; }
ipis() { awk '/^ *RES:/ {for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) t += $i} END {print t + 0}' /proc/interrupts; }
load() { # SECONDS OUT-PREFIX: one wrk per target, all at once
  local pt i=0 w=""
  for pt in $targets; do i=$((i + 1)); wrk -t1 -c32 -d"$1s" "http://127.0.0.1:$pt/" >"$2.$i" & w="$w $!"; done
  wait $w
}
load 1 "$d/warm"
c0=$(cpu_ns) r0=$(ipis)
load "$secs" "$d/wrk"
c1=$(cpu_ns) r1=$(ipis)
cat "$d"/wrk.* | awk -v t="$tag" -v s="$secs" -v c=$((c1 - c0)) -v i=$((r1 - r0)) -v l="$(cut -d' ' -f1 /proc/loadavg)" \
  '/requests in/ {r += $1} END {printf "nginx-%s req_s=%.0f nginx_cpu=%.3f cpu_us_per_req=%.2f resched_ipis_per_1k_req=%.1f load=%s\n", t, r / s, c / 1e9 / s, c / 1e3 / r, i * 1000 / r, l}'
