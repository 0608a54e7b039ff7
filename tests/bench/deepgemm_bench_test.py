"""bench/deepgemm/bench_deepgemm.py on the CPU: fake torch and DeepGEMM
(tests/bench/fake_gpu, which drive their compiler as DeepGEMM does), a fake
nvcc, cuobjdump and nvidia-smi (2 GPUs), the real tpjitd and tpjit (from
$TPJITD, $TPJIT_CLI). Checks the rows, the nvcc counting, the bit-identity
and SASS checks, raw.json and table.md, and that a "tpjit-nvcc" that changes
the machine code makes the run fail."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FAKE = os.path.join(HERE, "fake_gpu")
DRIVER = os.path.join(ROOT, "bench", "deepgemm", "bench_deepgemm.py")


@unittest.skipUnless(os.environ.get("TPJITD") and os.environ.get("TPJIT_CLI"),
                     "set $TPJITD and $TPJIT_CLI")
class BenchDriverTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tpjit-dgbench-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def run_driver(self, *extra, wrapper=None):
        out = os.path.join(self.dir, "out")
        env = dict(os.environ, PATH=os.path.join(FAKE, "bin") + os.pathsep +
                   os.environ["PATH"],
                   PYTHONPATH=FAKE + os.pathsep +
                   os.path.join(ROOT, "client", "python"),
                   DGBENCH_SCRATCH=self.dir, FAKE_NVCC_SECONDS="0.01")
        cmd = [sys.executable, DRIVER, "--spec",
               os.path.join(ROOT, "specs", "deepseek-v3-tp8.json"),
               "--tpjitd", os.environ["TPJITD"], "--tpjit",
               os.environ["TPJIT_CLI"], "--nvcc",
               os.path.join(FAKE, "bin", "nvcc"), "--wrapper",
               wrapper or os.path.join(ROOT, "bench", "deepgemm",
                                       "count_nvcc.py"),
               "--out", out, "--m-max", "200", "--helpers", "1"] + list(extra)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=500)
        raw = None
        if os.path.exists(os.path.join(out, "raw.json")):
            with open(os.path.join(out, "raw.json")) as f:
                raw = json.load(f)
        return proc, raw, out

    def test_all_rows_and_checks(self):
        proc, raw, out = self.run_driver("--shapes", "1,6,8")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        rep = raw["reps"][0]
        sq = rep["status_quo"]
        self.assertEqual(sq["ranks"], 1)
        self.assertGreater(sq["kernels"], 0)
        self.assertEqual(sq["nvcc_runs"], sq["kernels"])  # alone: once each
        self.assertGreater(sq["nvcc_cpu_s"], 0)
        self.assertEqual(rep["naive_parallel"]["ranks"], 2)
        self.assertGreaterEqual(rep["naive_parallel"]["nvcc_runs"],
                                sq["kernels"])
        for row in ("naive_parallel", "tpjit_first", "tpjit_warm",
                    "status_quo_warm"):
            self.assertEqual(rep[row]["kernels"], sq["kernels"], row)
        # Warm status quo: DeepGEMM's own full cache, no compile at all.
        self.assertEqual(rep["status_quo_warm"]["nvcc_runs"], 0)
        self.assertEqual(rep["status_quo_warm"]["ranks"], 1)
        first = rep["tpjit_first"]
        self.assertEqual(set(first["phases"]), {"plan", "discover",
                                                "compile", "barrier",
                                                "finish", "total"})
        self.assertEqual(first["ranks"], 2)
        self.assertIn("compiles", json.dumps(first["tpjitd_after"]))
        # The recipe row runs on a fresh cache (seeded with tpjit_first's
        # recipes when that run recorded any; the fake nvcc records none).
        recipe = rep["tpjit_recipe"]
        self.assertEqual(recipe["ranks"], 2)
        self.assertIn("tpjit-recipe", recipe["tpjitd_after"]["cache_dir"])
        self.assertAlmostEqual(rep["floor"]["sweep_s"],
                               sq["nvcc_cpu_s"] / os.cpu_count())
        v = raw["verify"]
        self.assertTrue(v["ok"], v)
        self.assertGreater(v["outputs_compared"], 0)
        self.assertEqual(v["cubins_same_sass_only"] +
                         v["cubins_byte_identical"], sq["kernels"])
        with open(os.path.join(out, "table.md")) as f:
            table = f.read()
        self.assertIn("status quo", table)
        self.assertIn("**ok**", table)
        self.assertIn("tpjit, recipe on an empty cache | ", table)

    def test_baselines_once_side_by_side_then_tpjit_reps(self):
        proc, raw, out = self.run_driver(
            "--shapes", "2", "--reps", "2", "--baseline-reps", "1",
            "--concurrent-baselines")
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        first, second = raw["reps"]
        self.assertIn("sweep_s", first["status_quo"])
        self.assertIn("sweep_s", first["naive_parallel"])
        self.assertNotIn("status_quo", second)
        self.assertNotIn("naive_parallel", second)
        for row in ("tpjit_first", "tpjit_recipe", "tpjit_warm",
                    "status_quo_warm"):
            self.assertIn("sweep_s", second[row], row)
        # The status quo's cache of rep 0, kept for the checks.
        self.assertEqual(second["status_quo_warm"]["cache_from"],
                         "dg-status-quo")
        self.assertEqual(second["status_quo_warm"]["nvcc_runs"], 0)
        self.assertEqual(raw["summary"]["tpjit_first"]["n"], 2)
        self.assertEqual(raw["summary"]["status_quo"]["n"], 1)
        self.assertTrue(raw["verify"]["ok"], raw["verify"])

    def test_changed_machine_code_fails(self):
        proc, raw, out = self.run_driver(
            "--shapes", "2", "--rows", "status_quo,tpjit_first",
            wrapper=os.path.join(FAKE, "bin", "bad-wrapper"))
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("verification failed", proc.stderr)
        v = raw["verify"]
        self.assertFalse(v["ok"])
        self.assertTrue(v["cubins_sass_differs"])
        self.assertTrue(v["outputs_differ"])

    def test_a_failing_rank_fails_the_run(self):
        env_bad = os.path.join(self.dir, "no-such-wrapper")
        proc, raw, out = self.run_driver(
            "--shapes", "2", "--rows", "status_quo,tpjit_first",
            "--no-verify", wrapper=env_bad)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("tpjit_first", raw["error"])
        rep = raw["reps"][0]
        self.assertIn("sweep_s", rep["status_quo"])  # other rows kept
        self.assertIn("error", rep["tpjit_first"])
        with open(os.path.join(out, "table.md")) as f:
            self.assertIn("FAILED in 1 rep(s)", f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
