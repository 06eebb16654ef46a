#!/usr/bin/env python3
"""Print the result tables of docs/benchmarks.md from the latest benchmark results
(python3 standard library only).

Reads what scripts/bench_chart.py reads: the TSV files of the harness=false benches
(target/green-bench/*.tsv, or $GREEN_BENCH_OUT) and criterion's medians
(target/criterion/<group>/<id>/new/estimates.json). For echo it prefers the paired
per-round ratios that the echo bench prints, taken from the log that scripts/bench_all.sh
saves next to the TSV files (bench_all.log), when that log is not older than echo.tsv;
otherwise it divides the servers' medians.

Every table gives green's figure and, for each peer measured in the same run, the
peer's figure and green's lead over it: above 1 green is ahead (the peer's time, memory
or instructions divided by green's; green's throughput divided by the peer's). Each
table sits between the markers <!-- bench:NAME --> and <!-- /bench:NAME --> so that
--update can replace it in place.

Usage: python3 scripts/bench_summary.py [--results DIR] [--criterion DIR] [--update FILE]
"""
import argparse
import math
import os
import platform
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_chart  # noqa: E402  (the readers of the result files)

# Display names of the variants (the result files' names otherwise).
NAMES = {
    "green": "**green**",
    "green_u64": "green, a `u64` each way",
    "corosensei": "raw corosensei",
    "corosensei_fresh_stack": "raw corosensei, fresh stack",
    "corosensei_reused_stack": "raw corosensei, reused stack",
    "generator": "raw generator (may's coroutines)",
    "tokio_current_thread": "tokio current-thread",
    "tokio": "tokio current-thread",
    "may": "may, one worker",
    "mio": "hand-written mio loop",
    "green_raw": "green, raw `Registration`",
    "green_monkey": "green, monkey-patched `std::net`",
    "sequential": "sequential (no switching)",
    "may_yield": "may `yield_now`",
    "green_switch": "**green `switch`**",
    "green_yield": "green `yield_now`",
}


# Shorter names for column headers.
SHORT = {"tokio_current_thread": "tokio", "tokio": "tokio", "mio": "mio loop", "may": "may"}


def name(v):
    return NAMES.get(v, v)


def fmt(value, unit):
    """A figure with its unit, three significant digits, in the unit that reads best."""
    if not math.isfinite(value):
        return "failed"
    if unit in ("ns", "ns/spawn", "us", "s"):
        ns = value * {"ns": 1, "ns/spawn": 1, "us": 1e3, "s": 1e9}[unit]
        for scale, u in ((1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1, "ns")):
            if ns >= scale or scale == 1:
                return "%s %s" % (sig(ns / scale), u)
    if unit == "B/task":
        return "{:,.0f} B".format(value)
    if unit == "msg/s":
        return "{:,.0f}".format(value)
    if unit == "instr":
        return "%.0f" % value if value >= 10 else "%.1f" % value
    return "%s %s" % (sig(value), unit)


def sig(x):
    """Three significant digits, trailing zeros kept (2.60, not 2.6)."""
    if x >= 100 or x <= 0:
        return "%.0f" % x
    return "%.*f" % (max(0, 2 - math.floor(math.log10(x))), x)


def lead(green, peer, higher_is_better=False):
    """green's lead over a peer: above 1 green is ahead. For a time, memory or instruction
    count that is the peer's figure divided by green's; for a throughput, green's divided
    by the peer's."""
    a, b = (green, peer) if higher_is_better else (peer, green)
    if not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return "–"
    return times(a / b)


def times(r):
    return ("%.0f×" if r >= 100 else "%.1f×" if r >= 10 else "%.2f×" if r >= 1 else "%.3f×") % r


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def by_variant(rows, bench, case=""):
    return {r["variant"]: r for r in rows if r["bench"] == bench and r["case"] == case}


LEAD = "green's lead (above 1: green ahead)"


def criterion_table(rows, group, note):
    """One row per variant: its median and green's median divided by it."""
    vs = by_variant(rows, group)
    if "green" not in vs:
        return None
    g = vs["green"]["value"]
    order = sorted(vs, key=lambda v: (v != "green", not v.startswith("green")))
    body = []
    for v in order:
        val = vs[v]["value"]
        r = "–" if v.startswith("green") else lead(g, val)
        body.append([name(v), fmt(val, "ns"), r])
    return table(["", "median", LEAD], body) + "\n\n" + note


