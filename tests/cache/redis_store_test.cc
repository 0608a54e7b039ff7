// RedisStore against a real redis-server (tests/cache/redis_server.h), and
// against fault-injecting connections.
#include "src/cache/redis_store.h"

#include <atomic>
#include <memory>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/cache/redis_server.h"
#include "tests/cache/test_util.h"

namespace tpjit {
namespace {

using testing::RedisServer;
using testing::TempDir;
using testing::TestKey;

CacheEntry Entry(int i, size_t size = 100) {
  return CacheEntry{TestKey(i),
                    {{"label", absl::StrCat("k", i)}},
                    std::string(size, static_cast<char>('a' + i % 26))};
}

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TPJIT_REQUIRE_REDIS();
    server_ = std::make_unique<RedisServer>(dir_.path(), ServerOptions());
    ASSERT_TRUE(server_->Start()) << "redis-server did not start";
  }
  virtual std::vector<std::string> ServerOptions() { return {}; }

  std::unique_ptr<RedisStore> Open(RedisStoreOptions o = {},
                                   absl::Duration timeout = absl::Seconds(2)) {
    auto a = ParseRedisUrl(server_->url());
    EXPECT_TRUE(a.ok()) << a.status();
    o.describe = a->ToString();
    return std::make_unique<RedisStore>(NewHiredisConnector(*a, "", timeout),
                                        o);
  }
  RedisReply Raw(const std::vector<std::string>& args) {
    auto c = server_->Connect();
    EXPECT_TRUE(c.ok()) << c.status();
    auto r = (*c)->Command(args);
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  }

  TempDir dir_;
  std::unique_ptr<RedisServer> server_;
};

TEST(RedisUrlTest, AcceptsTcpAndUnixAndRefusesTheRest) {
  auto a = ParseRedisUrl("redis://10.0.0.5:6380/3");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "10.0.0.5");
  EXPECT_EQ(a->port, 6380);
  EXPECT_EQ(a->db, 3);
  EXPECT_EQ(a->ToString(), "redis://10.0.0.5:6380/3");
  auto u = ParseRedisUrl("unix:///run/redis.sock?db=2");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->unix_path, "/run/redis.sock");
  EXPECT_EQ(u->db, 2);
  for (const char* bad :
       {"", "http://x:1", "redis://host", "redis://host:0", "redis://h:1/x",
        "redis://user:secret@h:1", "unix://relative.sock", "redis://:5"}) {
    auto r = ParseRedisUrl(bad);
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << bad;
    EXPECT_FALSE(absl::StrContains(r.status().message(), "secret")) << bad;
  }
}

TEST_F(RedisStoreTest, PutThenGetVerifiesAndCounts) {
  auto store = Open();
  ASSERT_OK(store->Ping());
  ASSERT_OK(store->Put(Entry(1)));
  std::optional<CacheEntry> got = store->Get(TestKey(1));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->payload, Entry(1).payload);
  EXPECT_EQ(got->metadata, Entry(1).metadata);
  EXPECT_FALSE(store->Get(TestKey(2)).has_value());
  ASSERT_OK(store->Remove(TestKey(1)));
  EXPECT_FALSE(store->Get(TestKey(1)).has_value());
  StoreStats s = store->Stats();
  EXPECT_EQ(s.hits, 1);
  EXPECT_EQ(s.misses, 2);
  EXPECT_EQ(s.errors, 0);
  EXPECT_GT(s.bytes_written, 100);
  EXPECT_EQ(s.bytes_read, s.bytes_written);
  int64_t calls = 0;
  for (int64_t c : s.latency_counts) calls += c;
  EXPECT_GE(calls, 6);
  ASSERT_OK(store->Health());
}

