// A tiny flag parser shared by tpjitd's config table (daemon/config) and the
// tpjit commands (cli/): each declares its flags once (name, whether it takes
// a value, help, environment variable); parsing errors name the flag and
// where its value came from. Not thread-safe (used from main only).
#ifndef TPJIT_SRC_COMMON_FLAGS_H_
#define TPJIT_SRC_COMMON_FLAGS_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tpjit {

struct FlagDef {
  std::string name;  // without dashes, e.g. "spec"
  bool takes_value;  // false: a boolean switch
  std::string help;
  std::string env = "";  // environment variable that supplies a default
  bool repeated = false;
};

class ParsedFlags {
 public:
  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::optional<std::string> Get(const std::string& name) const;
  std::vector<std::string> GetAll(const std::string& name) const;
  // An integer flag within [lo, hi]; the error names the flag and the source.
  absl::StatusOr<int64_t> GetInt(const std::string& name, int64_t def,
                                 int64_t lo, int64_t hi) const;
  absl::StatusOr<double> GetDouble(const std::string& name, double def,
                                   double lo, double hi) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  friend absl::StatusOr<ParsedFlags> ParseFlags(
      const std::vector<FlagDef>&, const std::vector<std::string>&);
  std::map<std::string, std::vector<std::string>> values_;
  std::map<std::string, std::string> source_;  // "--x" or "$ENV"
  std::vector<std::string> positional_;
};

// Parses `--name value`, `--name=value` and boolean `--name`.
absl::StatusOr<ParsedFlags> ParseFlags(const std::vector<FlagDef>& defs,
                                       const std::vector<std::string>& args);

// "  --spec FILE   the warm-up spec (JSON)" lines for a usage message.
std::string FlagHelp(const std::vector<FlagDef>& defs);

}  // namespace tpjit

#endif  // TPJIT_SRC_COMMON_FLAGS_H_
