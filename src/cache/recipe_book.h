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
// Thread-safety: a RecipeBook is thread-safe.
#ifndef TPJIT_SRC_CACHE_RECIPE_BOOK_H_
#define TPJIT_SRC_CACHE_RECIPE_BOOK_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/cache/cache_dir.h"
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

  // Corrupt or unreadable recipe files seen since Open.
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
  void Corrupt(absl::string_view what, const absl::Status& why);

  const std::string dir_;  // DIR/recipes
  RecipeBookOptions options_;
  CacheDir objects_;  // effects for writes into objects/
  CacheDir groups_;   // effects for writes into groups/
  std::atomic<int64_t> corrupt_{0};
  absl::Mutex mu_;  // serializes writers; guards the table
  std::map<std::string, Group> groups_by_name_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_RECIPE_BOOK_H_
