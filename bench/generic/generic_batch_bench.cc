// Generic batch bench: N distinct instantiations of minitl's kernel
// (tests/generic/testlib) compiled, in each of REPS repetitions (units in an
// order rotated per rep):
//   sequential   `nvcc -cubin` for each source, one after another;
//   parallel     the same on one thread per core, each running nvcc (no
//                daemon, no cache);
//   daemon_cold  one Compile batch to a fresh, running tpjitd (empty cache:
//                keys from source and options, no nvcc run for a key; the
//                compiles sharded over its worker processes, procs = cores);
//   daemon_warm  the same batch again (every source a cache hit);
// and daemon_start, spawn to health SERVING (polled every 100 ms).
// Prints one JSON line per run: {"rep", "row", "seconds"}.
//   generic_batch_bench [N] [REPS] [NVCC]
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "src/compile/nvcc.h"

namespace {

// The environment's TPJITD and TPJIT_MINITL_DIR (a staged copy on another
// machine) or the build's paths.
std::string FromEnv(const char* name, const char* built) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : built;
}

}  // namespace

#define TPJITD_BINARY FromEnv("TPJITD", TPJITD_BUILT)
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

struct Setup {
  std::string dir, include, nvcc;
  int n = 0;
  std::vector<std::string> options = {"--expt-relaxed-constexpr"};
};

bool CompileOne(const Setup& s, int i) {
  tpjit::NvccInput in;
  in.nvcc = s.nvcc;
  in.source_name = absl::StrCat("k", i, ".cu");
  in.source = Kernel(i);
  in.arch = "sm_90a";
  in.options = s.options;
  in.include_dirs = {s.include};
  in.timeout_seconds = 300;
  auto out = tpjit::NvccCompile(in);
  if (!out.ok() || out->exit_code != 0) {
    std::cerr << "nvcc failed: " << out.status() << "\n";
    return false;
  }
  return true;
}

// `threads` threads take the next source as they finish one; each runs nvcc
// (a child process) for it. Seconds, or -1 on a failure.
double NvccPool(const Setup& s, int threads) {
  std::atomic<int> next{0};
  std::atomic<bool> ok{true};
  const absl::Time start = absl::Now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i; (i = next++) < s.n;) ok = CompileOne(s, i) && ok;
    });
  }
  for (auto& t : pool) t.join();
  return ok ? absl::ToDoubleSeconds(absl::Now() - start) : -1;
}

tpjit::v1::CompileRequest Batch(const Setup& s) {
  tpjit::v1::CompileRequest request;
  request.set_backend(tpjit::v1::NVCC);
  request.set_arch("sm_90a");
  request.add_include_dirs(s.include);
  for (const auto& o : s.options) request.add_options(o);
  for (int i = 0; i < s.n; ++i) {
    auto* src = request.add_sources();
    src->set_name(absl::StrCat("k", i, ".cu"));
    src->set_source(Kernel(i));
  }
  return request;
}

// One Compile call: seconds, or -1 unless every source is ok and a hit
// exactly when `hits`.
double Compile(tpjit::testing::Daemon& daemon, const Setup& s, bool hits) {
  grpc::ClientContext ctx;
  tpjit::v1::CompileResponse response;
  const absl::Time start = absl::Now();
  grpc::Status st = daemon.stub().Compile(&ctx, Batch(s), &response);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  int ok = 0, hit = 0;
  for (const auto& r : response.results()) {
    ok += r.ok();
    hit += r.cache_hit();
    if (!r.ok()) std::cerr << r.name() << ": " << r.error() << "\n";
  }
  if (!st.ok() || ok != s.n || hit != (hits ? s.n : 0)) {
    std::cerr << "batch: " << st.error_message() << " ok=" << ok
              << " hits=" << hit << "\n";
    return -1;
  }
  return seconds;
}

void Print(int rep, const char* row, double seconds) {
  std::cout << absl::StrFormat(
                   "{\"rep\": %d, \"row\": \"%s\", \"seconds\": %.4f}\n", rep,
                   row, seconds)
            << std::flush;
}

// A fresh tpjitd (own empty cache): the batch cold, then again (all hits).
bool DaemonRows(const Setup& s, int rep) {
  const std::string dir = absl::StrCat(s.dir, "/daemon", rep);
  fs::create_directories(dir);
  const absl::Time spawn = absl::Now();
  tpjit::testing::Daemon daemon(
      dir, {"--include-allowlist", s.dir + "/allowed", "--nvcc", s.nvcc});
  if (!daemon.WaitServing()) {
    std::cerr << "tpjitd did not start in 60 s; its log:\n"
              << daemon.Log() << "\n";
    return false;
  }
  Print(rep, "daemon_start", absl::ToDoubleSeconds(absl::Now() - spawn));
  const double cold = Compile(daemon, s, false);
  if (cold < 0) return false;
  Print(rep, "daemon_cold", cold);
  const double warm = Compile(daemon, s, true);
  if (warm < 0) return false;
  Print(rep, "daemon_warm", warm);
  return true;
}

// Each rep runs the three units (sequential, parallel, daemon cold + warm)
// once, in an order rotated by one per rep.
int Run(int n, int reps, const std::string& nvcc) {
  tpjit::testing::TempDir dir;
  Setup s{dir.path(), dir.path() + "/allowed/include", nvcc, n};
  fs::create_directories(s.include);
  // The compile sandbox's user (nobody when tpjitd runs as root) reads them.
  fs::permissions(dir.path(), fs::perms(0755));
  fs::permissions(dir.path() + "/allowed", fs::perms(0755));
  fs::copy(FromEnv("TPJIT_MINITL_DIR", TPJIT_MINITL_BUILT) + "/include",
           s.include, fs::copy_options::recursive);
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  for (int rep = 0; rep < reps; ++rep) {
    for (int u = 0; u < 3; ++u) {
      switch ((u + rep) % 3) {
        case 0: {
          const double t = NvccPool(s, 1);
          if (t < 0) return 1;
          Print(rep, "sequential", t);
          break;
        }
        case 1: {
          const double t = NvccPool(s, cores);
          if (t < 0) return 1;
          Print(rep, "parallel", t);
          break;
        }
        default:
          if (!DaemonRows(s, rep)) return 1;
      }
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 16;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 5;
  const std::string nvcc = argc > 3 ? argv[3] : "/usr/local/cuda/bin/nvcc";
  return Run(n, reps, nvcc);
}
