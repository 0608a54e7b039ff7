// GPU correctness test of the seven kernel families: each kernel is compiled
// with NVRTC from the embedded sources, loaded through the driver API and run
// on fresh random inputs against a double-precision CPU reference, with D
// poisoned (0xff bytes: NaN) before every launch. Skips when there is no
// driver or no device. Writes a per-kernel table (registers, local memory,
// shared memory, compile seconds, worst error) to $TPJIT_GPU_RESULTS
// (default gpu_results.md).
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <ostream>
#include <random>
#include <thread>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cuda/cuda_loader.h"
#include "client/cuda/gemm_launch.h"
#include "gtest/gtest.h"
#include "src/compile/cubin.h"
#include "src/compile/kernel_source.h"
#include "src/compile/nvrtc_compiler.h"
#include "tests/gpu/gemm_host.h"

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
  double compile_wall = 0, compile_cpu = 0, worst_err = 0;
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

std::vector<KernelCase> CasesFor(const FamilyInfo& info) {
  std::map<std::string, KernelCase> cases;
  auto add = [&](const KernelSpec& spec, int64_t m) {
    KernelCase& c = cases[ToString(spec)];
    c.spec = spec;
    if (std::find(c.ms.begin(), c.ms.end(), m) == c.ms.end()) c.ms.push_back(m);
  };
  for (const Shape& s : SpecShapes(info.family)) {
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
  const Forced forced = ForcedConfigs(info);
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

class KernelGpuTest : public ::testing::TestWithParam<Family> {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<CudaDriver*> driver = CudaDriver::Real();
    if (!driver.ok()) {
      *skip_reason_ = std::string(driver.status().message());
      return;
    }
    driver_ = *driver;
    absl::StatusOr<CudaContext> ctx = CudaContext::Open(driver_, 0);
    if (!ctx.ok()) {
      *skip_reason_ = std::string(ctx.status().message());
      return;
    }
    if (ctx->compute_capability() < 90) {
      *skip_reason_ =
          absl::StrFormat("device %s is sm_%d; kernels need sm_90",
                          ctx->device_name(), ctx->compute_capability());
      return;
    }
    *device_name = ctx->device_name();
    context_ = new CudaContext(std::move(*ctx));
  }

  void SetUp() override {
    if (context_ == nullptr) GTEST_SKIP() << "no usable GPU: " << *skip_reason_;
    ASSERT_TRUE(context_->MakeCurrent().ok());
  }

  static CudaDriver* driver_;
  static CudaContext* context_;
  static std::string* skip_reason_;
};

CudaDriver* KernelGpuTest::driver_ = nullptr;
CudaContext* KernelGpuTest::context_ = nullptr;
std::string* KernelGpuTest::skip_reason_ = new std::string();

// Runs one kernel on every m of `c`; returns the worst relative error.
void RunCase(CudaDriver* driver, const KernelCase& c, const CompileOutput& co,
             std::mt19937_64& rng, ResultRow& row) {
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
  const double tol = info.f32_out ? 1e-4 : 1e-2;
  const int threads =
      std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  row.pass = true;
  auto upload = [&](const void* data, size_t bytes) {
    absl::StatusOr<DeviceBuffer> b = DeviceBuffer::Allocate(driver, bytes);
    EXPECT_TRUE(b.ok()) << b.status();
    if (b.ok() && bytes > 0) EXPECT_TRUE(b->Upload(data, bytes).ok());
    return b.ok() ? std::move(*b) : DeviceBuffer();
  };
  // B is shared by all M of this kernel (it is the bulk of grouped data).
  const std::shared_ptr<const HostOperandB> host_b =
      MakeHostB(c.spec, rng, threads);
  DeviceBuffer b = upload(host_b->raw.data(), host_b->raw.size());
  DeviceBuffer sb = upload(host_b->scales.data(), host_b->scales.size() * 4);
  for (int64_t m : c.ms) {
    const HostGemm h = MakeHostGemm(c.spec, m, rng, host_b, threads);
    DeviceBuffer a = upload(h.a.data(), h.a.size());
    DeviceBuffer sa = upload(h.sa.data(), h.sa.size() * 4);
    DeviceBuffer groups = upload(h.groups.data(), h.groups.size() * 4);
    absl::StatusOr<DeviceBuffer> d =
        DeviceBuffer::Allocate(driver, h.d_bytes());
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_TRUE(d->Fill(kPoisonByte).ok());
    GemmArgs args;
    args.a = a.ptr();
    args.b = b.ptr();
    args.sa = info.fp8 ? sa.ptr() : 0;
    args.sb = info.fp8 ? sb.ptr() : 0;
    args.groups = info.group == GroupKind::kNone ? 0 : groups.ptr();
    args.d = d->ptr();
    args.m = static_cast<int32_t>(h.m);
    ASSERT_TRUE(kernel->Launch(args).ok());
    const absl::Status sync =
        CuStatus(driver, driver->CtxSynchronize(), "cuCtxSynchronize");
    ASSERT_TRUE(sync.ok()) << sync << " " << ToString(c.spec) << " m=" << m;
    std::vector<uint8_t> out(h.d_bytes());
    ASSERT_TRUE(d->Download(out.data(), out.size()).ok());
    const CheckResult r = CheckGemm(h, out, tol, rng, threads);
    EXPECT_TRUE(r.ok) << ToString(c.spec) << " m=" << h.m << ": " << r.detail;
    row.worst_err = std::max(row.worst_err, r.rel_err);
    row.pass = row.pass && r.ok;
  }
}

TEST_P(KernelGpuTest, MatchesReference) {
  const FamilyInfo& info = Info(GetParam());
  const std::vector<KernelCase> cases = CasesFor(info);
  const std::vector<Compiled> compiled = CompileAll(cases, 8);
  std::random_device seed_source;
  const uint64_t seed = (uint64_t{seed_source()} << 32) | seed_source();
  std::mt19937_64 rng(seed);
  RecordProperty("seed", absl::StrFormat("%d", seed));
  std::printf("[%s] %zu kernels, seed %llu\n", std::string(info.id).c_str(),
              cases.size(), static_cast<unsigned long long>(seed));
  for (size_t i = 0; i < cases.size(); ++i) {
    const KernelCase& c = cases[i];
    ResultRow row;
    row.family = std::string(info.id);
    row.kernel = ToString(c.spec);
    row.ms = absl::StrJoin(c.ms, ",");
    if (!compiled[i].output.ok()) {
      ADD_FAILURE() << row.kernel << ": " << compiled[i].output.status();
    } else {
      row.compile_wall = compiled[i].output->wall_seconds;
      row.compile_cpu = compiled[i].output->cpu_seconds;
      RunCase(driver_, c, *compiled[i].output, rng, row);
    }
    std::printf("  %-4s %s regs=%d local=%d smem=%d compile=%.2fs err=%.2e\n",
                row.pass ? "ok" : "FAIL", row.kernel.c_str(), row.registers,
                row.local_bytes, row.dynamic_shared, row.compile_wall,
                row.worst_err);
    std::lock_guard<std::mutex> lock(results_mu);
    results->push_back(row);
  }
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

// Writes the per-kernel table once all tests ran.
class ResultsWriter : public ::testing::Environment {
 public:
  void TearDown() override {
    if (results->empty()) return;
    const char* env = std::getenv("TPJIT_GPU_RESULTS");
    std::ofstream f(env ? env : "gpu_results.md");
    f << "device: " << *device_name << "\n\n";
    f << "| family | kernel | M values | regs | local B | static smem | "
         "dyn smem | compile wall s | compile cpu s | worst rel err | result "
         "|\n|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const ResultRow& r : *results) {
      f << absl::StrFormat(
          "| %s | %s | %s | %d | %d | %d | %d | %.2f | %.2f "
          "| %.2e | %s |\n",
          r.family, r.kernel, r.ms, r.registers, r.local_bytes, r.static_shared,
          r.dynamic_shared, r.compile_wall, r.compile_cpu, r.worst_err,
          r.pass ? "pass" : "FAIL");
    }
  }
};

const auto* const kWriter =
    ::testing::AddGlobalTestEnvironment(new ResultsWriter());

}  // namespace
}  // namespace tpjit
