// CI test (no GPU): every distinct kernel of the shipped specs (FULL policy,
// as planned by PlanWarmup) compiles with NVRTC for its arch, and each cubin
// is a well-formed CUDA ELF holding its entry symbol. NVRTC does not scale
// across threads, so the kernels are compiled by a pool of forked child
// processes (TPJIT_COMPILE_PROCS, default: the number of cores), each
// reporting back through a pipe. Prints per-kernel seconds (median, max).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "src/compile/cubin.h"
#include "src/compile/kernel_source.h"
#include "src/compile/nvrtc_compiler.h"
#include "src/plan/planner.h"
#include "src/plan/spec.h"

namespace tpjit {
namespace {

struct Outcome {
  bool ok = false;
  double wall = 0, cpu = 0;
  int registers = -1;
  int frame_bytes = -1;
  int64_t cubin_bytes = 0;
  std::string error;
};

std::vector<KernelSpec> SpecKernels() {
  std::map<std::string, KernelSpec> kernels;
  for (const char* name : {"deepseek-v3-tp8.json", "qwen3-30b-a3b-tp4.json"}) {
    std::ifstream f(std::string(TPJIT_SPECS_DIR) + "/" + name);
    std::stringstream json;
    json << f.rdbuf();
    absl::StatusOr<v1::WarmupSpec> spec = ParseSpecJson(json.str());
    EXPECT_TRUE(spec.ok()) << name << ": " << spec.status();
    if (!spec.ok()) continue;
    spec->mutable_m_policy()->set_kind(v1::MPolicy::FULL);
    absl::StatusOr<Plan> plan = PlanWarmup(*spec);
    EXPECT_TRUE(plan.ok()) << name << ": " << plan.status();
    if (!plan.ok()) continue;
    for (const PlannedKernel& k : plan->kernels) {
      kernels[ToString(k.spec)] = k.spec;
    }
  }
  std::vector<KernelSpec> out;
  for (auto& [name, spec] : kernels) out.push_back(spec);
  return out;
}

Outcome CompileOne(const KernelSpec& spec) {
  Outcome o;
  absl::StatusOr<KernelSource> src = MakeKernelSource(spec);
  if (!src.ok()) {
    o.error = std::string(src.status().message());
    return o;
  }
  absl::StatusOr<CompileOutput> out =
      NvrtcCompiler().Compile(ToCompileRequest(*src));
  if (!out.ok()) {
    o.error = std::string(out.status().message());
    return o;
  }
  o.wall = out->wall_seconds;
  o.cpu = out->cpu_seconds;
  o.cubin_bytes = out->cubin.size();
  absl::StatusOr<CubinKernelInfo> info =
      InspectCubin(out->cubin, out->lowered_names[0]);
  if (!info.ok()) {
    o.error = std::string(info.status().message());
    return o;
  }
  o.registers = info->registers;
  o.frame_bytes = info->frame_bytes;
  o.ok = true;
  return o;
}

// Child side: compiles `indices` and writes one record per kernel:
// "<index> <ok> <wall> <cpu> <regs> <frame> <bytes> <error length>\n<error>".
[[noreturn]] void ChildMain(const std::vector<KernelSpec>& kernels,
                            const std::vector<size_t>& indices, int fd) {
  for (size_t i : indices) {
    const Outcome o = CompileOne(kernels[i]);
    const std::string rec = absl::StrFormat(
        "%d %d %.6f %.6f %d %d %d %d\n%s", i, o.ok, o.wall, o.cpu, o.registers,
        o.frame_bytes, o.cubin_bytes, o.error.size(), o.error);
    for (size_t done = 0; done < rec.size();) {
      const ssize_t n = write(fd, rec.data() + done, rec.size() - done);
      if (n <= 0) _exit(3);
      done += n;
    }
  }
  close(fd);
  _exit(0);
}

void ParseRecords(const std::string& data, std::vector<Outcome>& out) {
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) break;
    std::istringstream head(data.substr(pos, nl - pos));
    size_t idx, err_len;
    int ok;
    Outcome o;
    head >> idx >> ok >> o.wall >> o.cpu >> o.registers >> o.frame_bytes >>
        o.cubin_bytes >> err_len;
    o.ok = ok != 0;
    o.error = data.substr(nl + 1, err_len);
    pos = nl + 1 + err_len;
    if (idx < out.size()) out[idx] = o;
  }
}

int Procs() {
  if (const char* env = std::getenv("TPJIT_COMPILE_PROCS")) {
    return std::max(1, std::atoi(env));
  }
  return std::max(2u, std::thread::hardware_concurrency());
}

TEST(SpecKernelsCompileTest, EveryDistinctKernelCompilesToACubin) {
  const std::vector<KernelSpec> kernels = SpecKernels();
  ASSERT_FALSE(kernels.empty());
  // Longest estimated first, each to the least-loaded child (LPT).
  std::vector<size_t> order(kernels.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto est = [&](size_t i) {
    return EstimateCompileSeconds(Info(kernels[i].family), kernels[i].config);
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return est(a) > est(b); });
  const int procs = std::min<int>(Procs(), kernels.size());
  std::vector<std::vector<size_t>> shards(procs);
  std::vector<double> load(procs, 0);
  for (size_t i : order) {
    const int s = std::min_element(load.begin(), load.end()) - load.begin();
    shards[s].push_back(i);
    load[s] += est(i);
  }
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::pair<pid_t, int>> children;
  for (int p = 0; p < procs; ++p) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      ChildMain(kernels, shards[p], fds[1]);
    }
    close(fds[1]);
    children.emplace_back(pid, fds[0]);
  }
  std::vector<Outcome> outcomes(kernels.size());
  for (auto& [pid, fd] : children) {
    std::string data;
    char buf[65536];
    for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) data.append(buf, n);
    close(fd);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "compile process " << pid << " ended with status " << status;
    ParseRecords(data, outcomes);
  }
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::vector<double> walls;
  for (size_t i = 0; i < kernels.size(); ++i) {
    const Outcome& o = outcomes[i];
    EXPECT_TRUE(o.ok) << ToString(kernels[i]) << ": " << o.error;
    if (o.ok) walls.push_back(o.wall);
    std::printf("  %-4s %-70s %6.2fs wall %6.2fs cpu regs=%d stack=%d %lld B\n",
                o.ok ? "ok" : "FAIL", ToString(kernels[i]).c_str(), o.wall,
                o.cpu, o.registers, o.frame_bytes,
                static_cast<long long>(o.cubin_bytes));
  }
  std::sort(walls.begin(), walls.end());
  if (!walls.empty()) {
    std::printf(
        "%zu kernels on %d processes in %.1f s; per kernel wall: median "
        "%.2f s, max %.2f s\n",
        kernels.size(), procs, total, walls[walls.size() / 2], walls.back());
    RecordProperty("kernels", static_cast<int>(kernels.size()));
    RecordProperty("median_s",
                   absl::StrFormat("%.2f", walls[walls.size() / 2]));
    RecordProperty("max_s", absl::StrFormat("%.2f", walls.back()));
  }
}

}  // namespace
}  // namespace tpjit
