#!/usr/bin/env python3
"""Store and forward (fallback kind: queue), two measurements on loopback, one sitting:

  enqueue  added latency of a queued write: wrk POSTs (closed loop, 1 thread, 4 connections)
           against a route whose cluster is down, answered by the `static` 503 fallback, and by
           a `queue` fallback with fsync never / interval (50 ms) / always, and with
           `backend: redis` (a redis-server started here on a free port, AOF with appendfsync
           everysec: the durability of `interval`); p50 and p99.
  drain    N writes (default 18,000) queued while the cluster is down, then nginx started on the
           cluster's port (bench peers' nginx.sh direct); the time from nginx answering to an
           empty queue (GET /queues polled every 5 ms), and sluice's own drain duration (first
           delivered replay to empty); nginx's access log counts what arrived.

  drain-redis  the same drain with `backend: redis` (a redis-server started here, AOF everysec),
           INSTANCES sluice instances (env, default 1) sharing the queue (writes sent through
           all in turn); "empty" is read from Redis itself (every partition's XLEN and pending
           list, every 5 ms), not from an instance's cached depth. KEEP=1 keeps the logs.

  nice -n 10 python3 bench/load/queue.py [build/sluice] [enqueue|drain|drain-redis|both] [N]
"""
import http.client, json, os, re, shutil, socket, subprocess, sys, tempfile, threading, time

SLUICE = sys.argv[1] if len(sys.argv) > 1 else "build/sluice"
WHAT = sys.argv[2] if len(sys.argv) > 2 else "both"
N = int(sys.argv[3]) if len(sys.argv) > 3 else 18000
PEERS = os.environ.get("PEERS", "/work/shared/bench/peers")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start(cfg, tmp):
    path = os.path.join(tmp, "sluice.yaml")
    with open(path, "w") as f:
        f.write(cfg)
    log = open(os.path.join(tmp, "sluice.log"), "w")
    proc = subprocess.Popen([SLUICE, "run", "-c", path], stdout=log, stderr=log)
    return proc


def wait_port(port):
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("sluice did not start")


def queue_route(name, dir_, fsync, extra=""):
    return f"""
  - name: {name}
    match: {{ prefix: /{name} }}
    middlewares:
      - type: fallback
        fallbacks:
          - name: {name}
            kind: queue
            cluster: down
            when: {{ upstream_error: true }}
            queue: {{ dir: {dir_}, fsync: {fsync}{extra} }}
    handler: {{ type: proxy, cluster: down }}
"""


def resp(port, *argv):
    """One Redis command over a fresh connection; integers and arrays of integers only."""
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode())
                                                 for a in argv))
    data = b""
    while not data.endswith(b"\r\n"):
        data += c.recv(65536)
    c.close()
    return data


def redis_queue_left(port, name, partitions=8):
    """(entries in every partition, entries pending in every partition's group)."""
    keys = [f"{{sluice:q:{name}}}:{p}" for p in range(partitions)]
    script = ("local n, pend = 0, 0 for i = 1, #KEYS do n = n + redis.call('XLEN', KEYS[i]) "
              "local ok, p = pcall(redis.call, 'XPENDING', KEYS[i], 'sluice') "
              "if ok then pend = pend + p[1] end end return {n, pend}")
    out = resp(port, "EVAL", script, str(len(keys)), *keys).decode()
    nums = [int(x[1:]) for x in out.split("\r\n") if x.startswith(":")]
    return nums[0], nums[1]


