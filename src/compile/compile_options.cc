#include "src/compile/compile_options.h"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tpjit {
namespace {

using Validator = std::function<bool(absl::string_view)>;

absl::Status Refuse(absl::string_view option, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(
      "options: \"", absl::CEscape(option), "\" is not allowed (", why, ")"));
}

bool IntIn(absl::string_view v, int lo, int hi) {
  int n = 0;
  if (v.empty() || v.size() > 6 || !absl::c_all_of(v, absl::ascii_isdigit) ||
      !absl::SimpleAtoi(v, &n)) {
    return false;
  }
  return n >= lo && n <= hi;
}

bool Identifier(absl::string_view v) {
  if (v.empty() || v.size() > 128 || absl::ascii_isdigit(v[0])) return false;
  return absl::c_all_of(
      v, [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

// A -D value: digits, letters and . _ + - only (no quotes, spaces, $, ( ).
bool MacroValue(absl::string_view v) {
  return v.size() <= 128 && absl::c_all_of(v, [](char c) {
           return absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '+' ||
                  c == '-';
         });
}

bool OneOf(absl::string_view v, std::initializer_list<absl::string_view> set) {
  return std::find(set.begin(), set.end(), v) != set.end();
}

bool Bool(absl::string_view v) { return OneOf(v, {"true", "false"}); }

bool OptLevel(absl::string_view v) {
  return OneOf(v, {"-O0", "-O1", "-O2", "-O3"});
}

// A comma-separated list whose every item passes `item`.
Validator ListOf(Validator item) {
  return [item](absl::string_view v) {
    if (v.empty()) return false;
    for (absl::string_view part : absl::StrSplit(v, ',')) {
      if (!item(part)) return false;
    }
    return true;
  };
}

// What ptxas may be told: verbosity, optimisation, register limits, warnings.
bool PtxasOption(absl::string_view v) {
  if (OptLevel(v) ||
      OneOf(v, {"-v", "--verbose", "--warn-on-spills", "-warn-spills",
                "--warn-on-local-memory-usage", "-warn-lmem-usage",
                "--warn-on-double-precision-use", "-warn-double-usage"})) {
    return true;
  }
  for (absl::string_view name : {"--maxrregcount=", "-maxrregcount="}) {
    if (absl::StartsWith(v, name)) return IntIn(v.substr(name.size()), 1, 255);
  }
  if (absl::ConsumePrefix(&v, "--register-usage-level=")) {
    return IntIn(v, 0, 10);
  }
  for (absl::string_view name : {"--allow-expensive-optimizations=",
                                 "-allow-expensive-optimizations="}) {
    if (absl::StartsWith(v, name)) return Bool(v.substr(name.size()));
  }
  return false;
}

// What the host compiler may be told (nvcc --compiler-options).
bool HostOption(absl::string_view v) {
  if (OptLevel(v) ||
      OneOf(v, {"-fPIC", "-fpic", "-fconcepts", "-rdynamic", "-Wall", "-Wextra",
                "-w", "-fno-strict-aliasing", "-fvisibility=hidden", "-g0"})) {
    return true;
  }
  if (absl::ConsumePrefix(&v, "-Wno-")) {
    return !v.empty() && v.size() <= 64 && absl::c_all_of(v, [](char c) {
      return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-';
    });
  }
  return false;
}

bool DiagList(absl::string_view v) {
  return ListOf([](absl::string_view item) {
    return IntIn(item, 0, 99999) || Identifier(item);
  })(v);
}

struct Rules {
  std::vector<absl::string_view> flags;               // exact, no value
  std::map<absl::string_view, Validator> valued;      // name=value
  std::map<absl::string_view, absl::string_view> to;  // canonical name
};

// What NVRTC and NVCC both accept; each adds its own below.
Rules CommonRules() {
  const Validator std_version = [](absl::string_view v) {
    return OneOf(v, {"c++11", "c++14", "c++17", "c++20"});
  };
  const Validator regs = [](absl::string_view v) { return IntIn(v, 1, 255); };
  Rules r;
  r.flags = {"-O0",
             "-O1",
             "-O2",
             "-O3",
             "--expt-relaxed-constexpr",
             "-expt-relaxed-constexpr",
             "--expt-extended-lambda",
             "-expt-extended-lambda",
             "--extended-lambda",
             "-lineinfo",
             "--generate-line-info",
             "-use_fast_math",
             "--use_fast_math",
             "-w",
             "--disable-warnings",
             "-restrict",
             "--restrict",
             "--extra-device-vectorization",
             "-extra-device-vectorization"};
  r.valued = {{"-std", std_version},
              {"--std", std_version},
              {"--diag-suppress", DiagList},
              {"-diag-suppress", DiagList},
              {"-maxrregcount", regs},
              {"--maxrregcount", regs},
              {"-ftz", Bool},
              {"--ftz", Bool},
              {"-prec-div", Bool},
              {"--prec-div", Bool},
              {"-prec-sqrt", Bool},
              {"--prec-sqrt", Bool},
              {"-fmad", Bool},
              {"--fmad", Bool},
              {"--ptxas-options", ListOf(PtxasOption)},
              {"-Xptxas", ListOf(PtxasOption)}};
  r.to = {{"-Xptxas", "--ptxas-options"}};
  return r;
}

const Rules& RulesFor(CompilerKind kind) {
  static const Rules* nvcc = [] {
    Rules r = CommonRules();
    r.flags.insert(r.flags.end(),
                   {"-extended-lambda", "-Wno-deprecated-gpu-targets",
                    "--resource-usage", "-res-usage"});
    r.valued.insert({{"--diag-warn", DiagList},
                     {"--diag-error", DiagList},
                     {"--compiler-options", ListOf(HostOption)},
                     {"-Xcompiler", ListOf(HostOption)}});
    r.to.insert({"-Xcompiler", "--compiler-options"});
    return new Rules(std::move(r));
  }();
  static const Rules* nvrtc = [] {
    Rules r = CommonRules();
    r.flags.insert(r.flags.end(),
                   {"-default-device", "--device-as-default-execution-space"});
    return new Rules(std::move(r));
  }();
  return kind == CompilerKind::kNvcc ? *nvcc : *nvrtc;
}

// -DNAME, -DNAME=VALUE, -UNAME: strict grammar; nullopt when not a macro.
std::optional<absl::Status> CheckMacro(absl::string_view o) {
  absl::string_view body = o;
  if (absl::ConsumePrefix(&body, "-U")) {
    if (Identifier(body)) return absl::OkStatus();
    return Refuse(o, "-U takes a C identifier");
  }
  if (!absl::ConsumePrefix(&body, "-D") &&
      !absl::ConsumePrefix(&body, "--define-macro=")) {
    return std::nullopt;
  }
  size_t eq = body.find('=');
  absl::string_view name = body.substr(0, eq);
  absl::string_view value =
      eq == absl::string_view::npos ? "" : body.substr(eq + 1);
  if (!Identifier(name)) return Refuse(o, "a macro name is a C identifier");
  if (!MacroValue(value)) {
    return Refuse(o, "a macro value has only letters, digits and . _ + -");
  }
  return absl::OkStatus();
}

// One option (with its value already attached); the canonical form.
absl::StatusOr<std::string> ParseOne(absl::string_view o, const Rules& rules) {
  if (std::find(rules.flags.begin(), rules.flags.end(), o) !=
      rules.flags.end()) {
    return std::string(o);
  }
  if (auto macro = CheckMacro(o)) {
    if (!macro->ok()) return *macro;
    return std::string(o);
  }
  size_t eq = o.find('=');
  if (eq != absl::string_view::npos) {
    absl::string_view name = o.substr(0, eq);
    auto it = rules.valued.find(name);
    if (it != rules.valued.end()) {
      if (!it->second(o.substr(eq + 1))) return Refuse(o, "value not allowed");
      auto to = rules.to.find(name);
      if (to == rules.to.end()) return std::string(o);
      return absl::StrCat(to->second, "=", o.substr(eq + 1));
    }
  }
  return Refuse(o, "not on the option allow-list; see docs/security.md");
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseCompileOptions(
    const std::vector<std::string>& options, CompilerKind kind) {
  if (options.size() > kMaxCompileOptions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "options: ", options.size(), " given, at most ", kMaxCompileOptions));
  }
  const Rules& rules = RulesFor(kind);
  std::vector<std::string> out;
  for (size_t i = 0; i < options.size(); ++i) {
    std::string o = options[i];
    if (o.size() > kMaxOptionBytes) {
      return Refuse(o.substr(0, 64), "longer than 512 bytes");
    }
    // The two-argument spellings take the next argument as their value.
    const bool takes_next =
        rules.valued.count(o) && o.find('=') == std::string::npos &&
        (o == "-Xptxas" || o == "-Xcompiler" || o == "--ptxas-options" ||
         o == "--compiler-options");
    if (takes_next) {
      if (i + 1 == options.size()) return Refuse(o, "needs a value");
      o = absl::StrCat(o, "=", options[++i]);
    }
    absl::StatusOr<std::string> canonical = ParseOne(o, rules);
    if (!canonical.ok()) return canonical.status();
    out.push_back(*std::move(canonical));
  }
  return out;
}

}  // namespace tpjit
