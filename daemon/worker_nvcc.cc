// NVCC back end of tpjit-worker.
#include "daemon/worker_handlers.h"

namespace tpjit {

void HandleNvcc(const tpjit::v1::WorkerRequest& request,
                tpjit::v1::WorkerResponse* response) {
  (void)request;
  response->set_ok(false);
  response->set_error("the NVCC back end is not built into this worker");
}

}  // namespace tpjit
