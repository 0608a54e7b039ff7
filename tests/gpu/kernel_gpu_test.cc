// GPU correctness test of the seven kernel families: each kernel is compiled
// with NVRTC from the embedded sources, loaded through the driver API and run
// on fresh random inputs against a double-precision CPU reference. Before
// every launch D and guard rows on both sides of it are poisoned (0xff: NaN);
// after it, every element of every valid row must be within
// atol + rtol * |ref| (gemm_host.h), rows the kernel must skip and the guards
// must still hold the poison. D has no leading dimension of its own (row
// stride N), so a write past N lands in the next row (caught by that row's
// element check, or by the poison of a skipped row) or, from the last row,
// in the guard after D; a write past M lands in that guard too (it is longer
// than the largest BM).
// Skips when there is no driver or no device (fails instead under
// TPJIT_REQUIRE_GPU=1, and always on a driver error with a device present).
// TPJIT_GPU_CASES=smoke runs two forced configurations per family (for a
// compute-sanitizer run). Writes a per-kernel table (registers, local memory,
// shared memory, compile seconds, worst error) to $TPJIT_GPU_RESULTS
// (default gpu_results.md); a row says pass only once all its launches were
// checked. PlannedKernelGpuTest runs every kernel the planner picks for the
// shipped specs (specs/, or $TPJIT_SPECS_DIR).
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <ostream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cuda/cuda_loader.h"
#include "client/cuda/gemm_launch.h"
#include "gtest/gtest.h"
#include "src/compile/cubin.h"
#include "src/compile/kernel_source.h"
#include "src/compile/nvrtc_compiler.h"
#include "src/plan/planner.h"
#include "src/plan/spec.h"
#include "tests/gpu/gemm_host.h"
#include "tests/gpu/require_gpu.h"

