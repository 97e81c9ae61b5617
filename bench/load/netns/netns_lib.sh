# The network namespace of the netns experiments (sourced). The upstream lives in its own
# namespace, reached over a veth pair whose two addresses belong to this experiment only
# (10.213.7.1 on the host side, 10.213.7.2 inside); everything is removed on exit. Root only.
#   netns_up; ip netns exec "$NS" cmd ...; netns_blackhole on|off; (trap runs netns_down)
NS=sluice-x$$
VETH_HOST=sxh$$
VETH_NS=sxn$$
UPSTREAM_IP=10.213.7.2

netns_up() {
  ip netns add "$NS"
  ip link add "$VETH_HOST" type veth peer name "$VETH_NS"
  ip link set "$VETH_NS" netns "$NS"
  ip addr add 10.213.7.1/30 dev "$VETH_HOST"
  ip link set "$VETH_HOST" up
  ip netns exec "$NS" ip addr add "$UPSTREAM_IP/30" dev "$VETH_NS"
  ip netns exec "$NS" ip link set "$VETH_NS" up
  ip netns exec "$NS" ip link set lo up
}

# Makes $work (a temp dir), the namespace, and a trap that ends every pid in $pids, removes the
# namespace and $work on exit.
experiment_start() {  # name
  work=$(mktemp -d "/tmp/$1.XXXXXX")
  pids=()
  trap experiment_end EXIT
  netns_up
}

experiment_end() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  netns_down
  # KEEP=dir keeps the run's files (load lines, sluice's log, breaker polls) for a closer look.
  if [ -n "${KEEP:-}" ]; then rm -rf "$KEEP" && cp -r "$work" "$KEEP"; fi
  rm -rf "$work"
}

netns_down() {
  ip netns del "$NS" 2>/dev/null || true  # takes the veth pair with it
  ip link del "$VETH_HOST" 2>/dev/null || true
}

# A black hole, not a refusal: the namespace's end of the link goes down, so nothing comes back
# from the upstream — no RST, no ICMP from it — and connects time out (tc netem is not available
# on every kernel; a link without carrier drops the same way).
netns_blackhole() {
  if [ "$1" = on ]; then
    ip netns exec "$NS" ip link set "$VETH_NS" down
  else
    ip netns exec "$NS" ip link set "$VETH_NS" up
  fi
}

# Polls GET /breakers every 200 ms until killed: "<epoch> <state>" per line.
poll_breakers() {  # admin_port out_file
  while :; do
    state=$(curl -s --max-time 1 "127.0.0.1:$1/breakers" |
      python3 -c 'import json,sys; b=json.load(sys.stdin)["breakers"]; print(b[0]["state"] if b else "none")' 2>/dev/null || echo none)
    echo "$(date +%s.%N) $state" >>"$2"
    sleep 0.2
  done
}

# Seconds from EPOCH to the first "closed" at or after it in a poll file, or "never".
closed_after() {  # poll_file epoch
  awk -v t="$2" '$1 >= t && $2 == "closed" { printf "%.1f s\n", $1 - t; found = 1; exit }
                 END { if (!found) print "never" }' "$1"
}
