#include "daemon/recipes.h"

#include <iostream>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace tpjit {
namespace {

using tpjit::v1::CompileRequest;
using tpjit::v1::CompileResponse;
using tpjit::v1::PrefetchRecipeResponse;

constexpr int kMaxErrors = 20;

CompileRequest RequestOf(const Recipe& r,
                         const std::vector<std::string>& include_dirs) {
  CompileRequest q;
  tpjit::v1::Backend backend = tpjit::v1::BACKEND_UNSPECIFIED;
  tpjit::v1::Backend_Parse(absl::AsciiStrToUpper(r.backend), &backend);
  q.set_backend(backend);
  tpjit::v1::OutputKind output = tpjit::v1::CUBIN;
  tpjit::v1::OutputKind_Parse(absl::AsciiStrToUpper(r.output), &output);
  q.set_output(output);
  q.set_arch(r.arch);
  for (const std::string& d : include_dirs) q.add_include_dirs(d);
  for (const std::string& o : r.options) q.add_options(o);
  return q;
}

void AddSource(const Recipe& r, CompileRequest* q) {
  auto* s = q->add_sources();
  s->set_name(r.name);
  s->set_source(r.source);
  for (const std::string& e : r.name_expressions) s->add_name_expressions(e);
}

}  // namespace

// One prefetch of one group in flight.
struct Recipes::Run {
  std::string group;
  absl::Time start;
  absl::Mutex mu;
  PrefetchRecipeResponse report ABSL_GUARDED_BY(mu);
  int batches_left ABSL_GUARDED_BY(mu) = 0;
  std::vector<PrefetchDone> waiters ABSL_GUARDED_BY(mu);
};

Recipe RecipeOf(const CompileRequest& request, int index) {
  const auto& s = request.sources(index);
  Recipe r;
  r.backend = absl::AsciiStrToLower(tpjit::v1::Backend_Name(request.backend()));
  r.arch = request.arch();
  r.output =
      absl::AsciiStrToLower(tpjit::v1::OutputKind_Name(request.output()));
  r.name = s.name();
  r.source = s.source();
  r.name_expressions.assign(s.name_expressions().begin(),
                            s.name_expressions().end());
  r.options.assign(request.options().begin(), request.options().end());
  r.include_dirs.assign(request.include_dirs().begin(),
                        request.include_dirs().end());
  return r;
}

Recipes::Recipes(RecipesDeps deps) : deps_(std::move(deps)) {
  if (deps_.fs == nullptr) deps_.fs = FileSystem::Default();
  if (deps_.clock == nullptr) deps_.clock = Clock::Real();
  if (deps_.logger == nullptr) deps_.logger = Logger::Stderr();
  if (deps_.batch_size < 1) deps_.batch_size = 1;
}

Recipes::~Recipes() { Stop(); }

void Recipes::Stop() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

bool Recipes::Flush(absl::Duration timeout) {
  auto done = std::make_shared<absl::Notification>();
  executor_.Post([done] { done->Notify(); });
  return done->WaitForNotificationWithTimeout(timeout);
}

bool Recipes::stopped() {
  absl::MutexLock lock(&mu_);
  return stopped_;
}

CompileDone Recipes::OnCompile(const CompileRequest& request,
                               CompileDone done) {
  const std::string& group = request.group();
  if (group.empty()) return done;
  bool first = false;
  {
    absl::MutexLock lock(&mu_);
    first = seen_.insert(group).second;
  }
  if (first) {
    std::vector<std::string> dirs(request.include_dirs().begin(),
                                  request.include_dirs().end());
    executor_.Post([this, group, dirs] {
      if (!stopped()) StartPrefetch(group, dirs, false, nullptr);
    });
  }
  auto copy = std::make_shared<CompileRequest>(request);
  return [this, copy,
          done = std::move(done)](absl::StatusOr<CompileResponse> response) {
    if (response.ok()) {
      std::vector<std::string> keys;  // "" for a failed source
      for (const auto& r : response->results()) {
        keys.push_back(r.ok() ? r.key() : "");
      }
      executor_.Post([this, copy, keys = std::move(keys)] {
        Record(*copy, keys);  // also while stopping: recordings are cheap
      });
    }
    done(std::move(response));
  };
}

