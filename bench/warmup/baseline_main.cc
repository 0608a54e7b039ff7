// tpjit_bench_baseline: today's warm-up without tpjitd, as one rank runs it.
// Walks the M list of every shape in order (FULL or FAST) and collects the
// kernel the heuristic picks for each M, once per kernel (an in-process
// memo, like a JIT library's). Then, per distinct kernel in first-sight order:
//   - with --cache-dir, reads DIR/<key>.cubin when present (the status quo
//     warm: a restarted server over its own populated cache);
//   - otherwise compiles it with NVRTC: in this process, one after another
//     (workers 0, the default), or on N forked worker processes that take
//     the next kernel as they finish one (--workers N: SGLang's compile
//     workers over the deduplicated configs); with --cache-dir the cubin is
//     then written there (temp file, rename), and forked workers' cubins
//     are read back into this process once all are done.
// With --wait-go it prints "ready" once it has read the spec and starts the
// clock when a line arrives on stdin (so several ranks start together); the
// clock covers the heuristic over every M, the walk and the compiles/loads.
// Prints one JSON object: wall seconds, compiles, hits, the CPU-seconds of
// every compile, and the CLOCK_MONOTONIC time it ended (end_monotonic) so a
// driver can time several processes together.
//   tpjit_bench_baseline SPEC FULL|FAST [--workers N] [--cache-dir DIR]
//                        [--wait-go]
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "cli/spec_file.h"
#include "nlohmann/json.hpp"
#include "src/common/digest.h"
#include "src/compile/kernel_source.h"
#include "src/compile/nvrtc_compiler.h"
#include "src/plan/m_list.h"
#include "src/plan/planner.h"
#include "src/plan/spec.h"

