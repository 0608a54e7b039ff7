// RedisStore: a Store in a Redis server shared by many hosts (issue 15), the
// remote tier behind the local directory (TieredStore).
//
// * Values are whole entry files (entry_format.h): self-describing and
//   checksummed over key, metadata and payload, so a value is verified on
//   every read (a corrupt, truncated, foreign or mis-keyed value is a miss,
//   counted in `corrupt`, and replaced by the next put) and was encoded by
//   the writer from verified bytes. Keys: PREFIX "e:" KEY (entries) and
//   PREFIX "l:" KEY (leases); PREFIX separates deployments sharing a server.
// * Put: SET with a TTL (PX); entries over max_entry_bytes are not sent
//   (put_drops). A full Redis (an OOM reply with maxmemory and the
//   noeviction policy) is counted in `full`, nothing fails. With an
//   allkeys-lru policy Redis evicts instead (docs/operations.md): the
//   background thread reads INFO stats every stats_every and reports the
//   growth of evicted_keys since this store started as Stats().evictions
//   (server-wide: other deployments' keys count too), and a Get that finds
//   gone an entry this store put (the first kMaxRememberedPuts it put) counts
//   it in Stats().lost.
// * Recipes (recipe_book.h) live in the same server under PREFIX "r:" KEY:
//   recipe_store() is a Store over that key space, sharing this store's
//   connections, time-outs and down state, with its own counters. It grants
//   no leases.
// * Leases: cluster-wide single flight. SET lease NX PX lease_ttl with a
//   random token; renewed (compare-and-PEXPIRE in Lua) every lease_ttl/3 by
//   one renewer thread while held; released with a compare-and-delete (Lua).
//   A waiter polls with backoff until the entry is published (nullptr), the
//   lease is free (acquired), or its deadline (nullptr: it compiles itself).
//   An owner that dies without releasing blocks others for at most
//   lease_ttl.
// * Faults: every call is bounded by the connector's timeout. After a failed
//   connect or call, the store is "down" for retry_after: calls fail at once
//   (a miss, a skipped put, no lease) without touching the network, so a
//   dead Redis costs one time-out per retry_after, not one per call. Health()
//   reports the last failure (cached, no I/O).
//
// Thread-safe. Leases refer to their store: destroy them before it.
#ifndef TPJIT_SRC_CACHE_REDIS_STORE_H_
#define TPJIT_SRC_CACHE_REDIS_STORE_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "src/cache/redis_client.h"
#include "src/cache/store.h"

namespace tpjit {

struct RedisStoreOptions {
  std::string prefix = "tpjit:";  // per deployment
  absl::Duration ttl = absl::Hours(24 * 7);
  int64_t max_entry_bytes = 64 << 20;
  absl::Duration lease_ttl = absl::Seconds(30);
  absl::Duration retry_after = absl::Seconds(1);
  absl::Duration min_backoff = absl::Milliseconds(5);
  absl::Duration max_backoff = absl::Milliseconds(200);
  size_t max_idle_connections = 8;
  // How often the background thread reads INFO stats (evictions).
  absl::Duration stats_every = absl::Seconds(1);
  std::string describe = "redis";  // for logs, e.g. the address
};

// Upper bounds (ms) of the call latency histogram's buckets; the last
// bucket (one more count) holds the rest.
inline constexpr double kRedisLatencyBoundsMs[] = {0.25, 0.5, 1,   2,   5,   10,
                                                   25,   50,  100, 250, 1000};

class RedisStore final : public Store {
 public:
  RedisStore(std::unique_ptr<RedisConnector> connector,
             RedisStoreOptions options);
  ~RedisStore() override;

  std::string Describe() const override { return options_.describe; }
  std::optional<CacheEntry> Get(absl::string_view key) override;
  // One EXISTS, bounded and failing like Get (a down or failing Redis: false,
  // counted in errors). The value is not read or verified: a corrupt one
  // counts as present (Get then misses). A key this store put that is gone
  // counts in `lost`, as in Get.
  bool Contains(absl::string_view key) override;
  absl::Status Put(const CacheEntry& entry) override;
  absl::Status Remove(absl::string_view key) override;
  std::unique_ptr<StoreLease> AcquireOrWait(absl::string_view key,
                                            absl::Time deadline) override;
  bool LeasedElsewhere(absl::string_view key) override;
  void CancelWaits() override;
  absl::Status Health() override;
  StoreStats Stats() override;

  // One PING (at start: says in the log whether Redis is reachable), and
  // when it answers the baseline of Stats().evictions.
  absl::Status Ping();
  // The store of recipe files (keys PREFIX "r:" KEY); lives as long as this.
  Store& recipe_store();
  // Reads INFO stats once and updates Stats().evictions (the background
  // thread calls it every stats_every). False if Redis did not answer.
  bool PollEvictions();

 private:
  class RedisLease;
  class View;
  // Counters of one key space (entries, recipes).
  struct Counters {
    std::atomic<int64_t> hits{0}, misses{0}, errors{0}, corrupt{0},
        bytes_read{0}, bytes_written{0}, put_drops{0}, full{0}, lost{0};
  };
  std::optional<CacheEntry> GetIn(absl::string_view space,
                                  absl::string_view key, Counters& c);
  bool ContainsIn(absl::string_view space, absl::string_view key, Counters& c);
  // Counts a Redis key this store put and a read found gone (lost).
  void NoteGone(const std::string& redis_key, Counters& c);
  absl::Status PutIn(absl::string_view space, const CacheEntry& entry,
                     Counters& c);
  void FillStats(const Counters& c, StoreStats& s);
  // Runs one command: through an idle or new connection, unless down.
  // Failures are counted in `c` (default: the entries').
  absl::StatusOr<RedisReply> Call(const std::vector<std::string>& args,
                                  Counters* c = nullptr);
  void MarkDown(const absl::Status& why, Counters& c);
  void Record(absl::Duration latency);
  void Release(const std::string& lease_key, const std::string& token);
  void RunRenewer();
  // Sleeps up to `d`; false if cancelled.
  bool Backoff(absl::Duration d);

  const std::unique_ptr<RedisConnector> connector_;
  const RedisStoreOptions options_;

  absl::Mutex mu_;
  std::vector<std::unique_ptr<RedisConnection>> idle_ ABSL_GUARDED_BY(mu_);
  absl::Time down_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::string> held_ ABSL_GUARDED_BY(mu_);  // key->token
  // Redis keys this store put (bounded), to tell a lost entry from a miss.
  static constexpr size_t kMaxRememberedPuts = 10000;
  std::unordered_set<std::string> put_ ABSL_GUARDED_BY(mu_);
  // INFO evicted_keys: the last value read, and the growth since the first.
  int64_t evicted_last_ ABSL_GUARDED_BY(mu_) = -1;
  std::atomic<int64_t> evictions_{0};

  Counters entries_, recipes_;
  std::atomic<int64_t> leases_won_{0}, lease_waits_{0}, lease_timeouts_{0},
      leases_lost_{0};
  std::atomic<int64_t> latency_[std::size(kRedisLatencyBoundsMs) + 1] = {};
  std::unique_ptr<View> recipe_view_;
  std::thread renewer_;
};

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_REDIS_STORE_H_
