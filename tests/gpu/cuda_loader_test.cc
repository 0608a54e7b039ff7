// Unit tests (no GPU) of client/cuda through a fake CudaDriver: module and
// buffer RAII, error mapping, launch geometry and the shared-memory opt-in.
#include "client/cuda/cuda_loader.h"

#include <cstring>

#include "client/cuda/gemm_launch.h"
#include "gtest/gtest.h"

namespace tpjit {
namespace {

class FakeDriver : public CudaDriver {
 public:
  CUresult load_result = CUDA_SUCCESS;
  CUresult launch_result = CUDA_SUCCESS;
  int unloads = 0, frees = 0, launches = 0, set_attr = 0, set_attr_value = 0;
  unsigned grid[3] = {}, block = 0, smem = 0;

  CUresult Init(unsigned int) override { return CUDA_SUCCESS; }
  CUresult DriverGetVersion(int* v) override {
    *v = 13000;
    return CUDA_SUCCESS;
  }
  CUresult DeviceGetCount(int* n) override {
    *n = 1;
    return CUDA_SUCCESS;
  }
  CUresult DeviceGet(CUdevice* d, int o) override {
    *d = o;
    return CUDA_SUCCESS;
  }
  CUresult DeviceGetName(char* name, int len, CUdevice) override {
    std::strncpy(name, "Fake H100", len);
    return CUDA_SUCCESS;
  }
  CUresult DeviceGetAttribute(int* v, CUdevice_attribute a, CUdevice) override {
    *v = a == CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT       ? 132
         : a == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR ? 9
                                                             : 0;
    return CUDA_SUCCESS;
  }
  CUresult DevicePrimaryCtxRetain(CUcontext* c, CUdevice) override {
    *c = reinterpret_cast<CUcontext>(0x1);
    return CUDA_SUCCESS;
  }
  CUresult DevicePrimaryCtxRelease(CUdevice) override { return CUDA_SUCCESS; }
  CUresult CtxSetCurrent(CUcontext) override { return CUDA_SUCCESS; }
  CUresult CtxSynchronize() override { return CUDA_SUCCESS; }
  CUresult ModuleLoadData(CUmodule* m, const void*) override {
    if (load_result != CUDA_SUCCESS) return load_result;
    *m = reinterpret_cast<CUmodule>(0x2);
    return CUDA_SUCCESS;
  }
  CUresult ModuleUnload(CUmodule) override {
    ++unloads;
    return CUDA_SUCCESS;
  }
  CUresult ModuleGetFunction(CUfunction* f, CUmodule,
                             const char* name) override {
    if (std::strcmp(name, "_Z1kv") != 0) return CUDA_ERROR_NOT_FOUND;
    *f = reinterpret_cast<CUfunction>(0x3);
    return CUDA_SUCCESS;
  }
  CUresult FuncGetAttribute(int* v, CUfunction_attribute a,
                            CUfunction) override {
    *v = a == CU_FUNC_ATTRIBUTE_NUM_REGS ? 128 : 0;
    return CUDA_SUCCESS;
  }
  CUresult FuncSetAttribute(CUfunction, CUfunction_attribute, int v) override {
    ++set_attr;
    set_attr_value = v;
    return CUDA_SUCCESS;
  }
  CUresult LaunchKernel(CUfunction, unsigned gx, unsigned gy, unsigned gz,
                        unsigned bx, unsigned, unsigned, unsigned s, CUstream,
                        void** params, void**) override {
    ++launches;
    grid[0] = gx;
    grid[1] = gy;
    grid[2] = gz;
    block = bx;
    smem = s;
    EXPECT_NE(params, nullptr);
    return launch_result;
  }
  CUresult MemAlloc(CUdeviceptr* p, size_t) override {
    *p = 0x1000;
    return CUDA_SUCCESS;
  }
  CUresult MemFree(CUdeviceptr) override {
    ++frees;
    return CUDA_SUCCESS;
  }
  CUresult MemcpyHtoD(CUdeviceptr, const void*, size_t) override {
    return CUDA_SUCCESS;
  }
  CUresult MemcpyDtoH(void*, CUdeviceptr, size_t) override {
    return CUDA_SUCCESS;
  }
  CUresult MemsetD8(CUdeviceptr, unsigned char, size_t) override {
    return CUDA_SUCCESS;
  }
  CUresult EventCreate(CUevent*, unsigned int) override { return CUDA_SUCCESS; }
  CUresult EventRecord(CUevent, CUstream) override { return CUDA_SUCCESS; }
  CUresult EventSynchronize(CUevent) override { return CUDA_SUCCESS; }
  CUresult EventElapsedTime(float*, CUevent, CUevent) override {
    return CUDA_SUCCESS;
  }
  CUresult EventDestroy(CUevent) override { return CUDA_SUCCESS; }
  CUresult GetErrorString(CUresult, const char** s) override {
    *s = "fake error";
    return CUDA_SUCCESS;
  }
};

TEST(CudaLoaderTest, ModuleUnloadsOnceAcrossMoves) {
  FakeDriver d;
  {
    absl::StatusOr<CudaModule> m = CudaModule::Load(&d, "cubin");
    ASSERT_TRUE(m.ok());
    CudaModule moved = std::move(*m);
    EXPECT_TRUE(moved.Function("_Z1kv").ok());
    EXPECT_FALSE(moved.Function("_Z1xv").ok());
    moved.Reset();
    moved.Reset();
  }
  EXPECT_EQ(d.unloads, 1);
}

TEST(CudaLoaderTest, LoadErrorIsMapped) {
  FakeDriver d;
  d.load_result = CUDA_ERROR_INVALID_IMAGE;
  absl::StatusOr<CudaModule> m = CudaModule::Load(&d, "junk");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("fake error"), absl::string_view::npos);
  EXPECT_EQ(CuStatus(&d, CUDA_ERROR_OUT_OF_MEMORY, "x").code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(CudaLoaderTest, ContextAndBuffers) {
  FakeDriver d;
  absl::StatusOr<CudaContext> ctx = CudaContext::Open(&d, 0);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_EQ(ctx->sm_count(), 132);
  EXPECT_EQ(ctx->compute_capability(), 90);
  EXPECT_FALSE(CudaContext::Open(&d, 3).ok());
  {
    absl::StatusOr<DeviceBuffer> b = DeviceBuffer::Allocate(&d, 64);
    ASSERT_TRUE(b.ok());
    DeviceBuffer moved = std::move(*b);
    char host[128];
    EXPECT_TRUE(moved.Upload(host, 64).ok());
    EXPECT_FALSE(moved.Upload(host, 128).ok());
  }
  EXPECT_EQ(d.frees, 1);
  absl::StatusOr<FunctionAttributes> a =
      QueryAttributes(&d, reinterpret_cast<CUfunction>(0x3));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->registers, 128);
}

KernelSpec MaskedSpec() {
  KernelSpec s;
  s.family = Family::kFp8GroupedGemmNtMasked;
  s.n = 2112;
  s.k = 7168;
  s.groups = 32;
  s.config = {128, 128, 128, 4, 4, 2};
  return s;
}

TEST(GemmLaunchTest, DimsFollowTheConfig) {
  const LaunchDims d = GemmLaunchDims(MaskedSpec(), 300);
  EXPECT_EQ(d.grid_x, 17u);  // ceil(2112 / 128): the N tail gets a tile
  EXPECT_EQ(d.grid_y, 3u);
  EXPECT_EQ(d.grid_z, 32u);
  EXPECT_EQ(d.block, 256u);
  EXPECT_EQ(d.shared_bytes,
            static_cast<unsigned>(SharedMemoryBytes(
                Info(Family::kFp8GroupedGemmNtMasked), MaskedSpec().config)));
}

TEST(GemmLaunchTest, RaisesSharedLimitAndLaunches) {
  FakeDriver d;
  absl::StatusOr<GemmKernel> k =
      GemmKernel::Create(&d, reinterpret_cast<CUfunction>(0x3), MaskedSpec());
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(d.set_attr, 1);
  EXPECT_GT(d.set_attr_value, 48 * 1024);
  GemmArgs args;
  EXPECT_TRUE(k->Launch(args).ok());  // m == 0: nothing to do
  EXPECT_EQ(d.launches, 0);
  args.m = 7;
  EXPECT_TRUE(k->Launch(args).ok());
  EXPECT_EQ(d.launches, 1);
  EXPECT_EQ(d.grid[1], 1u);
  EXPECT_EQ(d.smem, static_cast<unsigned>(d.set_attr_value));
  d.launch_result = CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
  EXPECT_FALSE(k->Launch(args).ok());
  args.m = -1;
  EXPECT_FALSE(k->Launch(args).ok());
}

TEST(GemmLaunchTest, SmallKernelKeepsDefaultSharedLimit) {
  FakeDriver d;
  KernelSpec s;
  s.family = Family::kBf16GemmNt;
  s.n = 1280;
  s.k = 2048;
  s.config = {16, 64, 64, 2, 1, 4};  // 20 KiB
  ASSERT_TRUE(
      GemmKernel::Create(&d, reinterpret_cast<CUfunction>(0x3), s).ok());
  EXPECT_EQ(d.set_attr, 0);
}

TEST(CudaDriverTest, RealDriverIsOkOrUnavailable) {
  absl::StatusOr<CudaDriver*> d = CudaDriver::Real();
  if (!d.ok()) EXPECT_EQ(d.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace tpjit
