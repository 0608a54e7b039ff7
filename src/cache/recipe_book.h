// RecipeBook: what each group (a model deployment, e.g. "deepseek-v3-tp8")
// compiled, kept in the cache directory so a new or rebuilt node can compile
// a group's whole kernel set at once before its ranks ask one by one.
//
// A recipe is one source of a compile request as the client sent it (source,
// name, options, arch, output kind, include directories as given); never a
// cache key, which the daemon computes. Recipes are content-addressed: the
// digest is the SHA-256 of EncodeRecipe(). Each group has an index: the
// digests of its recipes in the order first recorded, each with the cache
// key its last compile produced (when known), without duplicates.
//
// Layout under the cache directory (every file in the cache entry format,
// entry_format.h: magic, version, checksum, its own name as key):
//   DIR/recipes/objects/<digest>   payload: EncodeRecipe(recipe);
//                                  the payload's SHA-256 is the name
//   DIR/recipes/groups/<sha256(group)>
//                                  metadata "group" = the group's name;
//                                  payload: one "<digest> <key|-> <bytes>\n"
//                                  line per recipe, oldest first
//   temp files "<name>.tmp-<host>-<pid>-<random>" beside them while written
// Files are written to a temp name, fsynced, renamed into place and the
// directory fsynced, so a reader sees the old file or the whole new one.
//
// Bounds: a group keeps at most max_entries recipes and max_bytes of recipe
// objects; recording past a bound drops the group's oldest recipes. Objects
// are never deleted (other groups may share them); dropped ones stay as
// unreferenced files.
//
// Failure behaviour: best-effort, like the cache. A corrupt or unreadable
// object or index is logged, counted (corrupt()) and treated as absent; it
// never fails a compile. Record() returns a Status the caller may ignore; a
// failed write leaves the old file and the in-memory index as they were.
// Temp files of crashed writers are removed by the next Open once older
// than RecipeBookOptions::temp_age.
//
// Sharing: several processes may use one directory. Record() re-reads the
// group's index from disk and merges before rewriting it, which narrows but
// does not close the window in which two daemons recording the same group at
// the same instant lose one's new lines (a later compile records them again).
//
// Sharing through a remote store (RecipeBookOptions::remote, the Redis
// tier's recipe key space): the same files, as entries keyed by their file
// names (so checksummed and verified on every read like kernel entries),
// plus one list of the group names (kRemoteGroupsKey: metadata kind=groups,
// payload one name per line, at most kMaxRemoteGroups). Sync(group) merges
// the remote index and the local one into their union (bounded as above),
// fetching the objects this directory lacks and publishing those the remote
// lacks, and re-reads the remote index after writing it (up to kSyncRounds
// times) so a concurrent writer's lines are merged rather than lost. Record()
// syncs its group after each change. Best effort: a failing remote (Get
// failures are told from misses by the remote's Health()) ends the sync with
// the local book intact; a corrupt remote file is logged, counted (here when
// it is well-formed but wrong, by the remote store when its checksum fails)
// and skipped; the next sync that has the object locally puts it again.
//
// Thread-safety: a RecipeBook is thread-safe.
#ifndef TPJIT_SRC_CACHE_RECIPE_BOOK_H_
#define TPJIT_SRC_CACHE_RECIPE_BOOK_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/cache/cache_dir.h"
#include "src/cache/store.h"
#include "src/common/clock.h"
#include "src/common/file_system.h"

namespace tpjit {

// One source of a compile request, as the client sent it.
struct Recipe {
  std::string backend;  // "nvrtc" or "nvcc"
  std::string arch;     // e.g. "sm_90a"
  std::string output;   // "cubin" or "ptx"
  std::string name;     // the source's file name
  std::string source;   // CUDA C++ text
  std::vector<std::string> name_expressions;
  std::vector<std::string> options;
  std::vector<std::string> include_dirs;  // as given, in order