def enqueue():
    tmp = tempfile.mkdtemp(prefix="queue-bench-")
    port, admin, dead = free_port(), free_port(), free_port()
    routes = f"""
  - name: static
    match: {{ prefix: /static }}
    middlewares:
      - type: fallback
        fallbacks:
          - {{ name: static, kind: static, status: 503, body: "later", when: {{ upstream_error: true }} }}
    handler: {{ type: proxy, cluster: down }}
"""
    for fsync in ("never", "interval", "always"):
        routes += queue_route("q_" + fsync, os.path.join(tmp, fsync), fsync)
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                              "--dir", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    routes += f"""
  - name: q_redis
    match: {{{{ prefix: /q_redis }}}}
    middlewares:
      - type: fallback
        fallbacks:
          - name: q_redis
            kind: queue
            cluster: down
            when: {{{{ upstream_error: true }}}}
            queue: {{{{ backend: redis, dir: {os.path.join(tmp, "spill")},
                     redis: {{{{ address: "127.0.0.1:{redis_port}" }}}} }}}}
    handler: {{{{ type: proxy, cluster: down }}}}
""".replace("{{", "{").replace("}}", "}")
    cfg = f"""listen: 127.0.0.1:{port}
admin: {{ listen: 127.0.0.1:{admin} }}
workers: 1
log_level: warn
upstreams:
  down: {{ endpoints: ["127.0.0.1:{dead}"], retries: {{ max: 0 }} }}
routes:{routes}"""
    proc = start(cfg, tmp)
    try:
        wait_port(port)
        lua = os.path.join(tmp, "post.lua")
        with open(lua, "w") as f:
            f.write('wrk.method = "POST"\nwrk.body = string.rep("x", 512)\n'
                    'wrk.headers["Content-Type"] = "application/json"\n')
        print(f"load: {os.getloadavg()}")
        print("%-12s %10s %10s %10s %s" % ("fallback", "req/s", "p50", "p99", "statuses"))
        for path in ("static", "q_never", "q_interval", "q_always", "q_redis", "static"):
            out = subprocess.run(["wrk", "-t1", "-c4", "-d5s", "--latency", "-s", lua,
                                  f"http://127.0.0.1:{port}/{path}"],
                                 capture_output=True, text=True).stdout
            p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)
            p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
            rps = re.search(r"Requests/sec:\s+(\S+)", out).group(1)
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            print("%-12s %10s %10s %10s %s" % (path, rps, p50, p99,
                                              f"non-2xx {non2xx.group(1)}" if non2xx else "all 2xx"))
            if path == "q_redis":  # stored in the stream, not in the local spill
                print(f"             stream length after the run: "
                      f"{redis_queue_left(redis_port, 'q_redis')[0]}")
    finally:
        proc.terminate()
        proc.wait()
        redis.kill()
        redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def drain():
    tmp = tempfile.mkdtemp(prefix="queue-drain-")
    port, admin, backend = free_port(), free_port(), free_port()
    cfg = f"""listen: 127.0.0.1:{port}
admin: {{ listen: 127.0.0.1:{admin} }}
workers: 1
log_level: info
upstreams:
  down: {{ endpoints: ["127.0.0.1:{backend}"], retries: {{ max: 0 }} }}
routes:{queue_route("orders", os.path.join(tmp, "q"), "interval",
                    ", concurrency: 64, backoff_base_ms: 50, backoff_max_ms: 200")}"""
    proc = start(cfg, tmp)
    nginx_dir = None
    try:
        wait_port(port)
        count = [0]
        lock = threading.Lock()

        def writer(k):
            c = http.client.HTTPConnection("127.0.0.1", port)
            for i in range(k):
                c.request("POST", "/orders", body=b'{"n":%d}' % i,
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                if r.status != 202:
                    raise SystemExit(f"not queued: {r.status}")
                with lock:
                    count[0] += 1

        t0 = time.time()
        threads = [threading.Thread(target=writer, args=(N // 16,)) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fill = time.time() - t0

        def stats():
            c = http.client.HTTPConnection("127.0.0.1", admin)
            c.request("GET", "/queues")
            return json.loads(c.getresponse().read())["queues"][0]

        print(f"load: {os.getloadavg()}")
        print(f"queued {count[0]} writes in {fill:.2f} s; depth {stats()['depth']}")
        access = os.path.join(tmp, "nginx-access.log")
        env = dict(os.environ, NGINX_ACCESS_LOG=access, NGINX_CPU="1")
        nginx_dir = subprocess.run([os.path.join(PEERS, "nginx.sh"), "direct", str(backend)],
                                   capture_output=True, text=True, env=env, check=True).stdout.strip()
        recovered = time.time()  # nginx.sh returns once the port accepts
        while True:
            s = stats()
            if s["depth"] == 0 and s["in_flight"] == 0:
                break
            time.sleep(0.005)
        empty = time.time()
        print(f"recovery to empty queue: {empty - recovered:.3f} s "
              f"(sluice's drain, first delivery to empty: {s['last_drain_seconds']} s); "
              f"delivered {s['delivered']}, dead {s['dead']}")
        subprocess.run([os.path.join(PEERS, "nginx.sh"), "stop", nginx_dir])
        nginx_dir = None
        time.sleep(0.5)
        posts = sum(1 for line in open(access) if '"POST /orders' in line)
        print(f"nginx received {posts} POSTs")
    finally:
        if nginx_dir:
            subprocess.run([os.path.join(PEERS, "nginx.sh"), "stop", nginx_dir])
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def drain_redis(instances):
    tmp = tempfile.mkdtemp(prefix="queue-drain-redis-")
    backend, redis_port = free_port(), free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                              "--dir", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs, ports, admins = [], [], []
    nginx_dir = None
    try:
        for i in range(instances):
            port, admin = free_port(), free_port()
            cfg = f"""listen: 127.0.0.1:{port}
admin: {{ listen: 127.0.0.1:{admin} }}
workers: 1
log_level: info
upstreams:
  down: {{ endpoints: ["127.0.0.1:{backend}"], retries: {{ max: 0 }} }}
routes:{queue_route("orders", os.path.join(tmp, f"spill{i}"), "interval",
                    ", concurrency: 64, backoff_base_ms: 50, backoff_max_ms: 200, backend: redis, "
                    f"redis: {{ address: '127.0.0.1:{redis_port}', consumer: i{i} }}")}"""
            d = os.path.join(tmp, f"i{i}")
            os.makedirs(d)
            procs.append(start(cfg, d))
            ports.append(port)
            admins.append(admin)
        for port in ports:
            wait_port(port)
        time.sleep(3)  # the instances share the partitions out (lease rounds)
        count = [0]
        lock = threading.Lock()

        def writer(k, port):
            c = http.client.HTTPConnection("127.0.0.1", port)
            for i in range(k):
                c.request("POST", "/orders", body=b'{"n":%d}' % i,
                          headers={"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                if r.status != 202:
                    raise SystemExit(f"not queued: {r.status} {r.read()}")
                with lock:
                    count[0] += 1

        t0 = time.time()
        threads = [threading.Thread(target=writer, args=(N // 16, ports[j % instances]))
                   for j in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fill = time.time() - t0
        print(f"load: {os.getloadavg()}")
        print(f"{instances} instance(s): queued {count[0]} writes in {fill:.2f} s; "
              f"in Redis (entries, pending): {redis_queue_left(redis_port, 'orders')}")
        access = os.path.join(tmp, "nginx-access.log")
        env = dict(os.environ, NGINX_ACCESS_LOG=access, NGINX_CPU="1")
        nginx_dir = subprocess.run([os.path.join(PEERS, "nginx.sh"), "direct", str(backend)],
                                   capture_output=True, text=True, env=env,
                                   check=True).stdout.strip()
        recovered = time.time()
        while redis_queue_left(redis_port, "orders") != (0, 0):
            time.sleep(0.005)
        empty = time.time()
        drains = []
        for admin in admins:
            for _ in range(100):  # an instance ends its drain at its next tick (its depth is 0)
                c = http.client.HTTPConnection("127.0.0.1", admin)
                c.request("GET", "/queues")
                q = json.loads(c.getresponse().read())["queues"][0]
                if q["last_drain_seconds"] is not None:
                    break
                time.sleep(0.02)
            drains.append((q["delivered"], q["dead"], q["last_drain_seconds"]))
        print(f"recovery to empty queue (Redis): {empty - recovered:.3f} s; per instance "
              f"(delivered, dead, its drain s): {drains}")
        subprocess.run([os.path.join(PEERS, "nginx.sh"), "stop", nginx_dir])
        nginx_dir = None
        time.sleep(1.5)
        posts = sum(1 for line in open(access) if '"POST /orders' in line)
        print(f"nginx received {posts} POSTs")
    finally:
        if nginx_dir:
            subprocess.run([os.path.join(PEERS, "nginx.sh"), "stop", nginx_dir])
        for proc in procs:
            proc.terminate()
            proc.wait()
        redis.kill()
        redis.wait()
        if os.environ.get("KEEP"):
            print(f"logs kept in {tmp}/i*/sluice.log")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if WHAT in ("enqueue", "both"):
    enqueue()
if WHAT in ("drain", "both"):
    drain()
if WHAT == "drain-redis":
    drain_redis(int(os.environ.get("INSTANCES", "1")))
