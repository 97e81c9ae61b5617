#!/usr/bin/env bash
# Two sluice binaries and nginx proxy_pass, alternated in one sitting (a change's effect is smaller
# than the differences between sittings on a shared machine). Same set-up as proxy.sh: nginx
# `return 200` backend on CPU 1 beside wrk, each proxy on CPU 0 with one worker.
#   bash bench/load/proxy_ab.sh OLD_BIN NEW_BIN [path]   (ROUNDS, default 3; CONNECTIONS; SECONDS_PER_RUN)
# Prints each run, then means: req/s, p99, CPU µs per request for A (old), B (new), N (nginx).
# Add SPLIT=1 to also print each one's user/system CPU split (utime/stime in /proc).
# FULL=1: the chain users run (bench/load/proxy_full.yaml: request_id, timeout, rate_limit,
# circuit_breaker, metrics, access log, tracing at 1 %) against nginx proxy_pass + limit_req +
# access log (to /dev/null, as sluice's).
# PORT_OFFSET=N moves its four ports (18083, 18093, 18084, 18090) by N, for when another session
# runs it at the same time.
# SERVER_NICE=N (e.g. -15): every server (both sluice, both nginx) in a session and autogroup of its
# own at nice N. Without it the sluice processes share the script's autogroup while each
# daemonized nginx has a new one at nice 0 (setsid makes one), which is not the same placement
# (docs/PERFORMANCE.md, "Why 0.42x"). Run the script itself at the same nice, so wrk is too:
#   setsid bash -c 'echo -15 > /proc/self/autogroup; exec env SERVER_NICE=-15 bash bench/load/proxy_ab.sh A B'
# PACE_MS=D: latency below saturation. Each of CONNECTIONS (then default 8) connections waits D ms
# after an answer before its next request (wrk's Lua delay()), so the offered load is about
# CONNECTIONS x 1000 / D per second whatever the server, instead of "as fast as it answers", and
# the p99 is the servers' latency, not the depth of a saturated queue. Runs are then short
# (SECONDS_PER_RUN default 3, ROUNDS default 15, order rotated each round) and the summary is the
# median of the runs' p99s with their spread (min, quartiles, max) and p50s, per server.
# SERVER_RT=PRIO: servers and wrk under SCHED_FIFO (below).
set -euo pipefail
cd "$(dirname "$0")/../.."
peers=../shared/bench/peers
a=${1:?old binary}; b=${2:?new binary}; path=${3:-/}
off=${PORT_OFFSET:-0}
port_a=$((18083 + off)) port_b=$((18093 + off)) port_n=$((18084 + off)) port_backend=$((18090 + off))
pace=${PACE_MS:-}
if [ -n "$pace" ]; then
  export CONNECTIONS=${CONNECTIONS:-8}
  secs=${SECONDS_PER_RUN:-3} rounds=${ROUNDS:-15}
else
  secs=${SECONDS_PER_RUN:-5} rounds=${ROUNDS:-3}
fi
export RUNS=1 SECONDS_PER_RUN=$secs
for port in $port_a $port_b $port_n $port_backend; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use (another run of this script? PORT_OFFSET=N moves the ports)" >&2
    exit 1
  fi
done
out=$(mktemp /tmp/sluice-proxy-ab.XXXXXX)
first=$(mktemp /tmp/sluice-proxy-ab.XXXXXX.yaml)
second=$(mktemp /tmp/sluice-proxy-ab.XXXXXX.yaml)
pacer=$(mktemp /tmp/sluice-proxy-ab.XXXXXX.lua)
config=bench/load/proxy.yaml; mode=proxy
if [ -n "${FULL:-}" ]; then config=bench/load/proxy_full.yaml; mode=proxy-limit; export NGINX_ACCESS_LOG=/dev/null; fi
sed -e "s/127.0.0.1:18083/127.0.0.1:$port_a/" -e "s/127.0.0.1:18090/127.0.0.1:$port_backend/" "$config" >"$first"
sed -e "s/127.0.0.1:18083/127.0.0.1:$port_b/" -e "s/127.0.0.1:18090/127.0.0.1:$port_backend/" "$config" >"$second"
backend=$(NGINX_ACCESS_LOG= NGINX_CPU=1 "$peers/nginx.sh" direct "$port_backend")
front=$("$peers/nginx.sh" "$mode" "$port_n" "$port_backend")
own_session=""; [ -n "${SERVER_NICE:-}" ] && own_session=setsid
$own_session taskset -c 0 "$a" run -c "$first" >/dev/null 2>&1 </dev/null &
pa=$!
$own_session taskset -c 0 "$b" run -c "$second" >/dev/null 2>&1 </dev/null &
pb=$!
trap '"$peers/nginx.sh" stop "$backend"; "$peers/nginx.sh" stop "$front"; kill $pa $pb 2>/dev/null || true; wait $pa $pb 2>/dev/null || true; rm -f "$out" "$first" "$second" "$pacer"' EXIT
for port in $port_a $port_b; do
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
pn=$(cat "$front/nginx.pid")
if [ -n "${SERVER_NICE:-}" ]; then
  # setsid forks when it leads a group already: the server is then setsid's child, not $pa.
  for p in $pa $pb; do
    c=$(ps -o pid= --ppid "$p" 2>/dev/null | head -1 | tr -d " " || true)
    if [ -n "$c" ] && [ "$(ps -o comm= -p "$p")" = setsid ]; then p=$c; fi
    echo "$SERVER_NICE" >"/proc/$p/autogroup"
  done
  echo "$SERVER_NICE" >"/proc/$pn/autogroup"
  echo "$SERVER_NICE" >"/proc/$(cat "$backend/nginx.pid")/autogroup"
  for p in $pa $pb $pn $(cat "$backend/nginx.pid") $$; do echo "pid $p $(cat "/proc/$p/autogroup")"; done