  bool operator==(const Recipe&) const = default;
};

// The canonical bytes of `recipe`: a version tag, then every field in the
// order declared, strings length-prefixed, lists count-prefixed.
std::string EncodeRecipe(const Recipe& recipe);
// INVALID_ARGUMENT / DATA_LOSS when `bytes` is not an EncodeRecipe() result.
absl::StatusOr<Recipe> DecodeRecipe(absl::string_view bytes);
// Lower-case hex SHA-256 of EncodeRecipe(recipe).
std::string RecipeDigest(const Recipe& recipe);

// One line of a group's index.
struct RecipeRef {
  std::string digest;
  std::string key;    // the cache key of its last compile; empty: unknown
  int64_t bytes = 0;  // size of the encoded recipe
};

struct RecipeGroupInfo {
  std::string group;
  int64_t entries = 0;
  int64_t bytes = 0;
};

struct RecipeBookOptions {
  int64_t max_entries = 10000;     // per group
  int64_t max_bytes = 64LL << 20;  // per group, encoded recipes
  FileSystem* fs = nullptr;        // nullptr: FileSystem::Default()
  Clock* clock = nullptr;          // nullptr: Clock::Real()
  // Open removes temp files older than this (left by crashed writers).
  absl::Duration temp_age = absl::Hours(1);
  CacheLogFn log = nullptr;  // nullptr: StderrCacheLog()
  std::string host;          // empty: this host (temp names)
  int64_t pid = 0;           // 0: this process
  // The remote store of recipe files, or nullptr (no sharing). Must outlive
  // the book.
  Store* remote = nullptr;
};

class RecipeBook {
 public:
  // Opens the recipes of the cache in `cache_dir` and reads every group
  // index; DIR/recipes/ is created at the first write. Fails only when the
  // groups folder exists and cannot be listed; unreadable indexes are logged
  // and skipped.
  static absl::StatusOr<std::unique_ptr<RecipeBook>> Open(
      std::string cache_dir, RecipeBookOptions options = {});
  RecipeBook(const RecipeBook&) = delete;
  RecipeBook& operator=(const RecipeBook&) = delete;

  // Records that `group` compiled `recipe` with result `key` (empty:
  // unknown, keeps a known one). Writes the object if absent, then the
  // index if it changed (a new recipe, or a new key). Returns whether the
  // index changed. REQUIRES: `group` not empty.
  absl::StatusOr<bool> Record(const std::string& group, const Recipe& recipe,
                              const std::string& key);

  // Groups in name order. Also reads the indexes other processes (another
  // daemon, `tpjit cache import`) wrote since Open.
  std::vector<RecipeGroupInfo> Groups();
  // The index of `group`, oldest first; nullopt for a group never recorded.
  // A group not known in memory is looked for on disk (written since Open).
  std::optional<std::vector<RecipeRef>> Index(const std::string& group);
  // The recipe stored under `digest`: NOT_FOUND when absent, DATA_LOSS when
  // corrupt (logged and counted).
  absl::StatusOr<Recipe> Load(const std::string& digest);

  // Every recipe file (objects and indexes, after verifying each; corrupt
  // ones left out), by its path under DIR/recipes/: for cache archives.
  absl::StatusOr<std::map<std::string, std::string>> ExportFiles();
  struct ImportReport {
    int64_t objects_added = 0;
    int64_t groups_merged = 0;
    int64_t entries_added = 0;
  };
  // Verifies every file of `files` (as ExportFiles returns them; DATA_LOSS
  // naming the first bad one, nothing written), then writes absent objects
  // and merges each group's index into the local one (local lines first,
  // then the imported ones it lacks; bounded like Record).
  absl::StatusOr<ImportReport> ImportFiles(
      const std::map<std::string, std::string>& files);
  // The verification ImportFiles does first: OK, or DATA_LOSS naming the
  // first bad file.
  static absl::Status VerifyFiles(
      const std::map<std::string, std::string>& files);

