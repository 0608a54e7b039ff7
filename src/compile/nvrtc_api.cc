#include "src/compile/nvrtc_api.h"

#include <nvrtc.h>

namespace tpjit {
namespace {

nvrtcProgram Cast(NvrtcApi::Program p) { return static_cast<nvrtcProgram>(p); }

class RealNvrtcApi final : public NvrtcApi {
 public:
  int Version(int* major, int* minor) override {
    return nvrtcVersion(major, minor);
  }

  int CreateProgram(Program* program, const std::string& source,
                    const std::string& name,
                    const HeaderList& headers) override {
    std::vector<const char*> contents, names;
    for (const auto& [header_name, content] : headers) {
      names.push_back(header_name.c_str());
      contents.push_back(content.c_str());
    }
    nvrtcProgram prog = nullptr;
    const nvrtcResult r = nvrtcCreateProgram(
        &prog, source.c_str(), name.c_str(), static_cast<int>(headers.size()),
        contents.data(), names.data());
    *program = prog;
    return r;
  }

  int AddNameExpression(Program program, const std::string& expr) override {
    return nvrtcAddNameExpression(Cast(program), expr.c_str());
  }

  int CompileProgram(Program program,
                     const std::vector<std::string>& options) override {
    std::vector<const char*> opts;
    for (const std::string& o : options) opts.push_back(o.c_str());
    return nvrtcCompileProgram(Cast(program), static_cast<int>(opts.size()),
                               opts.data());
  }

  int GetLog(Program program, std::string* log) override {
    size_t size = 0;
    nvrtcResult r = nvrtcGetProgramLogSize(Cast(program), &size);
    if (r != NVRTC_SUCCESS) return r;
    log->assign(size, '\0');
    r = nvrtcGetProgramLog(Cast(program), log->data());
    while (!log->empty() && log->back() == '\0') log->pop_back();
    return r;
  }

  int GetCubin(Program program, std::string* cubin) override {
    size_t size = 0;
    nvrtcResult r = nvrtcGetCUBINSize(Cast(program), &size);
    if (r != NVRTC_SUCCESS) return r;
    cubin->assign(size, '\0');
    return nvrtcGetCUBIN(Cast(program), cubin->data());
  }

  int GetLoweredName(Program program, const std::string& expr,
                     std::string* lowered) override {
    const char* name = nullptr;
    const nvrtcResult r =
        nvrtcGetLoweredName(Cast(program), expr.c_str(), &name);
    if (r == NVRTC_SUCCESS) lowered->assign(name ? name : "");
    return r;
  }

  int DestroyProgram(Program* program) override {
    nvrtcProgram prog = Cast(*program);
    const nvrtcResult r = nvrtcDestroyProgram(&prog);
    *program = nullptr;
    return r;
  }

  std::string ErrorString(int result) override {
    return nvrtcGetErrorString(static_cast<nvrtcResult>(result));
  }
};

}  // namespace

NvrtcApi* NvrtcApi::Real() {
  static NvrtcApi* api = new RealNvrtcApi();
  return api;
}

}  // namespace tpjit
