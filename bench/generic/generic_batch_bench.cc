// Generic batch bench: N distinct instantiations of minitl's kernel
// (tests/generic/testlib) compiled (1) with `nvcc -cubin` one after another in
// this process and (2) as one Compile batch through a fresh tpjitd (cold
// cache: keys from source and options, compiles sharded over the slots'
// workers), then (3) the same batch again (warm: all cache hits). Prints a
// Markdown table row.
//   generic_batch_bench [N] [NVCC]
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "daemon/nvcc.h"
#include "tests/integration/daemon_harness.h"

namespace {

namespace fs = std::filesystem;

std::string Kernel(int i) {
  const int unroll = 1 << (i % 4);      // 1, 2, 4, 8
  const int block = 64 << (i / 4 % 4);  // 64 .. 512
  const int salt = i / 16;              // beyond 16: another constant
  return absl::StrCat(
      "#include \"minitl/minitl.cuh\"\n"
      "extern \"C\" __global__ void minitl_acc(float* y, const float* x, "
      "int n) {\n  minitl::Accumulate<float, ",
      unroll, ", ", block, ">(y, x, n + ", salt, ");\n}\n");
}

int Run(int n, const std::string& nvcc) {
  tpjit::testing::TempDir dir;
  const std::string include = dir.path() + "/allowed/include";
  fs::create_directories(include);
  fs::copy(std::string(TPJIT_MINITL_DIR) + "/include", include,
           fs::copy_options::recursive);
  const std::vector<std::string> options = {"--expt-relaxed-constexpr"};

  absl::Time start = absl::Now();
  for (int i = 0; i < n; ++i) {
    tpjit::NvccInput in;
    in.nvcc = nvcc;
    in.source_name = absl::StrCat("k", i, ".cu");
    in.source = Kernel(i);
    in.arch = "sm_90a";
    in.options = options;
    in.include_dirs = {include};
    in.timeout_seconds = 300;
    auto out = tpjit::NvccCompile(in);
    if (!out.ok()) {
      std::cerr << "nvcc failed: " << out.status() << "\n";
      return 1;
    }
  }
  const double sequential = absl::ToDoubleSeconds(absl::Now() - start);

  tpjit::testing::Daemon daemon(
      dir.path(),
      {"--include-allowlist", dir.path() + "/allowed", "--nvcc", nvcc});
  if (!daemon.WaitServing()) {
    std::cerr << "tpjitd did not start\n";
    return 1;
  }
  tpjit::v1::CompileRequest request;
  request.set_backend(tpjit::v1::NVCC);
  request.set_arch("sm_90a");
  request.add_include_dirs(include);
  for (const auto& o : options) request.add_options(o);
  for (int i = 0; i < n; ++i) {
    auto* s = request.add_sources();
    s->set_name(absl::StrCat("k", i, ".cu"));
    s->set_source(Kernel(i));
  }
  double batch[2];
  for (int round = 0; round < 2; ++round) {
    grpc::ClientContext ctx;
    tpjit::v1::CompileResponse response;
    start = absl::Now();
    grpc::Status st = daemon.stub().Compile(&ctx, request, &response);
    batch[round] = absl::ToDoubleSeconds(absl::Now() - start);
    int ok = 0, hits = 0;
    for (const auto& r : response.results()) {
      ok += r.ok();
      hits += r.cache_hit();
      if (!r.ok()) std::cerr << r.name() << ": " << r.error() << "\n";
    }
    if (!st.ok() || ok != n || hits != (round == 0 ? 0 : n)) {
      std::cerr << "batch round " << round << ": " << st.error_message()
                << " ok=" << ok << " hits=" << hits << "\n";
      return 1;
    }
  }
  std::cout << absl::StrFormat("| %d | %u | %.1f | %.1f | %.2fx | %.2f |\n", n,
                               std::thread::hardware_concurrency(), sequential,
                               batch[0], sequential / batch[0], batch[1]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 16;
  const std::string nvcc = argc > 2 ? argv[2] : "/usr/local/cuda/bin/nvcc";
  return Run(n, nvcc);
}
