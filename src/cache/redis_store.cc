#include "src/cache/redis_store.h"

#include <iostream>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace tpjit {
namespace {

// KEYS[1] = lease key, ARGV[1] = token (, ARGV[2] = ttl ms).
constexpr char kRelease[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('del', KEYS[1]) else return 0 end";
constexpr char kRenew[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";

std::string Millis(absl::Duration d) {
  return absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(d)));
}

// evicted_keys from an INFO reply ("name:value" lines), or nullopt.
std::optional<int64_t> EvictedKeys(absl::string_view info) {
  for (absl::string_view line : absl::StrSplit(info, '\n')) {
    line = absl::StripTrailingAsciiWhitespace(line);
    int64_t v = 0;
    if (absl::ConsumePrefix(&line, "evicted_keys:") &&
        absl::SimpleAtoi(line, &v)) {
      return v;
    }
  }
  return std::nullopt;
}

std::string NewToken() {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* gen = new absl::BitGen();
  absl::MutexLock lock(&mu);
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(*gen),
                         absl::Uniform<uint64_t>(*gen));
}

}  // namespace

class RedisStore::RedisLease final : public StoreLease {
 public:
  RedisLease(RedisStore* s, std::string key, std::string token)
      : s_(s), key_(std::move(key)), token_(std::move(token)) {}
  ~RedisLease() override { s_->Release(key_, token_); }

 private:
  RedisStore* s_;
  std::string key_, token_;
};

// The recipe key space: Get, Put and Remove under PREFIX "r:", no leases.
class RedisStore::View final : public Store {
 public:
  explicit View(RedisStore* s) : s_(s) {}
  std::string Describe() const override {
    return absl::StrCat(s_->options_.describe, " (recipes)");
  }
  std::optional<CacheEntry> Get(absl::string_view key) override {
    return s_->GetIn("r:", key, s_->recipes_);
  }
  bool Contains(absl::string_view key) override {
    return s_->ContainsIn("r:", key, s_->recipes_);
  }
  absl::Status Put(const CacheEntry& entry) override {
    return s_->PutIn("r:", entry, s_->recipes_);
  }
  absl::Status Remove(absl::string_view key) override {
    auto r = s_->Call({"DEL", absl::StrCat(s_->options_.prefix, "r:", key)},
                      &s_->recipes_);
    if (!r.ok()) return r.status();
    return r->error() ? absl::UnavailableError(r->str) : absl::OkStatus();
  }
  std::unique_ptr<StoreLease> AcquireOrWait(absl::string_view,
                                            absl::Time) override {
    return nullptr;
  }
  absl::Status Health() override { return s_->Health(); }
  StoreStats Stats() override {
    StoreStats st;
    s_->FillStats(s_->recipes_, st);
    return st;
  }

 private:
  RedisStore* s_;
};

RedisStore::RedisStore(std::unique_ptr<RedisConnector> connector,
                       RedisStoreOptions options)
    : connector_(std::move(connector)),
      options_(std::move(options)),
      recipe_view_(std::make_unique<View>(this)) {
  renewer_ = std::thread([this] { RunRenewer(); });
}

Store& RedisStore::recipe_store() { return *recipe_view_; }

RedisStore::~RedisStore() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  renewer_.join();
}

