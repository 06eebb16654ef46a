"""The seeds' gevent echo server with 400 clients, in one Python process and thread.

The same experiment as `cargo run --release --example socket_concurrency`: the seeds'
server (`monkey.patch_all()`, plain `socket` code, one greenlet per connection that
upper-cases what it receives) and 400 client greenlets in the same thread, each sending
"Greenlet-i n" and waiting for the reply, for 5 seconds; it prints the round trips per
second. (The seeds' clients were 400 OS threads in another process, printing every reply;
here they are greenlets, as in the Rust example, and print nothing.) Needs
`pip install gevent`; docs/benchmarks.md §6 compares it with green.

    taskset -c 1 python3 scripts/gevent_seeds_echo.py [--conns 400] [--duration 5]
"""
from gevent import monkey; monkey.patch_all()  # noqa: E702 (the seeds' first line)
import argparse
import socket
import threading
import time

import gevent

ap = argparse.ArgumentParser()
ap.add_argument("--conns", type=int, default=400)
ap.add_argument("--duration", type=float, default=5.0)
args = ap.parse_args()

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(1024)
addr = server.getsockname()
served = {"conns": 0, "messages": 0}


def talk(conn):  # the seeds' handler, without the print
    while True:
        try:
            data = conn.recv(1024)
            if len(data) == 0:
                break
            served["messages"] += 1
            conn.send(data.upper())
        except ConnectionResetError:
            break
    conn.close()


def server1():
    while True:
        conn, _ = server.accept()
        served["conns"] += 1
        gevent.spawn(talk, conn)


def client(i, until):
    c = socket.socket()
    c.connect(addr)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    n = 0
    while time.monotonic() < until:
        msg = ("Greenlet-%d %d" % (i, n)).encode()
        c.send(msg)
        if c.recv(1024) != msg.upper():
            raise RuntimeError("wrong reply")
        n += 1
    c.close()
    return n


gevent.spawn(server1)
print("server on %s:%d; %d client greenlets for %g s, one thread"
      % (addr[0], addr[1], args.conns, args.duration))
start = time.monotonic()
until = start + args.duration
clients = [gevent.spawn(client, i, until) for i in range(args.conns)]
gevent.joinall(clients)
elapsed = time.monotonic() - start
msgs = sum(c.value or 0 for c in clients)
errors = sum(1 for c in clients if not c.successful())
print("connections served: %d" % served["conns"])
print("messages: %d in %.2f s = %.0f messages/s (server answered %d)"
      % (msgs, elapsed, msgs / elapsed, served["messages"]))
print("errors: %d; OS threads: %d" % (errors, threading.active_count()))
