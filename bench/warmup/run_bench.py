#!/usr/bin/env python3
"""Warm-up benchmark: tpjit against the status quo, REPS interleaved repetitions.

Rows (every rep runs each once, in an order rotated by one unit per rep):
  b0       status quo cold: one rank walks the FULL M list, compiling each
           kernel on first sight in its own process (NVRTC, one at a time),
           into its own empty cache directory
  sq_warm  status quo warm, right after b0: R rank processes restarted over
           b0's populated cache directory, each walking the list and reading
           every cubin into memory
  b1       as b0 over the FAST (sampled) M list
  b2       SGLang's compile workers: the distinct kernels of the FULL list on
           4 forked worker processes (no daemon), read back into the rank
  cold_P   tpjitd with an empty cache and P compile processes (1, 2, 4, ...,
           cores; G slots on a machine with G GPUs): started, then R rank
           processes at once until each holds the manifest and every cubin in
           memory; timed from the daemon's spawn (start-up included) and from
           "go", sent when its log says SERVING (a running daemon)
  warm     right after the last cold row: tpjitd restarted over its cache

Every rank process is started before the clock and waits for "go" on stdin.
The floor is the compile CPU-seconds of b0 divided by the cores.

usage: run_bench.py --build BUILD --spec SPEC [--ranks R] [--reps N] --out DIR
Writes DIR/<spec>.json (every rep and row, raw) and DIR/<spec>-logs.tar.gz
(each process's output, the daemons' logs); table.py renders the Markdown
and plot.py the plot.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

# NVRTC 13 caches compiles in the CUDA driver's compute cache when a driver
# is present: every run here must compile for real.
os.environ["CUDA_CACHE_DISABLE"] = "1"
SGLANG_WORKERS = 4  # SGLANG_JIT_DEEPGEMM_COMPILE_WORKERS' default


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


def cpu_jiffies():
    """(busy, steal, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    steal = v[7] if len(v) > 7 else 0
    return sum(v) - idle - steal, steal, sum(v)


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
    """tpjitd on a fresh socket; started() is the monotonic time of its spawn."""

    def __init__(self, build, work, cache, slots, procs, gpus, log):
        self.sock = os.path.join(work, "tpjitd.sock")
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.log = log
        self.spawned = time.monotonic()
        self.proc = subprocess.Popen(
            [os.path.join(build, "daemon/tpjitd"), "--socket", self.sock,
             "--cache-dir", cache, "--slots", str(slots), "--procs", str(procs),
             "--gpus", str(gpus)], stderr=log, stdout=log)

    def wait_serving(self):
        """Monotonic time when the daemon's log says health SERVING (workers up)."""
        deadline = self.spawned + 120
        while True:
            with open(self.log.name) as f:
                if "tpjitd: health SERVING" in f.read():
                    return time.monotonic()
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tpjitd did not start; see " + self.log.name)
            time.sleep(0.005)

    def memory(self):
        workers = [vm_hwm(k) for k in children(self.proc.pid)]
        return {"daemon_peak_rss_bytes": vm_hwm(self.proc.pid),
                "worker_peak_rss_bytes": max(workers, default=0)}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def spawn(cmd, log):
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=log, text=True)


def wait_ready(procs):
    """Returns once every process has printed "ready" (set up, waiting for go)."""
    for p in procs:
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("a rank process did not get ready")


def go(procs):
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()


def collect(procs, log, what):
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=3600)
        log.write(out)
        if p.returncode != 0:
            raise RuntimeError(f"{what} failed with {p.returncode}; see {log.name}")
        outs.append(json.loads(out.strip().splitlines()[-1]))
    return outs


