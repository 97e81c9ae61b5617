#!/usr/bin/env bash
# Does it cost CPU when a server and its own client share a CPU? (issue 20, "where the two
# workers' extra CPU goes"). Two one-worker sluice processes share one cgroup quota (0.8 CPU,
# 10 ms period), each fed by its own wrk -t1 -c32, for one run of SECONDS_PER_RUN (default 5):
#   bash bench/load/pair_placement.sh MODE [build/sluice]
# MODE same:  server i and its wrk pinned to CPU i (each pair alternates on one CPU);
#      cross: server i on CPU i, its wrk on the other CPU (each pair runs in parallel);
#      free:  nothing pinned; prints how often each server last ran on its own wrk's CPU.
# Prints req/s, the servers' CPU (schedstat) and CPU per request. Alternate the modes, in an
# autogroup of its own: setsid bash -c 'echo -15 > /proc/self/autogroup; exec bash bench/load/pair_placement.sh same'
# PORT_OFFSET=N moves its ports (18390, 18391). Needs root, 2 CPUs and cgroup v1 at /sys/fs/cgroup/cpu.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:?same, cross or free} bin=${2:-build/sluice} secs=${SECONDS_PER_RUN:-5}
base=$((18390 + ${PORT_OFFSET:-0}))
case $mode in same | cross | free) ;; *) echo "MODE is same, cross or free" >&2; exit 1 ;; esac
work=$(mktemp -d /tmp/sluice-pair.XXXXXX)
cg=/sys/fs/cgroup/cpu/sluice-pair-$$
mkdir "$cg"
echo 10000 >"$cg/cpu.cfs_period_us"; echo 8000 >"$cg/cpu.cfs_quota_us"; echo 262144 >"$cg/cpu.shares"
pids=""
cleanup() { local p; for p in $pids; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; rmdir "$cg" 2>/dev/null; rm -rf "$work"; return 0; }
trap cleanup EXIT
pin() { [ "$mode" = free ] || echo taskset -c "$1"; }
for i in 0 1; do
  sed -e "s/127.0.0.1:18080/127.0.0.1:$((base + i))/" bench/load/direct.yaml >"$work/$i.yaml"
  bash -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' _ "$cg" $(pin $i) "$bin" run -c "$work/$i.yaml" >"$work/$i.log" 2>&1 &
  pids="$pids $!"
done
for i in 0 1; do
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$((base + i))") 2>/dev/null && break; sleep 0.1; done
done
client() { # SERVER SECONDS: server i's own wrk, on CPU i (same) or the other one (cross)
  local c=$1; [ "$mode" = cross ] && c=$((1 - $1))
  $(pin $c) wrk -t1 -c32 -d"$2s" "http://127.0.0.1:$(($base + $1))/"
}
cpu_ns() { local t=0 p f; for p in $pids; do for f in /proc/$p/task/*/schedstat; do t=$((t + $(cut -d' ' -f1 "$f"))); done; done; echo $t; }
client 0 1 >/dev/null & a=$!; client 1 1 >/dev/null & b=$!; wait $a $b # warm-up
c0=$(cpu_ns)
client 0 "$secs" >"$work/w0" & a=$!; client 1 "$secs" >"$work/w1" & b=$!
if [ "$mode" = free ]; then
  sleep 0.5
  set -- $pids
  wa=$(pgrep -x -P "$a" wrk || echo "$a") wb=$(pgrep -x -P "$b" wrk || echo "$b") # the wrk in each subshell
  last_cpu() { awk '{sub(/^.*\) /, ""); print $37}' "/proc/$1/stat" 2>/dev/null || true; } # field 39: CPU it last ran on
  together=0 samples=0
  for _ in $(seq 40); do
    s0=$(last_cpu "$1") s1=$(last_cpu "$2") k0=$(last_cpu "$wa") k1=$(last_cpu "$wb")
    [ -n "$k0" ] && [ -n "$k1" ] || break
    samples=$((samples + 2)); [ "$s0" = "$k0" ] && together=$((together + 1)); [ "$s1" = "$k1" ] && together=$((together + 1))
    sleep 0.1
  done
fi
wait $a $b
c1=$(cpu_ns)
n=$(cat "$work/w0" "$work/w1" | awk '/requests in/ {n += $1} END {print n}')
awk -v m="$mode" -v n="$n" -v s="$secs" -v c=$((c1 - c0)) -v l="$(cut -d' ' -f1 /proc/loadavg)" \
  -v t="${together:-}" -v k="${samples:-}" 'BEGIN {
  printf "%s req_s=%.0f sluice_cpu=%.3f cpu_us_per_req=%.2f load=%s", m, n / s, c / 1e9 / s, c / 1e3 / n, l
  if (k != "") printf " server_on_its_wrk_cpu=%d/%d", t, k
  print "" }'
