#include "src/common/flags.h"

#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tpjit {

std::optional<std::string> ParsedFlags::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> ParsedFlags::GetAll(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

absl::StatusOr<int64_t> ParsedFlags::GetInt(const std::string& name,
                                            int64_t def, int64_t lo,
                                            int64_t hi) const {
  auto v = Get(name);
  if (!v) return def;
  int64_t out = 0;
  if (!absl::SimpleAtoi(*v, &out) || out < lo || out > hi) {
    return absl::InvalidArgumentError(absl::StrCat(source_.at(name), ": \"", *v,
                                                   "\" is not an integer in ",
                                                   lo, "..", hi));
  }
  return out;
}

absl::StatusOr<double> ParsedFlags::GetDouble(const std::string& name,
                                              double def, double lo,
                                              double hi) const {
  auto v = Get(name);
  if (!v) return def;
  double out = 0;
  if (!absl::SimpleAtod(*v, &out) || !(out >= lo && out <= hi)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_.at(name), ": \"", *v, "\" is not a number in ", lo, "..", hi));
  }
  return out;
}

absl::StatusOr<ParsedFlags> ParseFlags(const std::vector<FlagDef>& defs,
                                       const std::vector<std::string>& args) {
  ParsedFlags out;
  for (const FlagDef& def : defs) {
    const char* env = def.env.empty() ? nullptr : std::getenv(def.env.c_str());
    if (env != nullptr && *env != '\0') {
      out.values_[def.name].push_back(env);
      out.source_[def.name] = "$" + def.env;
    }
  }
  std::map<std::string, bool> seen_on_command_line;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 3 || arg.substr(0, 2) != "--") {
      out.positional_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2), value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    const FlagDef* def = nullptr;
    for (const FlagDef& d : defs) {
      if (d.name == name) def = &d;
    }
    if (def == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (def->takes_value && !inline_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value"));
      }
      value = args[++i];
    }
    if (!def->takes_value && inline_value) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " takes no value"));
    }
    auto& slot = out.values_[name];
    if (!seen_on_command_line[name]) slot.clear();  // command line beats env
    seen_on_command_line[name] = true;
    slot.push_back(def->takes_value ? value : "true");
    out.source_[name] = "--" + name;
  }
  return out;
}

std::string FlagHelp(const std::vector<FlagDef>& defs) {
  std::string out;
  for (const FlagDef& d : defs) {
    std::string left = absl::StrCat("--", d.name, d.takes_value ? " V" : "");
    absl::StrAppendFormat(&out, "  %-22s %s%s\n", left, d.help,
                          d.env.empty() ? "" : absl::StrCat(" [$", d.env, "]"));
  }
  return out;
}

}  // namespace tpjit