void Recipes::Record(const CompileRequest& request,
                     const std::vector<std::string>& keys) {
  const int n = std::min<int>(request.sources_size(), keys.size());
  for (int i = 0; i < n; ++i) {
    if (keys[i].empty()) continue;
    absl::StatusOr<bool> s =
        deps_.book->Record(request.group(), RecipeOf(request, i), keys[i]);
    if (!s.ok()) {
      deps_.logger->Log(absl::StrCat(
          "recipe of group \"", request.group(), "\": cannot record ",
          request.sources(i).name(), ": ", s.status().message()));
      return;
    }
  }
}

void Recipes::Prefetch(const tpjit::v1::PrefetchRecipeRequest& request,
                       PrefetchDone done) {
  if (request.group().empty()) {
    done(absl::InvalidArgumentError("group: empty"));
    return;
  }
  std::vector<std::string> dirs(request.include_dirs().begin(),
                                request.include_dirs().end());
  executor_.Post([this, group = request.group(), dirs, wait = request.wait(),
                  done = std::move(done)] {
    if (stopped()) {
      done(absl::UnavailableError("tpjitd is stopping"));
      return;
    }
    StartPrefetch(group, dirs, wait, done);
  });
}

std::vector<std::string> Recipes::ResolveIncludes(
    const std::vector<std::string>& recorded,
    const std::vector<std::string>& replacements) {
  std::vector<std::string> out = recorded;
  for (size_t i = 0; i < out.size() && i < replacements.size(); ++i) {
    absl::StatusOr<FileInfo> info = deps_.fs->Stat(out[i]);
    if (!info.ok() || !info->is_directory) out[i] = replacements[i];
  }
  return out;
}

void Recipes::StartPrefetch(const std::string& group,
                            const std::vector<std::string>& include_dirs,
                            bool wait, PrefetchDone done) {
  // StartPrefetch runs on the one executor thread only, so a group's run
  // cannot appear between this check and the insertion below.
  std::optional<PrefetchRecipeResponse> joined;
  {
    absl::MutexLock lock(&mu_);
    auto it = running_.find(group);
    if (it != running_.end()) {  // join the prefetch in flight
      absl::MutexLock run_lock(&it->second->mu);
      if (wait && done) {
        it->second->waiters.push_back(
            [done = std::move(done)](
                absl::StatusOr<PrefetchRecipeResponse> report) {
              if (report.ok()) report->set_joined(true);
              done(std::move(report));
            });
        return;
      }
      joined = it->second->report;
    }
  }
  if (joined) {
    joined->set_joined(true);
    if (done) done(*joined);
    return;
  }
  auto run = std::make_shared<Run>();
  deps_.book->Sync(group);  // another node's lines, with a remote cache
  std::optional<std::vector<RecipeRef>> index = deps_.book->Index(group);
  if (!index) {
    if (done) {
      done(absl::NotFoundError(
          absl::StrCat("group \"", group, "\" has no recipe")));
    }
    return;
  }
  run->group = group;
  run->start = deps_.clock->Now();
  std::vector<std::pair<std::string, Recipe>> missing;  // digest, recipe
  int cached = 0, unreadable = 0;
  for (const RecipeRef& ref : *index) {
    if (!ref.key.empty() && deps_.cached(ref.key)) {
      ++cached;
      continue;
    }
    absl::StatusOr<Recipe> recipe = deps_.book->Load(ref.digest);
    if (!recipe.ok()) {
      ++unreadable;
      continue;
    }
    missing.emplace_back(ref.digest, *std::move(recipe));
  }
  PrefetchRecipeResponse counts;
  counts.set_entries(static_cast<int>(index->size()));
  counts.set_cached(cached);
  counts.set_unreadable(unreadable);
  counts.set_submitted(static_cast<int>(missing.size()));
  {
    absl::MutexLock lock(&run->mu);
    run->report = counts;
    if (done && wait && !missing.empty()) run->waiters.push_back(done);
  }
  if (done && !(wait && !missing.empty())) done(counts);
  if (missing.empty()) return;
  deps_.logger->Log(absl::StrCat(
      "recipe of group \"", group, "\": ", index->size(), " entries, ", cached,
      " cached, ", unreadable, " unreadable; prefetching ", missing.size()));
  {
    absl::MutexLock lock(&mu_);
    running_[group] = run;
  }
  Submit(run, std::move(missing), include_dirs);
}

