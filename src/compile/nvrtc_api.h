// NvrtcApi: the NVRTC calls tpjit makes, behind an interface so tests can
// inject failures (a compile error, a missing cubin, a bad lowered name).
// Results are nvrtcResult values as int (0 = NVRTC_SUCCESS). The real
// implementation links libnvrtc (which starts on machines without a GPU) and
// is thread-safe: NVRTC programs are independent objects.
#ifndef TPJIT_SRC_COMPILE_NVRTC_API_H_
#define TPJIT_SRC_COMPILE_NVRTC_API_H_

#include <string>
#include <utility>
#include <vector>

namespace tpjit {

// (include name, content) pairs NVRTC resolves #include "name" against.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

class NvrtcApi {
 public:
  using Program = void*;  // an nvrtcProgram

  virtual ~NvrtcApi() = default;

  virtual int Version(int* major, int* minor) = 0;
  virtual int CreateProgram(Program* program, const std::string& source,
                            const std::string& name,
                            const HeaderList& headers) = 0;
  virtual int AddNameExpression(Program program, const std::string& expr) = 0;
  virtual int CompileProgram(Program program,
                             const std::vector<std::string>& options) = 0;
  virtual int GetLog(Program program, std::string* log) = 0;
  virtual int GetCubin(Program program, std::string* cubin) = 0;
  virtual int GetLoweredName(Program program, const std::string& expr,
                             std::string* lowered) = 0;
  virtual int DestroyProgram(Program* program) = 0;
  virtual std::string ErrorString(int result) = 0;

  // The process-wide real implementation; never deleted.
  static NvrtcApi* Real();
};

}  // namespace tpjit

#endif  // TPJIT_SRC_COMPILE_NVRTC_API_H_
