#!/usr/bin/env bash
# 2 workers against 1 with the server's CPU fixed by a cgroup quota (issue 20: "2 workers answer
# >= 1.8x one worker's requests when the load generator is not the limit").
#   bash bench/load/workers_quota.sh [build/sluice]
# On two vCPUs shared with other work neither side can be given a core of its own, so req/s of
# an unlimited server measures the machine. Here each sluice runs in a cgroup (v1 cpu controller)
# whose quota is QUOTA CPUs per worker: 1 worker gets QUOTA, 2 workers get 2 x QUOTA, both free to
# run on both cores. The wrk clients run outside the cgroups. When the quota is the limit (the cgroup is
# throttled in many periods and used >= 90 % of its quota, wrk below its core), req/s is quota /
# CPU per request; if the workers shared a lock or a cache line per request, two would need more
# CPU per request and answer less than 2x. Each run prints the evidence for "which side
# saturates": throttled periods, sluice's and the clients' CPU, the machine's idle CPU (a
# background job at nice 19 takes what is idle, so 0 there does not mean "saturated"), and the
# workers' voluntary context switches (sleeps) per 1,000 requests.
# Runs alternate (1w 2w 2p, then 2p 2w 1w; the set-ups are below) for ROUNDS rounds (default 4)
# of SECONDS_PER_RUN (default 5, after a 1 s warm-up), each worker fed by one wrk -t1 with
# CONNECTIONS (default 32). A run counts only when its set-up used >= 90 % of its quota (the
# others are printed as left out: the machine held them back). QUOTA defaults to 0.4 CPU per
# worker, PERIOD_US to 10000 (short periods: throttling is smooth at the scale of a run).
# PORT_OFFSET=N moves its ports (18380-18383, with MT=1 18380-18385, SHARED=1 and AFFINITY=1 one
# more each). Needs root and a writable /sys/fs/cgroup/cpu (cgroup v1). Run it in an autogroup of
# its own at high priority, so the clients are not starved by other work:
#   setsid bash -c 'echo -15 > /proc/self/autogroup; exec bash bench/load/workers_quota.sh build/sluice'
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/sluice}
off=${PORT_OFFSET:-0}
quota=${QUOTA:-0.4} period=${PERIOD_US:-10000} rounds=${ROUNDS:-4}
secs=${SECONDS_PER_RUN:-5} conns=${CONNECTIONS:-32}
root=/sys/fs/cgroup/cpu
[ -w "$root/cgroup.procs" ] && [ -e "$root/cpu.cfs_quota_us" ] ||
  { echo "needs root and the cgroup v1 cpu controller at $root" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk not installed: apt-get install -y wrk" >&2; exit 1; }
work=$(mktemp -d /tmp/sluice-wq.XXXXXX)
# Three set-ups, each in a cgroup of its own, each worker fed by its own wrk -t1 -cCONNECTIONS:
#   1w   one process, one worker, quota QUOTA                    (the issue's "one worker")
#   2w   one process, two workers, quota 2 x QUOTA               (the issue's "2 workers")
#   2p   two processes of one worker each, one quota 2 x QUOTA   (share nothing but the kernel)
# 2p is the reference for what two workers can do on this machine with no sharing at all: the
# same CPU, two wrk clients, two event loops. 2w below 2p is what the workers' being threads of one
# process costs (shared locks or lines, and the kernel's costs for threads sharing a file table).
# With MT=1 a fourth, 2pt: 2p with an idle extra thread in each process (bench/load/idle_thread.c,
# LD_PRELOAD), so both are multi-threaded like 2w but still share nothing. 2w near 2pt and below
# 2p: the gap is the cost of being multi-threaded, not sharing between the workers.
# With SHARED=1 a fifth, 2ps: 2pt with both processes on ONE port (bench/load/reuseport_shim.c
# sets SO_REUSEPORT before bind), both clients on that port as for 2w, so the kernel spreads each
# client's connections over both processes as it does over the acceptors of 2w. 2w near 2ps:
# what separates 2w from 2p/2pt is how the clients' connections are spread, not the process.
# With AFFINITY=1 a sixth, 2wa: 2w with `worker_cpu_affinity: auto` (worker i pinned to CPU i,
# its listener taking the connections whose SYN the kernel handled on CPU i: on loopback, those
# a client made while running there). 2wa near 2p and above 2w: keeping each connection on the
# CPU where it arrived is what 2w lacked.
# With PIN_CLIENTS=1 every set-up's wrk number i runs on CPU i-1 (taskset), so with 2wa each
# client's connections all reach one worker, on the client's CPU.
setups="1w 2w 2p"
[ -n "${MT:-}" ] && setups="1w 2w 2p 2pt"
[ -n "${SHARED:-}" ] && setups="$setups 2ps"
[ -n "${AFFINITY:-}" ] && setups="$setups 2wa"
declare -A cg ports pids
cleanup() {
  local s p
  for s in $setups; do
    for p in ${pids[$s]:-}; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    [ -n "${cg[$s]:-}" ] && [ -d "${cg[$s]}" ] && rmdir "${cg[$s]}" 2>/dev/null
  done
  rm -rf "$work"
  return 0
}
trap cleanup EXIT
next_port=$((18380 + off))
start() { # SETUP WORKERS [PRELOAD] [PORT] [EXTRA_YAML] -> one sluice in SETUP's cgroup; appends its port and pid
  local s=$1 w=$2 preload=${3:-} port=${4:-$next_port} extra=${5:-}
  [ -n "${4:-}" ] || next_port=$((next_port + 1))
  if [ -z "${4:-}" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use (another run of this script? PORT_OFFSET=N moves the ports)" >&2
    exit 1
  fi
  sed -e "s/127.0.0.1:18080/127.0.0.1:$port/" -e "s/^workers: 1/workers: $w/" \
    bench/load/direct.yaml >"$work/$port.yaml"
  grep -q "^workers: $w" "$work/$port.yaml" || { echo "could not set workers: $w" >&2; exit 1; }
  [ -z "$extra" ] || echo "$extra" >>"$work/$port.yaml"
  # The shell joins the cgroup before exec, so every thread sluice starts is in it from birth.
  bash -c 'echo $$ >"$1/cgroup.procs"; shift; exec "$@"' _ "${cg[$s]}" \
    env ${preload:+LD_PRELOAD=$preload} "$bin" run -c "$work/$port.yaml" >"$work/$port.log" 2>&1 &
  ports[$s]="${ports[$s]:-} $port" pids[$s]="${pids[$s]:-} $!"
}
for s in $setups; do
  cg[$s]=$root/sluice-wq-$$-$s
  mkdir "${cg[$s]}"
  cpus=1; [ "$s" = 1w ] || cpus=2
  echo "$period" >"${cg[$s]}/cpu.cfs_period_us"
  awk -v q="$quota" -v c="$cpus" -v p="$period" 'BEGIN { printf "%d\n", q * c * p }' >"${cg[$s]}/cpu.cfs_quota_us"
  # The quota is the cap; a high weight keeps other groups' weight from capping it first.
  echo 262144 >"${cg[$s]}/cpu.shares"
  case $s in
    1w) start 1w 1 ;;
    2w) start 2w 2 ;;
    2wa) start 2wa 2 "" "" "worker_cpu_affinity: auto" ;;
    2p) start 2p 1; start 2p 1 ;;
    2pt)
      cc -O2 -shared -fPIC -pthread -o "$work/idle_thread.so" bench/load/idle_thread.c
      start 2pt 1 "$work/idle_thread.so"; start 2pt 1 "$work/idle_thread.so" ;;
    2ps)
      cc -O2 -shared -fPIC -pthread -o "$work/idle_thread.so" bench/load/idle_thread.c
      cc -O2 -shared -fPIC -o "$work/reuseport_shim.so" bench/load/reuseport_shim.c -ldl
      start 2ps 1 "$work/idle_thread.so:$work/reuseport_shim.so"
      start 2ps 1 "$work/idle_thread.so:$work/reuseport_shim.so" "${ports[2ps]# }"
      sleep 0.5 ;;
  esac
