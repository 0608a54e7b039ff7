// Reading a spec file for the CLI commands.
#ifndef TPJIT_CLI_SPEC_FILE_H_
#define TPJIT_CLI_SPEC_FILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "tpjit/v1/spec.pb.h"

namespace tpjit::cli {

// NOT_FOUND when the file cannot be read; INVALID_ARGUMENT (naming the file
// and the field) when it does not parse or validate.
absl::StatusOr<tpjit::v1::WarmupSpec> ReadSpecFile(const std::string& path);

// Exit code for a failed status: 2 for bad input, 1 otherwise.
int ExitCodeFor(const absl::Status& status);

}  // namespace tpjit::cli

#endif  // TPJIT_CLI_SPEC_FILE_H_
