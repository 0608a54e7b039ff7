#include "src/compile/nvrtc_compiler.h"

#include <time.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "src/common/status_macros.h"

namespace tpjit {
namespace {

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Destroys the program on scope exit, whatever path the compile takes.
class ProgramGuard {
 public:
  ProgramGuard(NvrtcApi* api, NvrtcApi::Program* program)
      : api_(api), program_(program) {}
  ~ProgramGuard() {
    if (*program_ != nullptr) api_->DestroyProgram(program_);
  }
  ProgramGuard(const ProgramGuard&) = delete;
  ProgramGuard& operator=(const ProgramGuard&) = delete;

 private:
  NvrtcApi* api_;
  NvrtcApi::Program* program_;
};

}  // namespace

NvrtcCompiler::NvrtcCompiler(NvrtcApi* api, Clock* clock,
                             CpuSeconds cpu_seconds)
    : api_(api),
      clock_(clock),
      cpu_seconds_(cpu_seconds ? std::move(cpu_seconds) : ThreadCpuSeconds) {}

absl::StatusOr<std::string> NvrtcCompiler::Version() const {
  int major = 0, minor = 0;
  const int r = api_->Version(&major, &minor);
  if (r != 0) {
    return absl::UnavailableError(
        absl::StrCat("nvrtcVersion failed: ", api_->ErrorString(r)));
  }
  return absl::StrCat(major, ".", minor);
}

absl::StatusOr<CompileOutput> NvrtcCompiler::Compile(
    const CompileRequest& request) const {
  const absl::Time wall_start = clock_->MonotonicNow();
  const double cpu_start = cpu_seconds_();
  auto fail = [&](absl::string_view what, int r, absl::string_view log) {
    return absl::InternalError(
        absl::StrCat("NVRTC ", what, " failed for ", request.source_name, " (",
                     api_->ErrorString(r), ")", log.empty() ? "" : ":\n", log));
  };
  NvrtcApi::Program program = nullptr;
  ProgramGuard guard(api_, &program);
  int r = api_->CreateProgram(&program, request.source, request.source_name,
                              request.headers);
  if (r != 0) return fail("nvrtcCreateProgram", r, "");
  for (const std::string& expr : request.name_expressions) {
    r = api_->AddNameExpression(program, expr);
    if (r != 0)
      return fail(absl::StrCat("nvrtcAddNameExpression(", expr, ")"), r, "");
  }
  CompileOutput out;
  r = api_->CompileProgram(program, request.options);
  const int log_r = api_->GetLog(program, &out.log);
  if (log_r != 0)
    out.log = absl::StrCat("<log unavailable: ", api_->ErrorString(log_r), ">");
  if (r != 0) return fail("compile", r, out.log);
  r = api_->GetCubin(program, &out.cubin);
  if (r != 0) return fail("nvrtcGetCUBIN", r, out.log);
  if (out.cubin.empty()) return fail("nvrtcGetCUBIN (empty)", 0, out.log);
  for (const std::string& expr : request.name_expressions) {
    std::string lowered;
    r = api_->GetLoweredName(program, expr, &lowered);
    if (r != 0 || lowered.empty()) {
      return fail(absl::StrCat("nvrtcGetLoweredName(", expr, ")"), r, "");
    }
    out.lowered_names.push_back(std::move(lowered));
  }
  out.wall_seconds = absl::ToDoubleSeconds(clock_->MonotonicNow() - wall_start);
  out.cpu_seconds = cpu_seconds_() - cpu_start;
  return out;
}

}  // namespace tpjit
