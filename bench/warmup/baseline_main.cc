// tpjit_bench_baseline: today's warm-up, as one rank runs it. Walks the M
// list of every shape in order (FULL or FAST) and, the first time the
// heuristic picks a configuration, compiles that kernel with NVRTC in this
// process (an in-process memo, like a JIT library's), one after another.
// Prints one JSON object: wall seconds, compiles, per-kernel seconds.
#include <time.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/spec_file.h"
#include "nlohmann/json.hpp"
#include "src/compile/kernel_source.h"
#include "src/compile/nvrtc_compiler.h"
#include "src/plan/m_list.h"
#include "src/plan/planner.h"
#include "src/plan/spec.h"

namespace {

double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: tpjit_bench_baseline SPEC FULL|FAST\n";
    return 2;
  }
  auto spec = tpjit::cli::ReadSpecFile(argv[1]);
  if (!spec.ok()) {
    std::cerr << spec.status() << "\n";
    return 2;
  }
  tpjit::v1::MPolicy::Kind kind;
  if (!tpjit::v1::MPolicy::Kind_Parse(argv[2], &kind)) return 2;
  spec->mutable_m_policy()->set_kind(kind);
  // The plan gives, per shape and M, the kernel the heuristic picks.
  auto plan = tpjit::PlanWarmup(*spec);
  auto values = tpjit::PolicyMValues(spec->m_policy());
  if (!plan.ok() || !values.ok()) return 1;
  tpjit::NvrtcCompiler compiler;
  std::map<int, double> compiled;  // the in-process memo
  nlohmann::json kernels = nlohmann::json::array();
  const auto start = std::chrono::steady_clock::now();
  int64_t m_runs = 0;
  for (int s = 0; s < spec->shapes_size(); ++s) {
    const bool contig =
        spec->shapes(s).family().find("contig") != std::string::npos;
    for (int64_t m : *values) {
      if (contig && m % 128 != 0) continue;
      ++m_runs;
      auto k = plan->Lookup(s, m);
      if (!k.ok() || compiled.count(*k)) continue;
      const tpjit::KernelSpec& ks = plan->kernels[*k].spec;
      auto source = tpjit::MakeKernelSource(ks);
      if (!source.ok()) return 1;
      const double cpu0 = CpuSeconds();
      auto out = compiler.Compile(tpjit::ToCompileRequest(*source));
      if (!out.ok()) {
        std::cerr << out.status() << "\n";
        return 1;
      }
      compiled[*k] = out->wall_seconds;
      kernels.push_back({{"kernel", tpjit::ToString(ks)},
                         {"wall_seconds", out->wall_seconds},
                         {"cpu_seconds", CpuSeconds() - cpu0}});
    }
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  nlohmann::json j = {{"policy", argv[2]},
                      {"wall_seconds", wall},
                      {"compiles", compiled.size()},
                      {"m_runs", m_runs},
                      {"kernels", kernels}};
  std::cout << j.dump() << "\n";
  return 0;
}
