// Leases: exclusivity, RAII, renewal, stale-lease breaking, waiting for an
// entry or a lease (with a file system that shows new files late).
#include "src/cache/lease.h"

#include <atomic>
#include <memory>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/cache/cache.h"
#include "tests/cache/fault_injecting_file_system.h"
#include "tests/cache/test_util.h"

namespace tpjit {
namespace {

using testing::CountTemps;
using testing::FaultInjectingFileSystem;
using ::testing::HasSubstr;
using testing::HookClock;
using testing::TempDir;
using testing::TestKey;

class LeaseTest : public ::testing::Test {
 protected:
  // Each call is another "process" on the same directory.
  std::unique_ptr<Cache> OpenCache(int64_t pid, FileSystem* fs = nullptr) {
    CacheOptions o;
    o.fs = fs != nullptr ? fs : FileSystem::Default();
    o.clock = &clock_;
    o.pid = pid;
    o.host = "host" + std::to_string(pid);
    o.lease_ttl = absl::Seconds(30);
    o.log = [](absl::string_view) {};
    auto cache = Cache::Open(tmp_.path(), o);
    EXPECT_OK(cache.status());
    return *std::move(cache);
  }

  TempDir tmp_;
  HookClock clock_;
};

TEST(LeaseOwnerTest, EncodeDecode) {
  LeaseOwner o{"h", 42, absl::FromUnixSeconds(5), absl::FromUnixSeconds(9),
               "tok"};
  absl::StatusOr<LeaseOwner> d = DecodeLeaseOwner(EncodeLeaseOwner(o));
  ASSERT_OK(d.status());
  EXPECT_EQ(d->host, "h");
  EXPECT_EQ(d->pid, 42);
  EXPECT_EQ(d->start, o.start);
  EXPECT_EQ(d->expiry, o.expiry);
  EXPECT_EQ(d->token, "tok");
  std::string text = EncodeLeaseOwner(o);
  EXPECT_FALSE(DecodeLeaseOwner(text.substr(0, text.size() - 3)).ok());
  EXPECT_FALSE(DecodeLeaseOwner("").ok());
}

TEST_F(LeaseTest, OnlyOneOwnerWhileLive) {
  auto a = OpenCache(1), b = OpenCache(2);
  absl::StatusOr<Lease> la = a->TryAcquireLease(TestKey(1));
  ASSERT_OK(la.status());
  EXPECT_TRUE(la->held());
  absl::StatusOr<Lease> lb = b->TryAcquireLease(TestKey(1));
  EXPECT_TRUE(absl::IsUnavailable(lb.status())) << lb.status();
  EXPECT_THAT(std::string(lb.status().message()), HasSubstr("host1 pid 1"));
  // Same process, another thread: also refused.
  EXPECT_FALSE(a->TryAcquireLease(TestKey(1)).ok());
  // Other keys are independent.
  EXPECT_OK(b->TryAcquireLease(TestKey(2)).status());
  la->Release();
  EXPECT_OK(b->TryAcquireLease(TestKey(1)).status());
  EXPECT_EQ(CountTemps(tmp_.path()), 0);
}

TEST_F(LeaseTest, RaiiMoveAndDoubleRelease) {
  auto a = OpenCache(1);
  {
    Lease outer;
    EXPECT_FALSE(outer.held());
    outer.Release();  // empty: harmless
    {
      Lease inner = *a->TryAcquireLease(TestKey(1));
      outer = std::move(inner);
      inner.Release();  // moved-from: harmless
    }
    EXPECT_TRUE(outer.held());
    EXPECT_FALSE(a->TryAcquireLease(TestKey(1)).ok());
    outer.Release();
    outer.Release();
    EXPECT_FALSE(outer.held());
    Lease again = *a->TryAcquireLease(TestKey(1));
  }  // destructor releases
  EXPECT_OK(a->TryAcquireLease(TestKey(1)).status());
  EXPECT_EQ(testing::DirListing(tmp_.path()).size(), 0u);
}

TEST_F(LeaseTest, StaleLeaseIsBrokenAndCounted) {
  auto a = OpenCache(1), b = OpenCache(2);
  Lease la = *a->TryAcquireLease(TestKey(1));
  clock_.Advance(absl::Seconds(29));
  EXPECT_FALSE(b->TryAcquireLease(TestKey(1)).ok());  // still live
  clock_.Advance(absl::Seconds(2));                   // now expired
  absl::StatusOr<Lease> lb = b->TryAcquireLease(TestKey(1));
  ASSERT_OK(lb.status());
  EXPECT_EQ(b->Stats().lease_breaks, 1);
  // The old owner finds out at its next renewal, and releasing it does not
  // remove the new owner's lease.
  absl::Status renew = la.Renew();
  EXPECT_TRUE(absl::IsAborted(renew)) << renew;
  EXPECT_TRUE(la.lost());
  la.Release();
  EXPECT_FALSE(a->TryAcquireLease(TestKey(1)).ok());
  EXPECT_EQ(CountTemps(tmp_.path()), 0);
}

TEST_F(LeaseTest, RenewedLeaseIsNotBroken) {
  auto a = OpenCache(1), b = OpenCache(2);
  Lease la = *a->TryAcquireLease(TestKey(1));
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(absl::Seconds(20));
    ASSERT_OK(la.Renew());
    EXPECT_FALSE(b->TryAcquireLease(TestKey(1)).ok());
  }
  EXPECT_EQ(la.expiry(), clock_.Now() + absl::Seconds(30));
  EXPECT_EQ(b->Stats().lease_breaks, 0);
}

TEST_F(LeaseTest, GcBreaksOnlyStaleLeases) {
  auto a = OpenCache(1);
  Lease l1 = *a->TryAcquireLease(TestKey(1));
  clock_.Advance(absl::Seconds(20));
  Lease l2 = *a->TryAcquireLease(TestKey(2));
  clock_.Advance(absl::Seconds(20));  // l1 stale, l2 live
  absl::StatusOr<CacheScanReport> r = a->Gc(absl::Hours(1), -1);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->leases_broken, 1);
  EXPECT_TRUE(l2.Renew().ok());
  EXPECT_TRUE(absl::IsAborted(l1.Renew()));
}

