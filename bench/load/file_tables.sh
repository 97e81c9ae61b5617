#!/usr/bin/env bash
# Which threads share the worker's file table, and how many of the worker's system calls per
# request take a file descriptor (each one takes the kernel's fdget slow path — an atomic get and
# put on the file — when the table is shared), for one sluice binary running the users' chain
# (bench/load/proxy_full.yaml, one worker on the main thread) in front of an nginx `return 200`.
# Counted, not timed: kcmp(2) for the sharing, perf's syscall tracepoints on the worker's thread
# (perf stat -t) under `wrk -t1 -c64 -d3s` for the calls.
#   bash bench/load/file_tables.sh [build/sluice]
# PROFILE=1 also samples the worker's kernel stacks (perf record -e cpu-clock -t, no PMU needed)
# and prints the share of its samples in fput and fdget: fput is called only on the slow path.
# ADMIN=1 turns the admin listener on (the default config has it on; proxy_full.yaml has not) and
# polls /metrics every 0.2 s during the counts. REDIS=1 starts a redis-server and adds a second
# rate limit with `backend: redis` to the chain (one Redis command per request). QUEUE=1 adds a
# store-and-forward fallback (never taken: the backend answers) so its replayer thread runs.
# PORT_OFFSET=N moves its ports (18283 sluice, 18284 admin, 18290 nginx, 18291 redis) by N.
set -euo pipefail
off=${PORT_OFFSET:-0}
sluice_port=$((18283 + off)) backend_port=$((18290 + off))
admin_port=$((18284 + off)) redis_port=$((18291 + off))
cd "$(dirname "$0")/../.."
bin=${1:-build/sluice}
work=$(mktemp -d /tmp/sluice-ft.XXXXXX)
sed -e "s/127.0.0.1:18083/127.0.0.1:$sluice_port/" -e "s/127.0.0.1:18090/127.0.0.1:$backend_port/" \
  bench/load/proxy_full.yaml >"$work/sluice.yaml"
if [ -n "${ADMIN:-}" ]; then
  sed -i "s/^admin: { enabled: false }/admin: { listen: 127.0.0.1:$admin_port }/" "$work/sluice.yaml"
fi
if [ -n "${REDIS:-}" ]; then
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --pidfile "$work/redis.pid" >/dev/null
  # After the local rate limit: the same key over Redis, never rejecting.
  sed -i "/^      - type: circuit_breaker/i\\
      - type: rate_limit\\
        name: shared\\
        headers: false\\
        backend: redis\\
        redis: { address: \"127.0.0.1:$redis_port\", command_timeout_ms: 200 }\\
        limits:\\
          - { name: shared_ip, key: client_ip, rate: 1000000, burst: 100000 }" "$work/sluice.yaml"
fi
if [ -n "${QUEUE:-}" ]; then
  sed -i "/^      - type: circuit_breaker/i\\
      - type: fallback\\
        fallbacks:\\
          - { name: later, kind: queue, cluster: backend, when: { upstream_error: true },\\
              queue: { dir: \"$work/queue\" } }" "$work/sluice.yaml"
fi
cat >"$work/kcmp.c" <<'C'
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
/* kcmp PID TID: prints "shared" when TID uses PID's (the main thread's) file table. */
int main(int argc, char** argv) {
  if (argc != 3) return 2;
  long r = syscall(SYS_kcmp, atoi(argv[1]), atoi(argv[2]), KCMP_FILES, 0, 0);
  puts(r == 0 ? "shared" : r > 0 ? "own" : "kcmp-failed");
  return 0;
}
C
cc -O2 -o "$work/kcmp" "$work/kcmp.c"
peers=../shared/bench/peers
backend=$(NGINX_CPU=1 "$peers/nginx.sh" direct "$backend_port")
"$bin" run -c "$work/sluice.yaml" >"$work/sluice.log" 2>&1 &
sluice=$!
cleanup() {
  kill "$sluice" 2>/dev/null || true
  wait "$sluice" 2>/dev/null || true
  [ -n "${poller:-}" ] && kill "$poller" 2>/dev/null || true
  [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null || true
  "$peers/nginx.sh" stop "$backend"
  rm -rf "$work" "$backend"
}
trap cleanup EXIT
source bench/load/callgrind_lib.sh
wait_port "$backend_port"
wait_port "$sluice_port"
if [ -n "${ADMIN:-}" ]; then
  wait_port "$admin_port"
  (while sleep 0.2; do curl -s -o /dev/null "http://127.0.0.1:$admin_port/metrics"; done) &
  poller=$!
fi
wrk -t1 -c64 -d1s "http://127.0.0.1:$sluice_port/" >/dev/null  # warm the pool

echo "threads of $bin (the worker is the main thread, $sluice):"
sharing=0
for t in /proc/$sluice/task/*; do
  tid=${t##*/}
  [ "$tid" = "$sluice" ] && continue
  state=$("$work/kcmp" "$sluice" "$tid")
  [ "$state" = shared ] && sharing=$((sharing + 1))
  echo "  $tid $(cat "$t/comm") file table: $state, descriptors: $(ls "$t/fd" | wc -l)"
done
echo "threads sharing the worker's file table: $sharing"

events=read,readv,write,writev,recvfrom,recvmsg,sendto,sendmsg,epoll_wait,epoll_pwait,epoll_ctl
events=$events,accept4,close,shutdown,socket,connect,getsockopt,setsockopt,fcntl,ioctl
events=$events,timerfd_settime,openat,futex
perf stat -x, -t "$sluice" -e "$(echo "$events" | sed 's/\([a-z0-9_]*\)/syscalls:sys_enter_\1/g')" \
  -o "$work/stat.csv" -- sleep 4 &
stat=$!
sleep 0.3
n=$(wrk -t1 -c64 -d3s "http://127.0.0.1:$sluice_port/" | awk '/requests in/ {print $1}')
wait "$stat"
awk -F, -v n="$n" '
  /syscalls:sys_enter_/ { name = $3; sub("syscalls:sys_enter_", "", name); c[name] = $1
                          total += $1; if (name != "futex") fd += $1 }
  END { printf "worker system calls per request over %d requests: %.2f, %.2f taking a descriptor\n", n, total / n, fd / n
        for (k in c) if (c[k] > 0) printf "    %-16s %.3f\n", k, c[k] / n }' "$work/stat.csv"

if [ -n "${PROFILE:-}" ]; then
  perf record -q -e cpu-clock -F 2000 -t "$sluice" -o "$work/perf.data" -- sleep 4 >/dev/null 2>&1 &
  rec=$!
  sleep 0.3
  wrk -t1 -c64 -d3s "http://127.0.0.1:$sluice_port/" >/dev/null
  wait "$rec" || true
  perf report -i "$work/perf.data" --no-children --sort sym --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ { if ($NF == "fput" || $NF == "fdget") printf "    %-8s %s of the worker'"'"'s samples\n", $NF, $1 }'
  echo "    samples: $(perf report -i "$work/perf.data" --stdio 2>/dev/null | sed -n 's/^# Samples: \([0-9KM]*\).*/\1/p' | head -1)"
fi
