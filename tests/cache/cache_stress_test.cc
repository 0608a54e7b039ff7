// Multi-process stress: worker processes share one cache directory and the
// same keys; each "compiles" the keys it misses under a lease, and the test
// kill -9s random workers (often mid-write) and starts replacements. Then:
//   * every entry verifies and holds the right bytes; no reader ever saw a
//     wrong or torn entry;
//   * after CleanupTemps and a lease GC, no temp or lease file remains;
//   * no key was compiled by two owners while a live lease existed: every
//     compile logs "S key token acquired_ns expiry_ns pid" after acquiring,
//     "R key token expiry_ns" after each renewal of the lease file, and "E
//     key token" before releasing, to one O_APPEND log; the test logs "K pid
//     kill_ns" for each worker it kills. The log is replayed in order; a
//     lease of a killed worker counts as live only until its kill (lease.h:
//     the dead owner's lease is broken at once).
// Uses real time and real sleeps (the only cache test that does); ~10 s.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "src/cache/cache.h"
#include "tests/cache/test_util.h"

namespace tpjit {
namespace {

using testing::CountTemps;
using testing::TempDir;
using testing::TestKey;

constexpr int kKeys = 16;
constexpr int kWorkers = 5;
constexpr absl::Duration kRunFor = absl::Seconds(6);
// Well above the renewal period, so that a live owner starved of CPU on a
// loaded machine (a CI box running tests in parallel) is not taken for dead.
constexpr absl::Duration kTtl = absl::Seconds(5);
constexpr absl::Duration kRenewEvery = absl::Milliseconds(200);

std::string Expected(const std::string& key) {
  size_t size = (64 + (key[0] % 8) * 96) * 1024;  // 64 KB .. ~730 KB
  std::string payload;
  while (payload.size() < size) payload += key;
  payload.resize(size);
  return payload;
}

void Append(int fd, const std::string& line) {
  std::string l = line + "\n";
  (void)!write(fd, l.data(), l.size());  // one write: atomic with O_APPEND
}

// Runs in a child process until `until`; never returns.
[[noreturn]] void Worker(const std::string& dir, const std::string& log_path,
                         absl::Time until) {
  int log = open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  CacheOptions o;
  o.lease_ttl = kTtl;
  o.max_bytes =
      3 << 20;  // under the key set (~4.5 MB): evictions force recompiles
  o.eviction_grace = absl::ZeroDuration();
  o.log = [](absl::string_view) {};
  auto cache = Cache::Open(dir, o);
  if (!cache.ok()) _exit(3);
  std::mt19937 rng(std::random_device{}());
  while (absl::Now() < until) {
    const std::string key = TestKey(rng() % kKeys);
    auto r = (*cache)->WaitForEntryOrLease(key, absl::Now() + absl::Seconds(5));
    if (!r.ok()) continue;
    if (r->entry) {
      if (r->entry->payload != Expected(key)) Append(log, "BAD " + key);
      continue;
    }
    Lease& lease = r->lease;
    // Taken once the lease is ours, not the lease's own start (expiry -
    // TTL): that one is read before the lease file is written and linked,
    // which can end after a killed owner's lease was broken, so a lawful
    // take-over would read as acquired before the kill. A take-over whose
    // `acquired` precedes the owner's kill (or expiry) is then certain.
    const absl::Time acquired = absl::Now();
    Append(log, absl::StrCat("S ", key, " ", lease.token(), " ",
                             absl::ToUnixNanos(acquired), " ",
                             absl::ToUnixNanos(lease.expiry()), " ", getpid()));
    lease.StartRenewer(kRenewEvery, [&, key](absl::Time expiry) {
      Append(log, absl::StrCat("R ", key, " ", lease.token(), " ",
                               absl::ToUnixNanos(expiry)));
    });
    absl::SleepFor(absl::Milliseconds(rng() % 30));  // the "compile"
    (*cache)->Put(key, Expected(key), {{"token", lease.token()}}).IgnoreError();
    Append(log, absl::StrCat("E ", key, " ", lease.token()));
    lease.Release();
  }
  _exit(0);
}

struct Owner {
  std::string token;
  int64_t expiry_ns;
  int64_t dead_ns;  // when its process was killed; INT64_MAX if never
};

// "K pid kill_ns" lines: pid -> kill time.
std::map<std::string, int64_t> Kills(const std::string& text) {
  std::map<std::string, int64_t> kills;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    int64_t ns = 0;
    if (f.size() == 3 && f[0] == "K" && absl::SimpleAtoi(f[2], &ns)) {
      kills[f[1]] = ns;
    }
  }
  return kills;
}

// Replays the log; returns the violations and counts the compiles.
std::vector<std::string> CheckLog(const std::string& text, int* compiles) {
  std::vector<std::string> violations;
  std::map<std::string, Owner> active;
  const std::map<std::string, int64_t> kills = Kills(text);
  *compiles = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.empty() || f[0].empty()) continue;
    if (f[0] == "BAD") violations.push_back(std::string(line));
    if (f.size() < 3) continue;
    const std::string& key = f[1];
    const std::string& token = f[2];
    auto it = active.find(key);
    if (f[0] == "S" && (f.size() == 5 || f.size() == 6)) {
      ++*compiles;
      int64_t acquired = 0, expiry = 0;
      absl::SimpleAtoi(f[3], &acquired);
      absl::SimpleAtoi(f[4], &expiry);
      if (it != active.end() && acquired <= it->second.expiry_ns &&
          acquired < it->second.dead_ns) {
        violations.push_back(absl::StrCat(
            key, ": ", token, " acquired while ", it->second.token,
            " was live (acquired ", acquired, ", its expiry ",
            it->second.expiry_ns, ", killed ",
            it->second.dead_ns == INT64_MAX ? std::string("never")
                                            : absl::StrCat(it->second.dead_ns),
            ")"));
      }
      auto killed = f.size() == 6 ? kills.find(f[5]) : kills.end();
      active[key] = {token, expiry,
                     killed == kills.end() ? INT64_MAX : killed->second};
    } else if (f[0] == "R" && f.size() == 4 && it != active.end() &&
               it->second.token == token) {
      absl::SimpleAtoi(f[3], &it->second.expiry_ns);
    } else if (f[0] == "E" && it != active.end() && it->second.token == token) {
      active.erase(it);
    }
  }
  return violations;
}

