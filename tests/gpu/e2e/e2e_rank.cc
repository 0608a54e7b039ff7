// tpjit_e2e_rank: one rank of the end-to-end GPU run. On its own GPU it
//   1. warms up a spec through tpjitd (the C++ client),
//   2. meets the other ranks at the NCCL barrier (id handed out by tpjitd's
//      Rendezvous), optionally after sleeping --delay seconds (a late rank),
//   3. fetches and loads every cubin of the manifest (cuModuleLoadData),
//   4. with --check, runs each kernel once at an M it serves and compares
//      with the double-precision CPU reference,
// and prints one JSON line with the time of each phase and the results.
// Exit 0 when every phase passed, 3 on a barrier time-out, 1 otherwise.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "cli/spec_file.h"
#include "client/cuda/cuda_loader.h"
#include "client/cuda/gemm_launch.h"
#include "client/include/tpjit/client.h"
#include "client/include/tpjit/loaded_manifest.h"
#include "client/rpc/barrier_client.h"
#include "nlohmann/json.hpp"
#include "src/barrier/nccl_api.h"
#include "src/barrier/nccl_barrier.h"
#include "src/cuda/cuda_driver.h"
#include "src/plan/manifest.h"
#include "src/plan/spec.h"
#include "tests/gpu/gemm_host.h"

namespace tpjit {
namespace {

struct Args {
  std::string socket, spec, group = "e2e";
  int rank = 0, world = 1, gpu = 0;
  double timeout = 30, delay = 0;
  bool check = false;
  int epochs = 0;  // on-time barriers after the first, per transport
};

bool Parse(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (f == "--socket")
      a.socket = next();
    else if (f == "--spec")
      a.spec = next();
    else if (f == "--group")
      a.group = next();
    else if (f == "--rank")
      a.rank = std::atoi(next().c_str());
    else if (f == "--world")
      a.world = std::atoi(next().c_str());
    else if (f == "--gpu")
      a.gpu = std::atoi(next().c_str());
    else if (f == "--timeout")
      a.timeout = std::atof(next().c_str());
    else if (f == "--delay")
      a.delay = std::atof(next().c_str());
    else if (f == "--check")
      a.check = true;
    else if (f == "--epochs")
      a.epochs = std::atoi(next().c_str());
    else
      return false;
  }
  return !a.socket.empty() && !a.spec.empty();
}

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
      .count();
}

KernelSpec SpecOf(const tpjit::v1::ManifestKernel& k) {
  return *FromManifestKernel(k);
}

// An M the manifest serves with kernel `index` (the middle of its first
// range, capped to keep the CPU reference quick).
int64_t MFor(const tpjit::v1::Manifest& m, int index) {
  for (const auto& shape : m.shapes()) {
    for (const auto& r : shape.ranges()) {
      if (r.kernel() == index) {
        return std::min<int64_t>((r.lo() + r.hi()) / 2, 2048);
      }
    }
  }
  return 1;
}

// Runs kernel `index` once; returns the relative error, or -1 on failure.
double CheckKernel(CudaDriver* driver, const LoadedManifest& loaded, int index,
                   std::mt19937_64& rng, int threads, std::string* detail) {
  const KernelSpec spec = SpecOf(loaded.manifest().kernels(index));
  const FamilyInfo& info = Info(spec.family);
  auto kernel = GemmKernel::Create(driver, loaded.function(index), spec);
  if (!kernel.ok()) {
    *detail = kernel.status().ToString();
    return -1;
  }
  auto host_b = MakeHostB(spec, rng, threads);
  const HostGemm h =
      MakeHostGemm(spec, MFor(loaded.manifest(), index), rng, host_b, threads);
  auto upload = [&](const void* data, size_t bytes) {
    auto b = DeviceBuffer::Allocate(driver, std::max<size_t>(bytes, 4));
    if (b.ok() && bytes > 0) (void)b->Upload(data, bytes);
    return b.ok() ? std::move(*b) : DeviceBuffer();
  };
  DeviceBuffer b = upload(host_b->raw.data(), host_b->raw.size());
  DeviceBuffer sb = upload(host_b->scales.data(), host_b->scales.size() * 4);
  DeviceBuffer a = upload(h.a.data(), h.a.size());
  DeviceBuffer sa = upload(h.sa.data(), h.sa.size() * 4);
  DeviceBuffer groups = upload(h.groups.data(), h.groups.size() * 4);
  auto d = DeviceBuffer::Allocate(driver, h.d_bytes());
  if (!d.ok() || !d->Fill(kPoisonByte).ok()) return -1;
  GemmArgs args;
  args.a = a.ptr();
  args.b = b.ptr();
  args.sa = info.fp8 ? sa.ptr() : 0;
  args.sb = info.fp8 ? sb.ptr() : 0;
  args.groups = info.group == GroupKind::kNone ? 0 : groups.ptr();
  args.d = d->ptr();
  args.m = static_cast<int32_t>(h.m);
  if (auto s = kernel->Launch(args); !s.ok()) {
    *detail = s.ToString();
    return -1;
  }
  if (auto s = CuStatus(driver, driver->CtxSynchronize(), "sync"); !s.ok()) {
    *detail = s.ToString();
    return -1;
  }
  std::vector<uint8_t> out(h.d_bytes());
  if (!d->Download(out.data(), out.size()).ok()) return -1;
  const CheckResult r = CheckGemm(h, out, DefaultRtol(info), threads);
  if (!r.ok) {
    *detail = ToString(spec) + ": " + r.detail;
    return -1;
  }
  return r.rel_err;
}

