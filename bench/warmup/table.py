#!/usr/bin/env python3
"""Renders run_bench.py results: every DIR/<spec>.json into DIR/<spec>.md and
DIR/<spec>.svg (plot.py), and DIR/README.md (DIR/notes.md appended when
present). Every figure is the median over the repetitions with its spread
(min..max); ratios are per repetition (rows of one rep ran back to back),
then the median and spread of those.

usage: table.py DIR
"""
import glob
import json
import os
import statistics
import sys

import plot

HEAD = ("| row | daemon start-up | compile procs | compiles | wall s | vs B0 | vs status quo warm "
        "| / floor | compile CPU-s |")


def spread(values, fmt="{:.2f}"):
    return (f"{fmt.format(statistics.median(values))} "
            f"({fmt.format(min(values))}..{fmt.format(max(values))})")


def by_row(r):
    rows = {}
    for run in r["runs"]:
        rows.setdefault(run["row"], {})[run["rep"]] = run
    return rows


def tpjit_rows(rows):
    return sorted((k for k in rows if k.startswith("cold_")),
                  key=lambda k: rows[k][0]["slots"] * rows[k][0]["procs"])


def ratios(rows, num, den, key_num="wall_seconds", key_den="wall_seconds"):
    reps = sorted(set(rows[num]) & set(rows[den]))
    return [rows[num][i][key_num] / rows[den][i][key_den] for i in reps]


def floor(r, rows):
    return [run["compile_cpu_seconds"] / r["machine"]["cores"] for run in rows["b0"].values()]


def line(rows, r, name, label, start, procs, key="wall_seconds"):
    runs = list(rows[name].values())
    walls = [x[key] for x in runs]
    fl = statistics.median(floor(r, rows))
    vs_b0 = spread(ratios(rows, "b0", name, key_den=key), "{:.2f}x")
    vs_sq = ""
    if name in ("warm", "sq_warm"):
        vs_sq = spread(ratios(rows, "sq_warm", name, key_den=key), "{:.2f}x")
    cpu = spread([x["compile_cpu_seconds"] for x in runs], "{:.1f}")
    fmt = "{:.3f}" if statistics.median(walls) < 1 else "{:.2f}"
    return (f"| {label} | {start} | {procs} | {runs[0]['compiles']} | {spread(walls, fmt)} "
            f"| {vs_b0} | {vs_sq} | {statistics.median(walls) / fl:.2f} | {cpu} |")


def main_table(r, rows):
    n, ranks = r["distinct_kernels"], r["ranks"]
    out = [HEAD, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
           line(rows, r, "b0", f"B0 status quo: first rank sweeps the FULL M list "
                f"({rows['b0'][0]['m_runs']} M runs), compiling on first sight", "n/a", 1),
           line(rows, r, "b1", f"B1 status quo, FAST M list ({rows['b1'][0]['m_runs']} M runs)",
                "n/a", 1),
           line(rows, r, "b2", f"B2 SGLang: {r['sglang_workers']} compile worker processes "
                f"over the {n} deduplicated configs, no daemon", "n/a", r["sglang_workers"])]
    cold = tpjit_rows(rows)
    for name in cold:
        c = rows[name][0]
        out.append(line(rows, r, name, f"tpjit cold, {c['slots']} slot(s) x {c['procs']} procs, "
                        f"{ranks} ranks", "included", c["slots"] * c["procs"]))
    best = cold[-1]
    c = rows[best][0]
    out.append(line(rows, r, best, f"tpjit cold, {c['slots']} x {c['procs']}, from a running "
                    "daemon", "excluded", c["slots"] * c["procs"], "from_running_seconds"))
    out.append(line(rows, r, "sq_warm", f"status quo warm: {ranks} ranks restarted over their "
                    "own populated cache directory", "n/a", ""))
    out.append(line(rows, r, "warm", "tpjit warm: daemon restarted over its cache, "
                    f"{ranks} ranks", "included", ""))
    out.append(line(rows, r, "warm", "tpjit warm, from a running daemon", "excluded", "",
                    "from_running_seconds"))
    return out


