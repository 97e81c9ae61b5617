#!/usr/bin/env python3
"""TLS ends of a WebSocket-style tunnel, to tell a clean TLS end (close_notify) from a cut one
(a bare FIN after TLS data): Python's ssl with suppress_ragged_eofs=False reads b'' after a
close_notify and raises SSLEOFError on a bare FIN.

  tls_tunnel_peer.py upstream CERT KEY
      A TLS upstream on 127.0.0.1 (prints its port). It answers an Upgrade request with 101.
      GET /echo: echoes bytes upper-cased until the client's side ends, then writes "CLEAN\\n"
      (close_notify came) or "RAGGED\\n" (a bare FIN), and ends its side with close_notify.
      GET /bye: writes "BYE\\n" at once and ends its side with close_notify.
  tls_tunnel_peer.py client PORT CA_FILE PATH
      Connects with TLS (name "localhost"), sends the Upgrade request for PATH, and prints the
      answer's status line, every byte read after the head, and then "END CLEAN" or
      "END RAGGED" for how the stream ended.
"""
import socket
import ssl
import sys
import threading

HANDSHAKE = (
    "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def read_head(conn):
    head = b""
    while b"\r\n\r\n" not in head:
        b = conn.recv(1)
        if not b:
            break
        head += b
    return head.decode("latin-1")


def end_cleanly(conn):
    try:
        conn.unwrap()  # our close_notify (and the peer's, if it comes)
    except (OSError, ssl.SSLError):
        pass
    conn.close()


def serve(conn):
    try:
        head = read_head(conn)
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: test\r\n\r\n")
        if head.startswith("GET /bye"):
            conn.sendall(b"BYE\n")
            return end_cleanly(conn)
        while True:
            try:
                data = conn.recv(65536)
            except ssl.SSLEOFError:
                conn.sendall(b"RAGGED\n")
                break
            if not data:
                conn.sendall(b"CLEAN\n")
                break
            conn.sendall(data.upper())
        end_cleanly(conn)
    except (OSError, ssl.SSLError):
        conn.close()


def upstream(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)
    while True:
        raw, _ = listener.accept()
        raw.settimeout(10)
        try:
            conn = ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
        except (OSError, ssl.SSLError):
            raw.close()
            continue
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def client(port, ca_file, path):
    ctx = ssl.create_default_context(cafile=ca_file)
    raw = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
    conn = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    conn.sendall(HANDSHAKE.format(path=path).encode())
    head = read_head(conn)
    print(head.split("\r\n")[0])
    data = b""
    try:
        while True:
            piece = conn.recv(65536)
            if not piece:
                print(data.decode("latin-1"), end="")
                print("END CLEAN")
                break
            data += piece
    except ssl.SSLEOFError:
        print(data.decode("latin-1"), end="")
        print("END RAGGED")
    sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1] == "upstream":
        upstream(sys.argv[2], sys.argv[3])
    else:
        client(sys.argv[2], sys.argv[3], sys.argv[4])