TEST(CacheStressTest, LogCheckerFindsOverlappingLiveLeases) {
  int compiles = 0;
  // b acquires at 150 while a's lease (renewed to 200) is live: violation.
  EXPECT_EQ(
      CheckLog("S k a 0 100\nR k a 200\nS k b 150 300\n", &compiles).size(),
      1u);
  // c acquires after a's expiry, d after c released: fine.
  EXPECT_TRUE(
      CheckLog("S k a 0 100\nS k c 101 300\nE k c\nS k d 150 400\n", &compiles)
          .empty());
  EXPECT_EQ(compiles, 3);
  EXPECT_EQ(CheckLog("BAD k\n", &compiles).size(), 1u);
  // a (pid 7) was killed at 50: its lease may go then, not before.
  EXPECT_TRUE(
      CheckLog("S k a 0 100 7\nS k b 60 300 8\nK 7 50\n", &compiles).empty());
  EXPECT_EQ(
      CheckLog("S k a 0 100 7\nS k b 40 300 8\nK 7 50\n", &compiles).size(),
      1u);
}

TEST(CacheStressTest, KillNineDuringWritesKeepsTheCacheSound) {
  TempDir tmp;
  const std::string dir = tmp.Sub("cache");
  const std::string log_path = tmp.Sub("compiles.log");
  ASSERT_OK(FileSystem::Default()->CreateDirs(dir));
  const absl::Time until = absl::Now() + kRunFor;
  auto spawn = [&] {
    pid_t pid = fork();
    if (pid == 0) Worker(dir, log_path, until);
    return pid;
  };
  std::vector<pid_t> workers;
  for (int i = 0; i < kWorkers; ++i) workers.push_back(spawn());
  std::mt19937 rng(42);
  int kills = 0;
  int log_fd = open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  while (absl::Now() < until - absl::Milliseconds(300)) {
    absl::SleepFor(absl::Milliseconds(20 + rng() % 80));
    pid_t& victim = workers[rng() % workers.size()];
    Append(log_fd,
           absl::StrCat("K ", victim, " ", absl::ToUnixNanos(absl::Now())));
    kill(victim, SIGKILL);
    waitpid(victim, nullptr, 0);
    ++kills;
    victim = spawn();
  }
  close(log_fd);
  for (pid_t pid : workers) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "worker " << pid << " status " << status;
  }

  int compiles = 0;
  std::string log = *FileSystem::Default()->ReadFile(log_path);
  std::vector<std::string> violations = CheckLog(log, &compiles);
  EXPECT_TRUE(violations.empty())
      << violations.size() << " violations: "
      << absl::StrJoin(
             violations.begin(),
             violations.begin() + std::min<size_t>(5, violations.size()), "; ");

  CacheOptions o;
  o.log = [](absl::string_view) {};
  auto cache = *Cache::Open(dir, o);
  int temps_left = CountTemps(dir);
  absl::SleepFor(kTtl);  // let the killed workers' leases expire
  absl::StatusOr<CacheScanReport> gc = cache->Gc(absl::ZeroDuration(), -1);
  ASSERT_OK(gc.status());
  EXPECT_EQ(CountTemps(dir), 0);
  std::vector<std::string> names = *FileSystem::Default()->ListDir(dir);
  for (const std::string& name : names) {
    EXPECT_TRUE(IsValidCacheKey(name)) << "left over: " << name;
  }
  absl::StatusOr<CacheScanReport> verify = cache->Verify(false);
  ASSERT_OK(verify.status());
  EXPECT_TRUE(verify->corrupt.empty());
  std::vector<CacheEntryInfo> entries = *cache->List();
  for (const CacheEntryInfo& e : entries) {
    EXPECT_EQ(cache->Get(e.key)->payload, Expected(e.key));
  }
  EXPECT_GT(kills, 10);
  EXPECT_GE(compiles, kKeys);
  std::cout << "kills=" << kills << " compiles=" << compiles
            << " temps left by killed writers=" << temps_left
            << " stale leases broken by gc=" << gc->leases_broken
            << " entries=" << verify->entries << "\n";
}

}  // namespace
}  // namespace tpjit
