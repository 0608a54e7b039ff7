// tpjit_bench_rank: one rank of the tpjit benchmark. Prints "ready", waits
// for "go" on stdin (so all ranks start together), then connects to tpjitd,
// warms up, fetches every cubin of the manifest into memory, and prints one
// JSON line with its timings from "go", the CLOCK_MONOTONIC time it ended
// (end_monotonic, so a driver can count the daemon's start-up) and the job's
// compile CPU-seconds.
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/spec_file.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "src/plan/spec.h"
#include "tpjit/v1/tpjit.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: tpjit_bench_rank SOCKET SPEC RANK WORLD\n";
    return 2;
  }
  auto spec = tpjit::cli::ReadSpecFile(argv[2]);
  if (!spec.ok()) return 2;
  std::cout << "ready" << std::endl;
  std::string go;
  std::getline(std::cin, go);
  const auto t0 = std::chrono::steady_clock::now();
  auto since = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
        .count();
  };
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(
      std::string("unix:") + argv[1], grpc::InsecureChannelCredentials(), args);
  auto stub = tpjit::v1::Tpjit::NewStub(channel);
  channel->WaitForConnected(std::chrono::system_clock::now() +
                            std::chrono::seconds(30));
  const double connected_s = since();
  tpjit::v1::WarmupRequest req;
  *req.mutable_spec() = *spec;
  req.set_rank(std::atoi(argv[3]));
  req.set_world(std::atoi(argv[4]));
  grpc::ClientContext ctx;
  auto reader = stub->Warmup(&ctx, req);
  tpjit::v1::WarmupEvent event, last;
  while (reader->Read(&event)) {
    if (event.has_manifest()) last = event;
  }
  if (!reader->Finish().ok() || !last.has_manifest()) return 1;
  const double manifest_s = since();
  int64_t bytes = 0;
  for (const auto& k : last.manifest().kernels()) {
    grpc::ClientContext fctx;
    tpjit::v1::FetchRequest f;
    f.set_key(k.key());
    auto fr = stub->Fetch(&fctx, f);
    tpjit::v1::FetchChunk chunk;
    std::string cubin;
    while (fr->Read(&chunk)) cubin += chunk.data();
    if (!fr->Finish().ok() ||
        static_cast<int64_t>(cubin.size()) != k.cubin_bytes()) {
      return 1;
    }
    bytes += static_cast<int64_t>(cubin.size());
  }
  nlohmann::json j = {
      {"rank", std::atoi(argv[3])},
      {"connected_seconds", connected_s},
      {"manifest_seconds", manifest_s},
      {"cubins_seconds", since()},
      {"end_monotonic", std::chrono::duration<double>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count()},
      {"compile_cpu_seconds", last.summary().compile_cpu_seconds()},
      {"cubin_bytes", bytes},
      {"kernels", last.manifest().kernels_size()},
      {"compiled", last.summary().compiled()},
      {"cache_hits", last.summary().cache_hits()},
      {"digest", last.manifest().digest()}};
  std::cout << j.dump() << std::endl;
  return 0;
}
