"""The seeds' switching-slowdown experiment as the seeds wrote it, in Python with greenlet.

Measures on this machine what docs/benchmarks.md §4 compares green with: f1/f2 over N
numbers run one after the other, then switching after every step (`gr2.switch()` /
`gr1.switch()`), and a plain switch round trip (main -> greenlet -> main, as the `switch`
bench). Needs `pip install greenlet`.

    taskset -c 1 python3 scripts/greenlet_seeds.py [N]     # default N = 10_000_000
"""
import sys, time
from greenlet import greenlet
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000

def seq():
    def f1():
        res = 0
        for i in range(N):
            res += i
    def f2():
        res = 0
        for i in range(N):
            res *= i
    t = time.perf_counter(); f1(); f2(); return time.perf_counter() - t

def switching():
    def f1():
        res = 0
        for i in range(N):
            res += i
            gr2.switch()
    def f2():
        res = 0
        for i in range(N):
            res *= i
            gr1.switch()
    global gr1, gr2
    gr1 = greenlet(f1); gr2 = greenlet(f2)
    t = time.perf_counter(); gr1.switch(); return time.perf_counter() - t

def switch_only():
    # one round trip = main -> g -> main, as the `switch` bench
    def body():
        while True:
            main.switch()
    global main
    main = greenlet.getcurrent()
    g = greenlet(body)
    t = time.perf_counter()
    for _ in range(N):
        g.switch()
    return time.perf_counter() - t

s, w, r = seq(), switching(), switch_only()
print(f"sequential {s:.3f} s, switching {w:.3f} s, slowdown {w/s:.2f}x, switch round trip {r/N*1e9:.1f} ns")
