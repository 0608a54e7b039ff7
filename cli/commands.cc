#include "cli/commands.h"

#include "cli/barrier_command.h"
#include "cli/cache_command.h"
#include "cli/daemon_commands.h"
#include "cli/plan_command.h"
#include "cli/recipe_command.h"

namespace tpjit::cli {

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>{
      {"plan", "print the warm-up plan of a spec", RunPlanCommand},
      {"cache", "inspect, verify, gc, export or import a cubin cache",
       [](auto& a, auto& o, auto& e) {
         return tpjit::RunCacheCommand(a, o, e);
       }},
      {"barrier", "meet other ranks at the daemon barrier",
       [](auto& a, auto& o, auto& e) {
         return tpjit::RunBarrierCommand(a, o, e);
       }},
      {"warmup", "warm up a spec through tpjitd", RunWarmupCommand},
      {"status", "jobs, slots and progress of tpjitd", RunStatusCommand},
      {"stats", "counters of tpjitd", RunStatsCommand},
      {"health", "exit 0 only when tpjitd is SERVING", RunHealthCommand},
      {"compile", "compile CUDA sources through tpjitd", RunCompileCommand},
      {"recipe", "list, show or prefetch the group recipes of tpjitd",
       RunRecipeCommand},
  };
  return *commands;
}

}  // namespace tpjit::cli