def slowdown_table(rows):
    cases = sorted({r["case"] for r in rows if r["bench"] == "slowdown"})
    if not cases:
        return None
    case = cases[-1]
    vs = by_variant(rows, "slowdown", case)
    steps = 2 * int(case.lstrip("n"))  # f1 and f2, N steps each
    seq = vs.get("sequential", {}).get("value", float("nan"))
    body = []
    for v, r in vs.items():
        body.append([name(v), fmt(r["value"] / steps * 1e9, "ns"),
                     times(r["value"] / seq) if math.isfinite(seq) and seq > 0 else "–"])
    return (table(["", "per step", "slowdown (÷ sequential)"], body)
            + "\n\n%s steps of each function, medians of interleaved rounds." % "{:,}".format(steps // 2))


def scale_table(rows):
    ns = sorted({int(r["case"].split("_")[0][1:]) for r in rows if r["bench"] == "scale"})
    if not ns:
        return None
    peers = []
    for r in rows:
        if r["bench"] == "scale" and r["variant"] != "green" and r["variant"] not in peers:
            peers.append(r["variant"])
    measures = [("spawn", "spawn, each"), ("rss", "resident memory per task"),
                ("total", "all done (ideal: 1 s)")]
    body = []
    for n in ns:
        for key, label in measures:
            vs = by_variant(rows, "scale", "n%d_%s" % (n, key))
            if "green" not in vs:
                continue
            g = vs["green"]
            cells = ["{:,}".format(n), label, fmt(g["value"], g["unit"])]
            for p in peers:
                if p not in vs:
                    cells.append("–")
                elif not math.isfinite(vs[p]["value"]):
                    cells.append("failed")
                else:
                    cells.append("%s (%s)" % (fmt(vs[p]["value"], vs[p]["unit"]),
                                              lead(g["value"], vs[p]["value"])))
            body.append(cells)
    head = ["N", "", "green"] + ["%s (green's lead)" % SHORT.get(p, p) for p in peers]
    return table(head, body) + "\n\nEach N in a fresh process; medians of interleaved rounds."


PAIRED = re.compile(r"^c=(\d+) paired (\S+)/(\S+) over (\d+) rounds: msg/s ([\d.]+) \[[^\]]*\], "
                    r"server ns/msg ([\d.]+)")


def echo_paired(results_dir):
    """{(conns, green variant, peer): (msg/s ratio, server ns/msg ratio, rounds)} from the
    log of the run that wrote echo.tsv, or {} when there is none."""
    log, tsv = os.path.join(results_dir, "bench_all.log"), os.path.join(results_dir, "echo.tsv")
    if not (os.path.exists(log) and os.path.exists(tsv)) or os.path.getmtime(log) < os.path.getmtime(tsv):
        return {}
    out = {}
    with open(log, errors="replace") as f:
        for line in f:
            m = PAIRED.match(line.strip())
            if m:
                out[(int(m[1]), m[2], m[3])] = (float(m[5]), float(m[6]), int(m[4]))
    return out


def echo_table(rows, results_dir):
    conns = sorted({int(r["case"].split("_")[0][1:]) for r in rows if r["bench"] == "echo"})
    if not conns:
        return None
    paired = echo_paired(results_dir)
    peers = [p for p in ("tokio", "mio", "may")
             if any(r["bench"] == "echo" and r["variant"] == p for r in rows)]
    greens = [v for v in ("green", "green_raw", "green_monkey")
              if any(r["bench"] == "echo" and r["variant"] == v for r in rows)]
    measures = [("tput", "msg/s", 0), ("srv_ns_per_msg", "server CPU per message", 1),
                ("p99", "latency p99", None)]
    body, rounds, unpaired = [], set(), False
    for c in conns:
        for gv in greens:
            for key, label, pk in measures:
                if gv != "green" and key not in ("tput", "srv_ns_per_msg"):
                    continue
                vs = by_variant(rows, "echo", "c%d_%s" % (c, key))
                if gv not in vs:
                    continue
                g = vs[gv]
                what = label if gv == "green" else "%s: %s" % (name(gv), label)
                cells = ["{:,}".format(c), what, fmt(g["value"], g["unit"])]
                for p in peers:
                    if pk is not None and (c, gv, p) in paired:
                        # The bench prints green / peer for both; server CPU is lower-better.
                        r = paired[(c, gv, p)][pk]
                        cells.append("%.3f×" % (r if pk == 0 else 1 / r))
                        rounds.add(paired[(c, gv, p)][2])
                    else:
                        unpaired |= pk is not None and p in vs
                        cells.append(lead(g["value"], vs[p]["value"], g["higher"]) if p in vs else "–")
                body.append(cells)
    head = ["connections", "", "green"] + ["lead over %s" % SHORT.get(p, p) for p in peers]
    if rounds:
        note = ("msg/s and server CPU: medians of per-round ratios over %s paired rounds%s; "
                "latency: ratio of the medians." % ("/".join(str(r) for r in sorted(rounds)),
                                                    " (where paired rounds were printed)" if unpaired else ""))
    else:
        note = "Ratios of the servers' medians over interleaved rounds."
    return table(head, body) + "\n\n" + note


# The instr bench's variants, by operation: (operation, green's variant, [(column, variant)]).
INSTR = [
    ("switch round trip", "green_switch", [("raw corosensei", "corosensei_switch"),
                                           ("raw generator", "generator_switch")]),
    ("`yield_now` ping-pong", "green_yield", [("raw corosensei", "corosensei_two"),
                                               ("tokio", "tokio_yield"), ("may", "may_yield")]),
    ("spawn + join", "green_spawn", [("tokio", "tokio_spawn"), ("may", "may_spawn")]),
    ("echo round trip, user space, both ends green", "green_echo", []),
]


def instr_table(rows):
    vs = by_variant(rows, "instr")
    if not vs:
        return None
    cols = ["raw corosensei", "raw generator", "tokio", "may"]
    body = []
    for op, gv, peers in INSTR:
        if gv not in vs:
            continue
        g = vs[gv]["value"]
        cells = [op, fmt(g, "instr")]
        peer = dict(peers)
        for c in cols:
            v = peer.get(c)
            cells.append("%s (%s)" % (fmt(vs[v]["value"], "instr"), lead(g, vs[v]["value"]))
                         if v in vs else "–")
        body.append(cells)
    return (table(["per round trip", "green"] + ["%s (green's lead)" % c for c in cols], body)
            + "\n\nvalgrind's callgrind, user-space instructions of one round trip.")


def machine():
    def run(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    except OSError:
        pass
    return "Measured on: %d cores (%s), %s, Linux %s, %s." % (
        os.cpu_count() or 0, model, platform.machine(), platform.release(), run("rustc", "-V"))


def blocks(results, crit):
    rows = bench_chart.read_criterion(crit) + bench_chart.read_tsv(results)
    crit_note = "Criterion medians."
    made = [
        ("machine", machine()),
        ("switch", criterion_table(rows, "switch", crit_note)),
        ("hub_switch", criterion_table(rows, "hub_switch", crit_note + " Per round: each task yields once.")),
        ("hub_switch_1000", criterion_table(rows, "hub_switch_1000", crit_note + " Per yield.")),
        ("spawn", criterion_table(rows, "spawn", crit_note)),
        ("slowdown", slowdown_table(rows)),
        ("scale", scale_table(rows)),
        ("echo", echo_table(rows, results)),
        ("instr", instr_table(rows)),
    ]
    return [(k, v) for k, v in made if v], len(rows)


def update(path, made):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        sys.exit("cannot read %s: %s" % (path, e))
    missing = []
    for key, body in made:
        pat = re.compile(r"(<!-- bench:%s -->\n).*?(\n<!-- /bench:%s -->)" % (key, key), re.S)
        text, n = pat.subn(lambda m: m[1] + body + m[2], text)
        if n == 0:
            missing.append(key)
    with open(path, "w") as f:
        f.write(text)
    return missing


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_chart.add_input_args(ap)
    ap.add_argument("--update", metavar="FILE", help="replace the marked tables in FILE instead of printing")
    a = ap.parse_args()
    made, n = blocks(a.results, a.criterion)
    if n == 0:
        sys.exit("no results found in %s or %s; run the benches first" % (a.results, a.criterion))
    if a.update:
        missing = update(a.update, made)
        print("updated %s: %s" % (a.update, ", ".join(k for k, _ in made if k not in missing)))
        if missing:
            print("no markers for: %s" % ", ".join(missing))
        return
    for key, body in made:
        print("<!-- bench:%s -->\n%s\n<!-- /bench:%s -->\n" % (key, body, key))


if __name__ == "__main__":
    main()
