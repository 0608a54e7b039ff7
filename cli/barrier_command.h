// `tpjit barrier`: meet the other ranks of a group at tpjitd's barrier (the
// daemon transport) from a shell. Exit codes: 0 all arrived (or timed out
// with --on-timeout continue), 3 time-out (late ranks on stderr), 2 usage
// error naming the bad flag or value, 1 any other failure (e.g. no daemon).
#ifndef TPJIT_CLI_BARRIER_COMMAND_H_
#define TPJIT_CLI_BARRIER_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

namespace tpjit {

// `args` are the words after "barrier" (a leading "barrier" is skipped).
int RunBarrierCommand(const std::vector<std::string>& args, std::ostream& out,
                      std::ostream& err);

}  // namespace tpjit

#endif  // TPJIT_CLI_BARRIER_COMMAND_H_
