#include "daemon/stores.h"

#include <stdlib.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "src/cache/local_store.h"
#include "src/cache/redis_store.h"
#include "src/cache/tiered_store.h"

namespace tpjit {
namespace {

absl::StatusOr<std::string> RemotePassword(const DaemonConfig& config) {
  if (!config.remote_cache_password_file.empty()) {
    std::ifstream in(config.remote_cache_password_file);
    if (!in) {
      return absl::InvalidArgumentError(
          absl::StrCat("--remote-cache-password-file: cannot read ",
                       config.remote_cache_password_file));
    }
    std::stringstream s;
    s << in.rdbuf();
    return std::string(absl::StripTrailingAsciiWhitespace(s.str()));
  }
  const char* env = getenv("TPJIT_REMOTE_CACHE_PASSWORD");
  return std::string(env ? env : "");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenDaemonStore(
    const DaemonConfig& config) {
  auto local = OpenLocalStore(config.cache_dir, config.cache_max_bytes,
                              config.allow_shared_cache);
  if (!local.ok() || config.remote_cache.empty()) return local;
  auto address = ParseRedisUrl(config.remote_cache);
  if (!address.ok()) return address.status();
  auto password = RemotePassword(config);
  if (!password.ok()) return password.status();
  RedisStoreOptions o;
  o.prefix = config.remote_cache_prefix;
  o.ttl = absl::Seconds(config.remote_cache_ttl_seconds);
  o.max_entry_bytes = config.remote_cache_max_entry_bytes;
  o.describe = address->ToString();
  const absl::Duration timeout =
      absl::Seconds(config.remote_cache_timeout_seconds);
  auto redis = std::make_unique<RedisStore>(
      NewHiredisConnector(*address, std::move(*password), timeout), o);
  if (absl::Status up = redis->Ping(); up.ok()) {
    std::cerr << "tpjitd: remote cache " << o.describe << " (prefix \""
              << o.prefix << "\")\n";
  }  // else RedisStore has logged that it serves locally
  std::vector<std::unique_ptr<Store>> tiers;
  tiers.push_back(std::move(*local));
  tiers.push_back(std::move(redis));
  return std::unique_ptr<Store>(new TieredStore(std::move(tiers)));
}

Store* RemoteRecipeStore(Store& store) {
  auto* tiered = dynamic_cast<TieredStore*>(&store);
  if (tiered == nullptr || tiered->tier_count() < 2) return nullptr;
  auto* redis = dynamic_cast<RedisStore*>(&tiered->tier(1));
  return redis == nullptr ? nullptr : &redis->recipe_store();
}

tpjit::v1::RemoteCacheStats RemoteStats(Store& store) {
  tpjit::v1::RemoteCacheStats r;
  auto* tiered = dynamic_cast<TieredStore*>(&store);
  if (tiered == nullptr || tiered->tier_count() < 2) return r;
  Store& remote = tiered->tier(1);
  const StoreStats s = tiered->TierStats(1);
  const absl::Status health = remote.Health();
  r.set_address(remote.Describe());
  r.set_healthy(health.ok());
  r.set_detail(std::string(health.message()));
  r.set_hits(s.hits);
  r.set_misses(s.misses);
  r.set_errors(s.errors);
  r.set_corrupt(s.corrupt);
  r.set_bytes_read(s.bytes_read);
  r.set_bytes_written(s.bytes_written);
  r.set_put_drops(s.put_drops);
  r.set_full(s.full);
  r.set_leases_won(s.leases_won);
  r.set_lease_waits(s.lease_waits);
  r.set_lease_timeouts(s.lease_timeouts);
  r.set_evictions(s.evictions);
  r.set_lost(s.lost);
  if (Store* recipes = RemoteRecipeStore(store)) {
    const StoreStats rs = recipes->Stats();
    r.set_recipe_hits(rs.hits);
    r.set_recipe_misses(rs.misses);
    r.set_recipe_errors(rs.errors);
    r.set_recipe_corrupt(rs.corrupt);
    r.set_recipe_bytes_read(rs.bytes_read);
    r.set_recipe_bytes_written(rs.bytes_written);
  }
  for (double b : s.latency_bounds_ms) r.add_latency_bounds_ms(b);
  for (int64_t c : s.latency_counts) r.add_latency_counts(c);
  return r;
}

}  // namespace tpjit
