#!/usr/bin/python3
"""Plots a fleet_bench.py result: fleet compiles and per-node warm-up vs N.

usage: plot.py RESULT.json OUT.png   (Debian's python3-matplotlib)
"""
import json
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    r = json.load(open(sys.argv[1]))
    ns = [run["n"] for run in r["runs"]]
    kernels = r["runs"][0]["cold"]["kernels"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ns, [run["cold"]["compiles"] for run in r["runs"]], "o-",
           label="compiles, whole fleet (cold)")
    a.plot(ns, [n * kernels for n in ns], "--", color="grey",
           label="without a shared cache (N x kernels)")
    a.plot(ns, [run["rolling"]["compiles"] for run in r["runs"]], "s-",
           label="compiles during a rolling restart")
    a.set_xscale("log", base=2)
    a.set_yscale("symlog", linthresh=1)
    a.set_ylim(bottom=0)
    a.set_xticks(ns, [str(n) for n in ns])
    a.set_xlabel("daemons N")
    a.set_ylabel("kernel compiles")
    a.legend(fontsize=8)
    b.plot(ns, [statistics.median(run["cold"]["node_seconds"])
                for run in r["runs"]], "o-", label="cold fleet, median node")
    b.plot(ns, [max(run["cold"]["node_seconds"]) for run in r["runs"]], "o:",
           label="cold fleet, slowest node")
    b.plot(ns, [statistics.median(run["rolling"]["node_seconds"])
                for run in r["runs"]], "s-",
           label="rolling restart, median node")
    b.set_xscale("log", base=2)
    b.set_yscale("log")
    b.set_xticks(ns, [str(n) for n in ns])
    b.set_xlabel("daemons N")
    b.set_ylabel("warm-up wall seconds per node (log)")
    b.legend(fontsize=8)
    fig.suptitle(f"{r['spec']}: N tpjitd + one Redis, "
                 f"{r['machine']['cores']} cores", fontsize=10)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
