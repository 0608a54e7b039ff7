// manifest_lookup SPEC.json POLICY OUT.manifest OUT.lookups: plans the spec
// with its M policy replaced by POLICY (FULL or FAST), builds its manifest
// with placeholder cubins (src/plan/manifest.h), writes it (binary proto),
// and writes "shape m kernel" for every shape and every M in 1..m_max
// (kernel -1: not covered), as the C++ LookupKernel answers. The Python
// client's lookup is tested against these lines (python_manifest_test.py).
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "src/plan/manifest.h"
#include "src/plan/planner.h"
#include "src/plan/spec.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: manifest_lookup SPEC.json FULL|FAST OUT.manifest "
                 "OUT.lookups\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  std::stringstream text;
  text << in.rdbuf();
  auto spec = tpjit::ParseSpecJson(text.str());
  if (!spec.ok()) {
    std::cerr << spec.status() << "\n";
    return 1;
  }
  tpjit::v1::MPolicy::Kind kind;
  if (!tpjit::v1::MPolicy::Kind_Parse(argv[2], &kind)) return 2;
  spec->mutable_m_policy()->set_kind(kind);
  auto plan = tpjit::PlanWarmup(*spec);
  if (!plan.ok()) {
    std::cerr << plan.status() << "\n";
    return 1;
  }
  std::vector<tpjit::KernelBuild> builds(plan->kernels.size());
  for (size_t i = 0; i < builds.size(); ++i) {
    builds[i].key = std::string(64, "0123456789abcdef"[i % 16]);
    builds[i].cubin = absl::StrCat("cubin ", i);
  }
  const tpjit::v1::Manifest manifest = tpjit::BuildManifest(*plan, builds);
  std::ofstream(argv[3], std::ios::binary) << manifest.SerializeAsString();
  std::ofstream out(argv[4]);
  for (int s = 0; s < manifest.shapes_size(); ++s) {
    for (int64_t m = 1; m <= manifest.m_max(); ++m) {
      auto k = tpjit::LookupKernel(manifest, s, m);
      out << s << " " << m << " " << (k.ok() ? *k : -1) << "\n";
    }
  }
  return out ? 0 : 1;
}