fi
rt=""
if [ -n "${SERVER_RT:-}" ]; then
  # SERVER_RT=PRIO: every thread of every server, and wrk, under SCHED_FIFO at PRIO. Other work on
  # the machine (all of it under the normal policy) then never delays them; the kernel's RT
  # throttling (95 % of each second) still bounds them. Paced load keeps them far below it.
  for p in $pa $pb $pn $(cat "$backend/nginx.pid"); do
    for q in $p $(ps -o pid= --ppid "$p" 2>/dev/null || true); do chrt -a -f -p "$SERVER_RT" "$q" >/dev/null; done
  done
  rt="chrt -f $SERVER_RT"
fi
echo "started $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
ticks() { # utime stime of a process and its children
  local u=0 s=0 p
  for p in $1 $(ps -o pid= --ppid "$1" 2>/dev/null); do
    read -r pu ps < <(awk '{sub(/^.*\) /,""); print $12, $13}' "/proc/$p/stat")
    u=$((u + pu)); s=$((s + ps))
  done
  echo "$u $s"
}
one() { # NAME PID PORT
  local u0 s0 u1 s1
  read -r u0 s0 < <(ticks "$2")
  SERVER_PID=$2 "$peers/wrk-bench.sh" "$1" "http://127.0.0.1:$3$path" | tee -a "$out"
  read -r u1 s1 < <(ticks "$2")
  if [ -n "${SPLIT:-}" ]; then # over the warm-up and the run: a share, not a per-request time
    echo "$1 user_share=$((100 * (u1 - u0) / (u1 - u0 + s1 - s0 + 1)))% (user $((u1 - u0)), system $((s1 - s0)) ticks)"
  fi
}
# Paced: wrk pinned beside the backend (WRK_CPU, default 1), its own warm-up skipped after the
# first round (the connections are new each run either way).
paced() { # NAME PID PORT
  local u0 s0 u1 s1 o
  read -r u0 s0 < <(ticks "$2")
  o=$($rt taskset -c "${WRK_CPU:-1}" wrk -t1 -c"$CONNECTIONS" -d"${secs}s" --latency -s "$pacer" "http://127.0.0.1:$3$path")
  read -r u1 s1 < <(ticks "$2")
  if grep -q 'Non-2xx\|Socket errors' <<<"$o"; then echo "$1: $(grep 'Non-2xx\|Socket errors' <<<"$o")" >&2; fi
  awk -v name="$1" -v d=$((u1 - u0 + s1 - s0)) -v h="$(getconf CLK_TCK)" -v load="$(cut -d' ' -f1 /proc/loadavg)" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /requests in/ { n = $1 } /Requests\/sec/ { r = $2 }
    END { printf "%s req_s=%.0f p99_ms=%.3f cpu_us_per_req=%.2f p50_ms=%.3f load=%s\n", name, r, p99, d / h * 1e6 / n, p50, load }' <<<"$o" | tee -a "$out"
}
if [ -n "$pace" ]; then
  printf 'function delay() return %s end\n' "$pace" >"$pacer"
  for s in "A $pa $port_a" "B $pb $port_b" "N $pn $port_n"; do # warm-up: pools, caches
    # shellcheck disable=SC2086
    set -- $s; taskset -c "${WRK_CPU:-1}" wrk -t1 -c"$CONNECTIONS" -d1s -s "$pacer" "http://127.0.0.1:$3$path" >/dev/null
  done
  for r in $(seq "$rounds"); do
    case $((r % 3)) in 1) order="A B N" ;; 2) order="B N A" ;; 0) order="N A B" ;; esac
    for s in $order; do
      case $s in A) paced A $pa $port_a ;; B) paced B $pb $port_b ;; N) paced N $pn $port_n ;; esac
    done
  done
  echo "ended $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg)"
  for s in A B N; do
    grep "^$s " "$out" | sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p' | sort -g | awk -v s="$s" '{v[NR] = $1}
      function q(f) { i = 1 + f * (NR - 1); lo = int(i); return v[lo] + (i - lo) * (v[lo + 1] - v[lo]) }
      END { printf "%s p99 over %d runs: median %.3f ms (min %.3f, quartiles %.3f-%.3f, max %.3f)\n", s, NR, q(0.5), v[1], q(0.25), q(0.75), v[NR] }'
  done
  med() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
  col() { grep "^$1 " "$out" | sed -n "s/.* $2=\\([0-9.]*\\).*/\\1/p"; }
  for s in A B N; do
    echo "$s median req_s=$(col $s req_s | med) cpu_us_per_req=$(col $s cpu_us_per_req | med) p50_ms=$(col $s p50_ms | med)"
  done
  # Each round's own ratio (three runs next to each other in time), then their median and range.
  for s in A B; do
    paste <(col $s p99_ms) <(col N p99_ms) | awk '{print $1 / $2}' | sort -g |
      awk -v s="$s" '{v[NR] = $1} END {printf "%s/N p99 ratio per round: median %.2f (min %.2f, max %.2f, %d rounds)\n", s, v[int((NR + 1) / 2)], v[1], v[NR], NR}'
  done
  exit 0
fi
for _ in $(seq "$rounds"); do
  one A $pa $port_a
  one B $pb $port_b
  one N $pn $port_n
done
for s in A B N; do
  grep "^$s " "$out" | awk -v s=$s '{for (i = 2; i <= 4; i++) {split($i, kv, "="); v[kv[1]] += kv[2]}; n++}
    END {printf "%s mean req_s=%.0f p99_ms=%.2f cpu_us_per_req=%.2f\n", s, v["req_s"]/n, v["p99_ms"]/n, v["cpu_us_per_req"]/n}'
done