namespace tpjit {

// Readable test parameters in ctest / gtest output.
void PrintTo(Family family, std::ostream* os) { *os << Info(family).id; }

namespace {

struct Shape {
  int n, k, groups;
};

struct KernelCase {
  KernelSpec spec;
  std::vector<int64_t> ms;  // GemmArgs::m values to run
};

struct ResultRow {
  std::string family, kernel;
  int registers = 0, local_bytes = 0, static_shared = 0, dynamic_shared = 0;
  double compile_wall = 0, compile_cpu = 0, worst_err = 0, worst_ratio = 0;
  std::string ms;
  bool pass = false;
};

std::mutex results_mu;
std::vector<ResultRow>* results = new std::vector<ResultRow>();
std::string* device_name = new std::string();

// Shapes of specs/deepseek-v3-tp8.json and specs/qwen3-30b-a3b-tp4.json.
std::vector<Shape> SpecShapes(Family f) {
  switch (f) {
    case Family::kFp8GemmNt:
      return {{2112, 7168, 1},  {24576, 1536, 1}, {32768, 512, 1},
              {7168, 16384, 1}, {4096, 7168, 1},  {7168, 2048, 1}};
    case Family::kFp8GroupedGemmNtContig:
    case Family::kFp8GroupedGemmNtMasked:
      return {{4096, 7168, 32}, {7168, 2048, 32}};
    case Family::kBf16GemmNt:
      return {{1280, 2048, 1}, {2048, 1024, 1}};
    case Family::kBf16GroupedGemmNtContig:
    case Family::kBf16GroupedGemmNtMasked:
      return {{1536, 2048, 32}, {2048, 768, 32}};
    case Family::kBf16GemmNtF32:
      return {{256, 7168, 1}, {128, 2048, 1}};
  }
  return {};
}

// M values the heuristic is asked about (contig: total rows; masked:
// expected rows = M_max here).
std::vector<int64_t> HeuristicMs(GroupKind g) {
  switch (g) {
    case GroupKind::kNone:
      return {1, 7, 129, 4097};
    case GroupKind::kContig:
      return {1024, 8192};
    case GroupKind::kMasked:
      return {1, 7, 129, 300};
  }
  return {};
}

// Extra configurations (BM, BN, stages) on a shape with an N tail, so every
// tile size is exercised.
struct Forced {
  Shape shape;
  std::vector<std::array<int, 3>> configs;
  std::vector<int64_t> ms;
};

Forced ForcedConfigs(const FamilyInfo& info) {
  const std::vector<std::array<int, 3>> all = {
      {16, 64, 2}, {16, 128, 5}, {32, 64, 3},  {32, 128, 6},
      {64, 64, 2}, {64, 128, 4}, {128, 64, 3}, {128, 128, 2}};
  switch (info.family) {
    case Family::kFp8GemmNt:
      return {{2112, 1024, 1}, all, {1, 7, 129, 1000}};
    case Family::kBf16GemmNt:
      return {{2112, 1024, 1}, all, {1, 7, 129, 1000}};
    case Family::kBf16GemmNtF32:
      return {{192, 1024, 1},
              {{16, 128, 4}, {64, 64, 3}, {128, 128, 2}},
              {1, 77, 300}};
    case Family::kFp8GroupedGemmNtContig:
    case Family::kBf16GroupedGemmNtContig:
      return {{576, 1024, 4}, {{128, 64, 2}, {128, 128, 3}}, {512, 2048}};
    case Family::kFp8GroupedGemmNtMasked:
    case Family::kBf16GroupedGemmNtMasked:
      return {{576, 1024, 4},
              {{16, 64, 3}, {32, 128, 2}, {128, 128, 4}},
              {1, 33, 200}};
  }
  return {};
}

KernelConfig MakeConfig(const FamilyInfo& info, int bm, int bn, int stages) {
  KernelConfig c;
  c.block_m = bm;
  c.block_n = bn;
  c.block_k = info.block_k;
  c.stages = stages;
  c.warps_m = bm == 16 ? 1 : (bm == 128 ? 4 : 2);
  c.warps_n = bm == 16 ? 4 : 2;
  return c;
}

bool SmokeOnly() {
  const char* v = std::getenv("TPJIT_GPU_CASES");
  return v != nullptr && std::string(v) == "smoke";
}

std::vector<KernelCase> CasesFor(const FamilyInfo& info) {
  const bool smoke = SmokeOnly();
  std::map<std::string, KernelCase> cases;
  auto add = [&](const KernelSpec& spec, int64_t m) {
    KernelCase& c = cases[ToString(spec)];
    c.spec = spec;
    if (std::find(c.ms.begin(), c.ms.end(), m) == c.ms.end()) c.ms.push_back(m);
  };
  for (const Shape& s :
       smoke ? std::vector<Shape>{} : SpecShapes(info.family)) {
    for (int64_t m : HeuristicMs(info.group)) {
      Problem p;
      p.m = m;
      p.n = s.n;
      p.k = s.k;
      p.groups = s.groups;
      KernelSpec spec;
      spec.family = info.family;
      spec.n = s.n;
      spec.k = s.k;
      spec.groups = s.groups;
      spec.config = ChooseConfig(info, p);
      add(spec, m);
      if (info.group == GroupKind::kNone && m != 7) add(spec, 7);
    }
  }
  Forced forced = ForcedConfigs(info);
  if (smoke) forced.configs = {forced.configs.front(), forced.configs.back()};
  for (const auto& [bm, bn, stages] : forced.configs) {
    KernelSpec spec;
    spec.family = info.family;
    spec.n = forced.shape.n;
    spec.k = forced.shape.k;
    spec.groups = forced.shape.groups;
    spec.config = MakeConfig(info, bm, bn, stages);
    for (int64_t m : forced.ms) add(spec, m);
  }
  std::vector<KernelCase> out;
  for (auto& [name, c] : cases) out.push_back(std::move(c));
  return out;
}

struct Compiled {
  absl::StatusOr<CompileOutput> output = absl::UnknownError("not compiled");
};

// Compiles every case on `threads` threads (NVRTC is thread-safe; times are
// per compile, wall and CPU of its thread).
std::vector<Compiled> CompileAll(const std::vector<KernelCase>& cases,
                                 int threads) {
  std::vector<Compiled> out(cases.size());
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      NvrtcCompiler compiler;
      for (size_t i; (i = next++) < cases.size();) {
        absl::StatusOr<KernelSource> src = MakeKernelSource(cases[i].spec);
        if (!src.ok()) {
          out[i].output = src.status();
          continue;
        }
        out[i].output = compiler.Compile(ToCompileRequest(*src));
      }
    });
  }
  for (auto& th : pool) th.join();
  return out;
}

