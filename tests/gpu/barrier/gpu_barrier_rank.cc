// tpjit_gpu_barrier_rank: one rank of the NCCL barrier GPU test, in its own
// process on its own GPU. The ncclUniqueId travels through the Rendezvous RPC
// of the BarrierService the test hosts. Prints one line per repetition:
//   rep=I rank=R code=CODE total_ms=.. rendezvous_ms=.. init_ms=..
//   all_reduce_ms=.. teardown_ms=.. abort_ms=.. msg=...
// then "gpu_ok=1" if cudaMalloc + cudaMemset still work afterwards.
// Exit 0 when every repetition passed, 3 if any timed out, 1 otherwise.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/rpc/barrier_client.h"
#include "src/barrier/nccl_api.h"
#include "src/barrier/nccl_barrier.h"
#include "src/common/clock.h"

namespace {

struct Args {
  std::string socket, group;
  int rank = 0, world = 2, device = 0, reps = 1;
  double timeout = 10, delay = 0;
};

bool Parse(int argc, char** argv, Args& a) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    bool ok = true;
    if (k == "--socket")
      a.socket = v;
    else if (k == "--group")
      a.group = v;
    else if (k == "--rank")
      ok = absl::SimpleAtoi(v, &a.rank);
    else if (k == "--world")
      ok = absl::SimpleAtoi(v, &a.world);
    else if (k == "--device")
      ok = absl::SimpleAtoi(v, &a.device);
    else if (k == "--reps")
      ok = absl::SimpleAtoi(v, &a.reps);
    else if (k == "--timeout")
      ok = absl::SimpleAtod(v, &a.timeout);
    else if (k == "--delay")
      ok = absl::SimpleAtod(v, &a.delay);
    else
      ok = false;
    if (!ok) {
      std::fprintf(stderr, "bad flag %s %s\n", k.c_str(), v);
      return false;
    }
  }
  return !a.socket.empty() && !a.group.empty();
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

bool GpuUsable(tpjit::CudaRuntime* cuda) {
  void* p = nullptr;
  if (cuda->Malloc(&p, 1 << 20) != cudaSuccess) return false;
  bool ok = cuda->Memset(p, 0x5a, 1 << 20) == cudaSuccess &&
            cuda->DeviceSynchronize() == cudaSuccess;
  unsigned char byte = 0;
  ok = ok && cuda->Memcpy(&byte, p, 1, cudaMemcpyDeviceToHost) == cudaSuccess &&
       byte == 0x5a;
  cuda->Free(p);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!Parse(argc, argv, a)) {
    std::fprintf(stderr,
                 "usage: tpjit_gpu_barrier_rank --socket S --group G --rank R "
                 "--world W --device D [--timeout S] [--delay S] [--reps N]\n");
    return 2;
  }
  auto rendezvous = tpjit::RendezvousClient::Connect(a.socket);
  tpjit::NcclBarrierOptions o;
  o.group = a.group;
  o.rank = a.rank;
  o.world = a.world;
  o.device = a.device;
  tpjit::NcclBarrier barrier(tpjit::NcclApi::Real(), tpjit::CudaRuntime::Real(),
                             rendezvous.get(), tpjit::Clock::Real(), o);
  if (a.delay > 0) absl::SleepFor(absl::Seconds(a.delay));
  int exit_code = 0;
  for (int rep = 0; rep < a.reps; ++rep) {
    const absl::Status s = barrier.Arrive(absl::Seconds(a.timeout));
    const tpjit::NcclBarrierTimings& t = barrier.last_timings();
    std::printf(
        "rep=%d rank=%d code=%s total_ms=%.1f rendezvous_ms=%.1f init_ms=%.1f "
        "all_reduce_ms=%.1f teardown_ms=%.1f abort_ms=%.1f msg=%s\n",
        rep, a.rank, absl::StatusCodeToString(s.code()).c_str(), Ms(t.total),
        Ms(t.rendezvous), Ms(t.init), Ms(t.all_reduce), Ms(t.teardown),
        Ms(t.abort), std::string(s.message()).c_str());
    std::fflush(stdout);
    if (!s.ok()) {
      exit_code = absl::IsDeadlineExceeded(s) ? 3 : 1;
      break;
    }
  }
  std::printf("gpu_ok=%d\n", GpuUsable(tpjit::CudaRuntime::Real()) ? 1 : 0);
  return exit_code;
}
