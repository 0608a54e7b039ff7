"""The Python barrier (tpjit.barrier, Client.barrier) on Debian's python3:
against a real tpjitd ($TPJITD) all ranks meet, a late rank is named with
what it last did (as `tpjit barrier` prints it), within the timeout plus the
margin; the split warm-up's barrier phase names late ranks too or goes on
when told; with no daemon the call fails fast and the warm-up goes on."""

import concurrent.futures
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import grpc

import tpjit


@unittest.skipUnless(os.environ.get("TPJITD"), "set $TPJITD to the daemon")
class RealBarrierTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="tpjit-py-barrier-")
        cls.socket = os.path.join(cls.dir, "tpjitd.sock")
        cls.log = open(os.path.join(cls.dir, "tpjitd.log"), "w")
        cls.proc = subprocess.Popen(
            [os.environ["TPJITD"], "--socket", cls.socket, "--cache-dir",
             os.path.join(cls.dir, "cache"), "--gpus", "0", "--slots", "1",
             "--procs", "1"], stdout=cls.log, stderr=subprocess.STDOUT)
        with tpjit.Client(cls.socket, connect_timeout=30) as c:
            deadline = time.monotonic() + 60
            while not c.serving() and time.monotonic() < deadline:
                time.sleep(0.1)

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(timeout=30)
        cls.log.close()
        shutil.rmtree(cls.dir)

    def arrive_all(self, group, world, timeout=10.0):
        with concurrent.futures.ThreadPoolExecutor(world) as pool:
            futures = [pool.submit(tpjit.barrier, group, r, world, timeout,
                                   self.socket) for r in range(world)]
            return [f.result() for f in futures]

    def test_all_arrive(self):
        replies = self.arrive_all("all-arrive", 4)
        self.assertEqual({r.epoch for r in replies}, {0})
        replies = self.arrive_all("all-arrive", 4)
        self.assertEqual({r.epoch for r in replies}, {1})

    def test_late_ranks_named(self):
        t0 = time.monotonic()
        with self.assertRaises(tpjit.BarrierTimeout) as cm:
            tpjit.barrier("late-ranks", 1, 3, timeout=1.0, socket=self.socket)
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 1.0 + tpjit.client.BARRIER_RPC_MARGIN)
        e = cm.exception
        self.assertEqual(e.code, grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertEqual(e.late_ranks, [0, 2])
        self.assertEqual(e.epoch, 0)
        text = str(e)
        self.assertIn("timed out after", text)
        self.assertIn("barrier group 'late-ranks' epoch 0", text)
        self.assertIn("; late: rank 0 (", text)
        self.assertIn("never arrived in this group", text)
        self.assertIn("rank 2 (", text)

    def test_late_rank_after_earlier_epoch(self):
        self.arrive_all("seen-before", 2)
        with self.assertRaises(tpjit.BarrierTimeout) as cm:
            tpjit.barrier("seen-before", 0, 2, timeout=0.5,
                          socket=self.socket)
        self.assertEqual(cm.exception.late_ranks, [1])
        self.assertIn("last arrived at epoch 0", str(cm.exception))

    def test_split_warmup_barrier_phase_names_late(self):
        from tpjit.deep_gemm import sweep
        with self.assertRaises(tpjit.BarrierTimeout) as cm:
            sweep._meet(2, 0, None, "sweep-phase", 0.5, None, self.socket)
        self.assertEqual(cm.exception.late_ranks, [1])
        out = sweep._meet(2, 0, None, "sweep-phase-2", 0.3, "continue",
                          self.socket)
        self.assertEqual(out["barrier"], "timeout")
        self.assertEqual(out["late_ranks"], [1])

    def test_bad_rank(self):
        with self.assertRaises(ValueError):
            tpjit.barrier("bad", 3, 3, socket=self.socket)


class NoDaemonBarrierTest(unittest.TestCase):
    def test_unreachable_fails_fast(self):
        d = tempfile.mkdtemp(prefix="tpjit-py-")
        try:
            t0 = time.monotonic()
            with self.assertRaises(tpjit.TpjitError) as cm:
                tpjit.barrier("g", 0, 2, timeout=5.0,
                              socket=os.path.join(d, "nobody.sock"))
            self.assertLess(time.monotonic() - t0, 3.0)
            self.assertEqual(cm.exception.code, grpc.StatusCode.UNAVAILABLE)
            from tpjit.deep_gemm import sweep
            out = sweep._meet(2, 0, None, "g", 1.0, None,
                              os.path.join(d, "nobody.sock"))
            self.assertEqual(out["barrier"], "unavailable")
        finally:
            shutil.rmtree(d)


if __name__ == "__main__":
    unittest.main(verbosity=2)
