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
# PORT_OFFSET=N moves its two ports (18283, 18290) by N.
set -euo pipefail
off=${PORT_OFFSET:-0}
sluice_port=$((18283 + off)) backend_port=$((18290 + off))
cd "$(dirname "$0")/../.."
bin=${1:-build/sluice}
work=$(mktemp -d /tmp/sluice-ft.XXXXXX)
sed -e "s/127.0.0.1:18083/127.0.0.1:$sluice_port/" -e "s/127.0.0.1:18090/127.0.0.1:$backend_port/" \
  bench/load/proxy_full.yaml >"$work/sluice.yaml"
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
  "$peers/nginx.sh" stop "$backend"
  rm -rf "$work" "$backend"
}
trap cleanup EXIT
source bench/load/callgrind_lib.sh
wait_port "$backend_port"
wait_port "$sluice_port"
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
