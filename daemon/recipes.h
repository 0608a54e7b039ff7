// Recipes: tpjitd's use of the RecipeBook (src/cache/recipe_book.h). It
//  - records every source a group compiled (or hit) through the Compile RPC,
//    with the key of its result, once the compile succeeded;
//  - at a group's first Compile since the daemon started, when the group has
//    a recipe and the cache lacks some of its kernels (by their last known
//    keys), compiles the missing entries at once through the daemon's own
//    compile path, so keys, single flight and the cache are shared and the
//    ranks' later requests hit or wait on these compiles;
//  - answers the RecipeService calls (List, Show, Prefetch).
// With a remote cache the book shares recipes through it (recipe_book.h):
// a prefetch and Show first sync their group, List the remote list of
// groups, so a node with an empty disk starts from its deployment's recipes.
// A prefetch sends the recorded requests with the recorded include
// directories, except that one which does not exist on this node is replaced
// by the directory at the same index of the request that triggered the
// prefetch (or of PrefetchRecipeRequest.include_dirs). Entries are sent in
// batches of equal backend, arch, options, include directories and output
// kind, with an empty group (a prefetch never records or triggers itself).
//
// Recording and prefetch submission run on one background thread of this
// object; the hooks return at once. The cache is best-effort: a recipe that
// cannot be written or read is logged and skipped, never fails a compile.
// Thread-safe.
#ifndef TPJIT_DAEMON_RECIPES_H_
#define TPJIT_DAEMON_RECIPES_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/executor.h"
#include "src/cache/recipe_book.h"
#include "src/common/clock.h"
#include "src/common/file_system.h"
#include "src/common/logger.h"
#include "tpjit/v1/recipe.pb.h"
#include "tpjit/v1/tpjit.pb.h"

namespace tpjit {

using CompileDone =
    std::function<void(absl::StatusOr<tpjit::v1::CompileResponse>)>;

struct RecipesDeps {
  std::unique_ptr<RecipeBook> book;
  // The daemon's compile path (Daemon::Compile); `done` once per call.
  std::function<void(const tpjit::v1::CompileRequest&, CompileDone)> compile;
  // Whether the cache holds `key` now.
  std::function<bool(const std::string& key)> cached;
  FileSystem* fs = nullptr;  // nullptr: FileSystem::Default()
  Clock* clock = nullptr;    // nullptr: Clock::Real()
  Logger* logger = nullptr;  // nullptr: Logger::Stderr()
  int batch_size = 16;       // recipe entries per compile request
};

class Recipes {
 public:
  explicit Recipes(RecipesDeps deps);
  // Stop()s, runs the queued recordings and joins the background thread.
  ~Recipes();
  Recipes(const Recipes&) = delete;
  Recipes& operator=(const Recipes&) = delete;

  // The hook of Daemon::Compile, called once per request before its tasks
  // are built: `done` wrapped so that a successful response records the
  // request's succeeded sources under request.group(). At the group's first
  // Compile since start it also starts a prefetch (in the background).
  // Requests without a group get `done` back unchanged.
  CompileDone OnCompile(const tpjit::v1::CompileRequest& request,
                        CompileDone done);

  using PrefetchDone =
      std::function<void(absl::StatusOr<tpjit::v1::PrefetchRecipeResponse>)>;
  // Prefetches `request.group()`'s missing entries, or joins its prefetch in
  // flight. `done` is called once: with the submission counts at once, or,
  // with request.wait(), when every compile has ended. NOT_FOUND for a group
  // without a recipe, INVALID_ARGUMENT for an empty group.
  void Prefetch(const tpjit::v1::PrefetchRecipeRequest& request,
                PrefetchDone done);
  tpjit::v1::ListRecipesResponse List();
  absl::StatusOr<tpjit::v1::ShowRecipeResponse> Show(
      const tpjit::v1::ShowRecipeRequest& request);

  // Waits until the work queued before the call (recordings, prefetch
  // submissions) has run; false at `timeout`. For tests and shutdown.
  // REQUIRES: not called from a done callback of a prefetch compile.
  bool Flush(absl::Duration timeout);

  // Prefetches queued and not yet started are dropped (recordings still
  // run, until the destructor has drained them); prefetch compiles already
  // submitted run on. Idempotent.
  void Stop();

 private:
  struct Run;
  void Record(const tpjit::v1::CompileRequest& request,
              const std::vector<std::string>& keys);
  void StartPrefetch(const std::string& group,
                     const std::vector<std::string>& include_dirs, bool wait,
                     PrefetchDone done);
  void Submit(const std::shared_ptr<Run>& run,
              std::vector<std::pair<std::string, Recipe>> missing,
              const std::vector<std::string>& include_dirs);
  void BatchDone(const std::shared_ptr<Run>& run,
                 const std::vector<std::pair<std::string, Recipe>>& batch,
                 const absl::StatusOr<tpjit::v1::CompileResponse>& response);
  void Finish(const std::shared_ptr<Run>& run);
  std::vector<std::string> ResolveIncludes(
      const std::vector<std::string>& recorded,
      const std::vector<std::string>& replacements);
  tpjit::v1::RecipeGroup GroupInfo(const RecipeGroupInfo& info,
                                   const std::vector<RecipeRef>& refs);
  bool stopped();

  RecipesDeps deps_;
  absl::Mutex mu_;
  std::set<std::string> seen_ ABSL_GUARDED_BY(mu_);  // groups since start
  std::map<std::string, std::shared_ptr<Run>> running_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  Executor executor_{1};  // last: joined first, before the members it uses
};

// The recipe of `request`'s source `index`.
Recipe RecipeOf(const tpjit::v1::CompileRequest& request, int index);

}  // namespace tpjit

#endif  // TPJIT_DAEMON_RECIPES_H_
