// tpjit_barrier_rank ARGS...: `tpjit barrier ARGS...` in a process of its own,
// for the multi-process tests.
#include <iostream>
#include <string>
#include <vector>

#include "cli/barrier_command.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return tpjit::RunBarrierCommand(args, std::cout, std::cerr);
}
