#!/usr/bin/env python3
"""Markdown tables from the DeepGEMM benchmark's raw.json:
  table.py RAW_JSON [-o OUT.md]
One row per measured configuration: median time to a warm rank set over the
reps and the spread (min..max), the speed-up against the status quo, nvcc
runs and distinct kernels; then the tpjit phases, the checks and the
machine."""

import argparse
import json
import statistics
import sys

LABELS = {
    "status_quo": "status quo: rank 0 sweeps alone, DeepGEMM's nvcc",
    "naive_parallel": "naive parallel: ranks sweep slices, one DeepGEMM cache",
    "tpjit_first": "tpjit, first ever (empty cache, no recipe)",
    "tpjit_recipe": "tpjit, recipe on an empty cache",
    "tpjit_warm": "tpjit, warm (empty DeepGEMM cache, full tpjit cache)",
    "status_quo_warm": "status quo warm: rank 0 sweeps alone, full "
                       "DeepGEMM cache",
    "floor": "floor: status quo's nvcc CPU-seconds / cores",
}


def values(reps, row, key):
    return [r[row][key] for r in reps if row in r and key in r[row]]


def fmt(v):
    if not v:
        return "-"
    med = statistics.median(v)
    f = "%d" if all(isinstance(x, int) for x in v) and med == int(med) \
        else "%.1f"
    if len(v) == 1 or min(v) == max(v):
        return f % med
    return (f + " (" + f + ".." + f + ")") % (med, min(v), max(v))


def render(raw):
    reps = raw["reps"]
    out = []
    m = raw["machine"]
    out.append("DeepGEMM warm-up, %s, %d ranks (+%d helpers each), %d "
               "shapes, %s M list (%d values), %d rep(s)\n" %
               (m.get("date", ""), raw["ranks"], raw["helpers"],
                len(raw["shapes"]), raw["args"]["policy"], raw["m_values"],
                len(reps)))
    out.append("| row | time to warm, s: median (min..max) | vs status quo "
               "| nvcc runs | DeepGEMM kernels | wall incl. start-up, s |")
    out.append("| --- | --- | --- | --- | --- | --- |")
    sq = values(reps, "status_quo", "sweep_s")
    base = statistics.median(sq) if sq else None
    for row, label in LABELS.items():
        t = values(reps, row, "sweep_s")
        skipped = [r[row]["skipped"] for r in reps
                   if row in r and "skipped" in r[row]]
        errors = [r[row]["error"] for r in reps
                  if row in r and "error" in r[row]]
        if errors:
            out.append("| %s | FAILED in %d rep(s): %s | | | | |" % (
                label, len(errors), errors[0][:200].replace("|", "/")))
        if not t:
            if skipped:
                out.append("| %s | skipped: %s | | | | |" % (label,
                                                          skipped[0]))
            continue
        speed = ("%.1fx" % (base / statistics.median(t))
                 if base and row != "status_quo" else "")
        out.append("| %s | %s | %s | %s | %s | %s |" % (
            label, fmt(t), speed, fmt(values(reps, row, "nvcc_runs")),
            fmt(values(reps, row, "kernels")),
            fmt(values(reps, row, "wall_s"))))
    phases = [r[row]["phases"] for r in reps for row in r
              if "phases" in r[row]]
    if phases:
        out.append("\ntpjit rows, slowest rank per phase (s):\n")
        out.append("| row | plan | discover | compile | barrier | finish "
                   "| total |")
        out.append("| --- | --- | --- | --- | --- | --- | --- |")
        for row in ("tpjit_first", "tpjit_recipe", "tpjit_warm"):
            ph = [r[row]["phases"] for r in reps
                  if row in r and "phases" in r[row]]
            if ph:
                out.append("| %s | %s |" % (row, " | ".join(
                    fmt([p.get(k, 0.0) for p in ph]) for k in
                    ("plan", "discover", "compile", "barrier", "finish",
                     "total"))))
    v = raw.get("verify")
    if v:
        out.append("\nChecks (kernels through tpjit vs DeepGEMM's own nvcc):"
                   " outputs of %d sampled (shape, M) bit-identical: %s; "
                   "cubins byte-identical %d, same SASS (symbol names "
                   "masked) %d, SASS differs %d; kernels only in the "
                   "reference cache %d, only in tpjit's %d. **%s**" % (
                       v["outputs_compared"],
                       "yes" if not v["outputs_differ"] else
                       "NO: %s" % v["outputs_differ"],
                       v["cubins_byte_identical"],
                       v["cubins_same_sass_only"],
                       len(v["cubins_sass_differs"]),
                       len(v["only_in_reference"]), len(v["only_in_tpjit"]),
                       "ok" if v["ok"] else "FAILED"))
    out.append("\nShapes: " + "; ".join(
        "%s n=%d k=%d g=%d" % tuple(s) for s in raw["shapes"]))
    out.append("Machine: %s, %d cores, %s; %s" % (
        m.get("cpu"), m.get("cores", 0), "; ".join(m.get("gpus", [])),
        m.get("nvcc")))
    if raw.get("error"):
        out.append("\n**Run failed:** " + raw["error"])
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("raw")
    p.add_argument("-o", "--out")
    a = p.parse_args()
    with open(a.raw) as f:
        text = render(json.load(f))
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