done
for s in $setups; do
  for port in ${ports[$s]}; do
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  done
  threads=0; for p in ${pids[$s]}; do threads=$((threads + $(ls "/proc/$p/task" | wc -l))); done
  echo "$s ports:${ports[$s]} pids:${pids[$s]} threads=$threads quota=$(cat "${cg[$s]}/cpu.cfs_quota_us")/${period}us"
done
run_ns() { # CPU time of every thread of the processes, in ns (schedstat: exact, unlike ticks)
  local t=0 f p
  for p in "$@"; do
    for f in /proc/$p/task/*/schedstat; do t=$((t + $(cut -d' ' -f1 "$f" 2>/dev/null || echo 0))); done
  done
  echo "$t"
}
per_thread() { # "tid:ns" for every thread: how the CPU was split between the workers
  local f
  for f in $(printf '/proc/%s/task/*/schedstat ' "$@"); do
    [ -r "$f" ] && echo "$(basename "$(dirname "$f")"):$(cut -d' ' -f1 "$f")"
  done 2>/dev/null | tr '\n' ' '
}
switches() { # voluntary context switches of every thread (a worker sleeping on a lock adds some)
  cat $(printf '/proc/%s/task/*/status ' "$@") 2>/dev/null | awk '/^voluntary_ctxt_switches/ {t += $2} END {print t + 0}'
}
idle_ticks() { awk '/^cpu / {print $5 + $6}' /proc/stat; } # idle + iowait, all CPUs
# IPIs, summed over the CPUs: rescheduling (RES: one CPU tells another to preempt for a task it
# woke) and function calls (CAL: among others, a wake-up queued to another CPU). In a VM each is
# an exit to the hypervisor. Machine-wide, so other work adds to them: compare set-ups by
# alternation, not one run.
ipis() { awk '/^ *(RES|CAL):/ {for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) t[$1] += $i} END {print t["RES:"] + 0, t["CAL:"] + 0}' /proc/interrupts; }
throttle() { awk '/^nr_periods|^nr_throttled/ {printf "%s ", $2} END {print ""}' "$1/cpu.stat"; }
tck=$(getconf CLK_TCK)
clients() { # SETUP SECONDS EXTRA... -> one wrk per worker, all at once; their outputs in $work/wrk.*
  local s=$1 d=$2 port targets i=0
  shift 2
  rm -f "$work"/wrk.*
  case $s in 2w | 2wa) targets="${ports[$s]} ${ports[$s]}" ;; *) targets=${ports[$s]} ;; esac
  for port in $targets; do
    i=$((i + 1))
    local pin=""
    [ -z "${PIN_CLIENTS:-}" ] || pin="taskset -c $(((i - 1) % $(nproc)))"
    # wrk's CPU: the subshell's waited-for children (utime + stime), read after wrk has exited.
    ($pin wrk -t1 -c"$conns" -d"${d}s" "$@" "http://127.0.0.1:$port/"
      awk '{sub(/^.*\) /,""); print "wrk_ticks", $14 + $15}' /proc/$BASHPID/stat) >"$work/wrk.$i" &
  done
  wait
}
one() { # SETUP ROUND
  local s=$1 r=$2 c0 c1 i0 i1 p0 t0 p1 t1 wall0 wall1
  clients "$s" 1
  read -r p0 t0 < <(throttle "${cg[$s]}")
  local cs0 cs1
  cs0=$(switches ${pids[$s]})
  local split0="" split1=""
  split0=$(per_thread ${pids[$s]})
  local r0 r1 f0 f1
  c0=$(run_ns ${pids[$s]}) i0=$(idle_ticks) wall0=$(date +%s%N)
  read -r r0 f0 < <(ipis)
  clients "$s" "$secs" --latency
  read -r r1 f1 < <(ipis)
  c1=$(run_ns ${pids[$s]}) i1=$(idle_ticks) wall1=$(date +%s%N)
  split1=$(per_thread ${pids[$s]})
  cs1=$(switches ${pids[$s]})
  read -r p1 t1 < <(throttle "${cg[$s]}")
  if grep -q 'Non-2xx\|Socket errors' "$work"/wrk.*; then echo "$s: $(grep -h 'Non-2xx\|Socket errors' "$work"/wrk.*)" >&2; fi
  cat "$work"/wrk.* | awk -v s="$s" -v cpu=$((c1 - c0)) -v wall=$((wall1 - wall0)) \
    -v idle=$((i1 - i0)) -v h="$tck" -v per=$((p1 - p0)) -v thr=$((t1 - t0)) \
    -v load="$(cut -d' ' -f1 /proc/loadavg)" -v cs=$((cs1 - cs0)) -v res=$((r1 - r0)) -v cal=$((f1 - f0)) -v s0="$split0" -v s1="$split1" '
    BEGIN { n0 = split(s0, a, " "); for (i = 1; i <= n0; i++) { split(a[i], kv, ":"); t0[kv[1]] = kv[2] }
      n1 = split(s1, b, " "); for (i = 1; i <= n1; i++) { split(b[i], kv, ":"); d = kv[2] - t0[kv[1]]
        if (d > 0.05 * cpu) { split_ = split_ sep2 sprintf("%.0f", 100 * d / cpu); sep2 = "/" } } }
    /requests in/ { n += $1 }
    /^wrk_ticks/ { wt += $2 }
    /^ +99%/ { p99 = p99 sep $2; sep = "," }
    END { w = wall / 1e9
      printf "%s req_s=%.0f sluice_cpu=%.3f cpu_us_per_req=%.2f throttled=%d/%d wrk_cpu=%.2f idle_cpu=%.2f sleeps_per_1k_req=%.1f resched_ipis_per_1k_req=%.1f call_ipis_per_1k_req=%.1f threads_cpu_pct=%s p99=%s load=%s\n",
        s, n / w, cpu / wall, cpu / 1e3 / n, thr, per, wt / h / w, idle / h / w, cs * 1000 / n, res * 1000 / n, cal * 1000 / n, split_, p99, load }'
}
echo "started $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) quota $quota CPU per worker, $conns connections per worker, ${secs}s runs"
for r in $(seq "$rounds"); do
  order=$setups; [ $((r % 2)) = 0 ] && order=$(echo $setups | tr ' ' '\n' | tac | tr '\n' ' ')
  for s in $order; do one "$s" "$r" | tee -a "$work/runs"; done
