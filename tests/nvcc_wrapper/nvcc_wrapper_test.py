#!/usr/bin/env python3
"""tpjit-nvcc end to end: a real tpjitd, the real nvcc, and a caller that
runs the wrapper exactly as DeepGEMM does (csrc/jit/compiler.hpp):

    cd <cache>/tmp && <nvcc> <cache>/tmp/<uuid>/kernel.cu -cubin
        -o <cache>/tmp/<uuid>/kernel.cubin <flags>

through a shell, then renames <cache>/tmp/<uuid> to
<cache>/cache/kernel.<name>.<hash> (a rename that loses a race removes its
temp dir). Sources are tiny templated kernels over a header tree in an
include directory. No GPU is needed (the daemon runs with --gpus 0).

Environment: TPJIT_NVCC (the wrapper), TPJITD (the daemon), PYTHONPATH with
the tpjit package's generated stubs, REAL_NVCC (default
/usr/local/cuda/bin/nvcc; the suite is skipped without it).
"""
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

import grpc

from tpjit.deep_gemm import env as tdg_env
from tpjit.deep_gemm import sweep as tdg_sweep
from tpjit.v1 import tpjit_pb2, tpjit_pb2_grpc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
WRAPPER = os.environ.get("TPJIT_NVCC", "")
TPJITD = os.environ.get("TPJITD", "")
REAL_NVCC = os.environ.get("REAL_NVCC", "/usr/local/cuda/bin/nvcc")
COMPILE_TIMEOUT = 600  # nvcc on a loaded CI machine
GROUP = "ci-nvcc-wrapper"

TEST_FLAGS = "-std=c++17 -O3 --expt-relaxed-constexpr -arch=sm_90a"
# DeepGEMM's own flag set for sm_90a (NVCC 13), with -I<include> inserted
# where DeepGEMM puts it.
DEEPGEMM_FLAGS = (
    "-std=c++20 --diag-suppress=39,161,174,177,186,940 "
    "--ptxas-options=--register-usage-level=10 -I{include} "
    "--gpu-architecture=sm_90a "
    "--compiler-options=-fPIC,-O3,-fconcepts,-Wno-deprecated-declarations,"
    "-Wno-abi -O3 --expt-relaxed-constexpr --expt-extended-lambda")

TILE_CUH = """#pragma once
namespace tk {
template <int kScale>
struct Scale {
  __device__ static float apply(float x) { return x * kScale; }
};
}  // namespace tk
"""

SCALE_CUH = """#pragma once
#include <tk/tile.cuh>
namespace tk {
template <int kScale, int kBlock>
__global__ void __launch_bounds__(kBlock) scale_kernel(float* x, int n) {
  const int i = blockIdx.x * kBlock + threadIdx.x;
  if (i < n) x[i] = Scale<kScale>::apply(x[i]);
}
}  // namespace tk
"""


def kernel_source(scale, block=128, body=""):
    """A DeepGEMM-style generated source: one template instantiation."""
    return f"""#include <tk/kernels/scale.cuh>

using namespace tk;

void* instantiate_kernel() {{
  auto ptr = reinterpret_cast<void*>(&scale_kernel<{scale}, {block}>);{body}
  return ptr;
}}
"""


def write_include_tree(root):
    """<root>/include/tk/{tile.cuh,kernels/scale.cuh}; returns the include
    directory."""
    include = os.path.join(root, "include")
    os.makedirs(os.path.join(include, "tk", "kernels"))
    with open(os.path.join(include, "tk", "tile.cuh"), "w") as f:
        f.write(TILE_CUH)
    with open(os.path.join(include, "tk", "kernels", "scale.cuh"), "w") as f:
        f.write(SCALE_CUH)
    return include


class Call:
    """One DeepGEMM-style compile: rc, stdout, stderr (text), and the final
    output path once renamed into the cache (None on failure)."""

    def __init__(self, rc, stdout, stderr, output):
        self.rc, self.stdout, self.stderr, self.output = (rc, stdout, stderr,
                                                          output)

    def warnings(self):
        return [l for l in self.stderr.splitlines()
                if l.startswith("tpjit-nvcc: warning:")]

    def data(self):
        with open(self.output, "rb") as f:
            return f.read()


def deepgemm_compile(cache_dir, code, flags, env, compiler=None,
                     mode="-cubin", tmp=None):
    """Runs `compiler` (the wrapper) the way DeepGEMM runs nvcc. `tmp`: use
    this <uuid> temp dir (it must hold kernel.cu) instead of a new one."""
    compiler = compiler or WRAPPER
    tmp_root = os.path.join(cache_dir, "tmp")
    os.makedirs(tmp_root, exist_ok=True)
    if tmp is None:
        tmp = os.path.join(tmp_root, uuid.uuid4().hex)
        os.makedirs(tmp)
        with open(os.path.join(tmp, "kernel.cu"), "w") as f:
            f.write(code)
    out_name = "kernel.cubin" if mode == "-cubin" else "kernel.ptx"
    command = (f"cd {tmp_root} && {compiler} {tmp}/kernel.cu {mode} "
               f"-o {tmp}/{out_name} {flags}")
    p = subprocess.run(command, shell=True, env=env, capture_output=True,
                       timeout=COMPILE_TIMEOUT)
    output = None
    if p.returncode == 0:
        digest = hashlib.sha256(f"{flags}$${code}".encode()).hexdigest()[:32]
        final = os.path.join(cache_dir, "cache", f"kernel.scale.{digest}")
        os.makedirs(os.path.dirname(final), exist_ok=True)
        try:
            os.rename(tmp, final)
        except OSError:  # another rank won the race: DeepGEMM drops its copy
            shutil.rmtree(tmp)
        output = os.path.join(final, out_name)
    return Call(p.returncode, p.stdout.decode(), p.stderr.decode(), output)


