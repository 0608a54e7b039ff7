// A cache hit is served only if its bytes are a CUDA ELF of the task's SM
// with its symbols (issue 12): metadata such as load_checked is not
// believed. Cubins are built by hand, as in tests/compile.
#include "daemon/cubin_check.h"

#include <elf.h>

#include <cstring>

#include "gtest/gtest.h"
#include "tests/testlib/cubin.h"

namespace tpjit {
namespace {

using ::tpjit::testing::TinyCubin;

TEST(CubinCheckTest, ArchSm) {
  EXPECT_EQ(ArchSm("sm_90a"), 90);
  EXPECT_EQ(ArchSm("sm_100"), 100);
  EXPECT_EQ(ArchSm("compute_90"), 0);
  EXPECT_EQ(ArchSm(""), 0);
}

TEST(CubinCheckTest, AcceptsACudaElfWithItsSymbolsAndDerivesAttributes) {
  std::vector<tpjit::v1::KernelAttributes> attrs;
  ASSERT_TRUE(
      CheckCachedCubin(TinyCubin("_Z1kv"), "sm_90a", {"_Z1kv"}, &attrs).ok());
  ASSERT_EQ(attrs.size(), 1u);
  EXPECT_EQ(attrs[0].symbol(), "_Z1kv");
}

TEST(CubinCheckTest, RefusesWhatIsNotTheTasksCubin) {
  std::vector<tpjit::v1::KernelAttributes> attrs;
  // A planted payload with a valid cache checksum but no ELF in it.
  EXPECT_FALSE(CheckCachedCubin("not an elf, load_checked=1", "sm_90a",
                                {"_Z1kv"}, &attrs)
                   .ok());
  EXPECT_FALSE(CheckCachedCubin("", "sm_90a", {}, &attrs).ok());
  // An x86-64 ELF, another SM, a missing kernel.
  EXPECT_FALSE(
      CheckCachedCubin(TinyCubin("_Z1kv", 90, 62), "sm_90a", {"_Z1kv"}, &attrs)
          .ok());
  EXPECT_FALSE(
      CheckCachedCubin(TinyCubin("_Z1kv", 80), "sm_90a", {"_Z1kv"}, &attrs)
          .ok());
  EXPECT_EQ(
      CheckCachedCubin(TinyCubin("_Z1kv"), "sm_90a", {"_Z1xv"}, &attrs).code(),
      absl::StatusCode::kNotFound);
  // Without symbols, the ELF itself is still checked.
  EXPECT_TRUE(CheckCachedCubin(TinyCubin("_Z1kv"), "sm_90a", {}, &attrs).ok());
}

}  // namespace
}  // namespace tpjit