// Opens the GPU once for all suites; SetUp skips or fails without one.
class GpuTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (initialized_) return;
    initialized_ = true;
    absl::StatusOr<CudaDriver*> driver = CudaDriver::Real();
    if (!driver.ok()) {
      *setup_ = driver.status();
      return;
    }
    driver_ = *driver;
    absl::StatusOr<CudaContext> ctx = CudaContext::Open(driver_, 0);
    if (!ctx.ok()) {
      *setup_ = ctx.status();
      return;
    }
    if (ctx->compute_capability() < 90) {
      *setup_ = absl::UnavailableError(
          absl::StrFormat("device %s is sm_%d; kernels need sm_90",
                          ctx->device_name(), ctx->compute_capability()));
      return;
    }
    *device_name = ctx->device_name();
    context_ = new CudaContext(std::move(*ctx));
  }

  void SetUp() override {
    // UNAVAILABLE: no driver, no device or too old a device (a skip unless
    // TPJIT_REQUIRE_GPU=1). Anything else is a broken GPU: a failure.
    if (absl::IsUnavailable(*setup_)) {
      TPJIT_SKIP_WITHOUT_GPU("no usable GPU: " << setup_->message());
    }
    ASSERT_TRUE(setup_->ok()) << "GPU set-up failed: " << *setup_;
    ASSERT_TRUE(context_->MakeCurrent().ok());
  }

  static bool initialized_;
  static CudaDriver* driver_;
  static CudaContext* context_;
  static absl::Status* setup_;
};

bool GpuTest::initialized_ = false;
CudaDriver* GpuTest::driver_ = nullptr;
CudaContext* GpuTest::context_ = nullptr;
absl::Status* GpuTest::setup_ = new absl::Status();

// Rows of D's width poisoned before and after D: more than the largest BM
// (128), so a tile that writes past M, or the last row past N, hits them.
constexpr int64_t kGuardRows = 129;

// What one checked launch found.
struct LaunchCheck {
  bool ok = false;
  double rel_err = 0, worst_ratio = 0;
};

// D with its guards, poisoned; the kernel's D starts `guard` bytes in.
struct GuardedD {
  DeviceBuffer buffer;
  size_t guard = 0, d_bytes = 0;
  CUdeviceptr d() const { return buffer.ptr() + guard; }
};

// Launches `kernel` on `args` (D replaced by a guarded, poisoned one), waits,
// and checks D against the reference and the guards against the poison.
void LaunchAndCheck(CudaDriver* driver, const GemmKernel& kernel,
                    const HostGemm& h, GemmArgs args, int threads,
                    LaunchCheck& result) {
  GuardedD d;
  // Rounded up to 256 bytes: D keeps the alignment cuMemAlloc gives.
  d.guard = (static_cast<size_t>(kGuardRows) * h.spec.n * h.out_bytes() + 255) /
            256 * 256;
  d.d_bytes = h.d_bytes();
  absl::StatusOr<DeviceBuffer> buffer =
      DeviceBuffer::Allocate(driver, d.guard * 2 + d.d_bytes);
  ASSERT_TRUE(buffer.ok()) << buffer.status();
  d.buffer = std::move(*buffer);
  ASSERT_TRUE(d.buffer.Fill(kPoisonByte).ok());
  args.d = d.d();
  const std::string what = absl::StrCat(ToString(h.spec), " m=", h.m);
  const absl::Status launched = kernel.Launch(args);
  ASSERT_TRUE(launched.ok()) << launched << " " << what;
  const absl::Status sync =
      CuStatus(driver, driver->CtxSynchronize(), "cuCtxSynchronize");
  ASSERT_TRUE(sync.ok()) << sync << " " << what;
  std::vector<uint8_t> all(d.buffer.bytes());
  ASSERT_TRUE(d.buffer.Download(all.data(), all.size()).ok());
  const int64_t before = CountUnpoisoned(all, 0, d.guard);
  const int64_t after = CountUnpoisoned(all, d.guard + d.d_bytes, all.size());
  EXPECT_EQ(before + after, 0)
      << what << ": wrote " << before << " bytes before D and " << after
      << " after it (guards of " << kGuardRows << " rows)";
  const std::vector<uint8_t> out(all.begin() + d.guard,
                                 all.begin() + d.guard + d.d_bytes);
  const CheckResult r =
      CheckGemm(h, out, DefaultRtol(Info(h.spec.family)), threads);
  EXPECT_TRUE(r.ok) << what << ": " << r.detail;
  result.rel_err = r.rel_err;
  result.worst_ratio = r.worst_ratio;
  result.ok = r.ok && before + after == 0;
}

