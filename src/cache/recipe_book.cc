#include "src/cache/recipe_book.h"

#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "src/cache/byte_io.h"
#include "src/cache/entry_format.h"
#include "src/cache/recipe_files.h"
#include "src/common/digest.h"
#include "src/common/status_macros.h"

namespace tpjit {
namespace {

constexpr absl::string_view kRecipeTag = "tpjit-recipe-1";
constexpr absl::string_view kRecipesDir = "recipes";
constexpr absl::string_view kObjectsDir = "objects";
constexpr absl::string_view kGroupsDir = "groups";
constexpr absl::string_view kGroupMeta = "group";
constexpr absl::string_view kKindMeta = "kind";

void PutString(std::string* out, absl::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s.data(), s.size());
}

void PutList(std::string* out, const std::vector<std::string>& list) {
  PutU32(out, static_cast<uint32_t>(list.size()));
  for (const std::string& s : list) PutString(out, s);
}

bool GetString(ByteReader& in, std::string* s) {
  absl::string_view v;
  if (!in.LengthPrefixed(&v)) return false;
  s->assign(v.data(), v.size());
  return true;
}

bool GetList(ByteReader& in, std::vector<std::string>* list) {
  uint32_t n = 0;
  if (!in.U32(&n) || n > in.remaining() / 4) return false;
  list->resize(n);
  for (std::string& s : *list) {
    if (!GetString(in, &s)) return false;
  }
  return true;
}

}  // namespace

namespace recipe_files {

std::string GroupFileName(absl::string_view group) {
  return Sha256Hex(absl::StrCat("tpjit-recipe-group\n", group));
}

std::string EncodeIndex(const std::vector<RecipeRef>& refs) {
  std::string out;
  for (const RecipeRef& r : refs) {
    absl::StrAppend(&out, r.digest, " ", r.key.empty() ? "-" : r.key, " ",
                    r.bytes, "\n");
  }
  return out;
}

absl::StatusOr<std::vector<RecipeRef>> DecodeIndex(absl::string_view text) {
  std::vector<RecipeRef> refs;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    RecipeRef r;
    if (f.size() != 3 || !IsValidCacheKey(f[0]) ||
        !(f[1] == "-" || IsValidCacheKey(f[1])) ||
        !absl::SimpleAtoi(f[2], &r.bytes)) {
      return absl::DataLossError(absl::StrCat("bad index line \"", line, "\""));
    }
    r.digest = std::string(f[0]);
    if (f[1] != "-") r.key = std::string(f[1]);
    refs.push_back(std::move(r));
  }
  return refs;
}

std::string EncodeGroupFile(const std::string& group,
                            const std::vector<RecipeRef>& refs) {
  return EncodeCacheEntry(
      GroupFileName(group),
      {{std::string(kGroupMeta), group}, {std::string(kKindMeta), "index"}},
      EncodeIndex(refs));
}

absl::StatusOr<DecodedGroup> DecodeGroupFile(absl::string_view bytes,
                                             absl::string_view name) {
  TPJIT_ASSIGN_OR_RETURN(CacheEntry e, DecodeCacheEntry(bytes, name));
  return DecodeGroupEntry(e, name);
}

absl::StatusOr<DecodedGroup> DecodeGroupEntry(const CacheEntry& e,
                                              absl::string_view name) {
  auto it = e.metadata.find(std::string(kGroupMeta));
  if (it == e.metadata.end() || GroupFileName(it->second) != name) {
    return absl::DataLossError("index names no group, or another group");
  }
  TPJIT_ASSIGN_OR_RETURN(std::vector<RecipeRef> refs, DecodeIndex(e.payload));
  return DecodedGroup{it->second, std::move(refs)};
}

absl::StatusOr<Recipe> DecodeObjectFile(absl::string_view bytes,
                                        absl::string_view digest) {
  TPJIT_ASSIGN_OR_RETURN(CacheEntry e, DecodeCacheEntry(bytes, digest));
  return DecodeObjectEntry(e, digest);
}