int Run(const Args& a) {
  nlohmann::json out = {{"rank", a.rank}, {"gpu", a.gpu}};
  const auto t0 = std::chrono::steady_clock::now();
  auto driver = CudaDriver::Real();
  if (!driver.ok()) {
    std::cerr << driver.status() << "\n";
    return 1;
  }
  auto ctx = CudaContext::Open(*driver, a.gpu);
  if (!ctx.ok() || !ctx->MakeCurrent().ok()) {
    std::cerr << "no CUDA context on GPU " << a.gpu << "\n";
    return 1;
  }
  out["context_seconds"] = Since(t0);
  auto spec = cli::ReadSpecFile(a.spec);
  auto client = Client::Connect(a.socket);
  if (!spec.ok() || !client.ok()) {
    std::cerr << "bad spec or no daemon\n";
    return 1;
  }
  auto t = std::chrono::steady_clock::now();
  auto warm = (*client)->Warmup(*spec, a.rank, a.world, a.group, nullptr,
                                absl::Minutes(20));
  if (!warm.ok()) {
    std::cerr << "warm-up: " << warm.status() << "\n";
    return 1;
  }
  out["warmup_seconds"] = Since(t);
  out["compiled"] = warm->summary.compiled();
  out["cache_hits"] = warm->summary.cache_hits();
  out["manifest_digest"] = warm->manifest.digest();
  out["kernels"] = warm->manifest.kernels_size();
  if (a.delay > 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(a.delay));
  }
  auto rendezvous = RendezvousClient::Connect(a.socket);
  NcclBarrierOptions bo;
  bo.group = a.group;
  bo.rank = a.rank;
  bo.world = a.world;
  bo.device = a.gpu;
  NcclBarrier barrier(NcclApi::Real(), CudaRuntime::Real(), rendezvous.get(),
                      Clock::Real(), bo);
  t = std::chrono::steady_clock::now();
  absl::Status arrived = barrier.Arrive(absl::Seconds(a.timeout));
  out["barrier_seconds"] = Since(t);
  out["barrier"] = arrived.ok() ? "ok" : arrived.ToString();
  if (!arrived.ok()) {
    // The GPU must stay usable after an aborted barrier.
    auto probe = DeviceBuffer::Allocate(*driver, 1 << 20);
    out["gpu_usable_after"] = probe.ok() && probe->Fill(0).ok();
    std::cout << out.dump() << std::endl;
    return arrived.code() == absl::StatusCode::kDeadlineExceeded ? 3 : 1;
  }
  // Later on-time barriers of the group: the NCCL transport on its kept
  // communicator, then the daemon transport.
  nlohmann::json nccl_ms = nlohmann::json::array();
  nlohmann::json daemon_ms = nlohmann::json::array();
  for (int e = 0; e < a.epochs; ++e) {
    t = std::chrono::steady_clock::now();
    absl::Status again = barrier.Arrive(absl::Seconds(a.timeout));
    if (!again.ok()) {
      std::cerr << "nccl barrier epoch " << e + 1 << ": " << again << "\n";
      return 1;
    }
    nccl_ms.push_back(Since(t) * 1e3);
  }
  if (a.epochs > 0) {
    auto daemon_barrier = DaemonBarrier::Connect(
        a.socket, {a.group + "-daemon", a.rank, a.world});
    for (int e = 0; e < a.epochs + 1; ++e) {
      t = std::chrono::steady_clock::now();
      absl::Status again = daemon_barrier->Arrive(absl::Seconds(a.timeout));
      if (!again.ok()) {
        std::cerr << "daemon barrier epoch " << e << ": " << again << "\n";
        return 1;
      }
      daemon_ms.push_back(Since(t) * 1e3);
    }
  }
  out["nccl_barrier_later_ms"] = nccl_ms;
  out["daemon_barrier_ms"] = daemon_ms;
  t = std::chrono::steady_clock::now();
  auto loaded = (*client)->Load(warm->manifest, *driver);
  if (!loaded.ok()) {
    std::cerr << "load: " << loaded.status() << "\n";
    return 1;
  }
  out["load_seconds"] = Since(t);
  int failed = 0;
  if (a.check) {
    t = std::chrono::steady_clock::now();
    std::mt19937_64 rng(std::random_device{}());
    const int threads = std::max(
        1, static_cast<int>(std::thread::hardware_concurrency()) / a.world);
    double worst = 0;
    for (int i = 0; i < warm->manifest.kernels_size(); ++i) {
      std::string detail;
      double err = CheckKernel(*driver, **loaded, i, rng, threads, &detail);
      if (err < 0) {
        ++failed;
        std::cerr << "kernel " << i << " failed: " << detail << "\n";
      }
      worst = std::max(worst, err);
    }
    out["checked"] = warm->manifest.kernels_size();
    out["check_failed"] = failed;
    out["worst_rel_err"] = worst;
    out["check_seconds"] = Since(t);
  }
  out["total_seconds"] = Since(t0);
  std::cout << out.dump() << std::endl;
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace tpjit

int main(int argc, char** argv) {
  tpjit::Args a;
  if (!tpjit::Parse(argc, argv, a)) {
    std::cerr << "usage: tpjit_e2e_rank --socket S --spec F --rank R --world W"
                 " --gpu G [--group G] [--timeout S] [--delay S] [--check]\n";
    return 2;
  }
  return tpjit::Run(a);
}
