"""A stand-in for DeepGEMM's JIT as it drives its compiler, for CPU tests.

Each GEMM call picks a "config" from (function, N, K, M class), and, like
DeepGEMM (csrc/jit/compiler.hpp), looks for
$DG_JIT_CACHE_DIR/cache/kernel.<name>.<hash>/kernel.cubin; on a miss it writes
kernel.cu into cache/tmp/<uuid>/, runs `cd <cache>/tmp && <compiler>
<src> -cubin -o <tmp>/kernel.cubin <flags>` through a shell with the compiler
from $DG_JIT_NVCC_COMPILER (checked once with --version), then renames the
directory into place. Output values depend on the cubin's bytes, so a wrong
kernel shows in the outputs. Every call is appended to $FAKE_DG_LOG. With
FAKE_DG_REAL_SOURCE=1 the sources are real CUDA and each call first needs a
layout kernel per K, as DeepGEMM's FP8 GEMMs do. FAKE_DG_CHAIN=N: each call
then needs N more kernels of its K, one after another, before its own."""

import hashlib
import json
import os
import subprocess
import time
import uuid

from deep_gemm import utils  # noqa: F401

_loaded = {}
_compiler = None


def get_mk_alignment_for_contiguous_layout():
    return 128


def _cache():
    return os.environ.get("DG_JIT_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".deep_gemm")


def _check_compiler():
    global _compiler
    if _compiler is None:
        _compiler = os.environ.get("DG_JIT_NVCC_COMPILER") or "nvcc"
        out = subprocess.run([_compiler, "--version"], capture_output=True,
                             text=True, check=True).stdout
        assert "release" in out, out
    return _compiler


def _kernel(fn, n, k, m):
    cls = (m + 15) // 16 if m <= 32 else 100 + (m + 255) // 256
    name = "%s_%d_%d_%d" % (fn, n, k, cls)
    if name in _loaded:
        return _loaded[name]
    compiler = _check_compiler()
    code = "// fake DeepGEMM kernel %s\n" % name
    flags = "-O3"
    if os.environ.get("FAKE_DG_REAL_SOURCE") == "1":
        # A real CUDA source and DeepGEMM-like flags, for a real nvcc (and
        # tpjit-nvcc, which serves single-arch compiles only).
        code += ("__global__ void fake_kernel(float* x) { if (x) x[0] = "
                 "%d.0f; }\n" % int(hashlib.sha256(name.encode()).hexdigest()[:5], 16))
        flags = "-std=c++17 -O3 --gpu-architecture=sm_90a"
    digest = hashlib.sha256((name + code).encode()).hexdigest()[:16]
    final = os.path.join(_cache(), "cache", "kernel.%s.%s" % (name, digest))
    cubin = os.path.join(final, "kernel.cubin")
    if not os.path.exists(cubin):
        tmp_root = os.path.join(_cache(), "tmp")
        tmp = os.path.join(tmp_root, uuid.uuid4().hex)
        os.makedirs(tmp)
        with open(os.path.join(tmp, "kernel.cu"), "w") as f:
            f.write(code)
        cmd = "cd %s && %s %s/kernel.cu -cubin -o %s/kernel.cubin %s" % (
            tmp_root, compiler, tmp, tmp, flags)
        proc = subprocess.run(cmd, shell=True, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise RuntimeError("NVCC compilation failed: " + proc.stdout +
                               proc.stderr)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        try:
            os.rename(tmp, final)
        except OSError:
            pass  # another process was first
    with open(cubin, "rb") as f:  # the "machine code": symbol lines aside
        code_lines = [l for l in f.read().split(b"\n")
                      if not l.startswith(b"SYM")]
        _loaded[name] = int(hashlib.sha256(b"\n".join(code_lines))
                            .hexdigest()[:8], 16)
    return _loaded[name]


def _call(fn, m, n, k, d):
    if os.environ.get("FAKE_DG_CRASH_HELPERS") == "1":
        import multiprocessing
        if multiprocessing.parent_process() is not None:
            os._exit(9)  # a helper process dies without a word
    if os.environ.get("FAKE_DG_REAL_SOURCE") == "1":
        # As DeepGEMM's sm90 FP8 path: a scale-factor layout kernel of the
        # shape runs (and is compiled) before the GEMM's own kernel.
        _kernel("transform_sf", 0, k, 0)
    for i in range(int(os.environ.get("FAKE_DG_CHAIN", "0"))):
        _kernel("chain%d" % i, 0, k, 0)
    value = _kernel(fn, n, k, m)
    log = os.environ.get("FAKE_DG_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"fn": fn, "m": m, "n": n, "k": k,
                                "pid": os.getpid(), "t": time.time()}) +
                    "\n")
    d.value = value


def fp8_gemm_nt(a, b, d, *rest, **kw):
    _call("fp8_gemm_nt", a[0].shape[0], b[0].shape[-2], b[0].shape[-1], d)


def m_grouped_fp8_gemm_nt_contiguous(a, b, d, layout, *rest, **kw):
    _call("m_grouped_contig", a[0].shape[0], b[0].shape[-2],
          b[0].shape[-1], d)


def fp8_m_grouped_gemm_nt_masked(a, b, d, masked_m, expected_m, *r, **kw):
    _call("m_grouped_masked", expected_m, b[0].shape[-2], b[0].shape[-1], d)


m_grouped_fp8_gemm_nt_masked = fp8_m_grouped_gemm_nt_masked