def per_kernel_cpu(rows, row):
    """{kernel: [cpu seconds per rep]} of a baseline row."""
    k = {}
    for run in rows[row].values():
        for x in run["kernels"]:
            k.setdefault(x["kernel"], []).append(x["cpu_seconds"])
    return k


def cpu_section(r, rows):
    b0, b1, b2 = (per_kernel_cpu(rows, x) for x in ("b0", "b1", "b2"))
    common = sorted(set(b0) & set(b1))
    first = min(rows["b0"])
    one = [rows["b1"][first]["kernels"], rows["b0"][first]["kernels"]]
    one = {x["kernel"]: x["cpu_seconds"] for x in one[0]}, \
        {x["kernel"]: x["cpu_seconds"] for x in one[1]}
    single = [one[0][k] / one[1][k] for k in common if k in one[0] and k in one[1]]
    med = [statistics.median(b1[k]) / statistics.median(b0[k]) for k in common]
    med2 = [statistics.median(b2[k]) / statistics.median(b0[k]) for k in sorted(set(b0) & set(b2))]
    self_spread = [max(v) / min(v) for v in b0.values()]
    fl = floor(r, rows)
    return [
        f"Compile CPU-seconds of B0 (sum over its {len(b0)} kernels): "
        f"{spread([x * r['machine']['cores'] for x in fl], '{:.1f}')}; floor = that / "
        f"{r['machine']['cores']} cores = {spread(fl)} s (the / floor column uses the median).",
        "",
        "Per-kernel compile CPU-seconds, the same kernels compiled by different rows:",
        "",
        "| comparison | per-kernel ratio, median (min..max) over kernels |",
        "| --- | ---: |",
        f"| B1 / B0, one repetition (rep 1, as the old single-sample table) "
        f"| {spread(single)} |",
        f"| B1 / B0, each kernel's median over the {len(rows['b0'])} reps | {spread(med)} |",
        f"| B2 / B0 (4 worker processes at once), medians over reps | {spread(med2)} |",
        f"| B0 against itself: each kernel's max / min over the reps | {spread(self_spread)} |",
    ]


def conditions(r):
    runs = r["runs"]
    load = [x["loadavg_1min"] for x in runs]
    busy = [x["machine_busy_fraction"] for x in runs]
    steal = [x["steal_fraction"] for x in runs]
    return (f"Machine load while it ran (each row's start, all {len(runs)} runs): 1-minute load "
            f"average {spread(load)} on {r['machine']['cores']} cores; busy CPU share of the "
            f"machine during a row {spread(busy)}; steal {spread(steal, '{:.3f}')}.")