TEST_F(LeaseTest, UnreadableLeaseIsBrokenOnlyWhenOld) {
  auto a = OpenCache(1);
  std::string path = tmp_.Sub(TestKey(1) + ".lease");
  ASSERT_OK(WriteWholeFile(*FileSystem::Default(), path, "garbage", true));
  ASSERT_OK(FileSystem::Default()->SetMTime(path, clock_.Now()));
  EXPECT_TRUE(absl::IsUnavailable(a->TryAcquireLease(TestKey(1)).status()));
  clock_.Advance(absl::Minutes(1));
  EXPECT_OK(a->TryAcquireLease(TestKey(1)).status());
}

TEST_F(LeaseTest, LeaseNotYetVisibleIsNotTakenOver) {
  FaultInjectingFileSystem slow;
  auto a = OpenCache(1), b = OpenCache(2, &slow);
  Lease la = *a->TryAcquireLease(TestKey(1));
  slow.HideFor(".lease", 100);  // b cannot read or stat the lease yet
  EXPECT_TRUE(absl::IsUnavailable(b->TryAcquireLease(TestKey(1)).status()));
}

TEST_F(LeaseTest, WaitReturnsTheLeaseWhenFree) {
  auto a = OpenCache(1);
  absl::StatusOr<Cache::EntryOrLease> r =
      a->WaitForEntryOrLease(TestKey(1), clock_.Now());
  ASSERT_OK(r.status());
  EXPECT_FALSE(r->entry.has_value());
  EXPECT_TRUE(r->lease.held());
}

TEST_F(LeaseTest, WaitReturnsTheEntryOnceTheOwnerPublishes) {
  auto owner = OpenCache(1), waiter = OpenCache(2);
  Lease lease = *owner->TryAcquireLease(TestKey(1));
  clock_.OnSleep([&] {
    if (clock_.sleeps() == 4) {
      ASSERT_OK(owner->Put(TestKey(1), "compiled", {}));
      lease.Release();
    }
  });
  absl::StatusOr<Cache::EntryOrLease> r =
      waiter->WaitForEntryOrLease(TestKey(1), clock_.Now() + absl::Seconds(10));
  ASSERT_OK(r.status());
  ASSERT_TRUE(r->entry.has_value());
  EXPECT_EQ(r->entry->payload, "compiled");
  EXPECT_FALSE(r->lease.held());
  EXPECT_EQ(waiter->Stats().lease_waits, 1);
}

TEST_F(LeaseTest, WaiterToleratesAnEntryThatShowsUpLate) {
  FaultInjectingFileSystem slow;
  auto owner = OpenCache(1), waiter = OpenCache(2, &slow);
  Lease lease = *owner->TryAcquireLease(TestKey(1));
  clock_.OnSleep([&] {
    if (clock_.sleeps() == 2) {
      ASSERT_OK(owner->Put(TestKey(1), "compiled", {}));
      slow.HideFor(TestKey(1) + std::string(""), 1000);  // entry and lease
      lease.Release();
    }
    if (clock_.sleeps() == 8) slow.Reset();  // now the entry shows up
  });
  absl::StatusOr<Cache::EntryOrLease> r =
      waiter->WaitForEntryOrLease(TestKey(1), clock_.Now() + absl::Seconds(10));
  ASSERT_OK(r.status());
  ASSERT_TRUE(r->entry.has_value()) << "recompiled instead of waiting";
  EXPECT_EQ(r->entry->payload, "compiled");
}

