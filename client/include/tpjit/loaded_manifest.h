// LoadedManifest: a manifest's cubins loaded as CUDA modules, one function per
// kernel, looked up by (shape, M) at run time. Made by Client::Load. Owns its
// modules (unloaded on destruction); movable, not copyable. Lookup is
// thread-safe; destruction must not race with use.
#ifndef TPJIT_CLIENT_INCLUDE_TPJIT_LOADED_MANIFEST_H_
#define TPJIT_CLIENT_INCLUDE_TPJIT_LOADED_MANIFEST_H_

#include <cuda.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "client/cuda/cuda_loader.h"
#include "tpjit/v1/tpjit.pb.h"

namespace tpjit {

class LoadedManifest {
 public:
  // REQUIRES: functions[i] is kernel i's entry, taken from modules[i].
  LoadedManifest(tpjit::v1::Manifest manifest, std::vector<CudaModule> modules,
                 std::vector<CUfunction> functions);
  LoadedManifest(LoadedManifest&&) = default;
  LoadedManifest& operator=(LoadedManifest&&) = default;

  // The function that serves M=`m` of shape `shape` (see LookupKernel).
  absl::StatusOr<CUfunction> Lookup(int shape, int64_t m) const;
  // REQUIRES: 0 <= kernel < manifest().kernels_size().
  CUfunction function(int kernel) const { return functions_[kernel]; }
  const tpjit::v1::Manifest& manifest() const { return manifest_; }

 private:
  tpjit::v1::Manifest manifest_;
  std::vector<CudaModule> modules_;
  std::vector<CUfunction> functions_;
};

}  // namespace tpjit

#endif  // TPJIT_CLIENT_INCLUDE_TPJIT_LOADED_MANIFEST_H_