def markdown(r):
    m, rows = r["machine"], by_row(r)
    gpu = f", {len(m['gpus'])} GPU(s): {m['gpus'][0]}" if m["gpus"] else ", no GPU"
    cold = tpjit_rows(rows)
    best, fl = cold[-1], statistics.median(floor(r, rows))
    lines = [
        f"# Warm-up benchmark: {r['spec']}, {r['ranks']} ranks, {r['reps']} interleaved reps",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB{gpu}; {m['os']}. "
        f"Started {m['date']}. Command: `{r['command']}`.",
        conditions(r),
        "",
        f"Distinct kernels: {r['distinct_kernels']}. Coverage of M in 1..m_max: tpjit "
        f"{100 * r['coverage']['tpjit']:.2f} %, FAST list {100 * r['coverage']['fast_list']:.2f} %.",
        "",
        "Median (min..max) over the reps; ratios are taken within each rep, then summarised.",
        "",
    ] + main_table(r, rows) + [""]
    lines += [
        "Headline (daemon start-up included): tpjit cold "
        f"{spread([x['wall_seconds'] for x in rows[best].values()])} s vs B0 "
        f"{spread([x['wall_seconds'] for x in rows['b0'].values()])} s = "
        f"{spread(ratios(rows, 'b0', best), '{:.2f}x')}; vs B2 (SGLang's workers) "
        f"{spread(ratios(rows, 'b2', best), '{:.2f}x')}; "
        f"{statistics.median(x['wall_seconds'] for x in rows[best].values()) / fl:.2f}x the floor. "
        f"Warm: tpjit {spread([x['wall_seconds'] for x in rows['warm'].values()], '{:.3f}')} s vs "
        f"the status quo's own warm cache "
        f"{spread([x['wall_seconds'] for x in rows['sq_warm'].values()], '{:.3f}')} s "
        f"({spread(ratios(rows, 'sq_warm', 'warm'), '{:.2f}x')}).",
        "",
    ]
    mem = [rows[k][i] for k in cold for i in rows[k]]
    lines += [f"tpjitd peak RSS {spread([x['daemon_peak_rss_bytes'] / 2**20 for x in mem], '{:.0f}')}"
              f" MiB, a compile worker's {spread([x['worker_peak_rss_bytes'] / 2**20 for x in mem], '{:.0f}')}"
              " MiB (cold rows). Daemon start-up (spawn to SERVING, workers' NVRTC self-test "
              f"included): {spread([x['daemon_start_seconds'] for x in mem])} s.", ""]
    lines += cpu_section(r, rows) + [""]
    return "\n".join(lines)


SUMMARY = ["| spec | B0: first rank sweeps the FULL M list | B2: SGLang's 4 compile workers "
           "| tpjit cold, start-up included | cold vs B0 | cold vs B2 | status quo warm: own cache "
           "directory, ranks restarted | tpjit warm: daemon restarted, start-up included "
           "| warm vs status quo warm |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]


def summary_row(r):
    """One line per spec for SUMMARY (the README's table): seconds, median (min..max)."""
    rows = by_row(r)
    best = tpjit_rows(rows)[-1]

    def wall(name, fmt="{:.2f}"):
        return spread([x["wall_seconds"] for x in rows[name].values()], fmt) + " s"
    return (f"| {r['spec']} ({r['distinct_kernels']} kernels) | {wall('b0')} | {wall('b2')} "
            f"| {wall(best)} | {spread(ratios(rows, 'b0', best), '{:.2f}x')} "
            f"| {spread(ratios(rows, 'b2', best), '{:.2f}x')} | {wall('sq_warm', '{:.3f}')} "
            f"| {wall('warm', '{:.3f}')} | {spread(ratios(rows, 'sq_warm', 'warm'), '{:.2f}x')} |")


def render(d):
    parts, summary = [], list(SUMMARY)
    for path in sorted(glob.glob(os.path.join(d, "*.json"))):
        r = json.load(open(path))
        summary.append(summary_row(r))
        md = markdown(r)
        base = os.path.splitext(path)[0]
        with open(base + ".md", "w") as f:
            f.write(md)
        with open(base + ".svg", "w") as f:
            f.write(plot.svg(r))
        parts.append(md.replace("\n# ", "\n## ").replace("# ", "## ", 1))
        parts.append(f"![{r['spec']}]({os.path.basename(base)}.svg)\n")
    notes = os.path.join(d, "notes.md")
    head = ["# Warm-up benchmark results", "",
            "Generated by `bench/warmup/table.py` from the JSON files here "
            "(`bench/warmup/run_bench.py` output, raw: every rep and row, each rank's "
            "report); each process's output and each tpjitd log in `<spec>-logs.tar.gz`.", "",
            "Summary (median (min..max) over the repetitions; the README's table):", ""] + \
        summary + [""]
    if os.path.exists(notes):
        head += [open(notes).read().rstrip(), ""]
    with open(os.path.join(d, "README.md"), "w") as f:
        f.write("\n".join(head + parts))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    render(sys.argv[1])
