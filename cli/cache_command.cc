#include "cli/cache_command.h"

#include <cstdlib>
#include <map>
#include <optional>
#include <set>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "src/cache/archive.h"
#include "src/cache/cache.h"
#include "src/cache/recipe_book.h"

namespace tpjit {
namespace {

// Each flag once: name, whether it takes a value, which subcommands accept
// it, help.
struct Flag {
  const char* name;
  bool takes_value;
  std::set<std::string> commands;
  const char* help;
};

const std::vector<Flag>& Flags() {
  static const auto* flags = new std::vector<Flag>{
      {"cache-dir",
       true,
       {"ls", "stat", "verify", "gc", "export", "import"},
       "the cache directory [$TPJIT_CACHE_DIR]"},
      {"long", false, {"ls"}, "also print each entry's metadata"},
      {"repair", false, {"verify"}, "move corrupt entries to DIR/corrupt/"},
      {"max-size",
       true,
       {"gc"},
       "evict least recently used entries down to this size (e.g. 10G)"},
      {"temp-age",
       true,
       {"gc"},
       "remove temp files older than this many seconds (default 3600)"},
      {"out", true, {"export"}, "the archive to write"},
      {"keys-from", true, {"export"}, "a file of keys, one per line"},
      {"all", false, {"export"}, "export every entry and every recipe"},
      {"recipes",
       false,
       {"export"},
       "also export every group recipe (DIR/recipes/)"},
  };
  return *flags;
}

constexpr char kSubcommands[] =
    "  ls        list entries: key, size, last access, [leased]\n"
    "  stat      entries, bytes, leases, temp and corrupt files\n"
    "  verify    verify every entry's checksum (exit 1 if any is corrupt)\n"
    "  gc        break stale leases, remove old temp files, evict to a size\n"
    "  export    --out FILE (--all | --recipes | --keys-from FILE | KEY...):\n"
    "            write an archive (--recipes: with the group recipes)\n"
    "  import    FILE: verify an archive, then add its entries and recipes\n";

struct UsageError {
  std::string message;
};

struct Parsed {
  std::string command;
  std::map<std::string, std::string> values;
  std::vector<std::string> positional;
  bool Has(const std::string& name) const { return values.count(name) > 0; }
};

// Returns the parsed words or a usage error naming the bad word.
std::optional<UsageError> Parse(const std::vector<std::string>& args,
                                Parsed* p) {
  if (args.empty()) return UsageError{"missing subcommand"};
  p->command = args[0];
  if (!absl::StrContains("|ls|stat|verify|gc|export|import|",
                         absl::StrCat("|", p->command, "|"))) {
    return UsageError{absl::StrCat("unknown subcommand \"", p->command, "\"")};
  }
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!absl::StartsWith(arg, "--")) {
      p->positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    bool inline_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
      inline_value = true;
    }
    const Flag* flag = nullptr;
    for (const Flag& f : Flags()) {
      if (name == f.name) flag = &f;
    }
    if (flag == nullptr) return UsageError{"unknown flag --" + name};
    if (flag->commands.count(p->command) == 0) {
      return UsageError{
          absl::StrCat("--", name, " does not apply to ", p->command)};
    }
    if (flag->takes_value && !inline_value) {
      if (i + 1 >= args.size())
        return UsageError{"--" + name + " needs a value"};
      value = args[++i];
    }
    if (!flag->takes_value && inline_value) {
      return UsageError{"--" + name + " takes no value"};
    }
    p->values[name] = flag->takes_value ? value : "true";
  }
  if (!p->Has("cache-dir")) {
    const char* env = std::getenv("TPJIT_CACHE_DIR");
    if (env == nullptr || *env == '\0') {
      return UsageError{"--cache-dir is required (or set TPJIT_CACHE_DIR)"};
    }
    p->values["cache-dir"] = env;
  }
  if (p->values["cache-dir"].empty()) return UsageError{"--cache-dir is empty"};
  return std::nullopt;
}

