#include "src/cache/entry_format.h"

#include "gtest/gtest.h"
#include "tests/cache/test_util.h"

namespace tpjit {
namespace {

using testing::TestKey;

TEST(EntryFormatTest, RoundTrip) {
  CacheMetadata meta = {{"family", "fp8_gemm_nt"}, {"registers", "128"}};
  std::string bytes = EncodeCacheEntry(TestKey(1), meta, "cubin\0bytes");
  ASSERT_EQ(bytes.size(),
            kCacheEntryHeaderSize + bytes.size() - kCacheEntryHeaderSize);
  absl::StatusOr<CacheEntry> e = DecodeCacheEntry(bytes, TestKey(1));
  ASSERT_OK(e.status());
  EXPECT_EQ(e->key, TestKey(1));
  EXPECT_EQ(e->metadata, meta);
  EXPECT_EQ(e->payload, "cubin\0bytes");
}

TEST(EntryFormatTest, EmptyPayloadAndMetadata) {
  absl::StatusOr<CacheEntry> e =
      DecodeCacheEntry(EncodeCacheEntry(TestKey(2), {}, ""));
  ASSERT_OK(e.status());
  EXPECT_TRUE(e->payload.empty());
  EXPECT_TRUE(e->metadata.empty());
}

TEST(EntryFormatTest, EveryFlippedByteIsDetected) {
  std::string good =
      EncodeCacheEntry(TestKey(3), {{"k", "v"}}, std::string(300, 'x'));
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x01;
    EXPECT_TRUE(absl::IsDataLoss(DecodeCacheEntry(bad).status()))
        << "byte " << i;
  }
}

TEST(EntryFormatTest, TruncatedAndExtendedAreDetected) {
  std::string good = EncodeCacheEntry(TestKey(4), {{"k", "v"}}, "payload");
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_TRUE(absl::IsDataLoss(DecodeCacheEntry(good.substr(0, n)).status()))
        << "length " << n;
  }
  EXPECT_TRUE(absl::IsDataLoss(DecodeCacheEntry(good + "x").status()));
}

TEST(EntryFormatTest, EntryOfAnotherKeyIsDetected) {
  std::string bytes = EncodeCacheEntry(TestKey(5), {}, "p");
  EXPECT_TRUE(absl::IsDataLoss(DecodeCacheEntry(bytes, TestKey(6)).status()));
}

TEST(EntryFormatTest, ValidatesKeys) {
  EXPECT_OK(ValidateCacheKey(TestKey(7)));
  EXPECT_FALSE(IsValidCacheKey(""));
  EXPECT_FALSE(IsValidCacheKey("abc"));
  EXPECT_FALSE(IsValidCacheKey(std::string(64, 'A')));  // upper case
  EXPECT_FALSE(IsValidCacheKey("../" + std::string(61, 'a')));
  EXPECT_FALSE(IsValidCacheKey(std::string(65, 'a')));
}

}  // namespace
}  // namespace tpjit
