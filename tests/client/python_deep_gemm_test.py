"""tpjit.deep_gemm and the Python barrier on Debian's python3, without a GPU,
torch or deep_gemm: enable() sets DeepGEMM's compiler variable and warns in
NVRTC mode; the M lists follow SGLang's rules; the split is disjoint,
covering, ordered and cost-balanced; install_hook() does nothing without
sglang and patches a fake sglang on sys.path (before and after its import);
the split warm-up with helper processes on fake torch and DeepGEMM; the
package builds as a wheel with its stubs (current with the build's).
The barrier against a real tpjitd: python_barrier_test.py."""

import concurrent.futures
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
from unittest import mock
import warnings
import zipfile

import grpc

from tpjit import deep_gemm as tdg
from tpjit.deep_gemm import env as tdg_env
from tpjit.deep_gemm import plan
from tpjit.v1 import barrier_pb2, barrier_pb2_grpc

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SPEC = os.path.join(ROOT, "specs", "deepseek-v3-tp8.json")
PKG_SRC = os.path.join(ROOT, "client", "python")
ENV_KEYS = ("DG_JIT_NVCC_COMPILER", "DG_JIT_USE_NVRTC", "SGL_DG_USE_NVRTC",
            "TPJIT_GROUP", "TPJIT_NVCC_WRAPPER", "TPJIT_RANK", "TPJIT_WORLD",
            "PATH", "TPJIT_SOCKET")


class EnvTestCase(unittest.TestCase):
    def setUp(self):
        self.saved = {k: os.environ.get(k) for k in ENV_KEYS}
        for k in ENV_KEYS[:-2]:
            os.environ.pop(k, None)
        self.dir = tempfile.mkdtemp(prefix="tpjit-dg-")

    def tearDown(self):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(self.dir)

    def fake_wrapper(self, folder="bin"):
        d = os.path.join(self.dir, folder)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "tpjit-nvcc")
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        os.chmod(path, 0o755)
        return path


class EnableTest(EnvTestCase):
    def test_explicit_wrapper_and_group(self):
        path = self.fake_wrapper()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            self.assertEqual(tdg.enable(path, group="dsv3-tp8"), path)
        self.assertEqual(os.environ["DG_JIT_NVCC_COMPILER"], path)
        self.assertEqual(os.environ["TPJIT_GROUP"], "dsv3-tp8")
        self.assertTrue(tdg.enabled())

    def test_wrapper_from_env_then_path(self):
        # A build tree with tpjit-nvcc carries it beside the package; that
        # copy comes before PATH, so leave it out here.
        self.enterContext(mock.patch.object(tdg_env, "packaged_wrapper",
                                            lambda: None))
        path = self.fake_wrapper("env")
        os.environ["TPJIT_NVCC_WRAPPER"] = path
        self.assertEqual(tdg.enable(), path)
        del os.environ["TPJIT_NVCC_WRAPPER"]
        on_path = self.fake_wrapper("onpath")
        os.environ["PATH"] = os.path.dirname(on_path) + os.pathsep + \
            os.environ.get("PATH", "")
        self.assertEqual(tdg.find_wrapper(), on_path)
        self.assertEqual(tdg.enable(), on_path)
        self.assertEqual(os.environ["DG_JIT_NVCC_COMPILER"], on_path)

    def test_explicit_wrapper_must_exist(self):
        with self.assertRaises(FileNotFoundError):
            tdg.enable(os.path.join(self.dir, "nope", "tpjit-nvcc"))
        self.assertNotIn("DG_JIT_NVCC_COMPILER", os.environ)

    def test_no_wrapper_warns_and_keeps_nvcc(self):
        self.enterContext(mock.patch.object(tdg_env, "packaged_wrapper",
                                            lambda: None))
        os.environ["PATH"] = self.dir
        with self.assertWarns(RuntimeWarning):
            self.assertIsNone(tdg.enable())
        self.assertNotIn("DG_JIT_NVCC_COMPILER", os.environ)

    def test_nvrtc_mode_warns(self):
        path = self.fake_wrapper()
        for var in ("DG_JIT_USE_NVRTC", "SGL_DG_USE_NVRTC"):
            os.environ[var] = "1"
            with self.assertLogs("tpjit.deep_gemm", logging.WARNING) as logs:
                with self.assertWarns(tdg.NvrtcModeWarning) as w:
                    tdg.enable(path)
            self.assertIn("NVRTC", str(w.warning))
            self.assertIn(var if var == "DG_JIT_USE_NVRTC" else "SGL_DG",
                          "\n".join(logs.output))
            self.assertEqual(os.environ["DG_JIT_NVCC_COMPILER"], path)
            del os.environ[var]
        os.environ["DG_JIT_USE_NVRTC"] = "0"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tdg.enable(path)

    def test_import_needs_no_grpc_torch_or_deep_gemm(self):
        code = ("import sys, tpjit.deep_gemm; print(sorted(m for m in "
                "('grpc', 'torch', 'deep_gemm') if m in sys.modules))")
        out = subprocess.run([sys.executable, "-c", code], check=True,
                             capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=":".join(
                                 sys.path))).stdout
        self.assertEqual(out.strip(), "[]")