TEST_F(LeaseTest, WaiterTakesOverADeadOwnersLease) {
  auto dead = OpenCache(1), waiter = OpenCache(2);
  Lease lease = *dead->TryAcquireLease(TestKey(1));
  // The owner never renews (killed): the waiter breaks the lease at expiry.
  absl::Time start = clock_.Now();
  absl::StatusOr<Cache::EntryOrLease> r =
      waiter->WaitForEntryOrLease(TestKey(1), clock_.Now() + absl::Minutes(5));
  ASSERT_OK(r.status());
  EXPECT_TRUE(r->lease.held());
  EXPECT_GE(clock_.Now() - start, absl::Seconds(30));
  EXPECT_EQ(waiter->Stats().lease_breaks, 1);
}

TEST_F(LeaseTest, WaitHonoursTheDeadline) {
  auto owner = OpenCache(1), waiter = OpenCache(2);
  Lease lease = *owner->TryAcquireLease(TestKey(1));
  absl::Time deadline = clock_.Now() + absl::Seconds(3);
  absl::StatusOr<Cache::EntryOrLease> r =
      waiter->WaitForEntryOrLease(TestKey(1), deadline);
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("host1"));
  EXPECT_LE(clock_.Now(), deadline + absl::Milliseconds(1));
  absl::StatusOr<Lease> l = waiter->AcquireLease(TestKey(1), deadline);
  EXPECT_TRUE(absl::IsDeadlineExceeded(l.status()));
}

// The renewer moves the expiry with the (hooked) clock, so the lease outlives
// its first TTL; Release() stops and joins the renewer thread.
TEST_F(LeaseTest, RenewerThreadKeepsTheLeaseAlive) {
  auto a = OpenCache(1), b = OpenCache(2);
  Lease lease = *a->TryAcquireLease(TestKey(1));
  absl::Mutex mu;
  absl::Time last_expiry = absl::InfinitePast();  // GUARDED_BY(mu)
  int renewals = 0;                               // GUARDED_BY(mu)
  // Owned by the renewer's closure: expires once that thread is gone.
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> renewer_alive = token;
  lease.StartRenewer(absl::Milliseconds(1),
                     [&, token = std::move(token)](absl::Time expiry) {
                       absl::MutexLock lock(&mu);
                       last_expiry = expiry;
                       ++renewals;
                     });
  // Waits (10 s at most) for a renewal made with the clock at `now`.
  auto renewed_after = [&](absl::Time now) {
    auto seen = [&] { return last_expiry >= now + absl::Seconds(30); };
    absl::MutexLock lock(&mu);
    return mu.AwaitWithTimeout(absl::Condition(&seen), absl::Seconds(10));
  };
  // Two steps of 20 s: 40 s past the first expiry, still held by `a`.
  for (int step = 0; step < 2; ++step) {
    clock_.Advance(absl::Seconds(20));
    ASSERT_TRUE(renewed_after(clock_.Now())) << "no renewal in 10 s";
  }
  EXPECT_TRUE(absl::IsUnavailable(b->TryAcquireLease(TestKey(1)).status()));
  EXPECT_EQ(b->Stats().lease_breaks, 0);
  lease.Release();
  EXPECT_TRUE(renewer_alive.expired()) << "renewer still running";
  {
    absl::MutexLock lock(&mu);
    EXPECT_GE(renewals, 2);
  }
  EXPECT_OK(b->TryAcquireLease(TestKey(1)).status());
  EXPECT_EQ(b->Stats().lease_breaks, 0) << "released, not broken";
}

// Many threads of one process race for one key: at most one holds it.
TEST_F(LeaseTest, ThreadsNeverHoldOneKeyTogether) {
  auto a = OpenCache(1);
  std::atomic<int> holders{0}, max_holders{0}, acquired{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        absl::StatusOr<Lease> l = a->TryAcquireLease(TestKey(1));
        if (!l.ok()) continue;
        ++acquired;
        int h = ++holders;
        int m = max_holders;
        while (h > m && !max_holders.compare_exchange_weak(m, h)) {
        }
        --holders;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(acquired, 0);
  EXPECT_EQ(max_holders, 1);
  EXPECT_EQ(CountTemps(tmp_.path()), 0);
}

}  // namespace
}  // namespace tpjit
