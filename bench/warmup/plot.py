#!/usr/bin/env python3
"""Plots a run_bench.py result as SVG (no plotting library): per row a bar at
the median wall time, a whisker from min to max and a dot per repetition, on
a log scale, with the floor as a dashed line. tpjit rows include the daemon's
start-up.

usage: plot.py RESULT.json OUT.svg   (table.py calls svg() for every result)
"""
import json
import math
import statistics
import sys

W, H, LEFT, TOP, BOTTOM = 760, 360, 60, 30, 70


def series(r):
    """[(label, colour, [wall seconds per rep])] in table order."""
    rows = {}
    for run in r["runs"]:
        rows.setdefault(run["row"], []).append(run["wall_seconds"])
    out = [("B0 FULL", "#999999", rows["b0"]), ("B1 FAST", "#bbbbbb", rows["b1"]),
           (f"B2 {r['sglang_workers']} workers", "#777777", rows["b2"])]
    cold = sorted((k for k in rows if k.startswith("cold_")),
                  key=lambda k: math.prod(int(v) for v in k[5:].split("x")))
    out += [(f"tpjit {k[5:]}", "#1f77b4", rows[k]) for k in cold]
    out += [("status quo warm", "#d62728", rows["sq_warm"]),
            ("tpjit warm", "#2ca02c", rows["warm"])]
    return out


def svg(r):
    data = series(r)
    floor = statistics.median(x["compile_cpu_seconds"] for x in r["runs"]
                              if x["row"] == "b0") / r["machine"]["cores"]
    values = [v for _, _, vs in data for v in vs] + [floor]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    plot_h = H - TOP - BOTTOM

    def y(v):
        return TOP + plot_h * (1 - (math.log10(v) - math.log10(lo)) /
                               (math.log10(hi) - math.log10(lo)))

    step = (W - LEFT - 10) / len(data)
    m = r["machine"]
    e = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'font-family="sans-serif" font-size="10">',
         f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="12">{r["spec"]}, '
         f'{r["ranks"]} ranks, {m["cores"]} cores, {r["reps"]} reps: median, min..max, '
         'each rep</text>']
    d = lo
    while d <= hi * 1.0001:
        e.append(f'<line x1="{LEFT}" x2="{W - 10}" y1="{y(d):.1f}" y2="{y(d):.1f}" '
                 'stroke="#eeeeee"/>')
        e.append(f'<text x="{LEFT - 4}" y="{y(d) + 3:.1f}" text-anchor="end">{d:g} s</text>')
        d *= 10
    for i, (label, colour, vs) in enumerate(data):
        x = LEFT + i * step + step / 2
        med = statistics.median(vs)
        e.append(f'<rect x="{x - step * 0.35:.1f}" y="{y(med):.1f}" width="{step * 0.7:.1f}" '
                 f'height="{y(lo) - y(med):.1f}" fill="{colour}"/>')
        e.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y(max(vs)):.1f}" y2="{y(min(vs)):.1f}" '
                 'stroke="black"/>')
        e += [f'<circle cx="{x:.1f}" cy="{y(v):.1f}" r="2" fill="black"/>' for v in vs]
        e.append(f'<text x="{x:.1f}" y="{y(max(vs)) - 4:.1f}" text-anchor="middle">'
                 f'{med:.3g}</text>')
        e.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">{label}</text>')
    e.append(f'<line x1="{LEFT}" x2="{W - 10}" y1="{y(floor):.1f}" y2="{y(floor):.1f}" '
             'stroke="red" stroke-dasharray="5,3"/>')
    e.append(f'<text x="{W - 12}" y="{y(floor) - 3:.1f}" text-anchor="end" fill="red">'
             f'floor {floor:.2f} s</text>')
    e.append(f'<text x="{W / 2}" y="{H - 20}" text-anchor="middle">seconds until every rank '
             'holds its cubins (log); tpjit: daemon start-up included</text>')
    e.append("</svg>")
    return "\n".join(e) + "\n"


def main():
    with open(sys.argv[2], "w") as f:
        f.write(svg(json.load(open(sys.argv[1]))))


if __name__ == "__main__":
    main()