namespace {

struct Args {
  std::string spec, policy, cache_dir;
  int workers = 0;
  bool wait_go = false;
};

struct Result {  // one kernel
  double wall = 0, cpu = 0;
  int state = 0;  // 0 pending, 1 compiled, 2 cache hit, -1 failed
};

double ClockSeconds(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

bool ParseArgs(int argc, char** argv, Args* a) {
  if (argc < 3) return false;
  a->spec = argv[1];
  a->policy = argv[2];
  for (int i = 3; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--wait-go") {
      a->wait_go = true;
    } else if (f == "--workers" && i + 1 < argc) {
      a->workers = std::atoi(argv[++i]);
    } else if (f == "--cache-dir" && i + 1 < argc) {
      a->cache_dir = argv[++i];
    } else {
      return false;
    }
  }
  return true;
}

// The distinct kernels of the M walk in first-sight order, and the M runs.
std::vector<int> FirstSight(const tpjit::v1::WarmupSpec& spec,
                            const tpjit::Plan& plan,
                            const std::vector<int64_t>& values,
                            int64_t* m_runs) {
  std::vector<int> order;
  std::set<int> seen;
  for (int s = 0; s < spec.shapes_size(); ++s) {
    const bool contig =
        spec.shapes(s).family().find("contig") != std::string::npos;
    for (int64_t m : values) {
      if (contig && m % 128 != 0) continue;
      ++*m_runs;
      auto k = plan.Lookup(s, m);
      if (k.ok() && seen.insert(*k).second) order.push_back(*k);
    }
  }
  return order;
}

// The status quo's cache key: SHA-256 of the source digest, the kernel and
// its options (DeepGEMM hashes its generated code and flags likewise).
std::string CachePath(const std::string& dir, const tpjit::KernelSource& s) {
  const std::string key =
      tpjit::Sha256Hex(s.family_digest + "\n" + s.name_expression + "\n" +
                       absl::StrJoin(s.options, " "));
  return dir + "/" + key + ".cubin";
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return !out->empty();
}

bool WriteFile(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!(out << bytes)) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

// Loads or compiles one kernel into `r`; the cubin is kept in `held`.
void Warm(const tpjit::KernelSpec& ks, const std::string& cache_dir, Result* r,
          std::string* held) {
  auto source = tpjit::MakeKernelSource(ks);
  if (!source.ok()) {
    r->state = -1;
    return;
  }
  const std::string path =
      cache_dir.empty() ? "" : CachePath(cache_dir, *source);
  if (!path.empty() && ReadFile(path, held)) {
    r->state = 2;
    return;
  }
  const double cpu0 = ClockSeconds(CLOCK_PROCESS_CPUTIME_ID);
  tpjit::NvrtcCompiler compiler;
  auto out = compiler.Compile(tpjit::ToCompileRequest(*source));
  r->cpu = ClockSeconds(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
  if (!out.ok()) {
    std::cerr << out.status() << "\n";
    r->state = -1;
    return;
  }
  r->wall = out->wall_seconds;
  r->state = 1;
  *held = std::move(out->cubin);
  if (!path.empty() && !WriteFile(path, *held)) r->state = -1;
}

// Runs Warm over `order` on `workers` forked processes that share one
// counter; the results land in shared memory. NVRTC is never loaded in this
// process before the fork.
bool WarmForked(const tpjit::Plan& plan, const std::vector<int>& order,
                const Args& a, std::vector<Result>* results) {
  const size_t n = order.size();
  const size_t bytes = sizeof(std::atomic<int>) + n * sizeof(Result);
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return false;
  auto* next = new (mem) std::atomic<int>(0);
  auto* shared = reinterpret_cast<Result*>(static_cast<char*>(mem) +
                                           sizeof(std::atomic<int>));
  for (size_t i = 0; i < n; ++i) new (&shared[i]) Result();
  for (int w = 0; w < a.workers; ++w) {
    if (fork() != 0) continue;
    std::string held;
    for (int i; (i = next->fetch_add(1)) < static_cast<int>(n);) {
      Warm(plan.kernels[order[i]].spec, a.cache_dir, &shared[i], &held);
    }
    _exit(0);
  }
  bool ok = true;
  for (int status, w = 0; w < a.workers; ++w) {
    ok = wait(&status) > 0 && WIFEXITED(status) && ok;
  }
  results->assign(shared, shared + n);
  munmap(mem, bytes);
  return ok;
}

// Reads every kernel's cubin from `dir` into `held` (after forked workers
// wrote them there, as a rank loads what its compile workers made).
bool LoadAll(const tpjit::Plan& plan, const std::vector<int>& order,
             const std::string& dir, std::vector<std::string>* held) {
  for (size_t i = 0; i < order.size(); ++i) {
    auto source = tpjit::MakeKernelSource(plan.kernels[order[i]].spec);
    if (!source.ok() || !ReadFile(CachePath(dir, *source), &(*held)[i])) {
      return false;
    }
  }
  return true;
}

nlohmann::json Report(const Args& a, const tpjit::Plan& plan,
                      const std::vector<int>& order,
                      const std::vector<Result>& results, double wall,
                      int64_t m_runs) {
  nlohmann::json kernels = nlohmann::json::array();
  int compiles = 0, hits = 0;
  double cpu = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const Result& r = results[i];
    compiles += r.state == 1;
    hits += r.state == 2;
    cpu += r.cpu;
    if (r.state != 1) continue;
    kernels.push_back({{"kernel", tpjit::ToString(plan.kernels[order[i]].spec)},
                       {"wall_seconds", r.wall},
                       {"cpu_seconds", r.cpu}});
  }
  return {{"policy", a.policy},
          {"workers", a.workers},
          {"wall_seconds", wall},
          {"end_monotonic", ClockSeconds(CLOCK_MONOTONIC)},
          {"compiles", compiles},
          {"cache_hits", hits},
          {"compile_cpu_seconds", cpu},
          {"m_runs", m_runs},
          {"kernels", kernels}};
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!ParseArgs(argc, argv, &a)) {
    std::cerr << "usage: tpjit_bench_baseline SPEC FULL|FAST [--workers N] "
                 "[--cache-dir DIR] [--wait-go]\n";
    return 2;
  }
  auto spec = tpjit::cli::ReadSpecFile(a.spec);
  if (!spec.ok()) {
    std::cerr << spec.status() << "\n";
    return 2;
  }
  tpjit::v1::MPolicy::Kind kind;
  if (!tpjit::v1::MPolicy::Kind_Parse(a.policy, &kind)) return 2;
  spec->mutable_m_policy()->set_kind(kind);
  if (a.wait_go) {
    std::cout << "ready" << std::endl;
    std::string go;
    std::getline(std::cin, go);
  }
  const auto start = std::chrono::steady_clock::now();
  // The plan gives, per shape and M, the kernel the heuristic picks: inside
  // the clock, as the status quo evaluates its heuristic for every M.
  auto plan = tpjit::PlanWarmup(*spec);
  auto values = tpjit::PolicyMValues(spec->m_policy());
  if (!plan.ok() || !values.ok()) return 1;
  int64_t m_runs = 0;
  const std::vector<int> order = FirstSight(*spec, *plan, *values, &m_runs);
  std::vector<Result> results(order.size());
  std::vector<std::string> held(order.size());  // cubins kept in memory
  if (a.workers > 0) {
    if (!WarmForked(*plan, order, a, &results)) return 1;
    if (!a.cache_dir.empty() && !LoadAll(*plan, order, a.cache_dir, &held)) {
      return 1;
    }
  } else {
    for (size_t i = 0; i < order.size(); ++i) {
      Warm(plan->kernels[order[i]].spec, a.cache_dir, &results[i], &held[i]);
    }
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  for (const Result& r : results) {
    if (r.state < 0) return 1;
  }
  std::cout << Report(a, *plan, order, results, wall, m_runs).dump() << "\n";
  return 0;
}