// Runs one kernel on every m of `c`. `row.pass` is set only after every
// launch was checked and passed; any early return leaves it false.
void RunCase(CudaDriver* driver, const KernelCase& c, const CompileOutput& co,
             std::mt19937_64& rng, ResultRow& row) {
  row.pass = false;
  const FamilyInfo& info = Info(c.spec.family);
  absl::StatusOr<CubinKernelInfo> elf =
      InspectCubin(co.cubin, co.lowered_names[0]);
  ASSERT_TRUE(elf.ok()) << elf.status();
  absl::StatusOr<CudaModule> module = CudaModule::Load(driver, co.cubin);
  ASSERT_TRUE(module.ok()) << module.status();
  absl::StatusOr<CUfunction> fn = module->Function(co.lowered_names[0]);
  ASSERT_TRUE(fn.ok()) << fn.status();
  absl::StatusOr<FunctionAttributes> attrs = QueryAttributes(driver, *fn);
  ASSERT_TRUE(attrs.ok()) << attrs.status();
  row.registers = attrs->registers;
  row.local_bytes = attrs->local_bytes;
  row.static_shared = attrs->static_shared_bytes;
  row.dynamic_shared = SharedMemoryBytes(info, c.spec.config);
  absl::StatusOr<GemmKernel> kernel = GemmKernel::Create(driver, *fn, c.spec);
  ASSERT_TRUE(kernel.ok()) << kernel.status();
  const int threads =
      std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  bool uploads_ok = true;
  auto upload = [&](const void* data, size_t bytes) {
    absl::StatusOr<DeviceBuffer> b =
        DeviceBuffer::Allocate(driver, std::max<size_t>(bytes, 4));
    uploads_ok =
        uploads_ok && b.ok() && (bytes == 0 || b->Upload(data, bytes).ok());
    return b.ok() ? std::move(*b) : DeviceBuffer();
  };
  // B is shared by all M of this kernel (it is the bulk of grouped data).
  const std::shared_ptr<const HostOperandB> host_b =
      MakeHostB(c.spec, rng, threads);
  DeviceBuffer b = upload(host_b->raw.data(), host_b->raw.size());
  DeviceBuffer sb = upload(host_b->scales.data(), host_b->scales.size() * 4);
  bool all_ok = true;
  for (int64_t m : c.ms) {
    const HostGemm h = MakeHostGemm(c.spec, m, rng, host_b, threads);
    DeviceBuffer a = upload(h.a.data(), h.a.size());
    DeviceBuffer sa = upload(h.sa.data(), h.sa.size() * 4);
    DeviceBuffer groups = upload(h.groups.data(), h.groups.size() * 4);
    ASSERT_TRUE(uploads_ok) << "device allocation or upload failed";
    GemmArgs args;
    args.a = a.ptr();
    args.b = b.ptr();
    args.sa = info.fp8 ? sa.ptr() : 0;
    args.sb = info.fp8 ? sb.ptr() : 0;
    args.groups = info.group == GroupKind::kNone ? 0 : groups.ptr();
    args.m = static_cast<int32_t>(h.m);
    LaunchCheck check;  // ok stays false if a launch step failed
    LaunchAndCheck(driver, *kernel, h, args, threads, check);
    row.worst_err = std::max(row.worst_err, check.rel_err);
    row.worst_ratio = std::max(row.worst_ratio, check.worst_ratio);
    all_ok = all_ok && check.ok;
  }
  row.pass = all_ok;
}

// Compiles `cases` and runs each against the reference; one result row each.
void RunCases(CudaDriver* driver, const std::string& label,
              const std::vector<KernelCase>& cases) {
  const std::vector<Compiled> compiled = CompileAll(cases, 8);
  std::random_device seed_source;
  const uint64_t seed = (uint64_t{seed_source()} << 32) | seed_source();
  std::mt19937_64 rng(seed);
  ::testing::Test::RecordProperty("seed", absl::StrFormat("%d", seed));
  std::printf("[%s] %zu kernels, seed %llu\n", label.c_str(), cases.size(),
              static_cast<unsigned long long>(seed));
  for (size_t i = 0; i < cases.size(); ++i) {
    const KernelCase& c = cases[i];
    ResultRow row;
    row.family = label;
    row.kernel = ToString(c.spec);
    row.ms = absl::StrJoin(c.ms, ",");
    if (!compiled[i].output.ok()) {
      ADD_FAILURE() << row.kernel << ": " << compiled[i].output.status();
    } else {
      row.compile_wall = compiled[i].output->wall_seconds;
      row.compile_cpu = compiled[i].output->cpu_seconds;
      RunCase(driver, c, *compiled[i].output, rng, row);
    }
    std::printf(
        "  %-4s %s regs=%d local=%d smem=%d compile=%.2fs err=%.2e "
        "tol_use=%.2f\n",
        row.pass ? "ok" : "FAIL", row.kernel.c_str(), row.registers,
        row.local_bytes, row.dynamic_shared, row.compile_wall, row.worst_err,
        row.worst_ratio);
    std::lock_guard<std::mutex> lock(results_mu);
    results->push_back(row);
  }
}

class KernelGpuTest : public GpuTest,
                      public ::testing::WithParamInterface<Family> {};

