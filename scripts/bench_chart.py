#!/usr/bin/env python3
"""Draw docs/benchmarks.svg from the benchmark results (python3 standard library only).

Inputs
  * TSV files written by the harness=false benches (slowdown, scale, echo), default
    directory target/green-bench/ (or $GREEN_BENCH_OUT). Columns:
        bench  case  variant  value  unit  better(higher|lower)  baseline(0|1)
    A value of NaN marks a variant whose run failed (drawn as "failed", without a bar).
  * criterion's estimates for the criterion benches (switch, hub_switch, spawn):
    <criterion dir>/<group>/<id>/new/estimates.json, median point estimate in ns.
    Default criterion dir: $CARGO_TARGET_DIR/criterion, else target/criterion.

Output: one horizontal bar per variant, grouped by (bench, case), bar length = value
divided by the group's baseline on a log scale (1x marked), labelled with the ratio and the
absolute value.

Usage: python3 scripts/bench_chart.py [--results DIR] [--criterion DIR] [--out FILE]
"""
import argparse
import glob
import json
import math
import os
import sys
from xml.sax.saxutils import escape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Criterion groups: which variant the others are divided by.
CRITERION_BASELINE = {
    "switch": "corosensei",
    "hub_switch": "tokio_current_thread",
    "hub_switch_1000": "tokio_current_thread",
    "spawn": "tokio_current_thread",
}
# Order of groups in the chart.
ORDER = ["switch", "hub_switch", "hub_switch_1000", "spawn", "instr", "slowdown", "scale", "echo", "http"]
GREEN_COLORS = {"green_yield": "#6cc47f", "green_u64": "#6cc47f", "green_raw": "#6cc47f"}
GREEN_COLOR = "#2e9d4a"
PEER_COLOR = "#7a8ca3"
BASE_COLOR = "#3c4f66"


def read_tsv(results_dir):
    rows = []
    for path in sorted(glob.glob(os.path.join(results_dir, "*.tsv"))):
        with open(path) as f:
            for line in f:
                if not line.strip() or line.startswith("#"):
                    continue
                p = line.rstrip("\n").split("\t")
                if len(p) < 7:
                    continue
                rows.append(dict(bench=p[0], case=p[1], variant=p[2], value=float(p[3]),
                                 unit=p[4], higher=p[5] == "higher", baseline=p[6] == "1"))
    return rows


def read_criterion(crit_dir):
    rows = []
    for group, base in CRITERION_BASELINE.items():
        for est in sorted(glob.glob(os.path.join(crit_dir, group, "*", "new", "estimates.json"))):
            variant = os.path.basename(os.path.dirname(os.path.dirname(est)))
            with open(est) as f:
                median = json.load(f)["median"]["point_estimate"]
            rows.append(dict(bench=group, case="", variant=variant, value=median, unit="ns",
                             higher=False, baseline=variant == base))
    return rows


def fmt_value(v, unit):
    if unit == "s":
        return "%.3g s" % v if v >= 1 else "%.3g ms" % (v * 1e3)
    if unit == "ns" and v >= 1000:
        return "%.3g us" % (v / 1e3)
    if unit == "us" and v >= 1000:
        return "%.3g ms" % (v / 1e3)
    if v >= 1000:
        return "{:,.0f} {}".format(v, unit)
    return "%.3g %s" % (v, unit)


def groups_of(rows):
    groups = {}
    for r in rows:
        groups.setdefault((r["bench"], r["case"]), []).append(r)
    # Benches in ORDER; cases in the order the bench wrote them (dicts keep insertion order).
    key = lambda k: (ORDER.index(k[0]) if k[0] in ORDER else len(ORDER), k[0])
    return [(k, groups[k]) for k in sorted(groups, key=key)]