void Recipes::Submit(const std::shared_ptr<Run>& run,
                     std::vector<std::pair<std::string, Recipe>> missing,
                     const std::vector<std::string>& include_dirs) {
  // Batches of equal request fields, in recipe order.
  using Shape = std::tuple<std::string, std::string, std::string,
                           std::vector<std::string>, std::vector<std::string>>;
  std::vector<
      std::pair<CompileRequest, std::vector<std::pair<std::string, Recipe>>>>
      batches;
  std::map<Shape, size_t> open;  // shape -> index of its unfilled batch
  for (auto& entry : missing) {
    const Recipe& r = entry.second;
    std::vector<std::string> dirs =
        ResolveIncludes(r.include_dirs, include_dirs);
    Shape shape{r.backend, r.arch, r.output, r.options, dirs};
    auto it = open.find(shape);
    if (it == open.end() || batches[it->second].second.size() >=
                                static_cast<size_t>(deps_.batch_size)) {
      batches.push_back({RequestOf(r, dirs), {}});
      it = open.insert_or_assign(shape, batches.size() - 1).first;
    }
    AddSource(r, &batches[it->second].first);
    batches[it->second].second.push_back(std::move(entry));
  }
  {
    absl::MutexLock lock(&run->mu);
    run->batches_left = static_cast<int>(batches.size());
  }
  for (auto& [request, entries] : batches) {
    auto batch = std::make_shared<std::vector<std::pair<std::string, Recipe>>>(
        std::move(entries));
    deps_.compile(request,
                  [this, run, batch](absl::StatusOr<CompileResponse> r) {
                    BatchDone(run, *batch, r);
                  });
  }
}

void Recipes::BatchDone(
    const std::shared_ptr<Run>& run,
    const std::vector<std::pair<std::string, Recipe>>& batch,
    const absl::StatusOr<CompileResponse>& response) {
  std::vector<std::pair<Recipe, std::string>> learnt;  // recipe, key
  bool last = false;
  {
    absl::MutexLock lock(&run->mu);
    PrefetchRecipeResponse& rep = run->report;
    for (size_t i = 0; i < batch.size(); ++i) {
      const Recipe& recipe = batch[i].second;
      std::string error;
      if (!response.ok()) {
        error = std::string(response.status().message());
      } else if (static_cast<int>(i) >= response->results_size()) {
        error = "no result";
      } else if (!response->results(i).ok()) {
        error = response->results(i).error();
      }
      if (!error.empty()) {
        rep.set_failed(rep.failed() + 1);
        if (rep.errors_size() < kMaxErrors) {
          rep.add_errors(absl::StrCat(recipe.name, ": ", error));
        }
        continue;
      }
      const auto& result = response->results(static_cast<int>(i));
      if (result.cache_hit()) {
        rep.set_cache_hits(rep.cache_hits() + 1);
      } else {
        rep.set_compiled(rep.compiled() + 1);
      }
      learnt.emplace_back(recipe, result.key());
    }
    last = --run->batches_left == 0;
  }
  // Keys computed on this node (other headers give other keys) are kept, so
  // the next start's check is accurate.
  executor_.Post([this, group = run->group, learnt = std::move(learnt)] {
    for (const auto& [recipe, key] : learnt) {
      deps_.book->Record(group, recipe, key).IgnoreError();
    }
  });
  if (last) Finish(run);
}

