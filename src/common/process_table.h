// ProcessTable: what the cache's leases need to know about the processes of
// this host, behind a small interface so tests can play dead or reused pids.
// The real one reads /proc.
//
// A process is named by (pid space, pid, start time). The pid space is this
// host's boot id plus the pid namespace, so a pid recorded by a process in
// another container, or before a reboot, is never looked up here; the start
// time (field 22 of /proc/<pid>/stat, clock ticks since boot) tells a live
// owner from a new process that reuses its pid.
//
// Thread-safety: implementations are thread-safe.
#ifndef TPJIT_SRC_COMMON_PROCESS_TABLE_H_
#define TPJIT_SRC_COMMON_PROCESS_TABLE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tpjit {

class ProcessTable {
 public:
  virtual ~ProcessTable() = default;

  // The /proc based table of this host; never deleted.
  static ProcessTable* Real();

  // The start time of process `pid` in clock ticks since boot; NOT_FOUND if
  // no such process runs (it exited, reaped or not: a zombie counts as
  // gone), other codes when /proc cannot be read.
  virtual absl::StatusOr<uint64_t> StartTime(int64_t pid) = 0;
  // "<boot id>/<pid namespace>" of this process, or "" when unknown. Two
  // processes can look each other up by pid iff their pid spaces are equal
  // and not empty.
  virtual std::string PidSpace() = 0;
};

// The fields of /proc/<pid>/stat that tell who a process is.
struct ProcStat {
  char state = '?';         // field 3: R, S, D, Z (zombie), X (dead), ...
  uint64_t start_time = 0;  // field 22: clock ticks since boot
};

// Parses the text of /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses: fields are counted from the last ')'.
// INVALID_ARGUMENT if malformed.
absl::StatusOr<ProcStat> ParseProcStat(absl::string_view stat);

}  // namespace tpjit

#endif  // TPJIT_SRC_COMMON_PROCESS_TABLE_H_
