"""The Python client's lookup against the C++ one (src/plan/manifest.cc) on
the same manifests: the shipped specs, planned with the FULL and the FAST
policy by manifest_lookup (tests/client/manifest_lookup_main.cc), every
shape and every M in 1..m_max. Needs TPJIT_MANIFEST_LOOKUP and
TPJIT_SPECS_DIR."""
import os
import subprocess
import tempfile
import unittest

import tpjit
from tpjit.v1 import tpjit_pb2


class SameLookupTest(unittest.TestCase):
    def check(self, spec, policy):
        with tempfile.TemporaryDirectory(prefix="tpjit-manifest-") as d:
            manifest_path = os.path.join(d, "m.pb")
            lookups_path = os.path.join(d, "lookups.txt")
            subprocess.run([os.environ["TPJIT_MANIFEST_LOOKUP"],
                            os.path.join(os.environ["TPJIT_SPECS_DIR"], spec),
                            policy, manifest_path, lookups_path], check=True)
            manifest = tpjit_pb2.Manifest()
            with open(manifest_path, "rb") as f:
                manifest.ParseFromString(f.read())
            aligned = [s.m_alignment for s in manifest.shapes]
            self.assertIn(128, aligned)  # the specs have contig shapes
            checked = 0
            with open(lookups_path) as f:
                for line in f:
                    shape, m, want = (int(v) for v in line.split())
                    try:
                        got = tpjit.lookup(manifest, shape, m)
                    except KeyError:
                        got = -1
                    self.assertEqual(got, want, (spec, policy, shape, m))
                    checked += 1
            self.assertEqual(checked, len(manifest.shapes) * manifest.m_max)

    def test_qwen_full(self):
        self.check("qwen3-30b-a3b-tp4.json", "FULL")

    def test_qwen_fast(self):
        self.check("qwen3-30b-a3b-tp4.json", "FAST")

    def test_deepseek_fast(self):
        self.check("deepseek-v3-tp8.json", "FAST")


if __name__ == "__main__":
    unittest.main()
