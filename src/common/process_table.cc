#include "src/common/process_table.h"

#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tpjit {
namespace {

// The whole of a small /proc file; NOT_FOUND if it cannot be opened.
absl::StatusOr<std::string> ReadProcFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class ProcTable final : public ProcessTable {
 public:
  absl::StatusOr<uint64_t> StartTime(int64_t pid) override {
    if (pid <= 0) return absl::NotFoundError(absl::StrCat("pid ", pid));
    absl::StatusOr<std::string> stat =
        ReadProcFile(absl::StrCat("/proc/", pid, "/stat"));
    if (!stat.ok()) return stat.status();
    absl::StatusOr<ProcStat> parsed = ParseProcStat(*stat);
    if (!parsed.ok()) return parsed.status();
    if (parsed->state == 'Z' || parsed->state == 'X') {
      return absl::NotFoundError(absl::StrCat("pid ", pid, " has exited"));
    }
    return parsed->start_time;
  }

  std::string PidSpace() override {
    absl::StatusOr<std::string> boot =
        ReadProcFile("/proc/sys/kernel/random/boot_id");
    char ns[128] = {0};
    ssize_t n = ::readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
    if (!boot.ok() || n <= 0) return "";
    return absl::StrCat(absl::StripAsciiWhitespace(*boot), "/",
                        absl::string_view(ns, static_cast<size_t>(n)));
  }
};

}  // namespace

ProcessTable* ProcessTable::Real() {
  static ProcessTable* table = new ProcTable();
  return table;
}

absl::StatusOr<ProcStat> ParseProcStat(absl::string_view stat) {
  const size_t paren = stat.rfind(')');
  if (paren == absl::string_view::npos) {
    return absl::InvalidArgumentError("stat: no ')' after the command name");
  }
  // After ") " come fields 3 (state), 4, ...; the start time is field 22.
  std::vector<absl::string_view> fields =
      absl::StrSplit(stat.substr(paren + 1), ' ', absl::SkipEmpty());
  constexpr size_t kStartTimeIndex = 22 - 3;
  ProcStat out;
  if (fields.size() <= kStartTimeIndex || fields[0].size() != 1 ||
      !absl::SimpleAtoi(fields[kStartTimeIndex], &out.start_time)) {
    return absl::InvalidArgumentError("stat: no state or start time");
  }
  out.state = fields[0][0];
  return out;
}

}  // namespace tpjit
