#include "cli/commands.h"

#include "cli/plan_command.h"
#ifdef TPJIT_HAVE_CACHE_CLI
#include "cli/cache_command.h"
#endif
#ifdef TPJIT_HAVE_BARRIER_CLI
#include "cli/barrier_command.h"
#endif
#ifdef TPJIT_HAVE_DAEMON_CLI
#include "cli/daemon_commands.h"
#endif
#ifdef TPJIT_HAVE_RECIPE_CLI
#include "cli/recipe_command.h"
#endif

namespace tpjit::cli {

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>{
      {"plan", "print the warm-up plan of a spec", RunPlanCommand},
#ifdef TPJIT_HAVE_CACHE_CLI
      {"cache", "inspect, verify, gc, export or import a cubin cache",
       [](auto& a, auto& o, auto& e) {
         return tpjit::RunCacheCommand(a, o, e);
       }},
#endif
#ifdef TPJIT_HAVE_BARRIER_CLI
      {"barrier", "meet other ranks at the daemon barrier",
       [](auto& a, auto& o, auto& e) {
         return tpjit::RunBarrierCommand(a, o, e);
       }},
#endif
#ifdef TPJIT_HAVE_DAEMON_CLI
      {"warmup", "warm up a spec through tpjitd", RunWarmupCommand},
      {"status", "jobs, slots and progress of tpjitd", RunStatusCommand},
      {"stats", "counters of tpjitd", RunStatsCommand},
      {"health", "exit 0 only when tpjitd is SERVING", RunHealthCommand},
      {"compile", "compile CUDA sources through tpjitd", RunCompileCommand},
#endif
#ifdef TPJIT_HAVE_RECIPE_CLI
      {"recipe", "list, show or prefetch the group recipes of tpjitd",
       RunRecipeCommand},
#endif
  };
  return *commands;
}

}  // namespace tpjit::cli
