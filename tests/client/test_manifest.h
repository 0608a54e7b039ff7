// A small hand-made manifest for client tests: shape 0 is a plain GEMM with
// three M ranges tiling 1..m_max, shape 1 a contig-grouped GEMM whose ranges
// cover multiples of 128 only. Kernel i's cubin is CubinFor(i).
#ifndef TPJIT_TESTS_CLIENT_TEST_MANIFEST_H_
#define TPJIT_TESTS_CLIENT_TEST_MANIFEST_H_

#include <string>

#include "src/common/digest.h"
#include "tpjit/v1/tpjit.pb.h"

namespace tpjit::testing {

inline std::string CubinFor(int kernel, size_t bytes = 3000) {
  std::string out(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) {
    out[i] = static_cast<char>((i * 31 + kernel * 7) & 0xff);
  }
  return out;
}

inline tpjit::v1::Manifest TestManifest(int64_t m_max = 16384) {
  tpjit::v1::Manifest m;
  m.set_plan_digest("plan-digest");
  m.set_arch("sm_90a");
  m.set_m_max(m_max);
  m.set_digest("manifest-digest-0123");
  for (int i = 0; i < 3; ++i) {
    auto* k = m.add_kernels();
    k->set_key("key" + std::to_string(i));
    k->set_family("fp8_gemm_nt");
    k->set_lowered_name("_Z6kernelILi" + std::to_string(i) + "EEvv");
    const std::string cubin = CubinFor(i);
    k->set_cubin_bytes(static_cast<int64_t>(cubin.size()));
    k->set_cubin_sha256(Sha256Hex(cubin));
  }
  auto* plain = m.add_shapes();
  plain->mutable_shape()->set_family("fp8_gemm_nt");
  plain->mutable_shape()->set_n(4096);
  plain->mutable_shape()->set_k(7168);
  auto add = [](tpjit::v1::ManifestShape* s, int64_t lo, int64_t hi, int k) {
    auto* r = s->add_ranges();
    r->set_lo(lo);
    r->set_hi(hi);
    r->set_kernel(k);
  };
  add(plain, 1, 64, 0);
  add(plain, 65, 4000, 1);
  add(plain, 4001, m_max, 2);
  auto* contig = m.add_shapes();
  contig->mutable_shape()->set_family("fp8_grouped_gemm_nt_contig");
  contig->mutable_shape()->set_n(4096);
  contig->mutable_shape()->set_k(7168);
  contig->mutable_shape()->set_num_groups(32);
  contig->set_m_alignment(128);
  add(contig, 128, 1024, 1);
  add(contig, 1152, m_max, 2);
  return m;
}

}  // namespace tpjit::testing

#endif  // TPJIT_TESTS_CLIENT_TEST_MANIFEST_H_