def sglang_fast(cps):
    """SGLang's FAST rule written out independently: 1..1024, then ranges
    [2^i, 2^(i+1)) with step 2^(i-9) while 2^i < top, plus top."""
    top = min(cps, 32768) if cps >= 1 else 16384
    ms = set(range(1, 1025))
    lo = 1024
    while lo < top:
        ms.update(range(lo, 2 * lo, lo // 512))
        lo *= 2
    ms.add(top)
    return sorted(ms)


class MListTest(unittest.TestCase):
    def test_fast(self):
        self.assertEqual(len(tdg.m_list("FAST", 8192)), 2560)
        self.assertEqual(len(tdg.m_list("FAST", 16384)), 3072)
        for cps in (8192, 16384, 4096, 12000, 65536, 0, -1, 1, 1000):
            self.assertEqual(tdg.m_list("FAST", cps), sglang_fast(cps), cps)
        ms = tdg.m_list("FAST", 8192)
        self.assertEqual(ms[1023:1027], [1024, 1026, 1028, 1030])
        self.assertIn(2052, ms)
        self.assertNotIn(2050, ms)
        self.assertEqual(ms[-1], 8192)

    def test_full(self):
        for cps, top in ((8192, 16384), (4096, 16384), (0, 65536),
                         (-1, 65536), (16384, 32768), (100000, 131072)):
            ms = tdg.m_list("FULL", cps)
            self.assertEqual(ms, list(range(1, top + 1)), cps)
        with self.assertRaises(ValueError):
            tdg.m_list("SOME")

    def test_contiguous_alignment(self):
        ms = tdg.m_list("FAST", 8192)
        contig = plan.Shape("fp8_grouped_gemm_nt_contig", 4096, 7168, 32)
        dense = plan.Shape("fp8_gemm_nt", 4096, 7168)
        masked = plan.Shape("fp8_grouped_gemm_nt_masked", 4096, 7168, 32)
        got = tdg.shape_m_list(contig, ms)
        self.assertEqual(got, sorted(m for m in set(ms) if m % 128 == 0))
        self.assertEqual(got[:3], [128, 256, 384])
        self.assertEqual(len(got), 64)
        self.assertEqual(tdg.shape_m_list(contig, ms, alignment=256),
                         [m for m in got if m % 256 == 0])
        self.assertEqual(tdg.shape_m_list(dense, ms), ms)
        self.assertEqual(tdg.shape_m_list(masked, ms), ms)

    def test_shapes_from_spec(self):
        shapes = tdg.shapes_from_spec(SPEC)
        self.assertEqual(len(shapes), 11)
        self.assertEqual(shapes[0], plan.Shape("fp8_gemm_nt", 2112, 7168))
        self.assertEqual(shapes[6].num_groups, 32)
        dense = tdg.shapes_from_spec(SPEC, kinds={"fp8_gemm_nt"})
        self.assertEqual(len(dense), 6)


class SplitTest(unittest.TestCase):
    def check_parts(self, units_, parts):
        want = [(u.shape_index, m) for u in units_ for m in u.ms]
        got = [(u.shape_index, m) for p in parts for u in p for m in u.ms]
        self.assertEqual(len(got), len(set(got)), "parts overlap")
        self.assertEqual(sorted(got), sorted(want), "parts miss Ms")
        order = {u: i for i, u in enumerate(units_)}
        for p in parts:
            idx = [order[u] for u in p]
            self.assertEqual(idx, sorted(idx), "a part is out of order")

    def test_disjoint_covering_balanced(self):
        shapes = tdg.shapes_from_spec(SPEC)
        for policy in ("FAST", "FULL"):
            ms = tdg.m_list(policy, 8192)
            us = tdg.units(shapes, ms)
            for world in (1, 2, 3, 4, 8, 16):
                parts = tdg.split(us, world)
                self.assertEqual(len(parts), world)
                self.check_parts(us, parts)
                loads = plan.part_loads(parts)
                mean = sum(loads) / world
                biggest = max(u.cost for u in us)
                self.assertLessEqual(max(loads), mean * 1.05 + biggest,
                                     (policy, world, loads))
                self.assertLessEqual(max(loads) / mean, 1.1,
                                     (policy, world, loads))
                self.assertEqual(parts, tdg.split(us, world))  # stable

    def test_helpers_split_a_rank_part(self):
        shapes = tdg.shapes_from_spec(SPEC)[:2]
        us = tdg.units(shapes, tdg.m_list("FAST", 8192))
        for part in tdg.split(us, 8):
            sub = tdg.split(part, 3)
            self.check_parts(part, sub)

    def test_every_m_once_per_shape(self):
        shapes = tdg.shapes_from_spec(SPEC)
        ms = tdg.m_list("FAST", 8192)
        parts = tdg.rank_parts(shapes, ms, 8)
        for i, s in enumerate(shapes):
            got = sorted(m for p in parts for (j, mm) in plan.work_of(p)
                         if j == i for m in mm)
            self.assertEqual(got, tdg.shape_m_list(s, ms))

    def test_classes_keep_config_relevant_boundaries(self):
        s = plan.Shape("fp8_gemm_nt", 7168, 2048)
        c = lambda m: plan.config_class(s, m)  # noqa: E731
        self.assertEqual(c(1), c(16))
        self.assertNotEqual(c(16), c(17))
        self.assertNotEqual(c(32), c(33))
        self.assertEqual(c(33), c(64))
        self.assertNotEqual(c(64), c(65))
        self.assertEqual(c(65), c(128))

    def test_more_parts_than_units(self):
        us = tdg.units([plan.Shape("fp8_grouped_gemm_nt_contig", 64, 64, 2)],
                       [128, 256])
        parts = tdg.split(us, 5)
        self.check_parts(us, parts)
        self.assertEqual(sum(1 for p in parts if p), 2)


FAKE_COMPILE_UTILS = '''
import enum
class DeepGemmKernelType(enum.IntEnum):
    GROUPED_GEMM_NT_F8F8BF16_MASKED = 1
    GROUPED_GEMM_NT_F8F8BF16_CONTIG = 2
    GEMM_NT_F8F8BF16 = 3
_BUILTIN_M_LIST = list(range(1, 1025)) + list(range(1024, 2048, 2)) + [2048]
_ENABLE_JIT_DEEPGEMM_PRECOMPILE = True
_DO_COMPILE_ALL = False  # not the first rank of the node
_INITIALIZATION_DICT = {}
calls = []
def _maybe_compile_deep_gemm_one_type_all(kernel_type, n, k, num_groups):
    if _DO_COMPILE_ALL:
        calls.append(("original", kernel_type, n, k, num_groups))
def _compile_deep_gemm_one_type_all(kernel_type, n, k, num_groups, m_list):
    calls.append((kernel_type, n, k, num_groups, list(m_list)))
'''


class FakeBarrier(barrier_pb2_grpc.BarrierServiceServicer):
    def __init__(self):
        self.requests = []
        self.times = []

    def Barrier(self, request, context):
        self.times.append(time.time())
        self.requests.append(request)
        return barrier_pb2.BarrierReply(epoch=len(self.requests) - 1,
                                        waited_ms=3)


class FakeDaemonCase(EnvTestCase):
    """A fake barrier service on a temp socket ($TPJIT_SOCKET)."""

    def setUp(self):
        super().setUp()
        self.saved_path = list(sys.path)
        self.saved_meta = list(sys.meta_path)
        self.socket = os.path.join(self.dir, "tpjitd.sock")
        os.environ["TPJIT_SOCKET"] = self.socket
        self.service = FakeBarrier()
        self.server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=4))
        barrier_pb2_grpc.add_BarrierServiceServicer_to_server(self.service,
                                                              self.server)
        self.server.add_insecure_port("unix:" + self.socket)
        self.server.start()

    def tearDown(self):
        self.server.stop(None)
        sys.path[:] = self.saved_path
        sys.meta_path[:] = self.saved_meta
        for name in list(sys.modules):
            if name == "sglang" or name.startswith("sglang."):
                del sys.modules[name]
        super().tearDown()

    def fake_sglang(self):
        root = os.path.join(self.dir, "site")
        pkg = os.path.join(root, "sglang", "srt", "layers",
                           "deep_gemm_wrapper")
        os.makedirs(pkg)
        for d in ("sglang", "sglang/srt", "sglang/srt/layers",
                  "sglang/srt/layers/deep_gemm_wrapper"):
            open(os.path.join(root, d, "__init__.py"), "w").close()
        with open(os.path.join(pkg, "compile_utils.py"), "w") as f:
            f.write(textwrap.dedent(FAKE_COMPILE_UTILS))
        sys.path.insert(0, root)

