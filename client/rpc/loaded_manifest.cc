#include "client/include/tpjit/loaded_manifest.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "client/include/tpjit/client.h"
#include "src/common/status_macros.h"

namespace tpjit {

LoadedManifest::LoadedManifest(tpjit::v1::Manifest manifest,
                               std::vector<CudaModule> modules,
                               std::vector<CUfunction> functions)
    : manifest_(std::move(manifest)),
      modules_(std::move(modules)),
      functions_(std::move(functions)) {}

absl::StatusOr<CUfunction> LoadedManifest::Lookup(int shape, int64_t m) const {
  TPJIT_ASSIGN_OR_RETURN(int kernel, LookupKernel(manifest_, shape, m));
  return functions_[kernel];
}

absl::StatusOr<std::unique_ptr<LoadedManifest>> Client::Load(
    const tpjit::v1::Manifest& manifest, CudaDriver* driver) {
  TPJIT_RETURN_IF_ERROR(ValidateManifest(manifest));
  if (driver == nullptr) {
    TPJIT_ASSIGN_OR_RETURN(driver, CudaDriver::Real());
  }
  std::vector<CudaModule> modules;
  std::vector<CUfunction> functions;
  for (const tpjit::v1::ManifestKernel& kernel : manifest.kernels()) {
    TPJIT_ASSIGN_OR_RETURN(std::string cubin, Fetch(kernel));
    auto module = CudaModule::Load(driver, cubin);
    if (!module.ok()) {
      return absl::Status(
          module.status().code(),
          absl::StrCat("load ", kernel.key(), ": ", module.status().message()));
    }
    TPJIT_ASSIGN_OR_RETURN(CUfunction fn,
                           module->Function(kernel.lowered_name()));
    modules.push_back(*std::move(module));
    functions.push_back(fn);
  }
  return std::make_unique<LoadedManifest>(manifest, std::move(modules),
                                          std::move(functions));
}

}  // namespace tpjit