def nvcc_env(socket_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("NVCC_PREPEND_FLAGS", "NVCC_APPEND_FLAGS", "CPATH",
                        "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH")}
    env.update(TPJIT_SOCKET=socket_path, TPJIT_REAL_NVCC=REAL_NVCC,
               TPJIT_GROUP=GROUP)
    return env


# A warm-up of one shape, M 1..40 (the stand-in's layout kernel and its
# GEMMs of M <= 16, 17..32, 33..40) with discovery, over the socket in
# argv[1]; prints its result as JSON.
ONE_SHAPE_WARMUP = (
    "import json, sys\n"
    "import tpjit.deep_gemm as tdg\n"
    "r = tdg.warmup([tdg.Shape('fp8_gemm_nt', 7168, 2048)], 0, 1,\n"
    "               m_values=range(1, 41), socket=sys.argv[1],\n"
    "               barrier_timeout=10, ahead=True)\n"
    "print(json.dumps(r))\n")


def fake_dg_env(base, dg_cache, **extra):
    """`base` for a process running the stand-in DeepGEMM (tests/bench/
    fake_gpu, real CUDA sources) through the wrapper, with its JIT cache in
    `dg_cache`."""
    fake = os.path.join(ROOT, "tests", "bench", "fake_gpu")
    return dict(base, DG_JIT_CACHE_DIR=dg_cache, DG_JIT_NVCC_COMPILER=WRAPPER,
                FAKE_DG_REAL_SOURCE="1",
                PYTHONPATH=os.pathsep.join([fake] + sys.path), **extra)


class Daemon:
    """tpjitd on a temp socket with the include allowlist `allow`, no GPU,
    compiling with `nvcc`."""

    def __init__(self, root, allow, nvcc=REAL_NVCC):
        self.socket = os.path.join(root, "tpjitd.sock")
        self.log_path = os.path.join(root, "tpjitd.log")
        self._log = open(self.log_path, "w")
        self.killed = False  # by kill(): its exit is expected
        self.proc = subprocess.Popen(
            [TPJITD, "--socket", self.socket, "--cache-dir",
             os.path.join(root, "daemon-cache"), "--gpus", "0", "--slots",
             "1", "--procs", "2", "--trace-compiles", "--include-allowlist",
             allow, "--nvcc", nvcc],
            stdout=self._log, stderr=subprocess.STDOUT)
        self._channel = grpc.insecure_channel("unix:" + self.socket)
        self.stub = tpjit_pb2_grpc.TpjitStub(self._channel)
        self._wait_serving(timeout=120)

    def _wait_serving(self, timeout):
        """Until the health service reports tpjit.v1.Tpjit SERVING, watched
        as a stream (no polling); RuntimeError with the daemon's log when it
        does not within `timeout` s or exits."""
        watch = self._channel.unary_stream(
            "/grpc.health.v1.Health/Watch",
            request_serializer=lambda service: (
                b"\x0a" + bytes([len(service)]) + service.encode()),
            response_deserializer=lambda data: data)
        try:
            for status in watch("tpjit.v1.Tpjit", timeout=timeout,
                                wait_for_ready=True):
                if status == b"\x08\x01":  # status: SERVING
                    return
        except grpc.RpcError as e:
            raise RuntimeError(f"tpjitd did not become ready ({e.code()}): "
                               + self.log()) from None

    def stats(self):
        return self.stub.Stats(tpjit_pb2.StatsRequest(), timeout=30,
                               wait_for_ready=True)

    def log(self):
        return self.full_log()[-4000:]

    def full_log(self):
        with open(self.log_path) as f:
            return f.read()

    def kill(self):
        """SIGKILL: tpjitd goes away without a word (a crash, an OOM kill);
        its socket file stays, so connections are refused."""
        self.killed = True
        self.proc.kill()
        self.proc.wait(timeout=60)

    def stop(self):
        if self.proc.poll() is not None and not self.killed:
            # died during the tests: say how
            print(f"\ntpjitd exited with status {self.proc.returncode}:\n"
                  + self.log(), file=sys.stderr)
        self._channel.close()
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self._log.close()


