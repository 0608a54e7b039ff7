#!/usr/bin/env python3
"""Warm-up benchmark: tpjit against the status quo, in one run.

  B0   one process walks the FULL M list, compiling each config on first sight
  B1   the same over the FAST (sampled) list
  cold tpjitd with an empty cache, 1, 2, 4, ... compile processes (and 1..G
       slots on a machine with G GPUs); R rank processes at once; time until
       every rank holds the manifest and all cubins in memory
  warm a restarted tpjitd over the populated cache
  floor the sum of per-kernel compile CPU-seconds divided by the cores

usage: run_bench.py --build BUILD --spec SPEC [--ranks R] --out DIR
Writes DIR/<spec>.json and DIR/<spec>.md (plot: bench/warmup/plot.py).
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time

# NVRTC 13 caches compiles in the CUDA driver's compute cache when a driver
# is present: every run here must compile for real.
os.environ["CUDA_CACHE_DISABLE"] = "1"


def machine():
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    gpus = []
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        gpus = [l.strip() for l in out.stdout.splitlines() if l.strip()]
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_gib, 1),
            "gpus": gpus, "os": platform.platform(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def vm_hwm(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def children(pid):
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(k) for k in f.read().split()]
    except OSError:
        pass
    return kids


class Daemon:
    def __init__(self, build, work, cache, slots, procs, gpus):
        self.sock = os.path.join(work, "tpjitd.sock")
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.log = open(os.path.join(work, "tpjitd.log"), "a")
        self.proc = subprocess.Popen(
            [os.path.join(build, "daemon/tpjitd"), "--socket", self.sock,
             "--cache-dir", cache, "--slots", str(slots), "--procs", str(procs),
             "--gpus", str(gpus)], stderr=self.log, stdout=self.log)
        t0 = time.time()
        deadline = t0 + 120
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("tpjitd did not start; see " + self.log.name)
            time.sleep(0.02)
        self.start_seconds = time.time() - t0

    def memory(self):
        workers = [vm_hwm(k) for k in children(self.proc.pid)]
        return {"daemon_peak_rss_bytes": vm_hwm(self.proc.pid),
                "worker_peak_rss_bytes": workers}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def run_ranks(build, daemon, spec, ranks):
    procs = [subprocess.Popen(
        [os.path.join(build, "bench/warmup/tpjit_bench_rank"), daemon.sock, spec,
         str(r), str(ranks)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True) for r in range(ranks)]
    time.sleep(0.5)  # every rank connected and waiting
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise RuntimeError(f"rank failed with {p.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    digests = {r["digest"] for r in results}
    assert len(digests) == 1, "ranks got different manifests"
    return {"wall_seconds": max(r["cubins_seconds"] for r in results),
            "manifest_seconds": max(r["manifest_seconds"] for r in results),
            "compiled": max(r["compiled"] for r in results),
            "cache_hits": max(r["cache_hits"] for r in results),
            "kernels": results[0]["kernels"], "digest": results[0]["digest"]}


def plan_json(build, spec, policy):
    out = subprocess.run([os.path.join(build, "cli/tpjit"), "plan", "--spec", spec,
                          "--policy", policy, "--json"], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def baseline(build, spec, policy):
    out = subprocess.run([os.path.join(build, "bench/warmup/tpjit_bench_baseline"),
                          spec, policy], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--ranks", type=int, default=8)
    ap.add_argument("--out", required=True)
    ap.add_argument("--gpus", type=int, default=-1, help="-1: count with nvidia-smi")
    a = ap.parse_args()
    m = machine()
    cores = m["cores"]
    gpus = len(m["gpus"]) if a.gpus < 0 else a.gpus
    name = os.path.splitext(os.path.basename(a.spec))[0]
    res = {"spec": name, "machine": m, "ranks": a.ranks}
    full, fast = plan_json(a.build, a.spec, "FULL"), plan_json(a.build, a.spec, "FAST")
    res["coverage"] = {"tpjit": full["coverage"], "fast_list": fast["coverage"]}
    res["distinct_kernels"] = full["distinct_kernels"]
    print("B0 (FULL list, one process) ...", flush=True)
    res["b0"] = baseline(a.build, a.spec, "FULL")
    print("B1 (FAST list, one process) ...", flush=True)
    res["b1"] = baseline(a.build, a.spec, "FAST")
    cpu = sum(k["cpu_seconds"] for k in res["b0"]["kernels"])
    res["floor_seconds"] = cpu / cores
    res["compile_cpu_seconds"] = cpu
    configs, p = [], 1
    while p < cores:
        configs.append((1, p))
        p *= 2
    configs.append((1, cores))
    configs += [(g, max(1, cores // g)) for g in range(2, gpus + 1)]
    work = tempfile.mkdtemp(prefix="tpjit-bench-")
    res["cold"] = []
    cache = None
    for slots, procs in configs:
        cache = tempfile.mkdtemp(dir=work)
        print(f"tpjit cold: {slots} slot(s) x {procs} procs ...", flush=True)
        d = Daemon(a.build, work, cache, slots, procs, min(slots, gpus))
        r = run_ranks(a.build, d, a.spec, a.ranks)
        r.update(d.memory(), slots=slots, procs=procs, load_checked=gpus > 0,
                 daemon_start_seconds=d.start_seconds)
        d.stop()
        res["cold"].append(r)
    print("tpjit warm ...", flush=True)
    d = Daemon(a.build, work, cache, configs[-1][0], configs[-1][1],
               min(configs[-1][0], gpus))
    res["warm"] = run_ranks(a.build, d, a.spec, a.ranks)
    res["warm"].update(d.memory())
    d.stop()
    shutil.rmtree(work, ignore_errors=True)
    b0 = res["b0"]["wall_seconds"]
    base = res["cold"][0]["wall_seconds"]
    for r in res["cold"]:
        n = r["slots"] * r["procs"]
        r["speedup_vs_b0"] = b0 / r["wall_seconds"]
        r["scaling_efficiency"] = base / r["wall_seconds"] / n
        r["ratio_to_floor"] = r["wall_seconds"] / res["floor_seconds"]
    res["warm"]["speedup_vs_b0"] = b0 / res["warm"]["wall_seconds"]
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, name + ".json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(a.out, name + ".md"), "w") as f:
        f.write(markdown(res))
    print(markdown(res))


def markdown(r):
    m = r["machine"]
    best = min(r["cold"], key=lambda c: c["wall_seconds"])
    lines = [
        f"# Warm-up benchmark: {r['spec']}, {r['ranks']} ranks",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB"
        + (f", {len(m['gpus'])} GPU(s): {m['gpus'][0]}" if m["gpus"] else ", no GPU")
        + f"; {m['os']}; {m['date']}.",
        "",
        f"Distinct kernels: {r['distinct_kernels']}. Coverage of M in 1..m_max: "
        f"tpjit {100 * r['coverage']['tpjit']:.2f} %, FAST list {100 * r['coverage']['fast_list']:.2f} %.",
        f"Compile CPU-seconds (sum over kernels): {r['compile_cpu_seconds']:.1f}; "
        f"floor = that / {m['cores']} cores = {r['floor_seconds']:.2f} s.",
        "",
        "| run | compile procs | compiles | wall s | vs B0 | scaling eff. | / floor | daemon peak RSS MiB | worker peak RSS MiB (max) | daemon start s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| B0: one rank, FULL list ({r['b0']['m_runs']} M runs) | 1 | {r['b0']['compiles']} | {r['b0']['wall_seconds']:.2f} | 1.00x | | {r['b0']['wall_seconds'] / r['floor_seconds']:.1f} | | | |",
        f"| B1: one rank, FAST list ({r['b1']['m_runs']} M runs) | 1 | {r['b1']['compiles']} | {r['b1']['wall_seconds']:.2f} | {r['b0']['wall_seconds'] / r['b1']['wall_seconds']:.2f}x | | {r['b1']['wall_seconds'] / r['floor_seconds']:.1f} | | | |",
    ]
    for c in r["cold"]:
        w = c["worker_peak_rss_bytes"]
        lines.append(
            f"| tpjit cold, {c['slots']} slot(s) | {c['slots'] * c['procs']} | {c['compiled']} | "
            f"{c['wall_seconds']:.2f} | {c['speedup_vs_b0']:.2f}x | {c['scaling_efficiency']:.2f} | "
            f"{c['ratio_to_floor']:.2f} | {c['daemon_peak_rss_bytes'] / 2**20:.0f} | "
            f"{(max(w) if w else 0) / 2**20:.0f} | {c['daemon_start_seconds']:.2f} |")
    wr = r["warm"]
    lines.append(f"| tpjit warm (restarted daemon, all hits) | | {wr['compiled']} | {wr['wall_seconds']:.3f} | "
                 f"{wr['speedup_vs_b0']:.0f}x | | | {wr['daemon_peak_rss_bytes'] / 2**20:.0f} | | |")
    lines += ["", f"Headline: cold {best['speedup_vs_b0']:.1f}x faster than B0 "
              f"({best['wall_seconds']:.2f} s vs {r['b0']['wall_seconds']:.2f} s), "
              f"warm {wr['speedup_vs_b0']:.0f}x ({1000 * wr['wall_seconds']:.0f} ms), "
              f"cold at {best['ratio_to_floor']:.2f}x the floor.",
              "Wall = until every rank holds the manifest and all cubins in memory, from a running daemon "
              "(a sidecar starts before the server; its start, with each worker's NVRTC self-test, is the last column).",
              "CUDA_CACHE_DISABLE=1 everywhere: NVRTC 13 otherwise reuses the driver's compute cache on GPU machines.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
