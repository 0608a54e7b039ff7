// tpjit-worker: a long-lived child of tpjitd. Reads framed WorkerRequests on
// stdin and answers each with a WorkerResponse on stdout, until stdin closes.
//   tpjit-worker                 compile worker (holds no CUDA context)
//   tpjit-worker --load-check N  load-checker for GPU N (one context)
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "src/common/child_process.h"
#include "worker/handlers.h"

namespace {

int64_t MaxRssBytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

void LimitMemory(const char* bytes) {
#if defined(__SANITIZE_ADDRESS__)
  return;  // ASan's shadow memory alone exceeds any sensible limit
#endif
  if (bytes == nullptr) return;
  const long long limit = std::atoll(bytes);
  if (limit <= 0) return;
  rlimit rl{static_cast<rlim_t>(limit), static_cast<rlim_t>(limit)};
  setrlimit(RLIMIT_AS, &rl);
}

}  // namespace

int main(int argc, char** argv) {
  int gpu = -1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--load-check") == 0 && i + 1 < argc) {
      gpu = std::atoi(argv[++i]);
    }
  }
  // A compile worker (not the load-checker, whose CUDA context reserves
  // address space) is limited like the nvcc it starts: a hostile source
  // costs at most this much memory, then the compile fails.
  if (gpu < 0) LimitMemory(std::getenv("TPJIT_WORKER_MEMORY_LIMIT"));
  // Keep stdout for frames only: anything a library prints goes to stderr.
  // Close-on-exec: a compiler the worker starts never holds it (RunCommand
  // also closes what it inherits beyond 0-2).
  const int frames_out = fcntl(1, F_DUPFD_CLOEXEC, 3);
  dup2(2, 1);
  std::string bytes;
  while (tpjit::ReadFrame(0, &bytes)) {
    tpjit::v1::WorkerRequest request;
    tpjit::v1::WorkerResponse response;
    if (!request.ParseFromString(bytes)) {
      response.set_error("malformed request");
    } else {
      response.set_id(request.id());
      switch (request.kind()) {
        case tpjit::v1::WorkerRequest::NVRTC:
          tpjit::HandleNvrtc(request, &response);
          break;
        case tpjit::v1::WorkerRequest::NVCC:
          tpjit::HandleNvcc(request, &response);
          break;
        case tpjit::v1::WorkerRequest::LOAD_CHECK:
          tpjit::HandleLoadCheck(request, gpu, &response);
          break;
        case tpjit::v1::WorkerRequest::SELF_TEST:
          if (gpu >= 0) {
            tpjit::HandleLoadCheckSelfTest(gpu, &response);
          } else {
            tpjit::HandleSelfTest(&response);
          }
          break;
        default:
          response.set_error("unknown request kind");
      }
    }
    response.set_max_rss_bytes(MaxRssBytes());
    if (!tpjit::WriteFrame(frames_out, response.SerializeAsString())) break;
  }
  return 0;
}