void Recipes::Finish(const std::shared_ptr<Run>& run) {
  {
    absl::MutexLock lock(&mu_);
    auto it = running_.find(run->group);
    if (it != running_.end() && it->second == run) running_.erase(it);
  }
  std::vector<PrefetchDone> waiters;
  PrefetchRecipeResponse report;
  {
    absl::MutexLock lock(&run->mu);
    run->report.set_wall_seconds(
        absl::ToDoubleSeconds(deps_.clock->Now() - run->start));
    report = run->report;
    waiters.swap(run->waiters);
  }
  deps_.logger->Log(
      absl::StrCat("recipe of group \"", run->group, "\": prefetched ",
                   report.submitted(), " entries in ", report.wall_seconds(),
                   " s: ", report.compiled(), " compiled, ",
                   report.cache_hits(), " hits, ", report.failed(), " failed"));
  for (PrefetchDone& w : waiters) w(report);
}

tpjit::v1::RecipeGroup Recipes::GroupInfo(const RecipeGroupInfo& info,
                                          const std::vector<RecipeRef>& refs) {
  tpjit::v1::RecipeGroup g;
  g.set_group(info.group);
  g.set_entries(static_cast<int>(info.entries));
  g.set_bytes(info.bytes);
  int cached = 0;
  for (const RecipeRef& r : refs)
    cached += !r.key.empty() && deps_.cached(r.key);
  g.set_cached(cached);
  absl::MutexLock lock(&mu_);
  g.set_prefetching(running_.count(info.group) > 0);
  return g;
}

tpjit::v1::ListRecipesResponse Recipes::List() {
  tpjit::v1::ListRecipesResponse out;
  deps_.book->SyncGroups();  // other nodes' groups, with a remote cache
  for (const RecipeGroupInfo& info : deps_.book->Groups()) {
    *out.add_groups() = GroupInfo(
        info, deps_.book->Index(info.group).value_or(std::vector<RecipeRef>{}));
  }
  return out;
}

absl::StatusOr<tpjit::v1::ShowRecipeResponse> Recipes::Show(
    const tpjit::v1::ShowRecipeRequest& request) {
  if (request.group().empty()) {
    return absl::InvalidArgumentError("group: empty");
  }
  deps_.book->Sync(request.group());
  std::optional<std::vector<RecipeRef>> index =
      deps_.book->Index(request.group());
  if (!index) {
    return absl::NotFoundError(
        absl::StrCat("group \"", request.group(), "\" has no recipe"));
  }
  tpjit::v1::ShowRecipeResponse out;
  RecipeGroupInfo info{request.group(), static_cast<int64_t>(index->size()), 0};
  for (const RecipeRef& r : *index) info.bytes += r.bytes;
  *out.mutable_group() = GroupInfo(info, *index);
  for (const RecipeRef& ref : *index) {
    auto* e = out.add_entries();
    e->set_digest(ref.digest);
    e->set_key(ref.key);
    e->set_cached(!ref.key.empty() && deps_.cached(ref.key));
    absl::StatusOr<Recipe> r = deps_.book->Load(ref.digest);
    if (!r.ok()) {
      e->set_error(std::string(r.status().message()));
      continue;
    }
    CompileRequest q = RequestOf(*r, r->include_dirs);
    e->set_name(r->name);
    e->set_backend(q.backend());
    e->set_arch(r->arch);
    e->set_output(q.output());
    *e->mutable_options() = q.options();
    *e->mutable_include_dirs() = q.include_dirs();
    for (const auto& n : r->name_expressions) e->add_name_expressions(n);
    e->set_source_bytes(static_cast<int64_t>(r->source.size()));
    if (request.with_source()) e->set_source(r->source);
  }
  return out;
}

}  // namespace tpjit
