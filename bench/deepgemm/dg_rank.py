#!/usr/bin/env python3
"""One rank of the DeepGEMM warm-up benchmark (one process per GPU, like a TP
rank). Modes:
  solo    SGLang today on its first rank: the whole sweep, one M at a time
  slice   naive parallel: this rank sweeps Ms r, r+w, ... of every shape
          against the DeepGEMM cache all ranks share (no tpjit)
  tpjit   tpjit.deep_gemm.warmup: its part (+ helpers), barrier, finish
  outputs the SHA-256 of the GEMM outputs' bytes for sampled Ms from seeded
          random inputs: the bit-identity check compares two such reports
Writes a JSON report to --out. The environment chooses the compiler
(DG_JIT_NVCC_COMPILER) and the cache (DG_JIT_CACHE_DIR)."""

import argparse
import hashlib
import json
import os
import sys
import time

T0 = time.monotonic()


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", required=True,
                   choices=("solo", "slice", "tpjit", "outputs"))
    p.add_argument("--rank", type=int, default=0)
    p.add_argument("--world", type=int, default=1)
    p.add_argument("--shapes", required=True, help="JSON list of shapes")
    p.add_argument("--policy", default="FAST")
    p.add_argument("--cps", type=int, default=8192)
    p.add_argument("--m-max", type=int, default=0)
    p.add_argument("--helpers", type=int, default=0)
    p.add_argument("--barrier-group", default=None)
    p.add_argument("--barrier-timeout", type=float, default=600)
    p.add_argument("--socket", default=None)
    p.add_argument("--samples", default="1,64,129,1000,4096,8192")
    p.add_argument("--out", required=True)
    return p.parse_args()


def sweep(shapes, plan, ms, rank, world, run_work, align):
    """solo (world 1) or slice: Ms rank, rank+world, ... of each shape."""
    work = [(i, plan.shape_m_list(s, ms, align)[rank::world])
            for i, s in enumerate(shapes)]
    return run_work(shapes, work)


def outputs(shapes, samples, align, torch, dg):
    """Per (shape, M): D of seeded random FP8 inputs (scales included)."""
    from deep_gemm.utils.math import per_block_cast_to_fp8, \
        per_token_cast_to_fp8
    got = {}
    for i, s in enumerate(shapes):
        for m in samples:
            if s.contig:
                m = max(align, m // align * align)
            g = torch.Generator(device="cuda").manual_seed(1000 * i + m)
            rnd = lambda *sz: torch.randn(*sz, device="cuda", generator=g,
                                          dtype=torch.bfloat16)  # noqa
            groups = s.num_groups
            b = [per_block_cast_to_fp8(rnd(s.n, s.k), use_ue8m0=False)
                 for _ in range(groups)]
            bq = torch.stack([x[0] for x in b]) if groups > 1 else b[0][0]
            bs = torch.stack([x[1] for x in b]) if groups > 1 else b[0][1]
            if s.masked:
                # Rows per group padded to the alignment, as a server's
                # masked buffers are: with exactly m rows a tile of one
                # group may store into the next group's rows (a race: the
                # same SASS gave different bytes). masked_m = m; only the
                # first m rows of each group are compared.
                rows = -(-m // align) * align
                a = [per_token_cast_to_fp8(rnd(rows, s.k), use_ue8m0=False)
                     for _ in range(groups)]
                aq = torch.stack([x[0] for x in a])
                asf = torch.stack([x[1] for x in a])
                d = torch.zeros(groups, rows, s.n, device="cuda",
                                dtype=torch.bfloat16)
                masked = torch.full((groups,), m, device="cuda",
                                    dtype=torch.int32)
                dg.fp8_m_grouped_gemm_nt_masked((aq, asf), (bq, bs), d,
                                                masked, m)
                d = d[:, :m]
            else:
                aq, asf = per_token_cast_to_fp8(rnd(m, s.k), use_ue8m0=False)
                d = torch.empty(m, s.n, device="cuda", dtype=torch.bfloat16)
                if s.contig:
                    layout = (torch.arange(m, device="cuda", dtype=torch.int32)
                              // align) % groups
                    dg.m_grouped_fp8_gemm_nt_contiguous((aq, asf), (bq, bs), d,
                                                        layout)
                else:
                    dg.fp8_gemm_nt((aq, asf), (bq, bs), d)
            torch.cuda.synchronize()
            raw = d.contiguous().view(torch.uint8).cpu().numpy().tobytes()
            got["%d:%d" % (i, m)] = {"sha256": hashlib.sha256(raw).hexdigest(),
                                     "shape": list(d.shape)}
    return got


def main():
    a = parse()
    if a.mode == "tpjit":
        # What TPJIT_DEEP_GEMM=1 does at interpreter start: DeepGEMM's
        # compiler is tpjit-nvcc, and the group is announced to tpjitd
        # (a known recipe starts compiling while this process starts up).
        from tpjit.deep_gemm import env as tdg_env
        tdg_env.enable(nvcc_wrapper=os.environ["DG_JIT_NVCC_COMPILER"])
    import torch
    torch.cuda.init()
    torch.empty(1, device="cuda")
    import deep_gemm
    from tpjit.deep_gemm import plan, sweep as tsweep
    t_ready = time.monotonic()
    shapes = [plan.Shape(*s) for s in json.loads(a.shapes)]
    align = deep_gemm.get_mk_alignment_for_contiguous_layout()
    ms = [m for m in plan.m_list(a.policy, a.cps)
          if not a.m_max or m <= a.m_max]
    report = {"mode": a.mode, "rank": a.rank, "world": a.world,
              "pid": os.getpid(), "startup_s": t_ready - T0,
              "gpu": torch.cuda.get_device_name(),
              "compiler": os.environ.get("DG_JIT_NVCC_COMPILER", "")}
    t1 = time.monotonic()
    if a.mode in ("solo", "slice"):
        report["calls"] = sweep(shapes, plan, ms, a.rank, a.world,
                                tsweep.run_work, align)
    elif a.mode == "tpjit":
        report["warmup"] = tsweep.warmup(
            shapes, a.rank, a.world, m_values=ms, helpers=a.helpers,
            barrier_group=a.barrier_group, barrier_timeout=a.barrier_timeout,
            socket=a.socket)
    else:
        samples = [int(x) for x in a.samples.split(",")
                   if int(x) <= max(ms)]
        report["outputs"] = outputs(shapes, samples, align, torch, deep_gemm)
    report["sweep_s"] = time.monotonic() - t1
    report["total_s"] = time.monotonic() - T0
    with open(a.out, "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps({k: report[k] for k in ("mode", "rank", "sweep_s")}))


if __name__ == "__main__":
    sys.exit(main())