absl::StatusOr<RedisReply> RedisStore::Call(
    const std::vector<std::string>& args, Counters* c) {
  Counters& counters = c != nullptr ? *c : entries_;
  std::unique_ptr<RedisConnection> conn;
  {
    absl::MutexLock lock(&mu_);
    if (absl::Now() < down_until_) {
      counters.errors.fetch_add(1);
      return last_error_;
    }
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  const absl::Time start = absl::Now();
  if (!conn) {
    auto c = connector_->Connect();
    if (!c.ok()) {
      MarkDown(c.status(), counters);
      return c.status();
    }
    conn = std::move(*c);
  }
  absl::StatusOr<RedisReply> r = conn->Command(args);
  Record(absl::Now() - start);
  if (!r.ok()) {
    MarkDown(r.status(), counters);
    return r.status();
  }
  absl::MutexLock lock(&mu_);
  if (!last_error_.ok()) {
    std::cerr << "tpjitd: remote cache " << options_.describe
              << " reachable again\n";
  }
  last_error_ = absl::OkStatus();
  if (idle_.size() < options_.max_idle_connections) {
    idle_.push_back(std::move(conn));
  }
  return r;
}

void RedisStore::MarkDown(const absl::Status& why, Counters& c) {
  c.errors.fetch_add(1);
  absl::MutexLock lock(&mu_);
  if (last_error_.ok()) {
    std::cerr << "tpjitd: remote cache " << options_.describe
              << " unavailable, serving locally: " << why.message() << "\n";
  }
  last_error_ = absl::UnavailableError(
      absl::StrCat("remote cache unavailable: ", why.message()));
  down_until_ = absl::Now() + options_.retry_after;
  idle_.clear();  // a failure may have broken them all (a restart)
}

void RedisStore::Record(absl::Duration latency) {
  const double ms = absl::ToDoubleMilliseconds(latency);
  size_t b = 0;
  while (b < std::size(kRedisLatencyBoundsMs) && ms > kRedisLatencyBoundsMs[b])
    ++b;
  latency_[b].fetch_add(1, std::memory_order_relaxed);
}

absl::Status RedisStore::Ping() {
  auto r = Call({"PING"});
  if (!r.ok()) return r.status();
  if (r->error()) return absl::UnavailableError(r->str);
  PollEvictions();  // the baseline, before this store's first put
  return absl::OkStatus();
}

std::optional<CacheEntry> RedisStore::Get(absl::string_view key) {
  return GetIn("e:", key, entries_);
}

std::optional<CacheEntry> RedisStore::GetIn(absl::string_view space,
                                            absl::string_view key,
                                            Counters& c) {
  const std::string redis_key = absl::StrCat(options_.prefix, space, key);
  auto r = Call({"GET", redis_key}, &c);
  if (!r.ok()) return std::nullopt;
  if (r->nil()) {
    c.misses.fetch_add(1);
    NoteGone(redis_key, c);
    return std::nullopt;
  }
  absl::StatusOr<CacheEntry> e =
      r->type == RedisReply::Type::kString
          ? DecodeCacheEntry(r->str, key)
          : absl::DataLossError(r->error() ? r->str : "not a string value");
  c.bytes_read.fetch_add(static_cast<int64_t>(r->str.size()));
  if (!e.ok()) {  // foreign or corrupt: ignored, replaced by the next put
    c.corrupt.fetch_add(1);
    c.misses.fetch_add(1);
    std::cerr << "tpjitd: remote "
              << (space == "r:" ? "recipe file " : "entry ")
              << key.substr(0, 12) << " ignored: " << e.status().message()
              << "\n";
    return std::nullopt;
  }
  c.hits.fetch_add(1);
  return std::move(*e);
}

void RedisStore::NoteGone(const std::string& redis_key, Counters& c) {
  absl::MutexLock lock(&mu_);
  if (put_.erase(redis_key) > 0) c.lost.fetch_add(1);
}

bool RedisStore::Contains(absl::string_view key) {
  return ContainsIn("e:", key, entries_);
}

bool RedisStore::ContainsIn(absl::string_view space, absl::string_view key,
                            Counters& c) {
  const std::string redis_key = absl::StrCat(options_.prefix, space, key);
  auto r = Call({"EXISTS", redis_key}, &c);
  if (!r.ok()) return false;  // counted (and logged when it went down)
  if (r->type != RedisReply::Type::kInteger) {
    c.errors.fetch_add(1);
    std::cerr << "tpjitd: remote EXISTS of " << key.substr(0, 12)
              << " failed: " << (r->error() ? r->str : "not an integer")
              << "\n";
    return false;
  }
  if (r->integer == 0) NoteGone(redis_key, c);
  return r->integer > 0;
}

absl::Status RedisStore::Put(const CacheEntry& entry) {
  return PutIn("e:", entry, entries_);
}

absl::Status RedisStore::PutIn(absl::string_view space, const CacheEntry& entry,
                               Counters& c) {
  if (!IsValidCacheKey(entry.key)) {
    return absl::InvalidArgumentError("remote put: invalid key");
  }
  std::string bytes =
      EncodeCacheEntry(entry.key, entry.metadata, entry.payload);
  if (static_cast<int64_t>(bytes.size()) > options_.max_entry_bytes) {
    c.put_drops.fetch_add(1);
    return absl::ResourceExhaustedError(
        absl::StrCat("remote put: entry of ", bytes.size(),
                     " bytes is over the limit of ", options_.max_entry_bytes));
  }
  const int64_t size = static_cast<int64_t>(bytes.size());
  std::string redis_key = absl::StrCat(options_.prefix, space, entry.key);
  auto r = Call(
      {"SET", redis_key, std::move(bytes), "PX", Millis(options_.ttl)}, &c);
  if (!r.ok()) return r.status();
  if (r->error()) {
    c.errors.fetch_add(1);
    if (absl::StartsWith(r->str, "OOM")) c.full.fetch_add(1);
    return absl::ResourceExhaustedError(
        absl::StrCat("remote put refused: ", r->str));
  }
  c.bytes_written.fetch_add(size);
  absl::MutexLock lock(&mu_);
  if (put_.size() < kMaxRememberedPuts) put_.insert(std::move(redis_key));
  return absl::OkStatus();
}

absl::Status RedisStore::Remove(absl::string_view key) {
  auto r = Call({"DEL", absl::StrCat(options_.prefix, "e:", key)});
  if (!r.ok()) return r.status();
  return r->error() ? absl::UnavailableError(r->str) : absl::OkStatus();
}

std::unique_ptr<StoreLease> RedisStore::AcquireOrWait(absl::string_view key,
                                                      absl::Time deadline) {
  const std::string lease_key = absl::StrCat(options_.prefix, "l:", key);
  const std::string entry_key = absl::StrCat(options_.prefix, "e:", key);
  const std::string token = NewToken();
  absl::Duration backoff = options_.min_backoff;
  bool waited = false;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) return nullptr;
    }
    auto won =
        Call({"SET", lease_key, token, "NX", "PX", Millis(options_.lease_ttl)});
    if (!won.ok() || won->error()) return nullptr;  // compile without it
    auto published = Call({"EXISTS", entry_key});
    const bool exists = published.ok() &&
                        published->type == RedisReply::Type::kInteger &&
                        published->integer > 0;
    if (won->type == RedisReply::Type::kStatus) {
      if (exists) {  // published just before: nothing to compile
        Release(lease_key, token);
        return nullptr;
      }
      leases_won_.fetch_add(1);
      absl::MutexLock lock(&mu_);
      held_[lease_key] = token;
      return std::make_unique<RedisLease>(this, lease_key, token);
    }
    if (exists || !published.ok()) return nullptr;
    if (!waited) lease_waits_.fetch_add(1);
    waited = true;
    if (absl::Now() >= deadline) {
      lease_timeouts_.fetch_add(1);
      return nullptr;
    }
    if (!Backoff(std::min(backoff, deadline - absl::Now()))) return nullptr;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void RedisStore::Release(const std::string& lease_key,
                         const std::string& token) {
  {
    absl::MutexLock lock(&mu_);
    held_.erase(lease_key);
  }
  // On failure the lease expires after lease_ttl.
  Call({"EVAL", kRelease, "1", lease_key, token}).IgnoreError();
}