// "123", "10K", "1.5G" -> bytes (powers of 1024).
std::optional<int64_t> ParseSize(absl::string_view text) {
  double scale = 1;
  std::string t = absl::AsciiStrToUpper(text);
  if (!t.empty() && absl::StrContains("KMGT", t.back())) {
    scale = 1LL << (10 * (1 + absl::string_view("KMGT").find(t.back())));
    t.pop_back();
  }
  double v = 0;
  if (t.empty() || !absl::SimpleAtod(t, &v) || v < 0) return std::nullopt;
  return static_cast<int64_t>(v * scale);
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

int Fail(std::ostream& err, const absl::Status& s) {
  err << "tpjit cache: " << s.message() << "\n";
  return 1;
}

int RunLs(Cache& cache, const Parsed& p, std::ostream& out, std::ostream& err) {
  absl::StatusOr<std::vector<CacheEntryInfo>> list = cache.List();
  if (!list.ok()) return Fail(err, list.status());
  for (const CacheEntryInfo& e : *list) {
    out << absl::StrFormat("%s %10d %s%s\n", e.key, e.size,
                           FormatUtc(e.last_access), e.leased ? " leased" : "");
    if (!p.Has("long")) continue;
    absl::StatusOr<std::string> bytes = cache.ReadVerified(e.key);
    absl::StatusOr<CacheEntry> entry =
        bytes.ok() ? DecodeCacheEntry(*bytes) : bytes.status();
    if (!entry.ok()) {
      out << "    (unreadable: " << entry.status().message() << ")\n";
      continue;
    }
    for (const auto& [k, v] : entry->metadata) {
      out << "    " << k << "=" << v << "\n";
    }
  }
  return 0;
}

int RunStat(Cache& cache, std::ostream& out, std::ostream& err) {
  FileSystem* fs = FileSystem::Default();
  absl::StatusOr<std::vector<CacheEntryInfo>> list = cache.List();
  absl::StatusOr<std::vector<std::string>> names = fs->ListDir(cache.dir());
  if (!list.ok()) return Fail(err, list.status());
  if (!names.ok()) return Fail(err, names.status());
  int64_t bytes = 0, leases = 0, temps = 0;
  for (const auto& e : *list) bytes += e.size;
  for (const auto& n : *names) {
    temps += IsTempName(n) ? 1 : 0;
    leases += !IsTempName(n) && absl::EndsWith(n, kLeaseSuffix) ? 1 : 0;
  }
  auto corrupt = fs->ListDir(JoinPath(cache.dir(), kCorruptDir));
  out << "dir: " << cache.dir() << "\nentries: " << list->size()
      << "\nbytes: " << bytes << "\nleases: " << leases
      << "\ntemp files: " << temps
      << "\ncorrupt (moved aside): " << (corrupt.ok() ? corrupt->size() : 0)
      << "\n";
  return 0;
}

int RunVerify(Cache& cache, const Parsed& p, std::ostream& out,
              std::ostream& err) {
  absl::StatusOr<CacheScanReport> r = cache.Verify(p.Has("repair"));
  if (!r.ok()) return Fail(err, r.status());
  for (const auto& [key, why] : r->corrupt) {
    out << "corrupt " << key << ": " << why
        << (p.Has("repair") ? " (moved aside)" : "") << "\n";
  }
  out << "verified " << r->entries << " entries, " << r->corrupt.size()
      << " corrupt\n";
  return r->corrupt.empty() ? 0 : 1;
}

std::optional<UsageError> GcArgs(const Parsed& p, int64_t* max_size,
                                 absl::Duration* temp_age) {
  *max_size = -1;
  *temp_age = absl::Hours(1);
  if (p.Has("max-size")) {
    auto v = ParseSize(p.values.at("max-size"));
    if (!v) {
      return UsageError{absl::StrCat("--max-size: \"", p.values.at("max-size"),
                                     "\" is not a size (e.g. 512M, 10G)")};
    }
    *max_size = *v;
  }
  if (p.Has("temp-age")) {
    double secs = 0;
    if (!absl::SimpleAtod(p.values.at("temp-age"), &secs) || secs < 0) {
      return UsageError{absl::StrCat("--temp-age: \"", p.values.at("temp-age"),
                                     "\" is not a number of seconds >= 0")};
    }
    *temp_age = absl::Seconds(secs);
  }
  return std::nullopt;
}

int RunGc(Cache& cache, int64_t max_size, absl::Duration temp_age,
          std::ostream& out, std::ostream& err) {
  absl::StatusOr<CacheScanReport> r = cache.Gc(temp_age, max_size);
  if (!r.ok()) return Fail(err, r.status());
  out << "broke " << r->leases_broken << " stale leases, removed "
      << r->temps_removed << " temp files, evicted " << r->evicted
      << " entries (" << r->evicted_bytes << " bytes); "
      << (r->entries - r->evicted) << " entries, "
      << (r->bytes - r->evicted_bytes) << " bytes remain\n";
  return 0;
}

// The keys to export, or a usage error.
std::optional<UsageError> ExportKeys(Cache& cache, const Parsed& p,
                                     std::vector<std::string>* keys,
                                     std::ostream& err, int* rc) {
  *rc = 0;
  if (!p.Has("out")) return UsageError{"export needs --out FILE"};
  int sources = (p.Has("all") ? 1 : 0) + (p.Has("keys-from") ? 1 : 0) +
                (p.positional.empty() ? 0 : 1) + (p.Has("recipes") ? 1 : 0);
  if (sources == 0) {
    return UsageError{
        "export needs --all, --recipes, --keys-from FILE or KEY..."};
  }
  if (p.Has("all")) {
    absl::StatusOr<std::vector<CacheEntryInfo>> list = cache.List();
    if (!list.ok()) *rc = Fail(err, list.status());
    if (list.ok()) {
      for (const auto& e : *list) keys->push_back(e.key);
    }
  }
  if (p.Has("keys-from")) {
    const std::string& file = p.values.at("keys-from");
    absl::StatusOr<std::string> text = FileSystem::Default()->ReadFile(file);
    if (!text.ok()) *rc = Fail(err, text.status());
    for (absl::string_view line :
         absl::StrSplit(text.ok() ? *text : "", '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (line.empty() || line[0] == '#') continue;
      if (!IsValidCacheKey(line)) {
        return UsageError{absl::StrCat("--keys-from ", file, ": \"", line,
                                       "\" is not a cache key")};
      }
      keys->emplace_back(line);
    }
  }
  for (const std::string& key : p.positional) {
    if (!IsValidCacheKey(key)) {
      return UsageError{absl::StrCat("\"", key, "\" is not a cache key")};
    }
    keys->push_back(key);
  }
  return std::nullopt;
}

// The recipes of `cache`'s directory, or an error already reported.
absl::StatusOr<std::unique_ptr<RecipeBook>> OpenRecipes(Cache& cache,
                                                        std::ostream& err) {
  RecipeBookOptions options;
  options.log = [&err](absl::string_view line) {
    err << "tpjit cache: " << line << "\n";
  };
  absl::StatusOr<std::unique_ptr<RecipeBook>> book =
      RecipeBook::Open(cache.dir(), options);
  if (!book.ok()) Fail(err, book.status());
  return book;
}

int RunExport(Cache& cache, const std::vector<std::string>& keys,
              const Parsed& p, std::ostream& out, std::ostream& err) {
  std::unique_ptr<RecipeBook> recipes;
  if (p.Has("all") || p.Has("recipes")) {
    absl::StatusOr<std::unique_ptr<RecipeBook>> book = OpenRecipes(cache, err);
    if (!book.ok()) return 1;
    recipes = *std::move(book);
  }
  const std::string& out_path = p.values.at("out");
  absl::StatusOr<ArchiveReport> r = ExportCacheArchive(
      cache, keys, *FileSystem::Default(), out_path, recipes.get());
  if (!r.ok()) return Fail(err, r.status());
  out << "exported " << r->entries << " entries (" << r->bytes << " bytes)"
      << (recipes ? absl::StrCat(" and ", r->recipe_files, " recipe files")
                  : "")
      << " to " << out_path << "\n";
  return 0;
}

int RunImport(Cache& cache, const std::string& path, std::ostream& out,
              std::ostream& err) {
  absl::StatusOr<std::unique_ptr<RecipeBook>> recipes = OpenRecipes(cache, err);
  if (!recipes.ok()) return 1;
  absl::StatusOr<ArchiveReport> r =
      ImportCacheArchive(cache, *FileSystem::Default(), path, recipes->get());
  if (!r.ok()) {
    err << "tpjit cache: import rejected, cache unchanged: "
        << r.status().message() << "\n";
    return 1;
  }
  out << "imported " << path << ": " << r->entries << " entries, " << r->added
      << " added, " << r->present << " already present";
  if (r->recipe_files > 0) {
    out << "; " << r->recipe_files << " recipe files, " << r->recipe_objects
        << " recipes added, " << r->recipe_groups << " groups merged";
  }
  out << "\n";
  return 0;
}

int Usage(std::ostream& err, const std::string& message) {
  err << "tpjit cache: " << message << "\n" << CacheCommandUsage();
  return 2;
}

}  // namespace

std::string CacheCommandUsage() {
  std::string out =
      absl::StrCat("usage: tpjit cache SUBCOMMAND --cache-dir DIR [flags]\n",
                   kSubcommands, "flags:\n");
  for (const Flag& f : Flags()) {
    absl::StrAppendFormat(&out, "  --%-12s %s\n",
                          absl::StrCat(f.name, f.takes_value ? " V" : ""),
                          f.help);
  }
  return out;
}

int RunCacheCommand(const std::vector<std::string>& args, std::ostream& out,
                    std::ostream& err) {
  Parsed p;
  if (auto e = Parse(args, &p)) return Usage(err, e->message);
  int64_t max_size = -1;
  absl::Duration temp_age;
  if (p.command == "gc") {
    if (auto e = GcArgs(p, &max_size, &temp_age)) return Usage(err, e->message);
  }
  if (p.command == "import" && p.positional.size() != 1) {
    return Usage(err, "import needs exactly one archive FILE");
  }
  if (p.command != "import" && p.command != "export" && !p.positional.empty()) {
    return Usage(err,
                 absl::StrCat("unexpected argument \"", p.positional[0], "\""));
  }
  const std::string& dir = p.values.at("cache-dir");
  if (p.command != "import" && !FileSystem::Default()->Stat(dir).ok()) {
    return Fail(err, absl::NotFoundError(
                         absl::StrCat("cache dir ", dir, " does not exist")));
  }
  CacheOptions options;
  options.log = [&err](absl::string_view line) {
    err << "tpjit cache: " << line << "\n";
  };
  absl::StatusOr<std::unique_ptr<Cache>> cache = Cache::Open(dir, options);
  if (!cache.ok()) return Fail(err, cache.status());
  Cache& c = **cache;
  if (p.command == "ls") return RunLs(c, p, out, err);
  if (p.command == "stat") return RunStat(c, out, err);
  if (p.command == "verify") return RunVerify(c, p, out, err);
  if (p.command == "gc") return RunGc(c, max_size, temp_age, out, err);
  if (p.command == "import") return RunImport(c, p.positional[0], out, err);
  std::vector<std::string> keys;
  int rc = 0;
  if (auto e = ExportKeys(c, p, &keys, err, &rc)) return Usage(err, e->message);
  if (rc != 0) return rc;
  return RunExport(c, keys, p, out, err);
}

}  // namespace tpjit
