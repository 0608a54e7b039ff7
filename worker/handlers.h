// What a tpjit-worker process does with each request kind. Each handler
// fills `response` (ok=false + error + log on failure). Not thread-safe: a
// worker process handles one request at a time.
#ifndef TPJIT_WORKER_HANDLERS_H_
#define TPJIT_WORKER_HANDLERS_H_

#include "tpjit/v1/worker.pb.h"

namespace tpjit {

void HandleNvrtc(const tpjit::v1::WorkerRequest& request,
                 tpjit::v1::WorkerResponse* response);
void HandleSelfTest(tpjit::v1::WorkerResponse* response);
// NVCC back end (worker_nvcc.cc): `nvcc -cubin` in a private temp directory.
void HandleNvcc(const tpjit::v1::WorkerRequest& request,
                tpjit::v1::WorkerResponse* response);
// Load check (worker_load_check.cc): loads the cubin on this process's GPU.
// `gpu` < 0 means the process holds no GPU.
void HandleLoadCheck(const tpjit::v1::WorkerRequest& request, int gpu,
                     tpjit::v1::WorkerResponse* response);
// The load-checker's self-test: creates its context on `gpu` now (cuInit
// and the primary context take ~1 s on an H200 host), so that no check
// waits for it; ok=false with the reason when the GPU cannot be used.
void HandleLoadCheckSelfTest(int gpu, tpjit::v1::WorkerResponse* response);

}  // namespace tpjit

#endif  // TPJIT_WORKER_HANDLERS_H_
