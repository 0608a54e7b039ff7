#!/usr/bin/env python3
"""FULL vs FAST per shipped spec: M values swept, distinct kernels needed,
coverage of 1..m_max(FULL), and the configs FAST's list never compiles.

usage: bench/plan_compare.py TPJIT_BINARY SPEC... > bench/results/plan-full-vs-fast.md
"""
import json
import subprocess
import sys


def plan(tpjit, spec, policy):
    out = subprocess.run([tpjit, "plan", "--spec", spec, "--policy", policy,
                          "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    tpjit, specs = sys.argv[1], sys.argv[2:]
    print("| spec | policy | M values swept | distinct kernels | coverage of 1..m_max(FULL) | configs FAST never compiles |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for spec in specs:
        full, fast = plan(tpjit, spec, "FULL"), plan(tpjit, spec, "FAST")
        full_k = {k["kernel"] for k in full["kernels"]}
        fast_k = {k["kernel"] for k in fast["kernels"]}
        missed = sorted(full_k - fast_k)
        name = full["spec"]
        print(f"| {name} | FULL (tpjit) | {full['m_values']} | {len(full_k)} | {100 * full['coverage']:.2f}% | |")
        print(f"| {name} | FAST (status quo) | {fast['m_values']} | {len(fast_k)} | {100 * fast['coverage']:.2f}% | "
              f"{'; '.join(missed) if missed else 'none'} |")


if __name__ == "__main__":
    main()
