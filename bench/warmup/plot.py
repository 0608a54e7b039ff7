#!/usr/bin/python3
"""Plots a run_bench.py result: wall time per run (log scale), with the floor.

usage: plot.py RESULT.json OUT.png   (Debian's python3-matplotlib)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    r = json.load(open(sys.argv[1]))
    labels = ["B0 FULL\n1 proc", "B1 FAST\n1 proc"]
    walls = [r["b0"]["wall_seconds"], r["b1"]["wall_seconds"]]
    colors = ["#999999", "#bbbbbb"]
    for c in r["cold"]:
        labels.append(f"tpjit cold\n{c['slots']}x{c['procs']}")
        walls.append(c["wall_seconds"])
        colors.append("#1f77b4")
    labels.append("tpjit warm")
    walls.append(r["warm"]["wall_seconds"])
    colors.append("#2ca02c")
    fig, ax = plt.subplots(figsize=(max(6, len(labels) * 0.9), 4))
    bars = ax.bar(range(len(walls)), walls, color=colors)
    ax.set_yscale("log")
    ax.axhline(r["floor_seconds"], color="red", linestyle="--",
               label=f"floor {r['floor_seconds']:.2f} s")
    for b, w in zip(bars, walls):
        ax.text(b.get_x() + b.get_width() / 2, w, f"{w:.2f}" if w >= 0.1 else f"{w * 1000:.0f} ms",
                ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(walls)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("seconds until all ranks hold their cubins (log)")
    m = r["machine"]
    ax.set_title(f"{r['spec']}, {r['ranks']} ranks, {m['cores']} cores"
                 + (f", {len(m['gpus'])} GPU" if m["gpus"] else ""), fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
