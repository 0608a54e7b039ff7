// `tpjit plan`: prints the warm-up plan of a spec. Exit codes: 0 ok, 2 bad
// spec or flag (message names what is wrong), 1 I/O failure.
#ifndef TPJIT_CLI_PLAN_COMMAND_H_
#define TPJIT_CLI_PLAN_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

namespace tpjit::cli {

int RunPlanCommand(const std::vector<std::string>& args, std::ostream& out,
                   std::ostream& err);

}  // namespace tpjit::cli

#endif  // TPJIT_CLI_PLAN_COMMAND_H_