def svg(groups):
    bar_h, gap, head_h = 16, 4, 22
    label_w, plot_w, right_w = 170, 420, 190
    width = label_w + plot_w + right_w
    ratios = []
    for _, rs in groups:
        base = next((r for r in rs if r["baseline"]), rs[0])
        for r in rs:
            r["ratio"] = r["value"] / base["value"] if base["value"] else float("nan")
            if r["ratio"] > 0 and math.isfinite(r["ratio"]):
                ratios.append(r["ratio"])
    lo = min([0.5] + ratios)
    hi = max([2.0] + ratios)
    lo_l, hi_l = math.floor(math.log10(lo) * 2) / 2, math.ceil(math.log10(hi) * 2) / 2
    x = lambda ratio: label_w + (math.log10(ratio) - lo_l) / (hi_l - lo_l) * plot_w

    out, y = [], 40
    for (bench, case), rs in groups:
        higher = rs[0]["higher"]
        title = "%s %s (%s, %s is better; ratio to %s)" % (
            bench, case, rs[0]["unit"], "higher" if higher else "lower",
            next((r["variant"] for r in rs if r["baseline"]), rs[0]["variant"]))
        out.append('<text x="4" y="%d" class="h">%s</text>' % (y + 14, escape(title)))
        y += head_h
        for r in rs:
            if not math.isfinite(r["value"]):
                # A run that failed (the scale bench writes NaN): no bar, just the word.
                out.append('<text x="%d" y="%d" class="l">%s</text>' % (label_w - 6, y + 12, escape(r["variant"])))
                out.append('<text x="%d" y="%d" fill="#b00020">failed (see the bench output)</text>' % (label_w + 4, y + 12))
                y += bar_h + gap
                continue
            color = BASE_COLOR if r["baseline"] else (GREEN_COLORS.get(r["variant"], GREEN_COLOR) if r["variant"].startswith("green") else PEER_COLOR)
            x0, x1 = x(1.0), x(r["ratio"]) if r["ratio"] > 0 else x(1.0)
            out.append('<text x="%d" y="%d" class="l">%s</text>' % (label_w - 6, y + 12, escape(r["variant"])))
            out.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>'
                       % (min(x0, x1), y, max(abs(x1 - x0), 1.0), bar_h, color))
            out.append('<text x="%d" y="%d" class="v">%.2fx  (%s)</text>'
                       % (label_w + plot_w + 6, y + 12, r["ratio"], escape(fmt_value(r["value"], r["unit"]))))
            y += bar_h + gap
        y += 8
    height = y + 24
    axis = ['<line x1="%.1f" y1="30" x2="%.1f" y2="%d" class="one"/>' % (x(1.0), x(1.0), height - 20)]
    t = lo_l
    while t <= hi_l + 1e-9:
        r = 10 ** t
        axis.append('<line x1="%.1f" y1="30" x2="%.1f" y2="%d" class="grid"/>' % (x(r), x(r), height - 20))
        axis.append('<text x="%.1f" y="%d" class="t">%gx</text>' % (x(r), height - 6, float("%.2g" % r)))
        t += 0.5
    head = ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
            'font-family="sans-serif" font-size="11">\n<style>.h{font-weight:bold}.l{text-anchor:end}'
            '.t{text-anchor:middle;fill:#555}.grid{stroke:#ddd}.one{stroke:#000;stroke-width:1.5}</style>\n'
            '<rect width="100%%" height="100%%" fill="white"/>\n'
            '<text x="4" y="18" font-size="14" font-weight="bold">green benchmarks: ratio to the baseline '
            'of each group (log scale; medians)</text>\n' % (width, height, width, height))
    return head + "\n".join(axis + out) + "\n</svg>\n"


def add_input_args(ap):
    """--results and --criterion, with their defaults (also used by bench_summary.py)."""
    ap.add_argument("--results", default=os.environ.get("GREEN_BENCH_OUT", os.path.join(ROOT, "target", "green-bench")))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--criterion", default=os.path.join(target, "criterion"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_input_args(ap)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.svg"))
    a = ap.parse_args()
    rows = read_criterion(a.criterion) + read_tsv(a.results)
    if not rows:
        sys.exit("no results found in %s or %s; run cargo bench first" % (a.results, a.criterion))
    with open(a.out, "w") as f:
        f.write(svg(groups_of(rows)))
    print("wrote %s (%d results)" % (a.out, len(rows)))


if __name__ == "__main__":
    main()