absl::StatusOr<Recipe> DecodeObjectEntry(const CacheEntry& e,
                                         absl::string_view digest) {
  if (Sha256Hex(e.payload) != digest) {
    return absl::DataLossError("content does not match its digest");
  }
  return DecodeRecipe(e.payload);
}

}  // namespace recipe_files

namespace {

using recipe_files::DecodedGroup;
using recipe_files::DecodeGroupFile;
using recipe_files::DecodeObjectFile;
using recipe_files::EncodeGroupFile;
using recipe_files::GroupFileName;

// Verifies every recipe file of an archive; fills the outputs if not null.
absl::Status ParseFiles(const std::map<std::string, std::string>& files,
                        std::map<std::string, const std::string*>* objects,
                        std::vector<DecodedGroup>* groups) {
  for (const auto& [name, bytes] : files) {
    std::vector<std::string> parts = absl::StrSplit(name, '/');
    absl::Status s = absl::DataLossError("unknown recipe file");
    if (parts.size() == 2 && parts[0] == kObjectsDir) {
      s = DecodeObjectFile(bytes, parts[1]).status();
      if (objects != nullptr) (*objects)[parts[1]] = &bytes;
    } else if (parts.size() == 2 && parts[0] == kGroupsDir) {
      absl::StatusOr<DecodedGroup> g = DecodeGroupFile(bytes, parts[1]);
      s = g.status();
      if (g.ok() && groups != nullptr) groups->push_back(*std::move(g));
    }
    if (!s.ok()) {
      return absl::DataLossError(
          absl::StrCat("recipe file ", name, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string EncodeRecipe(const Recipe& r) {
  std::string out;
  PutString(&out, kRecipeTag);
  for (const std::string* s :
       {&r.backend, &r.arch, &r.output, &r.name, &r.source}) {
    PutString(&out, *s);
  }
  PutList(&out, r.name_expressions);
  PutList(&out, r.options);
  PutList(&out, r.include_dirs);
  return out;
}

absl::StatusOr<Recipe> DecodeRecipe(absl::string_view bytes) {
  ByteReader in(bytes);
  std::string tag;
  if (!GetString(in, &tag) || tag != kRecipeTag) {
    return absl::DataLossError("not a tpjit recipe (bad tag)");
  }
  Recipe r;
  bool ok = true;
  for (std::string* s : {&r.backend, &r.arch, &r.output, &r.name, &r.source}) {
    ok = ok && GetString(in, s);
  }
  ok = ok && GetList(in, &r.name_expressions) && GetList(in, &r.options) &&
       GetList(in, &r.include_dirs) && in.empty();
  if (!ok) return absl::DataLossError("truncated or malformed recipe");
  return r;
}

std::string RecipeDigest(const Recipe& recipe) {
  return Sha256Hex(EncodeRecipe(recipe));
}

RecipeBook::RecipeBook(std::string cache_dir, RecipeBookOptions options)
    : dir_(JoinPath(cache_dir, kRecipesDir)), options_(std::move(options)) {
  if (options_.fs == nullptr) options_.fs = FileSystem::Default();
  if (options_.clock == nullptr) options_.clock = Clock::Real();
  if (!options_.log) options_.log = StderrCacheLog();
  if (options_.host.empty()) options_.host = LocalHostName();
  if (options_.pid == 0) options_.pid = LocalProcessId();
  for (auto [cd, sub] :
       {std::pair{&objects_, kObjectsDir}, std::pair{&groups_, kGroupsDir}}) {
    cd->dir = JoinPath(dir_, sub);
    cd->fs = options_.fs;
    cd->host = options_.host;
    cd->pid = options_.pid;
    cd->log = options_.log;
  }
}

absl::StatusOr<std::unique_ptr<RecipeBook>> RecipeBook::Open(
    std::string cache_dir, RecipeBookOptions options) {
  std::unique_ptr<RecipeBook> book(
      new RecipeBook(std::move(cache_dir), std::move(options)));
  book->CleanupTemps();
  TPJIT_RETURN_IF_ERROR(book->Scan());
  return book;
}

std::string RecipeBook::ObjectPath(absl::string_view digest) const {
  return JoinPath(objects_.dir, digest);
}

std::string RecipeBook::IndexPath(absl::string_view group) const {
  return JoinPath(groups_.dir, GroupFileName(group));
}

void RecipeBook::Corrupt(absl::string_view what, const absl::Status& why) {
  corrupt_.fetch_add(1);
  options_.log(absl::StrCat("recipe file ", what, " ignored: ", why.message()));
}

void RecipeBook::CleanupTemps() {
  const absl::Time cutoff = options_.clock->Now() - options_.temp_age;
  for (const std::string& dir : {objects_.dir, groups_.dir}) {
    absl::StatusOr<std::vector<std::string>> names = options_.fs->ListDir(dir);
    if (!names.ok()) continue;
    for (const std::string& name : *names) {
      if (!IsTempName(name)) continue;
      const std::string path = JoinPath(dir, name);
      absl::StatusOr<FileInfo> info = options_.fs->Stat(path);
      if (info.ok() && info->mtime < cutoff) {
        options_.fs->Unlink(path).IgnoreError();
      }
    }
  }
}

absl::StatusOr<std::optional<RecipeBook::Group>> RecipeBook::ReadIndex(
    const std::string& name) {
  const std::string path = JoinPath(groups_.dir, name);
  absl::StatusOr<std::string> bytes = options_.fs->ReadFile(path);
  if (absl::IsNotFound(bytes.status())) return std::nullopt;
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<DecodedGroup> g = DecodeGroupFile(*bytes, name);
  if (!g.ok()) return g.status();
  return Group{std::move(g->group), std::move(g->refs)};
}

absl::Status RecipeBook::Scan() {
  absl::StatusOr<std::vector<std::string>> listed =
      options_.fs->ListDir(groups_.dir);
  if (absl::IsNotFound(listed.status())) return absl::OkStatus();
  TPJIT_ASSIGN_OR_RETURN(std::vector<std::string> names, std::move(listed));
  absl::MutexLock lock(&mu_);
  for (const std::string& name : names) {
    if (IsTempName(name)) continue;
    absl::StatusOr<std::optional<Group>> g = ReadIndex(name);
    if (!g.ok()) {
      Corrupt(JoinPath(groups_.dir, name), g.status());
      continue;
    }
    if (*g) groups_by_name_[(*g)->name] = std::move(**g);
  }
  return absl::OkStatus();
}

absl::Status RecipeBook::WriteObject(const std::string& digest,
                                     const std::string& encoded) {
  const std::string path = ObjectPath(digest);
  absl::StatusOr<std::string> old = options_.fs->ReadFile(path);
  if (old.ok() && DecodeObjectFile(*old, digest).ok()) return absl::OkStatus();
  TPJIT_RETURN_IF_ERROR(options_.fs->CreateDirs(objects_.dir));
  return WriteFileAtomically(objects_, path, digest,
                             EncodeCacheEntry(digest, {}, encoded));
}

absl::Status RecipeBook::WriteIndex(const Group& group) {
  TPJIT_RETURN_IF_ERROR(options_.fs->CreateDirs(groups_.dir));
  return WriteFileAtomically(groups_, IndexPath(group.name),
                             GroupFileName(group.name),
                             EncodeGroupFile(group.name, group.refs));
}

void RecipeBook::Bound(Group& group) const {
  int64_t bytes = 0;
  for (const RecipeRef& r : group.refs) bytes += r.bytes;
  size_t drop = 0;
  while (
      drop < group.refs.size() &&
      (static_cast<int64_t>(group.refs.size() - drop) > options_.max_entries ||
       bytes > options_.max_bytes)) {
    bytes -= group.refs[drop++].bytes;
  }
  if (drop == 0) return;
  options_.log(absl::StrCat("recipe of group \"", group.name, "\": dropped ",
                            drop, " oldest entries (bounds ",
                            options_.max_entries, " entries, ",
                            options_.max_bytes, " bytes)"));
  group.refs.erase(group.refs.begin(), group.refs.begin() + drop);
}

void RecipeBook::MergeInto(Group& group, const Group& on_disk) {
  std::set<std::string> have;
  for (const RecipeRef& r : group.refs) have.insert(r.digest);
  for (const RecipeRef& r : on_disk.refs) {
    if (have.insert(r.digest).second) group.refs.push_back(r);
  }
}

absl::StatusOr<bool> RecipeBook::Record(const std::string& group,
                                        const Recipe& recipe,
                                        const std::string& key) {
  if (group.empty()) return absl::InvalidArgumentError("group is empty");
  const std::string encoded = EncodeRecipe(recipe);
  const std::string digest = Sha256Hex(encoded);
  absl::StatusOr<bool> changed = RecordLocal(group, digest, encoded, key);
  if (changed.ok() && *changed) Sync(group);  // best effort
  return changed;
}

absl::StatusOr<bool> RecipeBook::RecordLocal(const std::string& group,
                                             const std::string& digest,
                                             const std::string& encoded,
                                             const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = groups_by_name_.find(group);
  Group g = it != groups_by_name_.end() ? it->second : Group{group, {}};
  for (const RecipeRef& r : g.refs) {
    if (r.digest == digest && (key.empty() || r.key == key)) return false;
  }
  TPJIT_RETURN_IF_ERROR(WriteObject(digest, encoded));
  absl::StatusOr<std::optional<Group>> on_disk =
      ReadIndex(GroupFileName(group));
  if (on_disk.ok() && *on_disk) MergeInto(g, **on_disk);
  bool found = false;
  for (RecipeRef& r : g.refs) {
    if (r.digest != digest) continue;
    found = true;
    if (!key.empty()) r.key = key;
  }
  if (!found) {
    g.refs.push_back({digest, key, static_cast<int64_t>(encoded.size())});
  }
  Bound(g);
  // The table changes only once the index is on disk, so a failed write is
  // retried by the next Record of the same recipe.
  TPJIT_RETURN_IF_ERROR(WriteIndex(g));
  groups_by_name_[group] = std::move(g);
  return true;
}

void RecipeBook::LoadNewGroups() {
  absl::StatusOr<std::vector<std::string>> names =
      options_.fs->ListDir(groups_.dir);
  if (!names.ok()) return;
  std::set<std::string> known;
  for (const auto& [name, g] : groups_by_name_)
    known.insert(GroupFileName(name));
  for (const std::string& name : *names) {
    if (IsTempName(name) || known.count(name) > 0) continue;
    absl::StatusOr<std::optional<Group>> g = ReadIndex(name);
    if (g.ok() && *g) groups_by_name_[(*g)->name] = std::move(**g);
  }
}

std::vector<RecipeGroupInfo> RecipeBook::Groups() {
  absl::MutexLock lock(&mu_);
  LoadNewGroups();
  std::vector<RecipeGroupInfo> out;
  for (const auto& [name, g] : groups_by_name_) {
    if (g.refs.empty()) continue;
    RecipeGroupInfo info{name, static_cast<int64_t>(g.refs.size()), 0};
    for (const RecipeRef& r : g.refs) info.bytes += r.bytes;
    out.push_back(std::move(info));
  }
  return out;
}

std::optional<std::vector<RecipeRef>> RecipeBook::Index(
    const std::string& group) {
  absl::MutexLock lock(&mu_);
  auto it = groups_by_name_.find(group);
  if (it == groups_by_name_.end() || it->second.refs.empty()) {
    absl::StatusOr<std::optional<Group>> on_disk =
        ReadIndex(GroupFileName(group));
    if (!on_disk.ok() || !*on_disk || (*on_disk)->refs.empty()) {
      return std::nullopt;
    }
    it = groups_by_name_.insert_or_assign(group, std::move(**on_disk)).first;
  }
  return it->second.refs;
}

absl::StatusOr<Recipe> RecipeBook::Load(const std::string& digest) {
  if (!IsValidCacheKey(digest)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", digest, "\" is not a recipe digest"));
  }
  const std::string path = ObjectPath(digest);
  absl::StatusOr<std::string> bytes = options_.fs->ReadFile(path);
  if (!bytes.ok()) {
    if (!absl::IsNotFound(bytes.status())) Corrupt(path, bytes.status());
    return bytes.status();
  }
  absl::StatusOr<Recipe> r = DecodeObjectFile(*bytes, digest);
  if (!r.ok()) {
    Corrupt(path, r.status());
    return absl::DataLossError(
        absl::StrCat("recipe ", digest, ": ", r.status().message()));
  }
  return r;
}

absl::StatusOr<std::map<std::string, std::string>> RecipeBook::ExportFiles() {
  std::map<std::string, std::string> files;
  std::vector<std::string> digests;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, g] : groups_by_name_) {
      if (g.refs.empty()) continue;
      files[JoinPath(kGroupsDir, GroupFileName(name))] =
          EncodeGroupFile(name, g.refs);
      for (const RecipeRef& r : g.refs) digests.push_back(r.digest);
    }
  }
  for (const std::string& d : digests) {
    const std::string name = JoinPath(kObjectsDir, d);
    if (files.count(name) > 0) continue;
    absl::StatusOr<std::string> bytes = options_.fs->ReadFile(ObjectPath(d));
    if (!bytes.ok() || !DecodeObjectFile(*bytes, d).ok()) {
      Corrupt(ObjectPath(d), bytes.ok() ? DecodeObjectFile(*bytes, d).status()
                                        : bytes.status());
      continue;
    }
    files[name] = *std::move(bytes);
  }
  return files;
}

absl::Status RecipeBook::VerifyFiles(
    const std::map<std::string, std::string>& files) {
  return ParseFiles(files, nullptr, nullptr);
}

absl::StatusOr<RecipeBook::ImportReport> RecipeBook::ImportFiles(
    const std::map<std::string, std::string>& files) {
  std::map<std::string, const std::string*> objects;
  std::vector<DecodedGroup> groups;
  TPJIT_RETURN_IF_ERROR(ParseFiles(files, &objects, &groups));
  ImportReport report;
  for (const auto& [digest, bytes] : objects) {
    const std::string path = ObjectPath(digest);
    absl::StatusOr<std::string> old = options_.fs->ReadFile(path);
    if (old.ok() && DecodeObjectFile(*old, digest).ok()) continue;
    TPJIT_RETURN_IF_ERROR(options_.fs->CreateDirs(objects_.dir));
    TPJIT_RETURN_IF_ERROR(WriteFileAtomically(objects_, path, digest, *bytes));
    ++report.objects_added;
  }
  absl::MutexLock lock(&mu_);
  for (DecodedGroup& imported : groups) {
    auto it = groups_by_name_.find(imported.group);
    Group g =
        it != groups_by_name_.end() ? it->second : Group{imported.group, {}};
    const size_t before = g.refs.size();
    MergeInto(g, Group{imported.group, std::move(imported.refs)});
    if (g.refs.size() == before) continue;
    const int64_t added = static_cast<int64_t>(g.refs.size() - before);
    Bound(g);
    TPJIT_RETURN_IF_ERROR(WriteIndex(g));
    report.entries_added += added;
    ++report.groups_merged;
    groups_by_name_[g.name] = std::move(g);
  }
  return report;
}

}  // namespace tpjit
