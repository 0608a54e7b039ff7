// Leases of dead owners (issue 12): a lease whose owner process on this host
// is gone, or whose pid now names another process, is broken at once; one
// whose owner cannot be looked up (another host or pid space, format 1) only
// at expiry. Also /proc parsing and a real killed process.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "src/cache/cache.h"
#include "src/cache/lease.h"
#include "src/common/process_table.h"
#include "tests/cache/test_util.h"
#include "tests/testlib/subprocess.h"
#include "tests/testlib/wait.h"

namespace tpjit {
namespace {

using testing::HookClock;
using testing::TempDir;
using testing::TestKey;
using testing::WaitUntil;

// A process table the test edits: pid -> start time.
class FakeProcessTable final : public ProcessTable {
 public:
  explicit FakeProcessTable(std::string space) : space_(std::move(space)) {}
  absl::StatusOr<uint64_t> StartTime(int64_t pid) override {
    absl::MutexLock lock(&mu_);
    auto it = starts_.find(pid);
    if (it == starts_.end()) return absl::NotFoundError("no such process");
    return it->second;
  }
  std::string PidSpace() override { return space_; }
  void Set(int64_t pid, uint64_t start) {
    absl::MutexLock lock(&mu_);
    starts_[pid] = start;
  }
  void Kill(int64_t pid) {
    absl::MutexLock lock(&mu_);
    starts_.erase(pid);
  }

 private:
  const std::string space_;
  absl::Mutex mu_;
  std::map<int64_t, uint64_t> starts_ ABSL_GUARDED_BY(mu_);
};

class LeaseOwnerTest : public ::testing::Test {
 protected:
  LeaseOwnerTest() {
    table_.Set(100, 5000);
    table_.Set(200, 6000);
  }
  // Another "process" (pid) on host `host` looking up `table`.
  std::unique_ptr<Cache> Open(int64_t pid, std::string host = "node",
                              ProcessTable* table = nullptr) {
    CacheOptions o;
    o.clock = &clock_;
    o.pid = pid;
    o.host = std::move(host);
    o.processes = table != nullptr ? table : &table_;
    o.lease_ttl = absl::Seconds(30);
    o.log = [](absl::string_view) {};
    auto cache = Cache::Open(tmp_.path(), o);
    EXPECT_TRUE(cache.ok()) << cache.status();
    return *std::move(cache);
  }

  TempDir tmp_;
  HookClock clock_;
  FakeProcessTable table_{"boot-1/pid:[4026531836]"};
};

TEST(LeaseOwnerFormatTest, RoundTripsAndReadsFormatOne) {
  LeaseOwner o{
      "h", 42, absl::FromUnixSeconds(5), absl::FromUnixSeconds(9), "tok",
      777, ""};
  absl::StatusOr<LeaseOwner> d = DecodeLeaseOwner(EncodeLeaseOwner(o));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->proc_start, 777u);
  EXPECT_EQ(d->pid_space, "");  // an empty value survives
  absl::StatusOr<LeaseOwner> v1 = DecodeLeaseOwner(
      "tpjit-lease 1\nhost=h\npid=7\nstart_ns=1\nexpiry_ns=2\ntoken=t\n");
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(v1->pid, 7);
  EXPECT_EQ(v1->proc_start, 0u);  // unknown: only its expiry counts
  EXPECT_FALSE(DecodeLeaseOwner("tpjit-lease 3\n").ok());
}

TEST_F(LeaseOwnerTest, LiveOwnerKeepsItsLease) {
  auto a = Open(100), b = Open(200);
  Lease la = *a->TryAcquireLease(TestKey(1));
  EXPECT_TRUE(absl::IsUnavailable(b->TryAcquireLease(TestKey(1)).status()));
  EXPECT_EQ(b->Stats().lease_breaks, 0);
}

TEST_F(LeaseOwnerTest, DeadOwnerOnThisHostIsBrokenAtOnce) {
  auto a = Open(100), b = Open(200);
  Lease la = *a->TryAcquireLease(TestKey(1));
  table_.Kill(100);  // kill -9: no release, no renewal
  absl::StatusOr<Lease> lb = b->TryAcquireLease(TestKey(1));
  ASSERT_TRUE(lb.ok()) << lb.status();  // the clock did not move
  EXPECT_EQ(b->Stats().lease_breaks, 1);
}

TEST_F(LeaseOwnerTest, ReusedPidIsBrokenAtOnce) {
  auto a = Open(100), b = Open(200);
  Lease la = *a->TryAcquireLease(TestKey(1));
  table_.Set(100, 9999);  // another process now has pid 100
  EXPECT_TRUE(b->TryAcquireLease(TestKey(1)).ok());
}

TEST_F(LeaseOwnerTest, WaiterTakesOverAKilledOwnerWithoutWaitingForExpiry) {
  auto a = Open(100), b = Open(200);
  Lease la = *a->TryAcquireLease(TestKey(1));
  table_.Kill(100);
  const absl::Time start = clock_.Now();
  auto r = b->WaitForEntryOrLease(TestKey(1), start + absl::Minutes(5));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->lease.held());
  EXPECT_LT(clock_.Now() - start, absl::Seconds(1));
}

