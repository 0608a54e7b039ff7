// RecipeBook's sharing through a remote store (recipe_book.h "Sharing
// through a remote store").
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "src/cache/recipe_book.h"
#include "src/cache/recipe_files.h"
#include "src/common/digest.h"

namespace tpjit {
namespace {

using recipe_files::DecodedGroup;
using recipe_files::DecodeGroupEntry;
using recipe_files::DecodeObjectEntry;
using recipe_files::DecodeObjectFile;
using recipe_files::EncodeGroupFile;
using recipe_files::GroupFileName;

// The remote list of group names.
const std::string& RemoteGroupsKey() {
  static const std::string* key =
      new std::string(Sha256Hex("tpjit-recipe-groups\n"));
  return *key;
}

std::set<std::string> Digests(const std::vector<RecipeRef>& refs) {
  std::set<std::string> out;
  for (const RecipeRef& r : refs) out.insert(r.digest);
  return out;
}

}  // namespace

std::optional<std::vector<RecipeRef>> RecipeBook::RemoteIndex(
    const std::string& group) {
  const std::string name = GroupFileName(group);
  std::optional<CacheEntry> e = options_.remote->Get(name);
  if (!e) {
    // A miss, or a failure: the remote's health tells them apart.
    if (!options_.remote->Health().ok()) return std::nullopt;
    return std::vector<RecipeRef>{};
  }
  absl::StatusOr<DecodedGroup> g = DecodeGroupEntry(*e, name);
  if (!g.ok() || g->group != group) {
    Corrupt(absl::StrCat("remote index of group \"", group, "\""),
            g.ok() ? absl::DataLossError("another group") : g.status());
    return std::vector<RecipeRef>{};  // replaced by ours
  }
  return std::move(g->refs);
}

std::vector<RecipeRef> RecipeBook::FetchObjects(
    const std::vector<RecipeRef>& refs) {
  const size_t max =
      static_cast<size_t>(std::max<int64_t>(0, options_.max_entries));
  const size_t from = refs.size() > max ? refs.size() - max : 0;
  std::vector<RecipeRef> out;
  int64_t bytes = 0;
  for (size_t i = refs.size(); i-- > from && bytes <= options_.max_bytes;) {
    const RecipeRef& r = refs[i];
    absl::StatusOr<std::string> local =
        options_.fs->ReadFile(ObjectPath(r.digest));
    if (local.ok() && DecodeObjectFile(*local, r.digest).ok()) {
      out.push_back(r);
      continue;
    }
    std::optional<CacheEntry> e = options_.remote->Get(r.digest);
    absl::StatusOr<Recipe> recipe =
        e ? DecodeObjectEntry(*e, r.digest)
          : absl::NotFoundError("gone, corrupt or unreachable");
    if (!recipe.ok()) {  // the line is left out
      if (e) {
        Corrupt(absl::StrCat("remote recipe ", r.digest.substr(0, 12)),
                recipe.status());
      }
      absl::MutexLock lock(&remote_mu_);
      if (broken_.size() < kMaxBroken) broken_.insert(r.digest);
      continue;
    }
    if (absl::Status s = WriteObject(r.digest, e->payload); !s.ok()) {
      options_.log(absl::StrCat("recipe ", r.digest.substr(0, 12),
                                ": cannot write: ", s.message()));
      continue;
    }
    bytes += static_cast<int64_t>(e->payload.size());
    out.push_back(r);
  }
  std::reverse(out.begin(), out.end());  // oldest first again
  return out;
}

std::optional<std::vector<RecipeRef>> RecipeBook::MergeLocal(
    const std::string& group, const std::vector<RecipeRef>& fetched,
    int64_t* added) {
  absl::MutexLock lock(&mu_);
  auto it = groups_by_name_.find(group);
  Group g = it != groups_by_name_.end() ? it->second : Group{group, {}};
  absl::StatusOr<std::optional<Group>> on_disk =
      ReadIndex(GroupFileName(group));
  if (on_disk.ok() && *on_disk) MergeInto(g, **on_disk);
  const size_t before = g.refs.size();
  MergeInto(g, Group{group, fetched});
  if (g.refs.size() != before) {
    Bound(g);
    if (absl::Status s = WriteIndex(g); !s.ok()) {
      options_.log(
          absl::StrCat("recipe of group \"", group,
                       "\": cannot merge the remote index: ", s.message()));
      return std::nullopt;
    }
    *added += static_cast<int64_t>(g.refs.size()) -
              static_cast<int64_t>(std::min(before, g.refs.size()));
  }
  std::vector<RecipeRef> merged = g.refs;
  if (!g.refs.empty()) groups_by_name_[group] = std::move(g);
  return merged;
}

bool RecipeBook::Publish(const std::string& group,
                         const std::vector<RecipeRef>& merged,
                         const std::vector<RecipeRef>& theirs) {
  const std::set<std::string> have = Digests(theirs);
  std::set<std::string> broken;
  {
    absl::MutexLock lock(&remote_mu_);
    broken = broken_;
  }
  bool changed = false;
  for (const RecipeRef& r : merged) {
    const bool lacked = have.count(r.digest) == 0;
    changed = changed || lacked;
    if (!lacked && broken.count(r.digest) == 0) continue;
    absl::StatusOr<std::string> bytes =
        options_.fs->ReadFile(ObjectPath(r.digest));
    if (!bytes.ok()) continue;  // counted by Load when used
    absl::StatusOr<CacheEntry> e = DecodeCacheEntry(*bytes, r.digest);
    if (!e.ok() || !options_.remote->Put(*e).ok()) return false;
    absl::MutexLock lock(&remote_mu_);
    broken_.erase(r.digest);
  }
  if (!changed) return false;
  const std::string name = GroupFileName(group);
  absl::StatusOr<CacheEntry> e =
      DecodeCacheEntry(EncodeGroupFile(group, merged), name);
  return e.ok() && options_.remote->Put(*e).ok();
}

int64_t RecipeBook::Sync(const std::string& group) {
  if (options_.remote == nullptr || group.empty()) return 0;
  int64_t added = 0;
  for (int round = 0; round < kSyncRounds; ++round) {
    std::optional<std::vector<RecipeRef>> theirs = RemoteIndex(group);
    if (!theirs) return added;  // the remote failed: logged by it
    const std::set<std::string> mine = [&] {
      absl::MutexLock lock(&mu_);
      auto it = groups_by_name_.find(group);
      return it == groups_by_name_.end() ? std::set<std::string>{}
                                         : Digests(it->second.refs);
    }();
    std::vector<RecipeRef> missing;
    for (const RecipeRef& r : *theirs) {
      if (mine.count(r.digest) == 0) missing.push_back(r);
    }
    std::optional<std::vector<RecipeRef>> merged =
        MergeLocal(group, FetchObjects(missing), &added);
    if (!merged || merged->empty()) return added;
    // Published: read it back in the next round, in case a concurrent
    // writer replaced it; nothing to publish: in sync.
    if (!Publish(group, *merged, *theirs)) break;
  }
  ListRemotely(group);
  if (added > 0) {
    options_.log(absl::StrCat("recipe of group \"", group, "\": ", added,
                              " entries merged from ",
                              options_.remote->Describe()));
  }
  return added;
}

std::vector<std::string> RecipeBook::RemoteGroups() {
  std::optional<CacheEntry> e = options_.remote->Get(RemoteGroupsKey());
  if (!e) return {};
  auto kind = e->metadata.find("kind");
  if (kind == e->metadata.end() || kind->second != "groups") {
    Corrupt("remote list of groups", absl::DataLossError("not a group list"));
    return {};
  }
  std::vector<std::string> names =
      absl::StrSplit(e->payload, '\n', absl::SkipEmpty());
  if (names.size() > kMaxRemoteGroups) names.resize(kMaxRemoteGroups);
  return names;
}

void RecipeBook::ListRemotely(const std::string& group) {
  if (group.find('\n') != std::string::npos) return;
  {
    absl::MutexLock lock(&remote_mu_);
    if (listed_.count(group) > 0) return;
  }
  std::vector<std::string> names = RemoteGroups();
  if (!options_.remote->Health().ok()) return;
  const bool there =
      std::find(names.begin(), names.end(), group) != names.end();
  if (!there && names.size() >= kMaxRemoteGroups) {
    options_.log(absl::StrCat("recipe of group \"", group,
                              "\": not listed remotely (", kMaxRemoteGroups,
                              " groups already)"));
    return;
  }
  if (!there) names.push_back(group);
  if (!there && !options_.remote
                     ->Put(CacheEntry{RemoteGroupsKey(),
                                      {{"kind", "groups"}},
                                      absl::StrJoin(names, "\n")})
                     .ok()) {
    return;
  }
  absl::MutexLock lock(&remote_mu_);
  listed_.insert(names.begin(), names.end());
}

void RecipeBook::SyncGroups() {
  if (options_.remote == nullptr) return;
  for (const std::string& name : RemoteGroups()) {
    bool known = false;
    {
      absl::MutexLock lock(&mu_);
      auto it = groups_by_name_.find(name);
      known = it != groups_by_name_.end() && !it->second.refs.empty();
    }
    if (!known) Sync(name);
  }
}

}  // namespace tpjit
