// The table of tpjit subcommands (cli/commands.cc); parts that are not built
// are left out of the table.
#ifndef TPJIT_CLI_COMMANDS_H_
#define TPJIT_CLI_COMMANDS_H_

#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace tpjit::cli {

using CommandFn = std::function<int(const std::vector<std::string>&,
                                    std::ostream&, std::ostream&)>;

struct Command {
  std::string name;
  std::string help;
  CommandFn run;
};

const std::vector<Command>& Commands();

}  // namespace tpjit::cli

#endif  // TPJIT_CLI_COMMANDS_H_