  // With a remote store: makes the local and the remote index of `group`
  // their union (see the header comment); the number of lines added to the
  // local index. 0 without a remote store or on any failure (logged).
  int64_t Sync(const std::string& group);
  // Syncs every group of the remote list that the local book lacks (so `ls`
  // shows what other nodes recorded); at most kMaxRemoteGroups.
  void SyncGroups();
  static constexpr int kSyncRounds = 3;
  static constexpr size_t kMaxRemoteGroups = 1024;

  // Corrupt or unreadable recipe files seen since Open (remote ones
  // included when well-formed but wrong).
  int64_t corrupt() const { return corrupt_.load(); }
  const std::string& dir() const { return dir_; }

 private:
  struct Group {
    std::string name;
    std::vector<RecipeRef> refs;
  };
  RecipeBook(std::string cache_dir, RecipeBookOptions options);
  absl::Status Scan();
  void CleanupTemps();
  void LoadNewGroups() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string ObjectPath(absl::string_view digest) const;
  std::string IndexPath(absl::string_view group) const;
  absl::StatusOr<std::optional<Group>> ReadIndex(const std::string& name);
  absl::Status WriteIndex(const Group& group);
  absl::Status WriteObject(const std::string& digest,
                           const std::string& encoded);
  void Bound(Group& group) const;
  // Merges `on_disk` lines missing from `group` (another process's).
  static void MergeInto(Group& group, const Group& on_disk);
  // Record's local part: whether the index changed.
  absl::StatusOr<bool> RecordLocal(const std::string& group,
                                   const std::string& digest,
                                   const std::string& encoded,
                                   const std::string& key);
  // The remote index of `group`: nullopt when the remote failed (stop),
  // empty when absent or corrupt.
  std::optional<std::vector<RecipeRef>> RemoteIndex(const std::string& group);
  // Fetches into objects/ the objects of `refs` this directory lacks; the
  // lines whose object is here now (newest max_entries, max_bytes).
  std::vector<RecipeRef> FetchObjects(const std::vector<RecipeRef>& refs);
  // Merges `fetched` into the local index of `group`; the merged lines, or
  // nullopt if the index cannot be written. Adds to *added.
  std::optional<std::vector<RecipeRef>> MergeLocal(
      const std::string& group, const std::vector<RecipeRef>& fetched,
      int64_t* added);
  // Puts the objects of `merged` that `theirs` lacks or that were found
  // broken, then the index if `theirs` lacked a line; false when the index
  // was not put (nothing new, or a put failed).
  bool Publish(const std::string& group, const std::vector<RecipeRef>& merged,
               const std::vector<RecipeRef>& theirs);
  // The remote list of group names (empty on a miss or failure).
  std::vector<std::string> RemoteGroups();
  // Adds `group` to the remote list unless known to be there.
  void ListRemotely(const std::string& group);
  void Corrupt(absl::string_view what, const absl::Status& why);

  const std::string dir_;  // DIR/recipes
  RecipeBookOptions options_;
  CacheDir objects_;  // effects for writes into objects/
  CacheDir groups_;   // effects for writes into groups/
  std::atomic<int64_t> corrupt_{0};
  absl::Mutex mu_;  // serializes writers; guards the table
  std::map<std::string, Group> groups_by_name_ ABSL_GUARDED_BY(mu_);
  absl::Mutex remote_mu_;  // guards listed_, broken_
  // Groups known to be in the remote list.
  std::set<std::string> listed_ ABSL_GUARDED_BY(remote_mu_);
  // Objects a remote index names that could not be fetched (corrupt,
  // evicted): put again by the next Publish that has them. Bounded.
  static constexpr size_t kMaxBroken = 10000;
  std::set<std::string> broken_ ABSL_GUARDED_BY(remote_mu_);
};

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_RECIPE_BOOK_H_