def traced_compiles(log):
    """From tpjitd's trace (--trace-compiles): {key prefix: whether its
    first request that started a compile was a no_wait one} and the set of
    key prefixes compiled."""
    first_request = {}
    for line in log.splitlines():
        m = re.search(r"trace: [0-9.]+ request ([0-9a-f]{12}) .*?"
                      r"( no_wait)?: (new|joined|hit)$", line)
        if m and m.group(3) == "new":
            first_request.setdefault(m.group(1), bool(m.group(2)))
    compiled = set(re.findall(r"trace: [0-9.]+ slot \d+ proc \d+ "
                              r"compiled ([0-9a-f]{12}) ", log))
    return first_request, compiled


class Delta:
    """Stats counters since construction."""

    def __init__(self, daemon):
        self._daemon = daemon
        self._before = daemon.stats()

    def __getattr__(self, name):
        return (getattr(self._daemon.stats(), name) -
                getattr(self._before, name))


def missing_prerequisite():
    for what, path in (("TPJIT_NVCC", WRAPPER), ("TPJITD", TPJITD),
                       ("REAL_NVCC", REAL_NVCC)):
        if not path or not os.access(path, os.X_OK):
            return f"{what} ({path or 'unset'}) is not an executable"
    return None


@unittest.skipIf(missing_prerequisite(), missing_prerequisite())
class WrapperTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="tpjit-nvcc-test-")
        # tpjitd as root compiles as an unprivileged user: the include tree
        # must be world-readable, as an installed library's is.
        os.chmod(cls.root, 0o755)
        cls.include = write_include_tree(os.path.join(cls.root, "dg1"))
        cls.daemon = Daemon(cls.root, allow=cls.root)
        cls.env = nvcc_env(cls.daemon.socket)

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        shutil.rmtree(cls.root)

    def cache_dir(self):
        return tempfile.mkdtemp(prefix="dg-cache-", dir=self.root)

    def flags(self, include=None):
        return f"{TEST_FLAGS} -I{include or self.include}"

    def assertServed(self, call):
        """Compiled by tpjitd: status 0, no fail-open warning, an output."""
        self.assertEqual(call.rc, 0, call.stderr + self.daemon.log())
        self.assertEqual(call.warnings(), [], self.daemon.log())
        self.assertIsNotNone(call.output)

    def assertCubin(self, call):
        self.assertTrue(call.data().startswith(b"\x7fELF"))
        self.assertIn(b"scale_kernel", call.data())

    # (a) Eight ranks ask for one kernel at once: one nvcc compile.
    def test_concurrent_callers_compile_once(self):
        code = kernel_source(scale=2)
        cache = self.cache_dir()  # ranks of a node share DeepGEMM's cache
        delta = Delta(self.daemon)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            calls = list(pool.map(
                lambda _: deepgemm_compile(cache, code, self.flags(),
                                           self.env), range(8)))
        for call in calls:
            self.assertServed(call)
            self.assertCubin(call)
        self.assertEqual(delta.compiles, 1)

    # (b) No daemon behind TPJIT_SOCKET: the real nvcc compiles, with one
    # warning line; also a stale socket file, an option tpjitd refuses and
    # an environment tpjitd would not see.
    def test_daemon_down_fails_open(self):
        stale = os.path.join(self.root, "stale.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(stale)  # bound, never listening: connections are refused
        s.close()
        cases = [(os.path.join(self.root, "absent.sock"), "", {}),
                 (stale, "", {}),
                 (self.daemon.socket, " -ccbin /usr/bin/g++", {}),
                 (self.daemon.socket, "", {"CPATH": "/nonexistent"})]
        for i, (sock, extra, extra_env) in enumerate(cases):
            with self.subTest(socket=sock, extra=extra, env=extra_env):
                env = dict(nvcc_env(sock), **extra_env)
                call = deepgemm_compile(self.cache_dir(),
                                        kernel_source(scale=3 + i),
                                        self.flags() + extra, env)
                self.assertEqual(call.rc, 0, call.stderr)
                lines = call.stderr.splitlines()
                self.assertEqual(len(lines), 1, call.stderr)
                self.assertRegex(lines[0],
                                 r"^tpjit-nvcc: warning: .+; compiling "
                                 r"locally with " + REAL_NVCC + "$")
                self.assertCubin(call)

    # An include tree the compile sandbox's user cannot read: tpjitd refuses
    # it up front and the wrapper compiles locally (never a compile error
    # caused by tpjit).
    @unittest.skipIf(os.geteuid() != 0, "tpjitd sandboxes only as root")
    def test_private_include_tree_fails_open(self):
        private = os.path.join(self.root, "private")
        include = write_include_tree(private)
        os.chmod(private, 0o700)
        call = deepgemm_compile(self.cache_dir(), kernel_source(scale=11),
                                self.flags(include), self.env)
        self.assertEqual(call.rc, 0, call.stderr)
        self.assertEqual(len(call.warnings()), 1, call.stderr)
        self.assertIn("sandbox", call.stderr)
        self.assertCubin(call)

    # (c) A compile error: nvcc's messages, as nvcc prints them, and its
    # exit status; no output file.
    def test_compile_error_passes_through(self):
        cases = {
            "undefined": kernel_source(scale=4, body="\n  undefined_name++;"),
            "missing_header": "#include <tk/missing.cuh>\n" + kernel_source(5),
            "bad_template": kernel_source(scale="float"),
        }
        for what, code in cases.items():
            with self.subTest(what=what):
                cache = self.cache_dir()
                real = deepgemm_compile(cache, code, self.flags(), self.env,
                                        compiler=REAL_NVCC)
                self.assertNotEqual(real.rc, 0)
                tmps = os.listdir(os.path.join(cache, "tmp"))
                call = deepgemm_compile(
                    cache, code, self.flags(), self.env,
                    tmp=os.path.join(cache, "tmp", tmps[0]))
                self.assertEqual(call.warnings(), [])
                self.assertEqual(call.rc, real.rc)
                self.assertEqual(call.stderr, real.stderr)
                self.assertEqual(call.stdout, real.stdout)
                self.assertFalse(os.path.exists(
                    os.path.join(cache, "tmp", tmps[0], "kernel.cubin")))

    # (d) The include tree copied and moved elsewhere (a second install):
    # the same kernel is a cache hit, not a compile.
    def test_moved_include_tree_hits(self):
        code = kernel_source(scale=6)
        first = deepgemm_compile(self.cache_dir(), code, self.flags(),
                                 self.env)
        self.assertServed(first)
        copy = os.path.join(self.root, "dg2")
        shutil.copytree(os.path.dirname(self.include), copy)
        moved = os.path.join(self.root, "dg3")
        for root in (copy, moved):
            if root == moved:
                os.rename(copy, moved)
            with self.subTest(include=root):
                delta = Delta(self.daemon)
                call = deepgemm_compile(self.cache_dir(), code,
                                        self.flags(os.path.join(root,
                                                                "include")),
                                        self.env)
                self.assertServed(call)
                self.assertEqual(call.data(), first.data())
                self.assertEqual(delta.compiles, 0)
                self.assertEqual(delta.cache_hits, 1)

    # (e) --version (DeepGEMM reads "release X.Y" from it) and other calls
    # tpjitd does not serve print exactly what the real nvcc prints.
    def test_version_and_other_calls_are_the_real_nvcc(self):
        for args in (["--version"], ["-V"]):
            with self.subTest(args=args):
                ours = subprocess.run([WRAPPER] + args, env=self.env,
                                      capture_output=True, timeout=120)
                real = subprocess.run([REAL_NVCC] + args, env=self.env,
                                      capture_output=True, timeout=120)
                self.assertEqual(ours.returncode, real.returncode)
                self.assertEqual(ours.stdout, real.stdout)
                self.assertEqual(ours.stderr, real.stderr)
                self.assertIn(b"release ", ours.stdout)
        src = os.path.join(self.root, "pre.cu")
        with open(src, "w") as f:
            f.write(kernel_source(scale=7))
        args = [src, "-E", f"-I{self.include}", "-arch=sm_90a"]
        ours = subprocess.run([WRAPPER] + args, env=self.env,
                              capture_output=True, timeout=COMPILE_TIMEOUT)
        real = subprocess.run([REAL_NVCC] + args, env=self.env,
                              capture_output=True, timeout=COMPILE_TIMEOUT)
        self.assertEqual(ours.returncode, 0, ours.stderr)
        self.assertEqual(ours.stdout, real.stdout)
        self.assertEqual(ours.stderr, b"")

    # (f) -ptx after -cubin for one kernel (DeepGEMM with DG_JIT_DUMP_PTX):
    # PTX text, compiled by tpjitd, not the cubin.
    def test_ptx_mode(self):
        code = kernel_source(scale=8)
        cache = self.cache_dir()
        cubin = deepgemm_compile(cache, code, self.flags(), self.env)
        self.assertServed(cubin)
        delta = Delta(self.daemon)
        ptx = deepgemm_compile(self.cache_dir(), code, self.flags(), self.env,
                               mode="-ptx")
        self.assertServed(ptx)
        text = ptx.data()
        self.assertFalse(text.startswith(b"\x7fELF"))
        self.assertIn(b".entry", text)
        self.assertIn(b"scale_kernel", text)
        self.assertEqual(delta.compiles, 1)

    # DeepGEMM's exact flag set passes tpjitd's option allow-list, and a
    # second call is a hit.
    def test_deepgemm_flags_are_served(self):
        code = kernel_source(scale=9)
        flags = DEEPGEMM_FLAGS.format(include=self.include)
        delta = Delta(self.daemon)
        call = deepgemm_compile(self.cache_dir(), code, flags, self.env)
        self.assertServed(call)
        self.assertCubin(call)
        again = deepgemm_compile(self.cache_dir(), code, flags, self.env)
        self.assertServed(again)
        self.assertEqual(again.data(), call.data())
        self.assertEqual(delta.compiles, 1)
        self.assertEqual(delta.cache_hits, 1)

    # Split option forms (-arch X, -I X, -std X) and a relative source.
    def test_split_forms_and_relative_paths(self):
        cache = self.cache_dir()
        tmp = os.path.join(cache, "tmp", "u1")
        os.makedirs(tmp)
        with open(os.path.join(tmp, "kernel.cu"), "w") as f:
            f.write(kernel_source(scale=10))
        rel_include = os.path.relpath(self.include, tmp)
        command = (f"cd {tmp} && {WRAPPER} kernel.cu -cubin -o out.cubin "
                   f"-std c++17 -O3 -arch sm_90a -I {rel_include}")
        p = subprocess.run(command, shell=True, env=self.env,
                           capture_output=True, timeout=COMPILE_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, b"")
        with open(os.path.join(tmp, "out.cubin"), "rb") as f:
            self.assertTrue(f.read().startswith(b"\x7fELF"))

    # TPJIT_NVCC_NO_WAIT=1 (kernel discovery ahead of use): a miss exits 75
    # at once with one line and no output while tpjitd compiles on; the
    # kernel then becomes a hit without anyone waiting for it; no daemon:
    # 75 too, never a local compile.
    def test_no_wait_queues_then_hits(self):
        code = kernel_source(scale=12)
        env = dict(self.env, TPJIT_NVCC_NO_WAIT="1")
        delta = Delta(self.daemon)
        first = deepgemm_compile(self.cache_dir(), code, self.flags(), env)
        self.assertEqual(first.rc, 75, first.stderr)
        self.assertIsNone(first.output)
        m = re.match(r"^tpjit-nvcc: queued in tpjitd \(key ([0-9a-f]{64})\) "
                     r"\(TPJIT_NVCC_NO_WAIT=1\): not compiled here$",
                     first.stderr.strip())
        self.assertIsNotNone(m, first.stderr)
        key = m.group(1)
        # AwaitKeys with `any`: answered as soon as one key has ended (the
        # unknown one, at once), the other one still compiling or done.
        some = self.daemon.stub.AwaitKeys(
            tpjit_pb2.AwaitKeysRequest(keys=[key, "1" * 64], any=True),
            timeout=COMPILE_TIMEOUT)
        self.assertIn(some.keys[0].state,
                      (tpjit_pb2.AwaitKeysResponse.IN_FLIGHT,
                       tpjit_pb2.AwaitKeysResponse.PUBLISHED))
        self.assertEqual(some.keys[1].state,
                         tpjit_pb2.AwaitKeysResponse.UNKNOWN)
        # AwaitKeys: returns when the queued compile has ended.
        reply = self.daemon.stub.AwaitKeys(
            tpjit_pb2.AwaitKeysRequest(keys=[key, "0" * 64]),
            timeout=COMPILE_TIMEOUT)
        self.assertEqual([(k.key, k.state) for k in reply.keys],
                         [(key, tpjit_pb2.AwaitKeysResponse.PUBLISHED),
                          ("0" * 64, tpjit_pb2.AwaitKeysResponse.UNKNOWN)])
        self.assertEqual(delta.compiles, 1, self.daemon.log())
        with self.assertRaises(grpc.RpcError) as bad:
            self.daemon.stub.AwaitKeys(
                tpjit_pb2.AwaitKeysRequest(keys=["xyz"]), timeout=10)
        self.assertEqual(bad.exception.code(),
                         grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("keys[0]", bad.exception.details())
        hit = deepgemm_compile(self.cache_dir(), code, self.flags(), env)
        self.assertServed(hit)
        self.assertCubin(hit)
        self.assertEqual(delta.compiles, 1)
        self.assertGreaterEqual(delta.cache_hits, 1)
        absent = dict(env, TPJIT_SOCKET=os.path.join(self.root, "none.sock"))
        down = deepgemm_compile(self.cache_dir(), kernel_source(scale=13),
                                self.flags(), absent)
        self.assertEqual(down.rc, 75, down.stderr)
        self.assertIn("not compiled here", down.stderr)
        self.assertIsNone(down.output)

    # A recipe replayed after a restart on an empty cache: a node that kept
    # only the recipes (a rebuilt image, a new node seeded from a bundle)
    # compiles the group's whole recipe when a rank announces the group
    # (tpjit.deep_gemm.enable(group=...) at server start), so every kernel
    # is a hit before DeepGEMM asks for it.
    def test_recipe_replay_after_restart_with_empty_cache(self):
        group = "replay-" + uuid.uuid4().hex[:8]
        env = dict(self.env, TPJIT_GROUP=group)
        codes = [kernel_source(scale=14), kernel_source(scale=15)]
        first_root = tempfile.mkdtemp(prefix="replay-a-", dir=self.root)
        first = Daemon(first_root, allow=self.root)
        try:
            env_a = dict(env, TPJIT_SOCKET=first.socket)
            outputs = [deepgemm_compile(self.cache_dir(), c, self.flags(),
                                        env_a) for c in codes]
            for call in outputs:
                self.assertServed(call)
        finally:
            first.stop()  # a graceful stop writes the recipe it recorded
        second_root = tempfile.mkdtemp(prefix="replay-b-", dir=self.root)
        os.makedirs(os.path.join(second_root, "daemon-cache"), mode=0o755)
        shutil.copytree(os.path.join(first_root, "daemon-cache", "recipes"),
                        os.path.join(second_root, "daemon-cache", "recipes"))
        second = Daemon(second_root, allow=self.root)
        try:
            env_b = dict(env, TPJIT_SOCKET=second.socket)
            delta = Delta(second)
            saved = dict(os.environ)
            try:
                os.environ["TPJIT_SOCKET"] = second.socket
                tdg_env.enable(nvcc_wrapper=WRAPPER, group=group)
                tdg_env.last_announce.join(timeout=60)
            finally:
                os.environ.clear()
                os.environ.update(saved)
            deadline = time.monotonic() + COMPILE_TIMEOUT
            while delta.compiles < 2 and time.monotonic() < deadline:
                time.sleep(0.05)  # polling a condition, with a deadline
            self.assertEqual(delta.compiles, 2, second.log())
            for code in codes:
                call = deepgemm_compile(self.cache_dir(), code, self.flags(),
                                        env_b)
                self.assertServed(call)
                self.assertCubin(call)
            self.assertEqual(delta.compiles, 2)
            self.assertEqual(delta.cache_hits, 2)
        finally:
            second.stop()

    def run_dg_warmup(self, script, env):
        """Runs `script` (a warm-up printing its result as JSON) against the
        shared daemon; it must succeed with no compile failed: (result,
        Delta since, where the daemon's log was)."""
        delta = Delta(self.daemon)
        log_start = len(self.daemon.full_log())  # it serves every test
        p = subprocess.run([sys.executable, "-c", script, self.daemon.socket],
                           env=env, capture_output=True, text=True,
                           timeout=COMPILE_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr + self.daemon.log())
        self.assertNotIn("NVCC compilation failed", p.stdout)
        return json.loads(p.stdout.strip().splitlines()[-1]), delta, log_start

    # The same warm-up with tpjitd unreachable: the discovery's calls are
    # not queued anywhere (no key: nothing to await), the sweep compiles
    # through the wrapper's fail-open path, and the warm-up still ends with
    # every kernel in DeepGEMM's cache.
    def test_deep_gemm_warmup_without_daemon_fails_open(self):
        dg_cache = self.cache_dir()
        absent = os.path.join(self.root, "absent.sock")
        env = fake_dg_env(self.env, dg_cache, TPJIT_SOCKET=absent,
                          TPJIT_NVCC_CONNECT_TIMEOUT="0.2")
        p = subprocess.run([sys.executable, "-c", ONE_SHAPE_WARMUP, absent],
                           env=env,
                           capture_output=True, text=True,
                           timeout=COMPILE_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        result = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual(result["discover_keys"], 0, result)
        self.assertEqual(result["discover_calls"], result["units_mine"])
        # The layout kernel and the GEMMs of M <= 16, 17..32, 33..40.
        kernels = os.listdir(os.path.join(dg_cache, "cache"))
        self.assertEqual(len(kernels), 4, kernels)

    # tpjit.deep_gemm.warmup's discovery (ahead=True) with the real wrapper,
    # daemon and nvcc, and a stand-in DeepGEMM (tests/bench/fake_gpu, real
    # CUDA sources): every kernel the sweep needs is queued before the
    # sweep waits on one, each is compiled once, the sweep then ends warm.
    def test_deep_gemm_warmup_discovers_ahead(self):
        dg_cache = self.cache_dir()
        env = fake_dg_env(self.env, dg_cache,
                          TPJIT_GROUP="ci-discover-" + uuid.uuid4().hex[:6])
        script = (
            "import json, sys\n"
            "import tpjit.deep_gemm as tdg\n"
            "shapes = [tdg.Shape('fp8_gemm_nt', 7168, 2048),\n"
            "          tdg.Shape('fp8_grouped_gemm_nt_masked', 4096, 7168,"
            " 32)]\n"
            "r = tdg.warmup(shapes, 0, 1, m_values=range(1, 201),\n"
            "               socket=sys.argv[1], barrier_timeout=60)\n"
            "print(json.dumps(r))\n")
        result, delta, log_start = self.run_dg_warmup(script, env)
        kernels = sorted(d for d in os.listdir(os.path.join(dg_cache,
                                                            "cache")))
        # Per shape: M <= 16, 17..32 and 33..200 are the stand-in's kernels,
        # and each call first needs the shape's layout kernel.
        self.assertEqual(len(kernels), 8, kernels)
        # One call per shape finds its layout kernel; each unit is called
        # again when that is compiled (it stops at its GEMM) and once more
        # when its GEMM is (all hits), or only once if its GEMM was done.
        self.assertGreaterEqual(result["discover_rounds"], 2, result)
        self.assertEqual(result["discover_keys"], len(kernels), result)
        shapes = 2
        self.assertLessEqual(result["discover_calls"],
                             shapes + 2 * result["units_mine"], result)
        self.assertGreaterEqual(result["discover_calls"],
                                shapes + result["units_mine"], result)
        self.assertGreaterEqual(result["discover_queued"], len(kernels))
        self.assertEqual(result["barrier"], "ok")
        self.assertEqual(delta.compiles, len(kernels))
        # Ahead, per the daemon's trace (--trace-compiles): each compiled
        # key's first request was a no_wait one, and its compile was not
        # started by a waiting request.
        log = self.daemon.full_log()[log_start:]
        first_request, compiled = traced_compiles(log)
        self.assertEqual(len(compiled), len(kernels), log)
        for key in compiled:
            self.assertTrue(first_request.get(key), key + log)

    # tpjitd killed (SIGKILL: a crash, an OOM kill) in the middle of the
    # discovery, once the first call's kernel is queued there, so the
    # warm-up waits on it (AwaitKeys) and would wait for good: that compile
    # never ends (the daemon's nvcc blocks). The wait fails at once, the
    # result says why, and the sweep compiles every kernel through the
    # wrapper's fail-open path (connections to the left socket are refused).
    def test_deep_gemm_warmup_daemon_killed_mid_discovery(self):
        root = tempfile.mkdtemp(prefix="killed-", dir=self.root)
        os.chmod(root, 0o755)  # the compile sandbox's user runs stuck-nvcc
        never = os.path.join(root, "never")  # a FIFO nothing writes
        os.mkfifo(never)
        os.chmod(never, 0o666)
        stuck = os.path.join(root, "stuck-nvcc")
        with open(stuck, "w") as f:
            f.write("#!/bin/sh\n"
                    f'case " $* " in *" -cubin "*) exec head -c1 {never};;'
                    " esac\n"
                    f'exec {REAL_NVCC} "$@"\n')
        os.chmod(stuck, 0o755)
        daemon = Daemon(root, allow=self.root, nvcc=stuck)
        dg_cache = self.cache_dir()
        env = fake_dg_env(nvcc_env(daemon.socket), dg_cache,
                          TPJIT_NVCC_CONNECT_TIMEOUT="0.2")
        p = None
        try:
            p = subprocess.Popen([sys.executable, "-c", ONE_SHAPE_WARMUP,
                                  daemon.socket], env=env,
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            # Killed once the discovery waits on the queued kernel (its
            # AwaitKeys reached tpjitd): not between the queueing and the
            # "queued" answer reaching tpjit-nvcc, which would fail open.
            deadline = time.monotonic() + COMPILE_TIMEOUT
            while (" await 1 keys (any)" not in daemon.full_log() and
                   p.poll() is None and time.monotonic() < deadline):
                time.sleep(0.05)  # polling a condition, with a deadline
            self.assertIn(" no_wait: new", daemon.full_log())
            self.assertIn(" await 1 keys (any)", daemon.full_log())
            daemon.kill()
            # Bounded: the discovery's wait alone would last 1800 s.
            out, err = p.communicate(timeout=120)
        finally:
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
            # The blocked compile ends, were it left behind by the worker.
            fd = os.open(never, os.O_RDWR | os.O_NONBLOCK)
            os.close(fd)
            daemon.stop()
        self.assertEqual(p.returncode, 0, err)
        result = json.loads(out.strip().splitlines()[-1])
        # One call (the shape's first unit) queued the layout kernel; the
        # shape's other units waited on it uncalled.
        self.assertEqual(result["discover_calls"], 1, result)
        self.assertEqual(result["discover_keys"], 1, result)
        self.assertLess(result["seconds"]["discover"], 60, result)
        self.assertRegex(result["discover_error"] or "",
                         r"^waiting for 1 queued kernels failed: await_keys: "
                         r"tpjitd at \S+ is not reachable", result)
        self.assertIn("waiting for 1 queued kernels failed", err)
        self.assertEqual(result["barrier"], "unavailable", result)
        # The layout kernel and the GEMMs of M <= 16, 17..32, 33..40.
        kernels = os.listdir(os.path.join(dg_cache, "cache"))
        self.assertEqual(len(kernels), 4, kernels)

    # A unit that stops at a new kernel on each call (FAKE_DG_CHAIN: the
    # layout kernel, a chain, then the GEMM's own; one more kernel than
    # MAX_DISCOVER_TRIES) is called MAX_DISCOVER_TRIES times, then left to
    # the sweep: the discovery queues the first kernels, the sweep asks
    # first for the last one (and waits for it); every kernel ends up in
    # DeepGEMM's cache, each compiled once. K = 1024, which no other test
    # uses: none of these kernels is in tpjitd's cache already.
    def test_deep_gemm_warmup_discovery_try_cap(self):
        tries = tdg_sweep.MAX_DISCOVER_TRIES
        dg_cache = self.cache_dir()
        env = fake_dg_env(self.env, dg_cache, FAKE_DG_CHAIN=str(tries - 1),
                          TPJIT_GROUP="ci-cap-" + uuid.uuid4().hex[:6])
        script = (
            "import json, sys\n"
            "import tpjit.deep_gemm as tdg\n"
            "r = tdg.warmup([tdg.Shape('fp8_gemm_nt', 7168, 1024)], 0, 1,\n"
            "               m_values=range(1, 17), socket=sys.argv[1],\n"
            "               barrier_timeout=60)\n"
            "print(json.dumps(r))\n")
        result, delta, log_start = self.run_dg_warmup(script, env)
        kernels = os.listdir(os.path.join(dg_cache, "cache"))
        self.assertEqual(len(kernels), tries + 1, kernels)
        self.assertEqual(result["units_mine"], 1, result)
        # Each call stopped at the next kernel; the one the last call
        # stopped at is not waited on (the sweep meets it).
        self.assertEqual(result["discover_calls"], tries, result)
        self.assertEqual(result["discover_queued"], tries, result)
        self.assertEqual(result["discover_keys"], tries - 1, result)
        self.assertIsNone(result["discover_error"], result)
        self.assertEqual(result["barrier"], "ok")
        self.assertEqual(delta.compiles, tries + 1)
        first_request, compiled = traced_compiles(
            self.daemon.full_log()[log_start:])
        self.assertEqual(len(compiled), tries + 1, first_request)
        self.assertEqual(sorted(first_request[k] for k in compiled),
                         [False] + [True] * tries, first_request)

    # Not a test of a limit: the end-to-end time of a cache hit, wrapper
    # start included, printed for the record (target <= 20 ms).
    def test_report_hit_latency(self):
        code = kernel_source(scale=11)
        first = deepgemm_compile(self.cache_dir(), code, self.flags(),
                                 self.env)
        self.assertServed(first)
        times = []
        for _ in range(10):
            start = time.monotonic()
            call = deepgemm_compile(self.cache_dir(), code, self.flags(),
                                    self.env)
            times.append(time.monotonic() - start)
            self.assertServed(call)
        times.sort()
        print(f"\ncache hit, end to end through a shell: median "
              f"{1000 * times[5]:.1f} ms, min {1000 * times[0]:.1f} ms")


class ScriptedTpjit(tpjit_pb2_grpc.TpjitServicer):
    """A daemon that answers Compile with `self.result` (a CompileResult),
    the output inline: the reply contract of tpjitd's NVCC back end, checked
    here without it."""

    def __init__(self):
        self.result = None
        self.requests = []

    def Compile(self, request, context):
        self.requests.append(request)
        return tpjit_pb2.CompileResponse(results=[self.result])


@unittest.skipIf(not WRAPPER or not os.access(WRAPPER, os.X_OK),
                 "TPJIT_NVCC is not an executable")
class ReplyContractTest(unittest.TestCase):
    """The wrapper binary against a scripted daemon: the output file comes
    from the inline output, messages name the source as given, the exit
    status is the compiler's. No nvcc runs."""

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="tpjit-nvcc-contract-")
        self.service = ScriptedTpjit()
        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(2))
        tpjit_pb2_grpc.add_TpjitServicer_to_server(self.service, self.server)
        self.socket = os.path.join(self.root, "tpjitd.sock")
        self.server.add_insecure_port("unix:" + self.socket)
        self.server.start()
        self.env = nvcc_env(self.socket)
        self.env["TPJIT_REAL_NVCC"] = "/bin/false"  # must never run

    def tearDown(self):
        self.server.stop(None)
        shutil.rmtree(self.root)

    def compile(self, mode="-cubin"):
        return deepgemm_compile(os.path.join(self.root, "dg"),
                                kernel_source(scale=1),
                                "-std=c++20 -arch=sm_90a -I/opt/dg/include",
                                self.env, mode=mode)

    def test_inline_output_and_warnings(self):
        self.service.result = tpjit_pb2.CompileResult(
            ok=True, key="a" * 64, output=b"\x7fELF inline",
            log='kernel.cu(3): warning #1-D: w\n')
        call = self.compile()
        self.assertEqual(call.rc, 0, call.stderr)
        self.assertEqual(call.data(), b"\x7fELF inline")
        src = self.service.requests[0]
        self.assertEqual(src.sources[0].name, "kernel.cu")
        self.assertEqual(src.group, GROUP)
        self.assertTrue(src.return_output)
        self.assertRegex(call.stderr,
                         r"^/\S+/tmp/[0-9a-f]+/kernel\.cu\(3\): warning #1-D")
        self.assertEqual(len(call.stderr.splitlines()), 1)
        tmp = os.path.dirname(call.output)
        self.assertEqual(sorted(os.listdir(tmp)),
                         ["kernel.cu", "kernel.cubin"])  # no temp left

    def test_ptx_inline(self):
        self.service.result = tpjit_pb2.CompileResult(
            ok=True, key="b" * 64, output=b"//\n.version 9.0\n")
        call = self.compile(mode="-ptx")
        self.assertEqual(call.rc, 0, call.stderr)
        self.assertEqual(self.service.requests[0].output, tpjit_pb2.PTX)
        self.assertEqual(call.data(), b"//\n.version 9.0\n")

    def test_compiler_error_status(self):
        self.service.result = tpjit_pb2.CompileResult(
            ok=False, exit_code=2, error="nvcc failed",
            log='kernel.cu(6): error: boom\n\n1 error detected in the '
                'compilation of "kernel.cu".\n')
        call = self.compile()
        self.assertEqual(call.rc, 2)
        self.assertIsNone(call.output)
        lines = call.stderr.splitlines()
        self.assertRegex(lines[0], r"^/\S+/kernel\.cu\(6\): error: boom$")
        self.assertRegex(lines[2], r'compilation of "/\S+/kernel\.cu"\.$')


if __name__ == "__main__":
    unittest.main(verbosity=2)