class HookTest(FakeDaemonCase):
    def test_no_sglang_is_a_noop(self):
        import importlib.util
        self.assertIsNone(importlib.util.find_spec("sglang"))
        before = list(sys.meta_path)
        self.assertIsNone(tdg.install_hook(enable_wrapper=False))
        self.assertEqual(sys.meta_path, before)

    def run_patched(self, cu, rank, world):
        t = cu.DeepGemmKernelType
        cu._maybe_compile_deep_gemm_one_type_all(t.GEMM_NT_F8F8BF16, 7168,
                                                 2048, 1)
        cu._maybe_compile_deep_gemm_one_type_all(
            t.GROUPED_GEMM_NT_F8F8BF16_CONTIG, 4096, 7168, 32)
        # A second call of the same type does nothing (SGLang's dict).
        cu._maybe_compile_deep_gemm_one_type_all(t.GEMM_NT_F8F8BF16, 7168,
                                                 2048, 1)
        self.assertEqual(len(cu.calls), 4, cu.calls)
        dense_mine, dense_rest = cu.calls[0][4], cu.calls[1][4]
        self.assertTrue(dense_mine and dense_rest)
        self.assertFalse(set(dense_mine) & set(dense_rest))
        self.assertEqual(sorted(dense_mine + dense_rest),
                         sorted(cu._BUILTIN_M_LIST))
        contig = cu.calls[2][4] + cu.calls[3][4]
        self.assertEqual(sorted(contig), [m for m in range(128, 2049, 128)])
        want = tdg.split(tdg.units([plan.Shape("fp8_gemm_nt", 7168, 2048)],
                                   cu._BUILTIN_M_LIST), world)[rank]
        self.assertEqual(dense_mine, [m for u in want for m in u.ms])
        reqs = self.service.requests
        self.assertEqual([(r.rank, r.world) for r in reqs],
                         [(rank, world)] * 2)
        self.assertTrue(reqs[0].group.startswith("deepgemm@"))

    def test_deferred_patch_before_import(self):
        self.fake_sglang()
        self.assertEqual(tdg.install_hook(rank=1, world=4,
                                          enable_wrapper=False), "deferred")
        from sglang.srt.layers.deep_gemm_wrapper import compile_utils as cu
        self.assertTrue(getattr(cu._maybe_compile_deep_gemm_one_type_all,
                                "_tpjit_patched", False))
        self.run_patched(cu, 1, 4)

    def test_patch_after_import_and_idempotent(self):
        self.fake_sglang()
        from sglang.srt.layers.deep_gemm_wrapper import compile_utils as cu
        self.assertEqual(tdg.install_hook(rank=0, world=2,
                                          enable_wrapper=False), "patched")
        first = cu._maybe_compile_deep_gemm_one_type_all
        self.assertEqual(tdg.install_hook(rank=0, world=2,
                                          enable_wrapper=False), "patched")
        self.assertIs(cu._maybe_compile_deep_gemm_one_type_all, first)
        self.run_patched(cu, 0, 2)

    def test_rank_and_world_from_environment(self):
        self.fake_sglang()
        os.environ.update(TPJIT_RANK="2", TPJIT_WORLD="3")
        tdg.install_hook(enable_wrapper=False)
        from sglang.srt.layers.deep_gemm_wrapper import compile_utils as cu
        self.run_patched(cu, 2, 3)

    def test_world_of_one_keeps_sglang(self):
        self.fake_sglang()
        from sglang.srt.layers.deep_gemm_wrapper import compile_utils as cu
        tdg.install_hook(rank=0, world=1, enable_wrapper=False)
        cu._DO_COMPILE_ALL = True
        cu._maybe_compile_deep_gemm_one_type_all(
            cu.DeepGemmKernelType.GEMM_NT_F8F8BF16, 7168, 2048, 1)
        self.assertEqual(cu.calls[0][0], "original")
        self.assertEqual(self.service.requests, [])

    def test_hook_enables_wrapper(self):
        path = self.fake_wrapper()
        self.fake_sglang()
        os.environ["TPJIT_NVCC_WRAPPER"] = path
        self.assertEqual(tdg.install_hook(rank=0, world=2, group="g1"),
                         "deferred")
        self.assertEqual(os.environ["DG_JIT_NVCC_COMPILER"], path)
        self.assertEqual(os.environ["TPJIT_GROUP"], "g1")


