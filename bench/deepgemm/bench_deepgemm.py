#!/usr/bin/env python3
"""DeepGEMM warm-up benchmark: SGLang's sweep today against tpjit, one run.

Rows (each --reps times, every rep on fresh caches unless said):
  status_quo     rank 0 alone sweeps every shape's M list with DeepGEMM's own
                 nvcc (counted), a fresh DG_JIT_CACHE_DIR: what SGLang does
  naive_parallel every rank sweeps an interleaved slice against one shared
                 DeepGEMM cache, no tpjit (duplicate compiles: nothing
                 coordinates them)
  tpjit_first    tpjitd with an empty cache, no recipe; every rank runs
                 tpjit.deep_gemm.warmup (its part + helpers, barrier, finish)
  tpjit_recipe   tpjitd on an empty cache that knows the group's recipe
                 (--recipe-seed / --recipe-prefetch commands; skipped when
                 this tpjit has no `tpjit recipe`)
  tpjit_warm     tpjitd restarted over tpjit_first's full cache, an empty
                 DeepGEMM cache (a restarted pod)
  floor          status_quo's summed nvcc CPU-seconds / cores
Then, unless --no-verify: outputs of sampled Ms of every shape from kernels
obtained through tpjit are bit-identical to DeepGEMM's own, and each
kernel's SASS matches (cuobjdump -sass, internal symbol names masked).

Every nvcc run (DeepGEMM's or tpjitd's NVCC back end, through --nvcc) goes
through count_nvcc.py. Writes --out/raw.json (all numbers), --out/logs/,
and --out/table.md (table.py). Exits non-zero when a row or a check fails.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import shutil
import socket as socketlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = ("status_quo", "naive_parallel", "tpjit_first", "tpjit_recipe",
        "tpjit_warm", "status_quo_warm")


def parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--spec", required=True)
    p.add_argument("--shapes", default="1,2",
                   help="indexes into the spec's shapes (DeepGEMM kinds), "
                   "or 'all'")
    p.add_argument("--policy", default="FAST", choices=("FAST", "FULL"))
    p.add_argument("--cps", type=int, default=8192,
                   help="chunked prefill size (SGLang's M list rule)")
    p.add_argument("--ranks", type=int, default=0,
                   help="rank processes (default: one per GPU; more ranks "
                   "than GPUs share them round-robin)")
    p.add_argument("--helpers", type=int, default=-1,
                   help="helper processes per rank (default: fill half the "
                   "cores with nvcc: cores / (2 ranks) - 1, at most 7)")
    p.add_argument("--m-max", type=int, default=0,
                   help="keep only M <= this of the list (quick runs; 0: all)")
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--baseline-reps", type=int, default=0,
                   help="run status_quo and naive_parallel in the first N "
                   "reps only (0: every rep); the tpjit rows run every rep")
    p.add_argument("--concurrent-baselines", action="store_true",
                   help="run status_quo and naive_parallel at the same time "
                   "(they use 1 and --ranks of the cores for nvcc; the "
                   "tpjit rows always run alone)")
    p.add_argument("--rows", default=",".join(ROWS))
    p.add_argument("--tpjitd", required=True)
    p.add_argument("--tpjit", required=True, help="the tpjit CLI")
    p.add_argument("--wrapper", required=True, help="tpjit-nvcc")
    p.add_argument("--nvcc", default="/usr/local/cuda/bin/nvcc")
    p.add_argument("--tpjitd-args", default="",
                   help="extra tpjitd flags, e.g. '--procs 16'")
    p.add_argument("--group", default="bench-deepgemm")
    p.add_argument("--recipe-seed",
                   default="mkdir -p {cache} && if [ -d {first_cache}/recipes ];"
                   " then cp -r {first_cache}/recipes {cache}/; fi",
                   help="shell command run with tpjitd stopped, after "
                   "tpjit_first, to make {cache} an empty cache that knows "
                   "the recipe of {group} (placeholders: {tpjit} {cache} "
                   "{first_cache} {group} {bundle}); default: a new cache "
                   "directory holding only tpjit_first's recipes/")
    p.add_argument("--recipe-prefetch", default="",
                   help="shell command run once tpjitd serves that cache, "
                   "before the ranks start (e.g. '{tpjit} recipe prefetch "
                   "{group} --socket {socket} --wait'); empty (default): "
                   "the automatic prefetch at the first rank's arrival")
    p.add_argument("--barrier-timeout", type=float, default=300)
    p.add_argument("--no-count-tpjitd-nvcc", action="store_true",
                   help="start tpjitd with its own nvcc (not count_nvcc.py);"
                   " its runs are then only in `tpjit stats`")
    p.add_argument("--no-verify", action="store_true")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    for name in ("spec", "tpjitd", "tpjit", "wrapper", "nvcc", "out"):
        setattr(a, name, os.path.abspath(getattr(a, name)))
    return a


def machine():
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpus = subprocess.run(["nvidia-smi", "-L"], capture_output=True,
                          text=True).stdout.split("\n")
    nvcc = subprocess.run([ARGS.nvcc, "--version"], capture_output=True,
                          text=True).stdout.strip().split("\n")[-1]
    return {"cpu": cpu, "cores": os.cpu_count(),
            "gpus": [g for g in gpus if g.strip()], "nvcc": nvcc,
            "os": platform.platform(), "host": socketlib.gethostname(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%d %H:%M UTC")}


class Daemon:
    """tpjitd on `cache`, its nvcc the counting wrapper logging to `log`."""

    def __init__(self, work, cache, log, name):
        self.socket = os.path.join(work, "tpjitd-%s.sock" % name)
        self.cache = cache
        env = dict(os.environ, REAL_NVCC=ARGS.nvcc, COUNT_NVCC_LOG=log)
        cmd = [ARGS.tpjitd, "--socket", self.socket, "--cache-dir", cache]
        if not ARGS.no_count_tpjitd_nvcc:
            # The log and the real nvcc baked in: a sandboxed compile may
            # not see this environment.
            nvcc = os.path.join(work, "nvcc-%s" % name)
            with open(nvcc, "w") as f:
                f.write("#!/bin/sh\nCOUNT_NVCC_LOG='%s' REAL_NVCC='%s' exec "
                        "'%s' '%s' \"$@\"\n" % (
                            log, ARGS.nvcc, sys.executable,
                            os.path.join(HERE, "count_nvcc.py")))
            os.chmod(nvcc, 0o755)
            cmd += ["--nvcc", nvcc]
        cmd += ARGS.tpjitd_args.split()
        self.logf = open(os.path.join(LOGS, "tpjitd-%s.log" % name), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=env)
        for _ in range(600):
            if os.path.exists(self.socket):
                break
            if self.proc.poll() is not None:
                raise RuntimeError("tpjitd exited %d (logs/tpjitd-%s.log)" %
                                   (self.proc.returncode, name))
            time.sleep(0.05)
        import tpjit
        with tpjit.Client(self.socket, connect_timeout=30) as c:
            deadline = time.monotonic() + 60
            while not c.serving() and time.monotonic() < deadline:
                time.sleep(0.05)

    def stats(self):
        out = subprocess.run([ARGS.tpjit, "stats", "--socket", self.socket,
                              "--json"], capture_output=True, text=True)
        try:
            return json.loads(out.stdout)
        except ValueError:
            return {"error": out.stderr.strip() or out.stdout.strip()}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()


def run_ranks(row, mode, n, shapes, env, extra=()):
    """Starts n rank processes (rank r on GPU r % G); waits; returns their
    reports and the wall seconds from start to the last exit."""
    t0 = time.monotonic()
    procs = []
    for r in range(n):
        out = os.path.join(LOGS, "%s.rank%d.json" % (row, r))
        e = dict(env, CUDA_VISIBLE_DEVICES=str(r % GPUS))
        cmd = [sys.executable, os.path.join(HERE, "dg_rank.py"), "--mode",
               mode, "--rank", str(r), "--world", str(n), "--shapes",
               json.dumps(shapes), "--policy", ARGS.policy, "--cps",
               str(ARGS.cps), "--m-max", str(ARGS.m_max), "--out",
               out] + list(extra)
        log = open(os.path.join(LOGS, "%s.rank%d.log" % (row, r)), "w")
        procs.append((subprocess.Popen(cmd, stdout=log,
                                       stderr=subprocess.STDOUT, env=e),
                      out, log))
    reports, failed = [], []
    for r, (p, out, log) in enumerate(procs):
        rc = p.wait()
        log.close()
        if rc != 0:
            failed.append("rank %d exit %d (logs/%s.rank%d.log)" %
                          (r, rc, row, r))
            continue
        with open(out) as f:
            reports.append(json.load(f))
    wall = time.monotonic() - t0
    if failed:
        raise RuntimeError("%s: %s" % (row, "; ".join(failed)))
    return reports, wall


def nvcc_log(path):
    runs = []
    if os.path.exists(path):
        with open(path) as f:
            runs = [json.loads(line) for line in f if line.strip()]
    compiles = [r for r in runs if r.get("mode") in ("cubin", "ptx")]
    return {"nvcc_runs": len(compiles),
            "nvcc_other_runs": len(runs) - len(compiles),
            "nvcc_failed": sum(1 for r in runs if r["rc"] != 0),
            "nvcc_cpu_s": sum(r["cpu_s"] for r in compiles),
            "nvcc_wall_s": [round(r["wall_s"], 3) for r in compiles]}


def kernel_dirs(dg_cache):
    return sorted(os.path.basename(d) for d in
                  glob.glob(os.path.join(dg_cache, "cache", "kernel.*")))


def dg_env(cache, compiler, log):
    return dict(os.environ, DG_JIT_CACHE_DIR=cache,
                DG_JIT_NVCC_COMPILER=compiler, DG_JIT_USE_NVRTC="0",
                REAL_NVCC=ARGS.nvcc, COUNT_NVCC_LOG=log,
                CUDA_CACHE_DISABLE="1")


def one_rep(rep, shapes, rows, state, res):
    """Runs the selected rows once, filling res {row: result} as they end
    (a failing row leaves the earlier ones recorded)."""
    work = tempfile.mkdtemp(prefix="dgbench-%d-" % rep, dir=ARGS.scratch)
    state["work"] = work
    counter = os.path.join(HERE, "count_nvcc.py")

    def tag(row):
        return "%s.%d" % (row, rep)

    def log_of(row):
        return os.path.join(LOGS, "%s.nvcc.jsonl" % tag(row))

    def finish(row, reports, wall, extra):
        r = {"wall_s": wall,
             "sweep_s": max(x["sweep_s"] for x in reports),
             "startup_s": max(x["startup_s"] for x in reports),
             "ranks": len(reports)}
        r.update(nvcc_log(log_of(row)))
        r.update(extra)
        if reports and "warmup" in reports[0]:
            r["phases"] = {k: max(x["warmup"]["seconds"][k] for x in reports)
                           for k in reports[0]["warmup"]["seconds"]}
            r["barrier_waited_ms"] = [x["warmup"].get("barrier_waited_ms")
                                      for x in reports]
        res[row] = r
        print("rep %d %-15s sweep %.1fs wall %.1fs nvcc %d" %
              (rep, row, r["sweep_s"], wall, r["nvcc_runs"]), flush=True)
        checkpoint()

    def guarded(row, run):
        """Runs one row; a failure is recorded and the other rows go on."""
        if row not in rows:
            return
        try:
            run()
        except Exception as e:  # noqa: BLE001 (recorded; the run fails)
            res[row] = {"error": "%s: %s" % (type(e).__name__, e)}
            print("rep %d %-15s FAILED: %s" % (rep, row, res[row]["error"]),
                  flush=True)

    def status_quo():
        cache = os.path.join(work, "dg-status-quo")
        reports, wall = run_ranks(tag("status_quo"), "solo", 1, shapes,
                                  dg_env(cache, counter,
                                         log_of("status_quo")))
        finish("status_quo", reports, wall,
               {"kernels": len(kernel_dirs(cache))})
        state["reference_cache"] = cache
        state["reference_work"] = work  # kept for the checks at the end

    def naive_parallel():
        cache = os.path.join(work, "dg-naive")
        reports, wall = run_ranks(tag("naive_parallel"), "slice", NRANKS,
                                  shapes, dg_env(cache, counter,
                                                 log_of("naive_parallel")))
        finish("naive_parallel", reports, wall,
               {"kernels": len(kernel_dirs(cache))})

    def status_quo_warm():
        """The status quo on a restart that kept DeepGEMM's cache: rank 0
        sweeps alone over a full DeepGEMM cache (the status quo's own, or
        one filled through tpjit: the same kernels)."""
        src = state.get("reference_cache")
        if not src or not os.path.isdir(os.path.join(src, "cache")):
            src = os.path.join(work, "dg-tpjit_first")
        if not os.path.isdir(os.path.join(src, "cache")):
            res["status_quo_warm"] = {
                "skipped": "needs a full DeepGEMM cache (status_quo or "
                           "tpjit_first)"}
            return
        cache = os.path.join(work, "dg-status-quo-warm")
        shutil.copytree(src, cache, ignore=shutil.ignore_patterns("tmp"))
        reports, wall = run_ranks(tag("status_quo_warm"), "solo", 1, shapes,
                                  dg_env(cache, counter,
                                         log_of("status_quo_warm")))
        finish("status_quo_warm", reports, wall,
               {"kernels": len(kernel_dirs(cache)),
                "cache_from": os.path.basename(src)})

    first_cache = os.path.join(work, "tpjit-first")
    group = "%s-%d-%s" % (ARGS.group, rep, uuid.uuid4().hex[:6])

    def tpjit_row(row):
        if row == "tpjit_warm" and "tpjit_cache" not in state:
            res[row] = {"skipped": "needs a successful tpjit_first"}
            return
        tcache = first_cache
        if row == "tpjit_recipe":
            skip = recipe_skip_reason()
            if skip:
                res[row] = {"skipped": skip}
                return
            tcache = os.path.join(work, "tpjit-recipe")
            shell(ARGS.recipe_seed, cache=tcache, first_cache=first_cache,
                  group=group, bundle=os.path.join(work, "recipe.bundle"))
        d = Daemon(work, tcache, log_of(row), tag(row))
        try:
            if row == "tpjit_recipe" and ARGS.recipe_prefetch:
                shell(ARGS.recipe_prefetch, cache=tcache, group=group,
                      socket=d.socket, first_cache=first_cache, bundle="")
            before = d.stats()
            cache = os.path.join(work, "dg-%s" % row)
            env = dg_env(cache, ARGS.wrapper, log_of(row))
            env.update(TPJIT_SOCKET=d.socket, TPJIT_GROUP=group)
            reports, wall = run_ranks(
                tag(row), "tpjit", NRANKS, shapes, env,
                ["--helpers", str(HELPERS), "--socket", d.socket,
                 "--barrier-group", "%s-%s" % (group, row),
                 "--barrier-timeout", str(ARGS.barrier_timeout)])
            after = d.stats()
        finally:
            d.stop()
        finish(row, reports, wall, {"kernels": len(kernel_dirs(cache)),
                                    "tpjitd_before": before,
                                    "tpjitd_after": after})
        if row == "tpjit_first":
            state["tpjit_cache"] = cache

    if ARGS.baseline_reps and rep >= ARGS.baseline_reps:
        pass  # the baselines ran in the first reps
    elif ARGS.concurrent_baselines:
        import threading
        threads = [threading.Thread(target=guarded, args=(row, run))
                   for row, run in (("status_quo", status_quo),
                                    ("naive_parallel", naive_parallel))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        guarded("status_quo", status_quo)
        guarded("naive_parallel", naive_parallel)
    for row in ("tpjit_first", "tpjit_recipe", "tpjit_warm"):
        guarded(row, lambda row=row: tpjit_row(row))
    guarded("status_quo_warm", status_quo_warm)
    if "sweep_s" in res.get("status_quo", {}):
        res["floor"] = {"sweep_s": res["status_quo"]["nvcc_cpu_s"] /
                        os.cpu_count(), "cores": os.cpu_count(),
                        "nvcc_cpu_s": res["status_quo"]["nvcc_cpu_s"]}


def checkpoint():
    """raw.json as it stands (a run cut short keeps its finished rows)."""
    if RESULT is not None:
        with open(os.path.join(ARGS.out, "raw.json"), "w") as f:
            json.dump(RESULT, f, indent=1, default=str)


RESULT = None


def recipe_skip_reason():
    probe = subprocess.run([ARGS.tpjit, "recipe", "--help"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return "this tpjit has no `tpjit recipe` (exit %d)" % probe.returncode
    if not ARGS.recipe_seed:
        return "no --recipe-seed command given"
    return None


def shell(template, **values):
    cmd = template.format(tpjit=ARGS.tpjit, **values)
    with open(os.path.join(LOGS, "recipe-commands.log"), "a") as log:
        log.write("$ %s\n" % cmd)
        log.flush()
        subprocess.run(cmd, shell=True, check=True, stdout=log,
                       stderr=subprocess.STDOUT)


INTERNAL = re.compile(r"_INTERNAL_[0-9a-zA-Z_]+")


def sass(path):
    out = subprocess.run([os.path.join(os.path.dirname(ARGS.nvcc),
                                       "cuobjdump"), "-sass", path],
                         capture_output=True, text=True, check=True).stdout
    lines = []
    for line in out.splitlines():
        if "Function :" in line or line.strip().startswith(("code for",
                                                           "Fatbin")):
            continue
        lines.append(INTERNAL.sub("_INTERNAL_", line))
    return "\n".join(lines)


def verify(shapes, ref_cache, tpjit_cache, work):
    """Bit-identical outputs and the same SASS, DeepGEMM's own vs tpjit's."""
    out = {"reference_cache_kernels": kernel_dirs(ref_cache),
           "tpjit_cache_kernels": kernel_dirs(tpjit_cache)}
    ref, got = set(out["reference_cache_kernels"]), set(
        out["tpjit_cache_kernels"])
    out["only_in_reference"] = sorted(ref - got)
    out["only_in_tpjit"] = sorted(got - ref)
    same_bytes, same_sass, differ = 0, 0, []
    for k in sorted(ref & got):
        a = os.path.join(ref_cache, "cache", k, "kernel.cubin")
        b = os.path.join(tpjit_cache, "cache", k, "kernel.cubin")
        if open(a, "rb").read() == open(b, "rb").read():
            same_bytes += 1
        elif sass(a) == sass(b):
            same_sass += 1
        else:
            differ.append(k)
    out.update(cubins_byte_identical=same_bytes,
               cubins_same_sass_only=same_sass, cubins_sass_differs=differ)
    digests = {}
    for name, cache in (("reference", ref_cache), ("tpjit", tpjit_cache)):
        # Copies, so this run cannot add kernels; NVCC_REFUSE: no compiles.
        copy = os.path.join(work, "verify-" + name)
        shutil.copytree(cache, copy)
        env = dg_env(copy, os.path.join(HERE, "count_nvcc.py"),
                     os.path.join(LOGS, "verify-%s.nvcc.jsonl" % name))
        env["NVCC_REFUSE"] = "1"
        reports, _ = run_ranks("verify-" + name, "outputs", 1, shapes, env)
        digests[name] = reports[0]["outputs"]
    ref_out, got_out = digests["reference"], digests["tpjit"]
    out["outputs_compared"] = len(ref_out) if set(ref_out) == set(
        got_out) else 0
    out["outputs_differ"] = sorted(k for k in set(ref_out) | set(got_out)
                                   if ref_out.get(k) != got_out.get(k))
    out["ok"] = (not out["outputs_differ"] and not differ and
                 not out["only_in_reference"] and out["outputs_compared"] > 0)
    return out


def summarize(reps):
    rows = {}
    for rep in reps:
        for row, r in rep.items():
            if "sweep_s" in r:
                rows.setdefault(row, []).append(r["sweep_s"])
    return {row: {"median_s": statistics.median(v), "min_s": min(v),
                  "max_s": max(v), "n": len(v)} for row, v in rows.items()}


def main():
    global ARGS, LOGS, GPUS, NRANKS, HELPERS, RESULT
    ARGS = parse()
    os.makedirs(ARGS.out, exist_ok=True)
    LOGS = os.path.join(ARGS.out, "logs")
    os.makedirs(LOGS, exist_ok=True)
    ARGS.scratch = os.environ.get("DGBENCH_SCRATCH") or None
    sys.path.append(os.path.join(HERE, "..", "..", "client", "python"))
    from tpjit.deep_gemm import plan
    spec_shapes = plan.shapes_from_spec(ARGS.spec, kinds={
        "fp8_gemm_nt", "fp8_grouped_gemm_nt_contig",
        "fp8_grouped_gemm_nt_masked"})
    picks = (range(len(spec_shapes)) if ARGS.shapes == "all" else
             [int(x) for x in ARGS.shapes.split(",")])
    shapes = [tuple(spec_shapes[i]) for i in picks]
    GPUS = len([g for g in subprocess.run(
        ["nvidia-smi", "-L"], capture_output=True, text=True).stdout.split(
            "\n") if g.strip()])
    NRANKS = ARGS.ranks or GPUS
    HELPERS = ARGS.helpers if ARGS.helpers >= 0 else max(
        0, min(7, os.cpu_count() // (2 * NRANKS) - 1))
    rows = ARGS.rows.split(",")
    result = {"machine": machine(), "args": vars(ARGS), "shapes": shapes,
              "ranks": NRANKS, "helpers": HELPERS, "gpus": GPUS,
              "m_values": len([m for m in plan.m_list(ARGS.policy, ARGS.cps)
                               if not ARGS.m_max or m <= ARGS.m_max]),
              "reps": []}
    RESULT = result
    print(json.dumps({k: result[k] for k in ("shapes", "ranks", "helpers",
                                             "m_values")}), flush=True)
    failed = None
    state = {}
    try:
        for rep in range(ARGS.reps):
            result["reps"].append({})
            one_rep(rep, shapes, rows, state, result["reps"][-1])
            # The checks once both caches exist (after the first rep, so a
            # run cut short still has them).
            if not ARGS.no_verify and "verify" not in result and \
                    "reference_cache" in state and "tpjit_cache" in state:
                result["verify"] = verify(shapes, state["reference_cache"],
                                          state["tpjit_cache"], state["work"])
                print("verify: %s" % json.dumps(
                    {k: v for k, v in result["verify"].items()
                     if not k.endswith("_kernels")}), flush=True)
                if not result["verify"]["ok"]:
                    failed = "verification failed"
                checkpoint()
            if rep + 1 < ARGS.reps and \
                    state.get("reference_work") != state["work"]:
                shutil.rmtree(state["work"], ignore_errors=True)
    except Exception as e:  # recorded, then the exit status says so
        failed = "%s: %s" % (type(e).__name__, e)
        result["error"] = failed
    errors = ["rep %d %s: %s" % (i, row, r["error"])
              for i, rep in enumerate(result["reps"])
              for row, r in rep.items() if "error" in r]
    if errors and not failed:
        failed = "; ".join(errors)
        result["error"] = failed
    result["summary"] = summarize(result["reps"])
    with open(os.path.join(ARGS.out, "raw.json"), "w") as f:
        json.dump(result, f, indent=1, default=str)
    subprocess.run([sys.executable, os.path.join(HERE, "table.py"),
                    os.path.join(ARGS.out, "raw.json"), "-o",
                    os.path.join(ARGS.out, "table.md")])
    for key in ("work", "reference_work"):
        if state.get(key):
            shutil.rmtree(state[key], ignore_errors=True)
    if failed:
        print("FAILED: " + failed, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
