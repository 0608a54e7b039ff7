// The tpjit commands that talk to tpjitd: warmup, status, stats, health and
// compile. Every command takes --socket (default $TPJIT_SOCKET, else tpjitd's
// default socket) and --timeout. Exit codes: 0 ok, 1 failure (daemon
// unreachable, compile error, not SERVING), 2 usage or bad input (the message
// names the flag or file). `--json` prints exactly one JSON object on stdout.
// Not thread-safe (run from main).
#ifndef TPJIT_CLI_DAEMON_COMMANDS_H_
#define TPJIT_CLI_DAEMON_COMMANDS_H_

#include <ostream>
#include <string>
#include <vector>

namespace tpjit::cli {

// tpjit warmup --spec FILE --rank R --world W [--group G] [--json]
//              [--manifest FILE]: a progress bar on a terminal, plain lines
// otherwise (on stderr); the summary on stdout.
int RunWarmupCommand(const std::vector<std::string>& args, std::ostream& out,
                     std::ostream& err);
// tpjit status [--json]: jobs, slots and their progress.
int RunStatusCommand(const std::vector<std::string>& args, std::ostream& out,
                     std::ostream& err);
// tpjit stats [--json]: counters since the daemon started.
int RunStatsCommand(const std::vector<std::string>& args, std::ostream& out,
                    std::ostream& err);
// tpjit health: exit 0 only when the server and tpjit.v1.Tpjit are SERVING.
int RunHealthCommand(const std::vector<std::string>& args, std::ostream& out,
                     std::ostream& err);
// tpjit compile --source FILE... [--backend nvrtc|nvcc] [--arch sm_90a]
//               [--include DIR...] [--option OPT...] [--name-expression E...]
//               [--group G] [--out DIR] [--json]: exit 1 with the compiler
//               log when a source fails.
int RunCompileCommand(const std::vector<std::string>& args, std::ostream& out,
                      std::ostream& err);

}  // namespace tpjit::cli

#endif  // TPJIT_CLI_DAEMON_COMMANDS_H_