TEST_F(LeaseOwnerTest, OwnerElsewhereIsOnlyBrokenAtExpiry) {
  FakeProcessTable other_container("boot-1/pid:[4026532000]");
  other_container.Set(200, 6000);
  auto a = Open(100);
  auto other_host = Open(200, "other-node");
  auto other_ns = Open(200, "node", &other_container);
  Lease la = *a->TryAcquireLease(TestKey(1));
  table_.Kill(100);
  // Pid 100 means nothing to them: they cannot tell the owner is gone.
  EXPECT_FALSE(other_host->TryAcquireLease(TestKey(1)).ok());
  EXPECT_FALSE(other_ns->TryAcquireLease(TestKey(1)).ok());
  clock_.Advance(absl::Seconds(31));
  EXPECT_TRUE(other_ns->TryAcquireLease(TestKey(1)).ok());
}

TEST_F(LeaseOwnerTest, GcBreaksDeadOwnersLeases) {
  auto a = Open(100), b = Open(200);
  Lease la = *a->TryAcquireLease(TestKey(1));
  Lease lb = *b->TryAcquireLease(TestKey(2));
  table_.Kill(100);
  auto report = b->Gc(absl::Hours(1), -1);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->leases_broken, 1);
  EXPECT_TRUE(lb.Renew().ok());
}

TEST(ProcStatTest, ParsesStateAndStartTimeAfterAnOddCommandName) {
  absl::StatusOr<ProcStat> s = ParseProcStat(
      "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 "
      "123456 1000 10 18446744073709551615");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->state, 'S');
  EXPECT_EQ(s->start_time, 123456u);
  EXPECT_FALSE(ParseProcStat("42 (x) S 1 2").ok());
  EXPECT_FALSE(ParseProcStat("garbage").ok());
}

TEST(RealProcessTableTest, KnowsItselfAndNotTheExited) {
  ProcessTable* t = ProcessTable::Real();
  EXPECT_FALSE(t->PidSpace().empty());
  absl::StatusOr<uint64_t> self = t->StartTime(getpid());
  ASSERT_TRUE(self.ok()) << self.status();
  EXPECT_GT(*self, 0u);
  pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_TRUE(WaitUntil([&] { return testing::ProcessState(child) == 'Z'; },
                        absl::Seconds(10)));
  EXPECT_TRUE(absl::IsNotFound(t->StartTime(child).status()));
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(absl::IsNotFound(t->StartTime(child).status()));
}

// A real process takes a lease and is killed with SIGKILL: another process
// on the same directory takes the key over at once.
TEST(RealProcessTableTest, LeaseOfAKilledProcessIsBrokenAtOnce) {
  TempDir tmp;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  if (child == 0) {
    CacheOptions o;
    o.log = [](absl::string_view) {};
    auto cache = Cache::Open(tmp.path(), o);
    absl::StatusOr<Lease> lease = cache.ok()
                                      ? (*cache)->TryAcquireLease(TestKey(1))
                                      : absl::StatusOr<Lease>(cache.status());
    (void)!write(ready[1], lease.ok() ? "1" : "0", 1);
    if (lease.ok()) pause();  // holds the lease until killed
    _exit(1);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  close(ready[1]);
  CacheOptions o;
  HookClock clock;  // never advanced: only the owner's death can free it
  o.clock = &clock;
  o.log = [](absl::string_view) {};
  auto cache = *Cache::Open(tmp.path(), o);
  ASSERT_EQ(c, '1');
  EXPECT_TRUE(absl::IsUnavailable(cache->TryAcquireLease(TestKey(1)).status()));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_TRUE(cache->TryAcquireLease(TestKey(1)).ok());
  EXPECT_EQ(cache->Stats().lease_breaks, 1);
}

}  // namespace
}  // namespace tpjit
