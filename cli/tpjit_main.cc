// tpjit: the command-line tool. Each subcommand lives in its own file and
// returns the process exit code (0 ok, 1 failure, 2 usage / bad input,
// 3 barrier time-out).
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace {

void Usage(std::ostream& out) {
  out << "usage: tpjit COMMAND [FLAGS]\n\ncommands:\n";
  for (const auto& c : tpjit::cli::Commands()) {
    out << "  " << c.name << "\t" << c.help << "\n";
  }
  out << "\n`tpjit COMMAND --help` shows a command's flags.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    Usage(std::cerr);
    return 2;
  }
  const std::string name = argv[1];
  if (name == "help" || name == "--help" || name == "-h") {
    Usage(std::cout);
    return 0;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const auto& c : tpjit::cli::Commands()) {
    if (c.name == name) return c.run(args, std::cout, std::cerr);
  }
  std::cerr << "tpjit: unknown command \"" << name << "\"\n";
  Usage(std::cerr);
  return 2;
}