SWEEP_SCRIPT = """
import json, os, sys
import tpjit.deep_gemm as tdg
shapes = [tdg.Shape("fp8_gemm_nt", 7168, 2048),
          tdg.Shape("fp8_grouped_gemm_nt_contig", 4096, 7168, 32),
          tdg.Shape("fp8_grouped_gemm_nt_masked", 4096, 7168, 32)]
out = tdg.warmup(shapes, 1, 2, m_values=range(1, 700), helpers=2,
                 barrier_group="sweep", socket=sys.argv[1])
out["pid"] = os.getpid()
print(json.dumps(out))
"""


class SweepTest(FakeDaemonCase):
    """warmup() with helper processes, on fake torch and DeepGEMM
    (tests/bench/fake_gpu; each new kernel a 0.2 s "nvcc"): the compile
    phase runs exactly this rank's part once, shared by the main process
    and its helpers; after the barrier the main process runs every M of the
    sweep it did not run itself. A helper that dies leaves its chunk to
    that finishing sweep, and the warm-up still succeeds."""

    SHAPES = [plan.Shape("fp8_gemm_nt", 7168, 2048),
              plan.Shape("fp8_grouped_gemm_nt_contig", 4096, 7168, 32),
              plan.Shape("fp8_grouped_gemm_nt_masked", 4096, 7168, 32)]
    NAMES = {"fp8_gemm_nt": 0, "m_grouped_contig": 1, "m_grouped_masked": 2}

    def run_sweep(self, **extra_env):
        log = os.path.join(self.dir, "calls.jsonl")
        fake = os.path.join(ROOT, "tests", "bench", "fake_gpu")
        if os.path.exists(log):
            os.remove(log)
        env = dict(os.environ, FAKE_DG_LOG=log,
                   DG_JIT_CACHE_DIR=os.path.join(self.dir, "dg"),
                   DG_JIT_NVCC_COMPILER=os.path.join(fake, "bin", "nvcc"),
                   FAKE_NVCC_SECONDS="0.2", PYTHONPATH=os.pathsep.join(
                       [fake] + sys.path))
        env.update(extra_env)
        proc = subprocess.run([sys.executable, "-c", SWEEP_SCRIPT,
                               self.socket], env=env, capture_output=True,
                              text=True, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        self.assertEqual(result["barrier"], "ok")
        barrier_at = self.service.times[0]
        with open(log) as f:
            calls = [json.loads(line) for line in f]
        before = [(self.NAMES[c["fn"]], c["m"], c["pid"]) for c in calls
                  if c["t"] < barrier_at]
        after = [(self.NAMES[c["fn"]], c["m"], c["pid"]) for c in calls
                 if c["t"] >= barrier_at]
        return result, before, after

    def mine_and_every(self):
        ms = list(range(1, 700))
        mine = tdg.split(tdg.units(self.SHAPES, ms), 2)[1]
        want = sorted((u.shape_index, m) for u in mine for m in u.ms)
        every = sorted((i, m) for i, s in enumerate(self.SHAPES)
                       for m in tdg.shape_m_list(s, ms))
        return want, every

    def test_split_sweep_with_helpers(self):
        result, before, after = self.run_sweep()
        want, every = self.mine_and_every()
        self.assertEqual(sorted((i, m) for i, m, _ in before), want)
        main = result["pid"]
        self.assertGreaterEqual(len({p for _, _, p in before}), 2)
        self.assertEqual({p for _, _, p in after}, {main})
        done_by_main = [(i, m) for i, m, p in before if p == main]
        self.assertEqual(sorted(done_by_main + [(i, m) for i, m, _ in after]),
                         every)
        self.assertEqual(result["compile_calls"], len(want))
        self.assertEqual(result["finish_calls"], len(after))
        self.assertEqual(result["helper_failures"], [])
        self.assertEqual(set(result["seconds"]),
                         {"plan", "discover", "compile", "barrier", "finish",
                          "total"})
        self.assertEqual(result["discover_calls"], 0)  # nvcc: no discovery

    def test_dead_helper_leaves_its_chunk_to_the_finish(self):
        result, before, after = self.run_sweep(FAKE_DG_CRASH_HELPERS="1")
        want, every = self.mine_and_every()
        main = result["pid"]
        self.assertEqual({p for _, _, p in before + after}, {main})
        self.assertTrue(result["helper_failures"])
        self.assertIn("exited with code 9", result["helper_failures"][0])
        self.assertLess(len(before), len(want))  # a chunk was left behind
        self.assertEqual(sorted((i, m) for i, m, _ in before + after), every)

    def test_warm_cache_does_not_wait_for_helpers(self):
        self.run_sweep()
        self.service.times.clear()
        self.service.requests.clear()
        # Warm DeepGEMM cache; helpers take 20 s to import torch.
        result, before, after = self.run_sweep(FAKE_NVCC_SECONDS="30",
                                               FAKE_TORCH_IMPORT_SECONDS="20")
        self.assertLess(result["seconds"]["compile"], 10)
        self.assertEqual(result["helper_chunks"], [])
        want, every = self.mine_and_every()
        self.assertEqual(sorted((i, m) for i, m, _ in before), want)


class PackageTest(unittest.TestCase):
    def test_wheel_holds_stubs_and_pth(self):
        d = tempfile.mkdtemp(prefix="tpjit-whl-")
        try:
            out = subprocess.run(
                [sys.executable, "-c",
                 "import _tpjit_build, sys; "
                 "print(_tpjit_build.build_wheel(sys.argv[1]))", d],
                cwd=PKG_SRC, check=True, capture_output=True,
                text=True).stdout.strip()
            names = zipfile.ZipFile(os.path.join(d, out)).namelist()
            for want in ("tpjit/__init__.py", "tpjit/client.py",
                         "tpjit/v1/barrier_pb2.py",
                         "tpjit/v1/barrier_pb2_grpc.py",
                         "tpjit/v1/tpjit_pb2_grpc.py",
                         "tpjit/deep_gemm/sweep.py", "tpjit_deep_gemm.pth"):
                self.assertIn(want, names)
            meta = zipfile.ZipFile(os.path.join(d, out)).read(
                [n for n in names if n.endswith("METADATA")][0]).decode()
            self.assertIn("Requires-Dist: grpcio", meta)
        finally:
            shutil.rmtree(d)

    @unittest.skipUnless(os.environ.get("TPJIT_BUILT_STUBS"),
                         "set $TPJIT_BUILT_STUBS to the build's tpjit/v1")
    def test_committed_stubs_are_current(self):
        built = os.environ["TPJIT_BUILT_STUBS"]
        for name in ("spec_pb2.py", "tpjit_pb2.py", "tpjit_pb2_grpc.py",
                     "barrier_pb2.py", "barrier_pb2_grpc.py"):
            with open(os.path.join(PKG_SRC, "tpjit", "v1", name), "rb") as a:
                with open(os.path.join(built, name), "rb") as b:
                    self.assertEqual(a.read(), b.read(), "%s is stale: run "
                                     "client/python/gen_stubs.sh" % name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