class Bench:
    def __init__(self, a, cores, gpus, work, logs):
        self.a, self.cores, self.gpus, self.work, self.logs = a, cores, gpus, work, logs
        self.sq_cache = None      # b0's cache directory, for sq_warm
        self.tpjit_cache = None   # the last cold row's, for warm

    def baseline(self, rep, row, policy, extra, ranks=1):
        cmd = [os.path.join(self.a.build, "bench/warmup/tpjit_bench_baseline"),
               self.a.spec, policy, "--wait-go"] + extra
        with open(os.path.join(self.logs, f"rep{rep}-{row}.log"), "w") as log:
            procs = [spawn(cmd, log) for _ in range(ranks)]
            wait_ready(procs)
            go(procs)
            t_go = time.monotonic()
            outs = collect(procs, log, row)
        r = {"wall_seconds": max(o["end_monotonic"] for o in outs) - t_go,
             "compiles": sum(o["compiles"] for o in outs),
             "cache_hits": max(o["cache_hits"] for o in outs),
             "compile_cpu_seconds": sum(o["compile_cpu_seconds"] for o in outs),
             "m_runs": outs[0]["m_runs"]}
        if ranks == 1:
            r["kernels"] = outs[0]["kernels"]
        return r

    def cold_sq(self, rep, row, policy, workers):
        cache = tempfile.mkdtemp(dir=self.work)
        extra = ["--cache-dir", cache] + (["--workers", str(workers)] if workers else [])
        r = self.baseline(rep, row, policy, extra)
        if row == "b0":
            self.sq_cache = cache
        return r

    def sq_warm(self, rep):
        return self.baseline(rep, "sq_warm", "FULL", ["--cache-dir", self.sq_cache],
                             ranks=self.a.ranks)

    def tpjit(self, rep, row, slots, procs, cache):
        cmd = [os.path.join(self.a.build, "bench/warmup/tpjit_bench_rank"),
               os.path.join(self.work, "tpjitd.sock"), self.a.spec]
        with open(os.path.join(self.logs, f"rep{rep}-{row}.log"), "w") as log:
            ranks = [spawn(cmd + [str(i), str(self.a.ranks)], log)
                     for i in range(self.a.ranks)]
            wait_ready(ranks)
            with open(os.path.join(self.logs, f"rep{rep}-{row}-tpjitd.log"), "w") as dlog:
                d = Daemon(self.a.build, self.work, cache, slots, procs,
                           min(slots, self.gpus), dlog)
                try:
                    t_go = d.wait_serving()
                    go(ranks)
                    outs = collect(ranks, log, row)
                    mem = d.memory()
                finally:  # no daemon outlives the benchmark
                    d.stop()
        end = max(o["end_monotonic"] for o in outs)
        assert len({o["digest"] for o in outs}) == 1, "ranks got different manifests"
        return dict(mem, wall_seconds=end - d.spawned, from_running_seconds=end - t_go,
                    daemon_start_seconds=t_go - d.spawned, slots=slots, procs=procs,
                    compiles=max(o["compiled"] for o in outs),
                    cache_hits=max(o["cache_hits"] for o in outs),
                    compile_cpu_seconds=max(o["compile_cpu_seconds"] for o in outs),
                    manifest_seconds=max(o["manifest_seconds"] for o in outs),
                    kernels=outs[0]["kernels"], digest=outs[0]["digest"])

    def tpjit_cold(self, rep, row, slots, procs):
        self.tpjit_cache = tempfile.mkdtemp(dir=self.work)
        return self.tpjit(rep, row, slots, procs, self.tpjit_cache)

    def units(self):
        """Row groups, each (name, fn) list run in order; warm rows follow their cold."""
        cores = self.cores
        configs, p = [], 1
        while p < cores:
            configs.append((1, p))
            p *= 2
        configs.append((1, cores))
        configs += [(g, max(1, cores // g)) for g in range(2, self.gpus + 1)]
        u = [[("b0", lambda rep: self.cold_sq(rep, "b0", "FULL", 0)),
              ("sq_warm", self.sq_warm)],
             [("b1", lambda rep: self.cold_sq(rep, "b1", "FAST", 0))],
             [("b2", lambda rep: self.cold_sq(rep, "b2", "FULL", SGLANG_WORKERS))]]
        for i, (s, p) in enumerate(configs):
            name = f"cold_{s}x{p}"
            unit = [(name, lambda rep, n=name, s=s, p=p: self.tpjit_cold(rep, n, s, p))]
            if i == len(configs) - 1:
                last = configs[-1]
                unit.append(("warm", lambda rep: self.tpjit(
                    rep, "warm", last[0], last[1], self.tpjit_cache)))
            u.append(unit)
        return u


def timed(fn, rep):
    load = os.getloadavg()[0]
    busy0, steal0, total0 = cpu_jiffies()
    r = fn(rep)
    busy1, steal1, total1 = cpu_jiffies()
    span = max(1, total1 - total0)
    r.update(loadavg_1min=load, machine_busy_fraction=(busy1 - busy0) / span,
             steal_fraction=(steal1 - steal0) / span)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--spec", required=True)
    ap.add_argument("--ranks", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", required=True)
    ap.add_argument("--gpus", type=int, default=-1, help="-1: count with nvidia-smi")
    a = ap.parse_args()
    a.build, a.spec = os.path.abspath(a.build), os.path.abspath(a.spec)
    m = machine()
    gpus = len(m["gpus"]) if a.gpus < 0 else a.gpus
    name = os.path.splitext(os.path.basename(a.spec))[0]
    plan = subprocess.run([os.path.join(a.build, "cli/tpjit"), "plan", "--spec", a.spec,
                           "--policy", "FULL", "--json"], check=True,
                          capture_output=True, text=True)
    fast = subprocess.run([os.path.join(a.build, "cli/tpjit"), "plan", "--spec", a.spec,
                           "--policy", "FAST", "--json"], check=True,
                          capture_output=True, text=True)
    res = {"spec": name, "machine": m, "ranks": a.ranks, "reps": a.reps,
           "sglang_workers": SGLANG_WORKERS,
           "command": " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
           "distinct_kernels": json.loads(plan.stdout)["distinct_kernels"],
           "coverage": {"tpjit": json.loads(plan.stdout)["coverage"],
                        "fast_list": json.loads(fast.stdout)["coverage"]},
           "runs": []}
    os.makedirs(a.out, exist_ok=True)
    logs = os.path.join(a.out, name + "-logs")
    shutil.rmtree(logs, ignore_errors=True)
    os.makedirs(logs)
    work = tempfile.mkdtemp(prefix="tpjit-bench-")
    bench = Bench(a, m["cores"], gpus, work, logs)
    units = bench.units()
    try:
        for rep in range(a.reps):
            k = rep % len(units)
            for unit in units[k:] + units[:k]:
                for row, fn in unit:
                    print(f"rep {rep + 1}/{a.reps}: {row} ...", flush=True)
                    r = timed(fn, rep)
                    r.update(rep=rep, row=row, order=len(res["runs"]))
                    res["runs"].append(r)
                    print(f"  {r['wall_seconds']:.3f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.make_archive(logs, "gztar", a.out, os.path.basename(logs))
        shutil.rmtree(logs)
    with open(os.path.join(a.out, name + ".json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"wrote {a.out}/{name}.json; render: table.py {a.out}/{name}.json")


if __name__ == "__main__":
    main()