TEST_P(KernelGpuTest, MatchesReference) {
  const FamilyInfo& info = Info(GetParam());
  RunCases(driver_, std::string(info.id), CasesFor(info));
}

INSTANTIATE_TEST_SUITE_P(
    AllFamilies, KernelGpuTest,
    ::testing::Values(Family::kFp8GemmNt, Family::kFp8GroupedGemmNtContig,
                      Family::kFp8GroupedGemmNtMasked, Family::kBf16GemmNt,
                      Family::kBf16GroupedGemmNtContig,
                      Family::kBf16GroupedGemmNtMasked, Family::kBf16GemmNtF32),
    [](const ::testing::TestParamInfo<Family>& p) {
      return std::string(Info(p.param).id);
    });

// Every kernel the planner picks for a shipped spec, run at the smallest M of
// the first range it serves and at a second M of that range (its top, capped
// so the CPU reference of one launch stays near kPlannedMacs multiply-adds).
constexpr double kPlannedMacs = 4e9;

std::string SpecsDir() {
  const char* env = std::getenv("TPJIT_SPECS_DIR");
  return env != nullptr ? env : TPJIT_SPECS_DIR;
}

absl::StatusOr<std::vector<KernelCase>> PlannedCases(const std::string& file) {
  std::ifstream in(SpecsDir() + "/" + file);
  if (!in) return absl::NotFoundError("cannot read " + SpecsDir() + "/" + file);
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<tpjit::v1::WarmupSpec> spec = ParseSpecJson(text.str());
  if (!spec.ok()) return spec.status();
  absl::StatusOr<Plan> plan = PlanWarmup(*spec);
  if (!plan.ok()) return plan.status();
  std::vector<KernelCase> cases(plan->kernels.size());
  for (const ShapePlan& shape : plan->shapes) {
    for (const MRange& r : shape.ranges) {
      KernelCase& c = cases[r.kernel];
      if (!c.ms.empty()) continue;  // the first range serving it
      c.spec = plan->kernels[r.kernel].spec;
      const FamilyInfo& info = Info(c.spec.family);
      const double rows_per_m =
          info.group == GroupKind::kMasked ? c.spec.groups : 1.0;
      const int64_t cap = static_cast<int64_t>(
          kPlannedMacs / (rows_per_m * c.spec.n * c.spec.k));
      c.ms = {r.lo};
      const int64_t second = std::min(r.hi, std::max(r.lo, cap));
      if (second != r.lo) c.ms.push_back(second);
    }
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    if (cases[i].ms.empty()) {
      return absl::InternalError(absl::StrCat("kernel ", i, " serves no M"));
    }
  }
  return cases;
}

class PlannedKernelGpuTest : public GpuTest,
                             public ::testing::WithParamInterface<const char*> {
};

TEST_P(PlannedKernelGpuTest, EveryPlannedKernelMatchesReference) {
  absl::StatusOr<std::vector<KernelCase>> cases = PlannedCases(GetParam());
  ASSERT_TRUE(cases.ok()) << cases.status();
  RunCases(driver_, GetParam(), *cases);
}

INSTANTIATE_TEST_SUITE_P(ShippedSpecs, PlannedKernelGpuTest,
                         ::testing::Values("deepseek-v3-tp8.json",
                                           "qwen3-30b-a3b-tp4.json"),
                         [](const ::testing::TestParamInfo<const char*>& p) {
                           std::string name = p.param;
                           name = name.substr(0, name.find(".json"));
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch)))
                               ch = '_';
                           }
                           return name;
                         });

// Writes the per-kernel table once all tests ran.
class ResultsWriter : public ::testing::Environment {
 public:
  void TearDown() override {
    if (results->empty()) return;
    const char* env = std::getenv("TPJIT_GPU_RESULTS");
    std::ofstream f(env ? env : "gpu_results.md");
    f << "device: " << *device_name << "\n\n";
    f << "| family | kernel | M values | regs | local B | static smem | "
         "dyn smem | compile wall s | compile cpu s | worst rel err | "
         "worst tolerance use | result "
         "|\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const ResultRow& r : *results) {
      f << absl::StrFormat(
          "| %s | %s | %s | %d | %d | %d | %d | %.2f | %.2f "
          "| %.2e | %.2f | %s |\n",
          r.family, r.kernel, r.ms, r.registers, r.local_bytes, r.static_shared,
          r.dynamic_shared, r.compile_wall, r.compile_cpu, r.worst_err,
          r.worst_ratio, r.pass ? "pass" : "FAIL");
    }
  }
};

const auto* const kWriter =
    ::testing::AddGlobalTestEnvironment(new ResultsWriter());

}  // namespace
}  // namespace tpjit
