// NvrtcCompiler: CUDA C++ source + name expressions + options -> cubin,
// lowered names and the NVRTC log, with the wall and CPU seconds the compile
// took. Thread-safe (holds no mutable state); but NVRTC scales poorly across
// threads of one process, so parallel compiles should use processes.
#ifndef TPJIT_SRC_COMPILE_NVRTC_COMPILER_H_
#define TPJIT_SRC_COMPILE_NVRTC_COMPILER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/common/clock.h"
#include "src/compile/nvrtc_api.h"

namespace tpjit {

struct CompileRequest {
  std::string source_name;  // e.g. "fp8_gemm_nt.cu" (appears in the log)
  std::string source;
  HeaderList headers;
  std::vector<std::string> name_expressions;
  std::vector<std::string> options;
};

struct CompileOutput {
  std::string cubin;
  std::vector<std::string> lowered_names;  // one per name expression
  std::string log;                         // NVRTC log (warnings)
  double wall_seconds = 0;
  double cpu_seconds = 0;  // CPU time of the compiling thread
};

class NvrtcCompiler {
 public:
  // Seconds of CPU time used by the calling thread so far.
  using CpuSeconds = std::function<double()>;

  // `api` and `clock` must outlive the compiler. `cpu_seconds` defaults to
  // the calling thread's CPU clock.
  explicit NvrtcCompiler(NvrtcApi* api = NvrtcApi::Real(),
                         Clock* clock = Clock::Real(),
                         CpuSeconds cpu_seconds = nullptr);

  // Compiles `request`. On failure returns INTERNAL (compile error, with the
  // NVRTC log in the message) or UNAVAILABLE/INTERNAL for other NVRTC errors;
  // the program is destroyed on every path.
  absl::StatusOr<CompileOutput> Compile(const CompileRequest& request) const;

  // "major.minor" of the NVRTC library in use, e.g. "13.0".
  absl::StatusOr<std::string> Version() const;

 private:
  NvrtcApi* api_;
  Clock* clock_;
  CpuSeconds cpu_seconds_;
};

}  // namespace tpjit

#endif  // TPJIT_SRC_COMPILE_NVRTC_COMPILER_H_
