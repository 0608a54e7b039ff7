// tpjit recipe: see and drive tpjitd's group recipes (proto/tpjit/v1/
// recipe.proto).
//   tpjit recipe ls [--json]
//   tpjit recipe show GROUP [--source] [--json]
//   tpjit recipe prefetch GROUP [--include-dir DIR ...] [--wait] [--json]
// Each takes --socket (default $TPJIT_SOCKET, else tpjitd's default socket)
// and --timeout. Exit codes: 0 ok, 1 failure (daemon unreachable, a
// prefetched compile failed), 2 usage or bad input (unknown subcommand or
// flag, missing GROUP, an --include-dir that is not a directory, a group
// without a recipe); the message names what is wrong. `--json` prints
// exactly one JSON object on stdout. Not thread-safe (run from main).
#ifndef TPJIT_CLI_RECIPE_COMMAND_H_
#define TPJIT_CLI_RECIPE_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

namespace tpjit::cli {

int RunRecipeCommand(const std::vector<std::string>& args, std::ostream& out,
                     std::ostream& err);

std::string RecipeCommandUsage();

}  // namespace tpjit::cli

#endif  // TPJIT_CLI_RECIPE_COMMAND_H_
