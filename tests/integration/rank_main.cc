// tpjit_test_rank: one rank process for the integration tests. Warms up a
// spec through tpjitd, writes the manifest's bytes to --out and prints
// "digest compiled hits progress_events attached" on stdout. Exit 0 on
// success, 1 with the status on stderr otherwise.
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/spec_file.h"
#include "grpcpp/grpcpp.h"
#include "src/plan/spec.h"
#include "tpjit/v1/tpjit.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: tpjit_test_rank SOCKET SPEC RANK WORLD OUT\n";
    return 2;
  }
  auto spec = tpjit::cli::ReadSpecFile(argv[2]);
  if (!spec.ok()) {
    std::cerr << spec.status() << "\n";
    return 2;
  }
  auto channel = grpc::CreateChannel(std::string("unix:") + argv[1],
                                     grpc::InsecureChannelCredentials());
  auto stub = tpjit::v1::Tpjit::NewStub(channel);
  tpjit::v1::WarmupRequest req;
  *req.mutable_spec() = *spec;
  req.set_rank(std::atoi(argv[3]));
  req.set_world(std::atoi(argv[4]));
  req.set_group("it");
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  auto reader = stub->Warmup(&ctx, req);
  tpjit::v1::WarmupEvent event, last;
  int progress = 0;
  while (reader->Read(&event)) {
    if (event.has_progress()) ++progress;
    if (event.has_manifest()) last = event;
  }
  grpc::Status status = reader->Finish();
  if (!status.ok() || !last.has_manifest()) {
    std::cerr << "warm-up failed: " << status.error_code() << " "
              << status.error_message() << "\n";
    return 1;
  }
  std::ofstream(argv[5], std::ios::binary)
      << last.manifest().SerializeAsString();
  std::cout << last.manifest().digest() << " " << last.summary().compiled()
            << " " << last.summary().cache_hits() << " " << progress << " "
            << last.summary().attached() << "\n";
  return 0;
}
