// `tpjit cache ls|stat|verify|gc|export|import`: inspect and maintain a
// cubin cache directory (src/cache/cache.h). Not thread-safe (the CLI's
// main thread).
#ifndef TPJIT_CLI_CACHE_COMMAND_H_
#define TPJIT_CLI_CACHE_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

namespace tpjit {

// `args` are the words after `tpjit cache`, e.g. {"ls", "--cache-dir", "D"}.
// Writes results to `out`, diagnostics to `err`. Returns the exit code:
// 0 ok, 1 operational failure (I/O error, corruption found, bad archive),
// 2 usage error (the message names the bad flag or value).
int RunCacheCommand(const std::vector<std::string>& args, std::ostream& out,
                    std::ostream& err);

// The usage text of `tpjit cache`.
std::string CacheCommandUsage();

}  // namespace tpjit

#endif  // TPJIT_CLI_CACHE_COMMAND_H_
