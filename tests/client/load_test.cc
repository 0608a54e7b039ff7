// Client::Load through a fake CudaDriver and a mock stub: every kernel is
// fetched, checked, loaded once and looked up by (shape, M); modules are
// unloaded with the LoadedManifest, or at once when loading fails.
#include <cstring>
#include <map>

#include "client/include/tpjit/client.h"
#include "client/include/tpjit/loaded_manifest.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/mock_stub.h"
#include "tests/client/test_manifest.h"

namespace tpjit {
namespace {

using ::grpc::testing::MockClientReader;
using ::testing::_;
using ::testing::DoAll;
using ::testing::Return;
using ::testing::SetArgPointee;
using tpjit::testing::CubinFor;
using tpjit::testing::MockTpjitStub;
using tpjit::testing::TestManifest;

// Modules are numbered from 1 in load order; a function is module*16+name.
class FakeDriver : public CudaDriver {
 public:
  int loads = 0, unloads = 0;
  std::map<uintptr_t, std::string> names;  // function -> lowered name

  CUresult ModuleLoadData(CUmodule* m, const void* image) override {
    if (std::memcmp(image, CubinFor(0).data(), 1) != 0 &&
        std::memcmp(image, CubinFor(1).data(), 1) != 0 &&
        std::memcmp(image, CubinFor(2).data(), 1) != 0) {
      return CUDA_ERROR_INVALID_IMAGE;
    }
    *m = reinterpret_cast<CUmodule>(static_cast<uintptr_t>(++loads));
    return CUDA_SUCCESS;
  }
  CUresult ModuleUnload(CUmodule) override {
    ++unloads;
    return CUDA_SUCCESS;
  }
  CUresult ModuleGetFunction(CUfunction* f, CUmodule m,
                             const char* name) override {
    const uintptr_t id = reinterpret_cast<uintptr_t>(m) * 16 + 1;
    names[id] = name;
    *f = reinterpret_cast<CUfunction>(id);
    return CUDA_SUCCESS;
  }
  CUresult GetErrorString(CUresult, const char** s) override {
    *s = "fake error";
    return CUDA_SUCCESS;
  }
#define TPJIT_UNUSED_(sig) \
  CUresult sig override { return CUDA_ERROR_NOT_SUPPORTED; }
  TPJIT_UNUSED_(Init(unsigned int))
  TPJIT_UNUSED_(DriverGetVersion(int*))
  TPJIT_UNUSED_(DeviceGetCount(int*))
  TPJIT_UNUSED_(DeviceGet(CUdevice*, int))
  TPJIT_UNUSED_(DeviceGetName(char*, int, CUdevice))
  TPJIT_UNUSED_(DeviceGetAttribute(int*, CUdevice_attribute, CUdevice))
  TPJIT_UNUSED_(DevicePrimaryCtxRetain(CUcontext*, CUdevice))
  TPJIT_UNUSED_(DevicePrimaryCtxRelease(CUdevice))
  TPJIT_UNUSED_(CtxSetCurrent(CUcontext))
  TPJIT_UNUSED_(CtxSynchronize())
  TPJIT_UNUSED_(FuncGetAttribute(int*, CUfunction_attribute, CUfunction))
  TPJIT_UNUSED_(FuncSetAttribute(CUfunction, CUfunction_attribute, int))
  TPJIT_UNUSED_(LaunchKernel(CUfunction, unsigned, unsigned, unsigned, unsigned,
                             unsigned, unsigned, unsigned, CUstream, void**,
                             void**))
  TPJIT_UNUSED_(MemAlloc(CUdeviceptr*, size_t))
  TPJIT_UNUSED_(MemFree(CUdeviceptr))
  TPJIT_UNUSED_(MemcpyHtoD(CUdeviceptr, const void*, size_t))
  TPJIT_UNUSED_(MemcpyDtoH(void*, CUdeviceptr, size_t))
  TPJIT_UNUSED_(MemsetD8(CUdeviceptr, unsigned char, size_t))
  TPJIT_UNUSED_(EventCreate(CUevent*, unsigned int))
  TPJIT_UNUSED_(EventRecord(CUevent, CUstream))
  TPJIT_UNUSED_(EventSynchronize(CUevent))
  TPJIT_UNUSED_(EventElapsedTime(float*, CUevent, CUevent))
  TPJIT_UNUSED_(EventDestroy(CUevent))
#undef TPJIT_UNUSED_
};

// A Fetch stream of `bytes` in one chunk.
MockClientReader<tpjit::v1::FetchChunk>* OneChunk(const std::string& bytes) {
  auto* reader = new MockClientReader<tpjit::v1::FetchChunk>();
  tpjit::v1::FetchChunk chunk;
  chunk.set_data(bytes);
  chunk.set_total_bytes(static_cast<int64_t>(bytes.size()));
  EXPECT_CALL(*reader, Read(_))
      .WillOnce(DoAll(SetArgPointee<0>(chunk), Return(true)))
      .WillOnce(Return(false));
  EXPECT_CALL(*reader, Finish()).WillOnce(Return(grpc::Status::OK));
  return reader;
}

class LoadTest : public ::testing::Test {
 protected:
  LoadTest()
      : stub_(std::make_shared<MockTpjitStub>()),
        client_(stub_, nullptr, "unix:/test.sock") {}

  // Serves kernel i's cubin for key i; `corrupt` flips a byte of that key.
  void ServeCubins(const std::string& corrupt = "") {
    EXPECT_CALL(*stub_, FetchRaw(_, _))
        .WillRepeatedly(
            [corrupt](grpc::ClientContext*, const tpjit::v1::FetchRequest& r) {
              std::string bytes = CubinFor(std::stoi(r.key().substr(3)));
              if (r.key() == corrupt) bytes[100] ^= 1;
              return OneChunk(bytes);
            });
  }

  std::shared_ptr<MockTpjitStub> stub_;
  Client client_;
  FakeDriver driver_;
};

TEST_F(LoadTest, LoadsEveryKernelAndLooksUpByShapeAndM) {
  ServeCubins();
  const auto manifest = TestManifest();
  {
    auto loaded = client_.Load(manifest, &driver_);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(driver_.loads, 3);
    for (int64_t m : {1, 64, 65, 4000, 4001, 16384}) {
      auto fn = (*loaded)->Lookup(0, m);
      ASSERT_TRUE(fn.ok()) << fn.status();
      const int kernel = *LookupKernel(manifest, 0, m);
      EXPECT_EQ(*fn, (*loaded)->function(kernel));
      EXPECT_EQ(driver_.names[reinterpret_cast<uintptr_t>(*fn)],
                manifest.kernels(kernel).lowered_name());
    }
    EXPECT_EQ(*(*loaded)->Lookup(1, 1), (*loaded)->function(1));
    EXPECT_EQ((*loaded)->Lookup(0, 0).status().code(),
              absl::StatusCode::kOutOfRange);
    EXPECT_EQ(driver_.unloads, 0);
  }
  EXPECT_EQ(driver_.unloads, 3);
}

TEST_F(LoadTest, CorruptCubinFailsAndUnloadsWhatWasLoaded) {
  ServeCubins("key2");
  auto loaded = client_.Load(TestManifest(), &driver_);
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(driver_.loads, 2);
  EXPECT_EQ(driver_.unloads, 2);
}

}  // namespace
}  // namespace tpjit
