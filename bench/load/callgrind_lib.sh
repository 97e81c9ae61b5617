# Shared by callgrind.sh and callgrind_proxy.sh (sourced; expects $work, a scratch folder).
# Instructions per request = (Ir of a loaded run - Ir of an idle run) / requests.
# CONNECTIONS: wrk's connections (default 4; the timed runs use 64, which keeps 64 requests in
# flight: more objects alive at once, so more memory touched per request).
# WARM=SECONDS: a warm-up load, then counting starts (callgrind_control -z), in both runs.
# CALLGRIND_OPTS: more valgrind options, e.g. "--cache-sim=yes --branch-sim=yes" (then the
# profiles also count D1/LL misses and mispredicted branches: callgrind_annotate --show=...).
# CACHE_SIM=1 adds those two options and prints, per request and idle-subtracted the same way,
# I1 misses (I1mr), last-level instruction misses (ILmr), D1 and last-level data misses
# (D1mr+D1mw, DLmr+DLmw) and mispredicted branches (Bcm conditional, Bim indirect). A model of
# the host's caches and a simple predictor, not the CPU's counters: for comparing two binaries,
# or sluice with nginx, in one run, not for absolute cost.
# IDLE_SECONDS=S keeps the idle run up for S seconds (default 0: started and stopped at once), so
# that work done per second rather than per request (timers, flushes, the exporter's retries) is
# subtracted too; use S = SECONDS_PER_RUN when comparing binaries whose request rates differ
# (a slower run, e.g. under CACHE_SIM, otherwise charges each request more of that work).

wait_port() { for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.2; done; return 1; }
total_ir() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}'; }
# The simulated events of a profile as "I1mr ILmr D1m DLm Bcm Bim" (from its events/summary lines).
cache_events() {
  awk '/^events:/ { for (i = 2; i <= NF; i++) col[$i] = i - 1 }
       /^(summary|totals):/ { for (i = 2; i <= NF; i++) v[i - 1] = $i }
       END { printf "%d %d %d %d %d %d\n", v[col["I1mr"]], v[col["ILmr"]], v[col["D1mr"]] + v[col["D1mw"]],
                    v[col["DLmr"]] + v[col["DLmw"]], v[col["Bcm"]], v[col["Bim"]] }' "$1"
}
cachesim_args=()
[ -n "${CACHE_SIM:-}" ] && cachesim_args=(--cache-sim=yes --branch-sim=yes)

# run NAME PORT PATH LOAD(0|1) CMD... -> prints "requests instructions"
run() {
  local name=$1 port=$2 path=$3 load=$4; shift 4
  local out="$work/$name.$load.out"
  # shellcheck disable=SC2086 # CALLGRIND_OPTS is a list of options
  valgrind --tool=callgrind "${cachesim_args[@]}" ${CALLGRIND_OPTS:-} --callgrind-out-file="$out" "$@" >/dev/null 2>&1 &
  local pid=$!
  wait_port "$port"
  local n=0
  if [ -n "${WARM:-}" ]; then
    # WARM=SECONDS: the connections, pools and spares filled by a load first, then the counts
    # zeroed (both runs, so the idle one subtracts only what follows too): with many
    # connections their first requests would otherwise weigh on a short run.
    [ "$load" = 1 ] && wrk -t1 -c"${CONNECTIONS:-4}" -d"${WARM}s" "http://127.0.0.1:$port$path" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
  fi
  if [ "$load" = 0 ] && [ "${IDLE_SECONDS:-0}" != 0 ]; then
    sleep "$IDLE_SECONDS"
  elif [ "$load" = 1 ]; then
    n=$(wrk -t1 -c"${CONNECTIONS:-4}" -d"${SECONDS_PER_RUN:-8}s" "http://127.0.0.1:$port$path" | awk '/requests in/ {print $1}')
  fi
  # A TERM that arrives while the server under valgrind is still starting can be lost (seen with
  # nginx on a loaded machine: the run then waited forever); send it again every 2 s.
  kill -TERM "$pid"
  for i in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
    [ $((i % 20)) = 0 ] && kill -TERM "$pid" 2>/dev/null
  done
  wait "$pid" 2>/dev/null || true
  echo "$n $(total_ir "$out")${CACHE_SIM:+ $(cache_events "$out")}"
}

# measure NAME PORT PATH CMD... -> prints "NAME requests=N instructions_per_request=I"
measure() {
  local name=$1 port=$2 path=$3; shift 3
  # Something already listening there would answer wrk instead of the server under valgrind.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "$name: port $port is already in use (another run of this script? PORT_OFFSET=N moves the ports)" >&2
    exit 1
  fi
  local idle busy
  idle=$(run "$name" "$port" "$path" 0 "$@")
  busy=$(run "$name" "$port" "$path" 1 "$@")
  # idle: "0 Ir [events...]", busy: "N Ir [events...]"
  awk -v idle="$idle" -v busy="$busy" -v name="$name" 'BEGIN {
    split(idle, a, " "); split(busy, b, " "); n = b[1]
    printf "%s requests=%d instructions_per_request=%.0f", name, n, (b[2] - a[2]) / n
    split("I1mr ILmr D1m DLm Bcm Bim", ev, " ")
    for (i = 1; i <= 6 && (i + 2) in b; i++) printf " %s=%.2f", ev[i], (b[i + 2] - a[i + 2]) / n
    printf "\n" }'
}
