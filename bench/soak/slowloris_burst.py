#!/usr/bin/env python3
"""Slowloris burst: N idle connections are opened, then a partial header is sent on all of them
within ~0.1 s, so their header timeouts (1 s) expire in one or two of the worker's deadline
sweeps; meanwhile a client making a new connection per request measures its requests between
0.8 and 1.8 s after the headers were sent (the burst of 408s). docs/RELIABILITY.md, fault drills.

    python3 bench/soak/slowloris_burst.py build/sluice [N=10000]
"""
import os, resource, socket, subprocess, sys, tempfile, time
binary, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10000
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 20000, hard))
d = tempfile.mkdtemp()
cfg = os.path.join(d, "c.yaml")
open(cfg, "w").write("workers: 1\nlisten: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:0 }\n"
                     "limits: { header_timeout_ms: 1000, max_connections: 20000 }\n"
                     "routes: [ { name: r, handler: { type: respond, body: ok } } ]\n")
ports = os.path.join(d, "ports")
gw = subprocess.Popen([binary, "run", "-c", cfg, "--port-file", ports], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while not (os.path.exists(ports) and open(ports).read().count("\n") >= 2):
    time.sleep(0.05)
port = int(open(ports).read().split()[1].rsplit(":", 1)[1])
stalled = []
for i in range(n):
    stalled.append(socket.create_connection(("127.0.0.1", port)))
time.sleep(0.2)
for s in stalled:  # the header deadlines all fall within this loop's ~0.1 s
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
t_open = time.time()
lat = []
while time.time() < t_open + 2.5:
    t = time.time()
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        p = c.recv(4096)
        if not p: break
        data += p
    c.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:40]
    if t_open + 0.8 < t < t_open + 1.8: lat.append(time.time() - t)  # the expiry burst
    time.sleep(0.002)
got408 = 0
for s in stalled:
    s.settimeout(3)
    try:
        if s.recv(20).startswith(b"HTTP/1.1 408"): got408 += 1
    except Exception:
        pass
    s.close()
gw.terminate(); gw.wait()
lat.sort()
print(f"{binary}: {n} stalled, {got408} x 408; normal client {len(lat)} requests, "
      f"median {1000*lat[len(lat)//2]:.1f} ms, p99 {1000*lat[int(len(lat)*0.99)]:.1f} ms, max {1000*lat[-1]:.1f} ms")