done
echo "ended $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
# A run counts only when the quota was its limit: sluice used >= 90 % of it. Below that, the
# machine (other work on the two cores) or the clients held it back, and its req/s says nothing
# about the workers.
awk -v q="$quota" '{ c = ($1 == "1w") ? 1 : 2; split($3, kv, "=")
  if (kv[2] >= 0.9 * q * c) print; else print "not at its quota, left out: " $0 > "/dev/stderr" }' \
  "$work/runs" >"$work/valid"
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
field() { grep "^$1 " "$work/valid" | sed -n "s/.* $2=\([0-9.]*\).*/\1/p"; }
for s in $setups; do
  echo "$s median req_s=$(field "$s" req_s | median) cpu_us_per_req=$(field "$s" cpu_us_per_req | median)"
done
awk -v a="$(field 1w req_s | median)" -v b="$(field 2w req_s | median)" -v c="$(field 2p req_s | median)" \
  -v d="$(field 2pt req_s | median)" -v e="$(field 2ps req_s | median)" -v f="$(field 2wa req_s | median)" 'BEGIN { if (a > 0 && c > 0) printf "ratios of the medians: 2w/1w %.2f, 2p/1w %.2f, 2w/2p %.2f\n", b / a, c / a, b / c
    if (a > 0 && d > 0) printf "with MT=1: 2pt/1w %.2f, 2w/2pt %.2f\n", d / a, b / d
    if (a > 0 && e > 0) printf "with SHARED=1: 2ps/1w %.2f, 2w/2ps %.2f\n", e / a, b / e
    if (a > 0 && f > 0) printf "with AFFINITY=1: 2wa/1w %.2f, 2wa/2w %.2f, 2wa/2p %.2f\n", f / a, f / b, f / c }'
for s in $setups; do printf '%s counted %d of %d; ' "$s" "$(field "$s" req_s | wc -l)" "$rounds"; done
echo