TEST_F(RedisStoreTest, KeysCarryThePrefixAndTheTtl) {
  RedisStoreOptions o;
  o.prefix = "deploy-a:";
  o.ttl = absl::Seconds(600);
  auto a = Open(o);
  ASSERT_OK(a->Put(Entry(1)));
  RedisReply ttl = Raw({"PTTL", "deploy-a:e:" + TestKey(1)});
  EXPECT_GT(ttl.integer, 500'000);
  EXPECT_LE(ttl.integer, 600'000);
  o.prefix = "deploy-b:";
  EXPECT_FALSE(Open(o)->Get(TestKey(1)).has_value());  // another deployment
}

TEST_F(RedisStoreTest, CorruptForeignAndMiskeyedValuesAreIgnoredAndCounted) {
  auto store = Open();
  const std::string k1 = "tpjit:e:" + TestKey(1);
  Raw({"SET", k1, "not an entry"});
  EXPECT_FALSE(store->Get(TestKey(1)).has_value());
  // A verified entry of another key, stored under this one.
  CacheEntry other = Entry(2);
  Raw({"SET", k1, EncodeCacheEntry(other.key, other.metadata, other.payload)});
  EXPECT_FALSE(store->Get(TestKey(1)).has_value());
  // One flipped payload byte.
  CacheEntry e = Entry(1);
  std::string bytes = EncodeCacheEntry(e.key, e.metadata, e.payload);
  bytes.back() ^= 1;
  Raw({"SET", k1, bytes});
  EXPECT_FALSE(store->Get(TestKey(1)).has_value());
  Raw({"DEL", k1});
  Raw({"LPUSH", k1, "a list"});  // another program's key
  EXPECT_FALSE(store->Get(TestKey(1)).has_value());
  EXPECT_EQ(store->Stats().corrupt, 4);
  Raw({"DEL", k1});
  ASSERT_OK(store->Put(e));  // the next put replaces it
  EXPECT_TRUE(store->Get(TestKey(1)).has_value());
}

// Contains: one EXISTS, the value is not read (no bytes, no hit or miss);
// a corrupt value counts as present (Get then misses).
TEST_F(RedisStoreTest, ContainsAsksExistsWithoutReadingTheValue) {
  auto store = Open();
  ASSERT_OK(store->Put(Entry(1)));
  EXPECT_TRUE(store->Contains(TestKey(1)));
  EXPECT_FALSE(store->Contains(TestKey(2)));
  Raw({"SET", "tpjit:e:" + TestKey(3), "not an entry"});
  EXPECT_TRUE(store->Contains(TestKey(3)));
  EXPECT_FALSE(store->Get(TestKey(3)).has_value());
  RedisStoreOptions o;
  o.prefix = "deploy-b:";
  EXPECT_FALSE(Open(o)->Contains(TestKey(1)));  // another deployment
  EXPECT_FALSE(store->recipe_store().Contains(TestKey(1)));
  StoreStats s = store->Stats();
  EXPECT_EQ(s.bytes_read, 12);  // "not an entry", read by Get
  EXPECT_EQ(s.hits, 0);
  EXPECT_EQ(s.misses, 1);  // Get's
  EXPECT_EQ(s.errors, 0);
  // An entry this store put, found gone: lost, as a Get would count it.
  Raw({"DEL", "tpjit:e:" + TestKey(1)});
  EXPECT_FALSE(store->Contains(TestKey(1)));
  EXPECT_EQ(store->Stats().lost, 1);
  ASSERT_OK(store->recipe_store().Put(Entry(4)));
  EXPECT_TRUE(store->recipe_store().Contains(TestKey(4)));
  EXPECT_FALSE(store->Contains(TestKey(4)));  // not a kernel entry
}

TEST_F(RedisStoreTest, EntriesOverTheSizeLimitAreNotSent) {
  RedisStoreOptions o;
  o.max_entry_bytes = 1000;
  auto store = Open(o);
  EXPECT_TRUE(absl::IsResourceExhausted(store->Put(Entry(1, 2000))));
  ASSERT_OK(store->Put(Entry(2, 100)));
  EXPECT_EQ(store->Stats().put_drops, 1);
  EXPECT_EQ(Raw({"EXISTS", "tpjit:e:" + TestKey(1)}).integer, 0);
}

TEST_F(RedisStoreTest, OneOwnerPerKeyAndTheWaiterGetsThePublishedEntry) {
  auto a = Open();
  auto b = Open();
  auto lease = a->AcquireOrWait(TestKey(1), absl::Now() + absl::Seconds(20));
  ASSERT_NE(lease, nullptr);
  EXPECT_TRUE(b->LeasedElsewhere(TestKey(1)));   // b defers it
  EXPECT_FALSE(a->LeasedElsewhere(TestKey(1)));  // a holds it
  EXPECT_FALSE(b->LeasedElsewhere(TestKey(2)));
  std::atomic<bool> done{false};
  std::unique_ptr<StoreLease> second;
  std::thread waiter([&] {
    second = b->AcquireOrWait(TestKey(1), absl::Now() + absl::Seconds(20));
    done.store(true);
  });
  ASSERT_TRUE(testing::WaitUntil([&] { return b->Stats().lease_waits == 1; },
                                 absl::Seconds(20)));
  EXPECT_FALSE(done.load());
  ASSERT_OK(a->Put(Entry(1)));
  lease.reset();  // compare-and-delete
  waiter.join();
  EXPECT_EQ(second, nullptr);  // published: b does not compile
  EXPECT_TRUE(b->Get(TestKey(1)).has_value());
  EXPECT_EQ(a->Stats().leases_won, 1);
  EXPECT_EQ(b->Stats().leases_won, 0);
  EXPECT_EQ(Raw({"EXISTS", "tpjit:l:" + TestKey(1)}).integer, 0);
}

TEST_F(RedisStoreTest, AWaitIsBoundedThenTheWaiterCompilesItself) {
  auto a = Open();
  auto b = Open();
  auto lease = a->AcquireOrWait(TestKey(1), absl::Now() + absl::Seconds(20));
  ASSERT_NE(lease, nullptr);
  const absl::Time start = absl::Now();
  EXPECT_EQ(b->AcquireOrWait(TestKey(1), start + absl::Milliseconds(300)),
            nullptr);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(b->Stats().lease_timeouts, 1);
}

TEST_F(RedisStoreTest, ALeaseIsRenewedWhileHeldAndReleasedOnlyByItsOwner) {
  RedisStoreOptions o;
  o.lease_ttl = absl::Seconds(1);
  auto a = Open(o);
  const std::string lk = "tpjit:l:" + TestKey(1);
  auto lease = a->AcquireOrWait(TestKey(1), absl::Now() + absl::Seconds(20));
  ASSERT_NE(lease, nullptr);
  // Three lease TTLs later it is still there: the renewer extends it.
  const absl::Time until = absl::Now() + 3 * o.lease_ttl;
  while (absl::Now() < until) {
    ASSERT_EQ(Raw({"EXISTS", lk}).integer, 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // Taken over (as after an expiry): the old owner's release leaves it.
  Raw({"SET", lk, "someone-else"});
  lease.reset();
  EXPECT_EQ(Raw({"GET", lk}).str, "someone-else");
}

TEST_F(RedisStoreTest, CancelWaitsEndsAWaitAtOnce) {
  auto a = Open();
  auto b = Open();
  auto lease = a->AcquireOrWait(TestKey(1), absl::Now() + absl::Seconds(20));
  ASSERT_NE(lease, nullptr);
  std::thread cancel([&] {
    testing::WaitUntil([&] { return b->Stats().lease_waits == 1; },
                       absl::Seconds(20));
    b->CancelWaits();
  });
  const absl::Time start = absl::Now();
  EXPECT_EQ(b->AcquireOrWait(TestKey(1), start + absl::Seconds(60)), nullptr);
  cancel.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
}

TEST_F(RedisStoreTest, KilledThenRestartedServerIsBypassedThenUsedAgain) {
  RedisStoreOptions o;
  o.retry_after = absl::Milliseconds(100);
  auto store = Open(o, absl::Milliseconds(500));
  ASSERT_OK(store->Put(Entry(1)));
  server_->Kill();
  EXPECT_FALSE(store->Get(TestKey(1)).has_value());
  const int64_t errors = store->Stats().errors;
  EXPECT_FALSE(store->Contains(TestKey(1)));
  EXPECT_GT(store->Stats().errors, errors);
  EXPECT_FALSE(store->Put(Entry(2)).ok());
  EXPECT_EQ(store->AcquireOrWait(TestKey(3), absl::Now() + absl::Seconds(20)),
            nullptr);
  EXPECT_FALSE(store->Health().ok());
  EXPECT_GT(store->Stats().errors, 0);
  ASSERT_TRUE(server_->Start());  // empty: no persistence
  ASSERT_TRUE(testing::WaitUntil([&] { return store->Put(Entry(1)).ok(); },
                                 absl::Seconds(20)));
  EXPECT_TRUE(store->Get(TestKey(1)).has_value());
  EXPECT_TRUE(store->Contains(TestKey(1)));
  ASSERT_OK(store->Health());
}

// A killed server: the first Contains fails within the connect time-out.
TEST_F(RedisStoreTest, ContainsOnAKilledServerIsFalseWithinTheTimeout) {
  auto store = Open({}, absl::Milliseconds(500));
  ASSERT_OK(store->Put(Entry(1)));
  ASSERT_TRUE(store->Contains(TestKey(1)));
  server_->Kill();
  const int64_t errors = store->Stats().errors;
  const absl::Time start = absl::Now();
  EXPECT_FALSE(store->Contains(TestKey(1)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  // Counted (the background INFO poll may count its own failure too).
  EXPECT_GT(store->Stats().errors, errors);
  EXPECT_FALSE(store->Health().ok());
}

TEST_F(RedisStoreTest, AFullServerRefusesPutsAndNothingFails) {
  Raw({"CONFIG", "SET", "maxmemory", "2mb"});
  Raw({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
  auto store = Open();
  int refused = 0;
  for (int i = 0; i < 40 && refused == 0; ++i) {
    refused += !store->Put(Entry(i, 200 << 10)).ok();
  }
  EXPECT_GT(refused, 0);
  EXPECT_GT(store->Stats().full, 0);
  EXPECT_TRUE(store->Get(TestKey(0)).has_value());  // reads still work
}

// allkeys-lru: Redis evicts instead of refusing. Every put succeeds; the
// evictions are counted from INFO, and entries found gone are "lost".
TEST_F(RedisStoreTest, AnLruServerEvictsAndTheEvictionsAreCounted) {
  Raw({"CONFIG", "SET", "maxmemory", "2mb"});
  Raw({"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"});
  RedisStoreOptions o;
  o.stats_every = absl::Milliseconds(20);
  auto store = Open(o);
  ASSERT_OK(store->Ping());  // the baseline of INFO's count
  for (int i = 0; i < 40; ++i) ASSERT_OK(store->Put(Entry(i, 200 << 10)));
  int gone = 0;
  for (int i = 0; i < 40; ++i) gone += !store->Get(TestKey(i)).has_value();
  EXPECT_GT(gone, 0);
  ASSERT_TRUE(testing::WaitUntil(
      [&] { return store->Stats().evictions >= gone; }, absl::Seconds(10)))
      << store->Stats().evictions << " evictions, " << gone << " gone";
  StoreStats s = store->Stats();
  EXPECT_EQ(s.lost, gone);
  EXPECT_EQ(s.full, 0);
  EXPECT_EQ(s.errors, 0);
}

TEST_F(RedisStoreTest, RecipesLiveInTheirOwnKeySpaceWithTheirOwnCounters) {
  auto store = Open();
  Store& recipes = store->recipe_store();
  ASSERT_OK(recipes.Put(Entry(1)));
  EXPECT_EQ(Raw({"EXISTS", "tpjit:r:" + TestKey(1)}).integer, 1);
  EXPECT_FALSE(store->Get(TestKey(1)).has_value());  // not a kernel entry
  EXPECT_TRUE(recipes.Get(TestKey(1)).has_value());
  Raw({"SET", "tpjit:r:" + TestKey(2), "not an entry"});
  EXPECT_FALSE(recipes.Get(TestKey(2)).has_value());
  EXPECT_EQ(recipes.AcquireOrWait(TestKey(3), absl::Now()), nullptr);
  StoreStats r = recipes.Stats(), e = store->Stats();
  EXPECT_EQ(r.hits, 1);
  EXPECT_EQ(r.corrupt, 1);
  EXPECT_GT(r.bytes_written, 0);
  EXPECT_EQ(e.hits, 0);
  EXPECT_EQ(e.misses, 1);
  EXPECT_EQ(e.corrupt, 0);
  EXPECT_EQ(e.bytes_written, 0);
}

// A server that does not answer in time: every call ends at the time-out.
class SlowRedisStoreTest : public RedisStoreTest {
 protected:
  std::vector<std::string> ServerOptions() override {
    return {"--enable-debug-command", "yes"};
  }
  // The server stalled for 2 s (DEBUG SLEEP on a thread to join), returned
  // once a 50 ms PING fails.
  std::thread Stall() {
    std::thread sleeper([this] { Raw({"DEBUG", "SLEEP", "2"}); });
    EXPECT_TRUE(testing::WaitUntil(
        [&] {
          auto c = server_->Connect(absl::Milliseconds(50));
          return !c.ok() || !(*c)->Command({"PING"}).ok();
        },
        absl::Seconds(10)));
    return sleeper;
  }
};

TEST_F(SlowRedisStoreTest, EveryCallIsBoundedByTheTimeout) {
  auto store = Open({}, absl::Milliseconds(200));
  ASSERT_OK(store->Put(Entry(1)));
  std::thread sleeper = Stall();
  const absl::Time start = absl::Now();
  EXPECT_FALSE(store->Get(TestKey(1)).has_value());
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  sleeper.join();
  EXPECT_GT(store->Stats().errors, 0);
}

TEST_F(SlowRedisStoreTest, ContainsIsBoundedByTheTimeout) {
  auto store = Open({}, absl::Milliseconds(200));
  ASSERT_OK(store->Put(Entry(1)));
  std::thread sleeper = Stall();
  const absl::Time start = absl::Now();
  EXPECT_FALSE(store->Contains(TestKey(1)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  sleeper.join();
  EXPECT_GT(store->Stats().errors, 0);
}

// A connection that fails on command, for what a real server rarely does.
class FlakyConnector final : public RedisConnector {
 public:
  absl::StatusOr<std::unique_ptr<RedisConnection>> Connect() override {
    connects.fetch_add(1);
    return absl::UnavailableError("connection refused (injected)");
  }
  std::atomic<int> connects{0};
};

TEST(RedisStoreFaultTest, ADownServerCostsOneConnectPerRetryWindow) {
  auto connector = std::make_unique<FlakyConnector>();
  FlakyConnector* flaky = connector.get();
  RedisStoreOptions o;
  o.retry_after = absl::Hours(1);
  RedisStore store(std::move(connector), o);
  EXPECT_FALSE(store.Ping().ok());
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(store.Get(TestKey(i)).has_value());
    EXPECT_FALSE(store.Contains(TestKey(i)));
    EXPECT_FALSE(store.Put(Entry(i)).ok());
    EXPECT_EQ(store.AcquireOrWait(TestKey(i), absl::Now() + absl::Hours(1)),
              nullptr);
  }
  EXPECT_EQ(flaky->connects.load(), 1);
  EXPECT_FALSE(store.Health().ok());
  EXPECT_TRUE(absl::StrContains(store.Health().message(), "injected"));
  EXPECT_EQ(store.Stats().errors, 41);
}

}  // namespace
}  // namespace tpjit