void RedisStore::RunRenewer() {
  const absl::Duration renew_every = options_.lease_ttl / 3;
  const absl::Duration tick = std::min(renew_every, options_.stats_every);
  absl::Time next_renew = absl::Now() + renew_every;
  absl::Time next_poll = absl::Now();  // a baseline at once
  for (;;) {
    std::map<std::string, std::string> held;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), tick);
      if (stopping_) return;
      if (absl::Now() >= next_renew) held = held_;
    }
    if (absl::Now() >= next_poll) {
      PollEvictions();
      next_poll = absl::Now() + options_.stats_every;
    }
    if (absl::Now() < next_renew) continue;
    next_renew = absl::Now() + renew_every;
    for (const auto& [key, token] : held) {
      auto r =
          Call({"EVAL", kRenew, "1", key, token, Millis(options_.lease_ttl)});
      if (r.ok() && r->type == RedisReply::Type::kInteger && r->integer == 0) {
        leases_lost_.fetch_add(1);  // expired and taken: a duplicate compile
        std::cerr << "tpjitd: remote lease " << key
                  << " was lost before its renewal\n";
      }
    }
  }
}

bool RedisStore::PollEvictions() {
  auto r = Call({"INFO", "stats"});
  if (!r.ok() || r->type != RedisReply::Type::kString) return false;
  std::optional<int64_t> evicted = EvictedKeys(r->str);
  if (!evicted) return false;
  absl::MutexLock lock(&mu_);
  // A restarted server counts from 0 again: its whole count is new.
  if (evicted_last_ >= 0) {
    evictions_.fetch_add(*evicted >= evicted_last_ ? *evicted - evicted_last_
                                                   : *evicted);
  }
  evicted_last_ = *evicted;
  return true;
}

bool RedisStore::Backoff(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&cancelled_), d);
  return !cancelled_;
}

bool RedisStore::LeasedElsewhere(absl::string_view key) {
  {
    absl::MutexLock lock(&mu_);
    if (held_.count(absl::StrCat(options_.prefix, "l:", key))) return false;
  }
  auto r = Call({"EXISTS", absl::StrCat(options_.prefix, "l:", key)});
  return r.ok() && r->type == RedisReply::Type::kInteger && r->integer > 0;
}

void RedisStore::CancelWaits() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
}

absl::Status RedisStore::Health() {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

void RedisStore::FillStats(const Counters& c, StoreStats& s) {
  s.hits = c.hits.load();
  s.misses = c.misses.load();
  s.errors = c.errors.load();
  s.corrupt = c.corrupt.load();
  s.put_drops = c.put_drops.load();
  s.bytes_read = c.bytes_read.load();
  s.bytes_written = c.bytes_written.load();
  s.full = c.full.load();
  s.lost = c.lost.load();
}

StoreStats RedisStore::Stats() {
  StoreStats s;
  FillStats(entries_, s);
  s.evictions = evictions_.load();
  s.leases_won = leases_won_.load();
  s.lease_waits = lease_waits_.load();
  s.lease_timeouts = lease_timeouts_.load();
  s.latency_bounds_ms.assign(std::begin(kRedisLatencyBoundsMs),
                             std::end(kRedisLatencyBoundsMs));
  for (const auto& c : latency_) s.latency_counts.push_back(c.load());
  return s;
}

}  // namespace tpjit
