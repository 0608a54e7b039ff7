// A bounded fuzz of every tpjitd RPC through its real gRPC services (an
// in-process daemon with fake workers): thousands of random messages (every
// field set by reflection to edge values and random bytes) and mutated ones
// (a valid message's bytes flipped, cut, spliced), from a fixed seed. The
// daemon must answer each call OK or with a clean error (never INTERNAL,
// UNKNOWN or UNAVAILABLE) and stay SERVING. Runs in seconds on 2 cores.
#include <climits>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "gtest/gtest.h"
#include "tests/daemon/in_process_daemon.h"

namespace tpjit::testing {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

constexpr uint64_t kSeed = 20261129;
constexpr int kBatch = 64;

class Fuzzer {
 public:
  explicit Fuzzer(uint64_t seed) : rng_(seed) {}

  int Below(int n) {
    return std::uniform_int_distribution<int>(0, n - 1)(rng_);
  }
  bool Coin() { return Below(2) == 0; }

  int64_t EdgeInt(int64_t lo, int64_t hi) {
    static const int64_t kEdges[] = {
        0,    1,    -1,    2,      7,       8,       1023,      1024,
        1025, 4096, 65536, 131072, INT_MAX, INT_MIN, LLONG_MAX, LLONG_MIN};
    int64_t v = Coin() ? kEdges[Below(std::size(kEdges))]
                       : static_cast<int64_t>(rng_()) % 5000;
    return std::clamp(v, lo, hi);
  }

  std::string Bytes(bool printable) {
    static const size_t kSizes[] = {0, 1, 2, 8, 64, 255, 256, 257, 4096, 4097};
    std::string s(kSizes[Below(std::size(kSizes))], '\0');
    for (char& c : s) {
      c = printable ? static_cast<char>(0x20 + Below(95))
                    : static_cast<char>(Below(256));
    }
    return s;
  }

  // Sets each field of `m` with probability 1/2 (recursing `depth` levels).
  void Randomize(Message* m, int depth = 3) {
    const auto* d = m->GetDescriptor();
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* f = d->field(i);
      if (Coin()) continue;
      if (f->is_repeated()) {
        const int n = Below(5);
        for (int k = 0; k < n; ++k) AddOne(m, f, depth);
      } else {
        SetOne(m, f, depth);
      }
    }
  }

  // A mutation of `base`'s bytes that still parses into T (tries a few).
  // Strings are made valid UTF-8: protobuf refuses others before tpjitd's
  // code sees the message (gRPC answers UNIMPLEMENTED), which tests nothing.
  template <typename T>
  T Mutate(const T& base) {
    const std::string bytes = base.SerializeAsString();
    for (int tries = 0; tries < 8; ++tries) {
      std::string b = bytes;
      const int ops = 1 + Below(4);
      for (int k = 0; k < ops; ++k) MutateBytes(b);
      T out;
      if (out.ParsePartialFromString(b)) {
        MakeUtf8(&out);
        return out;
      }
    }
    T out = base;
    Randomize(&out, 1);
    return out;
  }

 private:
  // Replaces every non-ASCII byte of `string` fields (not `bytes`) with '?'.
  static void MakeUtf8(Message* m) {
    const Reflection* r = m->GetReflection();
    std::vector<const FieldDescriptor*> fields;
    r->ListFields(*m, &fields);
    for (const FieldDescriptor* f : fields) {
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        if (!f->is_repeated()) {
          MakeUtf8(r->MutableMessage(m, f));
          continue;
        }
        for (int i = 0; i < r->FieldSize(*m, f); ++i) {
          MakeUtf8(r->MutableRepeatedMessage(m, f, i));
        }
      } else if (f->type() == FieldDescriptor::TYPE_STRING) {
        if (!f->is_repeated()) {
          r->SetString(m, f, Ascii(r->GetString(*m, f)));
          continue;
        }
        for (int i = 0; i < r->FieldSize(*m, f); ++i) {
          r->SetRepeatedString(m, f, i, Ascii(r->GetRepeatedString(*m, f, i)));
        }
      }
    }
  }
  static std::string Ascii(std::string s) {
    for (char& c : s) {
      if (static_cast<unsigned char>(c) >= 0x80) c = '?';
    }
    return s;
  }

  void MutateBytes(std::string& b) {
    const size_t at = b.empty() ? 0 : Below(static_cast<int>(b.size()));
    switch (Below(6)) {
      case 0:
        if (!b.empty()) b[at] ^= static_cast<char>(1 << Below(8));
        break;
      case 1:
        if (!b.empty()) b[at] = static_cast<char>(Below(256));
        break;
      case 2:
        b.insert(at, Bytes(Coin()));
        break;
      case 3:
        b.erase(at, Below(16));
        break;
      case 4:
        b.resize(at);
        break;
      default:
        b.insert(at, b.substr(0, Below(static_cast<int>(b.size()) + 1)));
        break;
    }
  }

  // Printable most of the time; otherwise any bytes (ASCII for `string`).
  std::string StringFor(const FieldDescriptor* f) {
    std::string s = Bytes(Below(4) != 0);
    return f->type() == FieldDescriptor::TYPE_STRING ? Ascii(std::move(s)) : s;
  }

  void SetOne(Message* m, const FieldDescriptor* f, int depth) {
    const Reflection* r = m->GetReflection();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        return r->SetInt32(m, f, EdgeInt(INT_MIN, INT_MAX));
      case FieldDescriptor::CPPTYPE_INT64:
        return r->SetInt64(m, f, EdgeInt(LLONG_MIN, LLONG_MAX));
      case FieldDescriptor::CPPTYPE_UINT32:
        return r->SetUInt32(m, f, EdgeInt(0, UINT_MAX));
      case FieldDescriptor::CPPTYPE_UINT64:
        return r->SetUInt64(m, f, static_cast<uint64_t>(EdgeInt(0, LLONG_MAX)));
      case FieldDescriptor::CPPTYPE_DOUBLE:
        return r->SetDouble(m, f, Coin() ? 1e18 : EdgeInt(-10, 1000) / 7.0);
      case FieldDescriptor::CPPTYPE_FLOAT:
        return r->SetFloat(m, f, static_cast<float>(EdgeInt(-10, 1000)));
      case FieldDescriptor::CPPTYPE_BOOL:
        return r->SetBool(m, f, Coin());
      case FieldDescriptor::CPPTYPE_ENUM:
        return r->SetEnumValue(m, f, static_cast<int>(EdgeInt(-1, 5)));
      case FieldDescriptor::CPPTYPE_STRING:
        return r->SetString(m, f, StringFor(f));
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (depth > 0) Randomize(r->MutableMessage(m, f), depth - 1);
        return;
    }
  }

  void AddOne(Message* m, const FieldDescriptor* f, int depth) {
    const Reflection* r = m->GetReflection();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        return r->AddInt32(m, f, EdgeInt(INT_MIN, INT_MAX));
      case FieldDescriptor::CPPTYPE_INT64:
        return r->AddInt64(m, f, EdgeInt(LLONG_MIN, LLONG_MAX));
      case FieldDescriptor::CPPTYPE_STRING:
        return r->AddString(m, f, StringFor(f));
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (depth > 0) Randomize(r->AddMessage(m, f), depth - 1);
        return;
      default:
        return;
    }
  }

  std::mt19937_64 rng_;
};

// Counts replies by code; a code outside the clean set fails the test.
class Verdicts {
 public:
  void Record(const std::string& rpc, const grpc::Status& s) {
    absl::MutexLock lock(&mu_);
    ++counts_[s.error_code()];
    const auto code = s.error_code();
    if (code == grpc::StatusCode::INTERNAL ||
        code == grpc::StatusCode::UNKNOWN ||
        code == grpc::StatusCode::UNAVAILABLE ||
        code == grpc::StatusCode::DATA_LOSS ||
        code == grpc::StatusCode::UNIMPLEMENTED) {
      ADD_FAILURE() << rpc << ": unclean reply " << code << ": "
                    << s.error_message();
    }
  }
  int total() {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (const auto& [code, c] : counts_) n += c;
    return n;
  }
  std::string Summary() {
    absl::MutexLock lock(&mu_);
    std::string out;
    for (const auto& [code, c] : counts_) {
      out += "code " + std::to_string(code) + ": " + std::to_string(c) + "; ";
    }
    return out;
  }

 private:
  absl::Mutex mu_;
  std::map<int, int> counts_;
};

std::chrono::system_clock::time_point In(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d);
}

class RpcFuzzTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(d_.status().ok()) << d_.status(); }
  void TearDown() override {
    EXPECT_TRUE(
        WaitFor([&] { return d_.daemon().Serving(); }, absl::Seconds(30)))
        << d_.daemon().Readiness();
    grpc::ClientContext ctx;
    tpjit::v1::StatsResponse stats;
    EXPECT_TRUE(d_.stub().Stats(&ctx, tpjit::v1::StatsRequest(), &stats).ok());
    std::cerr << "replies: " << verdicts_.Summary() << "\n";
  }

  // Sends `n` unary requests made by `make`, kBatch at a time, each with a
  // client deadline of `deadline`, through the async stub call `call`.
  template <typename Req, typename Resp>
  void FuzzUnary(
      const std::string& rpc, int n, absl::Duration deadline,
      const std::function<Req(Fuzzer&)>& make,
      const std::function<void(grpc::ClientContext*, const Req*, Resp*,
                               std::function<void(grpc::Status)>)>& call) {
    Fuzzer fuzzer(kSeed + std::hash<std::string>()(rpc));
    for (int start = 0; start < n; start += kBatch) {
      const int count = std::min(kBatch, n - start);
      std::vector<grpc::ClientContext> ctx(count);
      std::vector<Req> req(count);
      std::vector<Resp> resp(count);
      absl::BlockingCounter done(count);
      for (int i = 0; i < count; ++i) {
        req[i] = make(fuzzer);
        ctx[i].set_deadline(In(deadline));
        call(&ctx[i], &req[i], &resp[i], [&, i](grpc::Status s) {
          verdicts_.Record(rpc, s);
          done.DecrementCount();
        });
      }
      done.Wait();
    }
  }

  InProcessDaemon d_{[](DaemonConfig& c) {
    c.max_client_timeout_seconds = 1;
    c.max_barrier_groups = 256;
  }};
  Verdicts verdicts_;
};

template <typename T>
std::function<T(Fuzzer&)> RandomOrMutated(T base) {
  return [base](Fuzzer& f) {
    if (f.Coin()) return f.Mutate(base);
    T m;
    f.Randomize(&m);
    return m;
  };
}

TEST_F(RpcFuzzTest, Barrier) {
  tpjit::v1::BarrierRequest base;
  base.set_group("fuzz");
  base.set_rank(0);
  base.set_world(2);
  base.set_timeout_ms(50);
  auto* stub = d_.barrier().async();
  FuzzUnary<tpjit::v1::BarrierRequest, tpjit::v1::BarrierReply>(
      "barrier", 4000, absl::Milliseconds(300), RandomOrMutated(base),
      [stub](auto* ctx, auto* req, auto* resp, auto done) {
        stub->Barrier(ctx, req, resp, std::move(done));
      });
  EXPECT_EQ(verdicts_.total(), 4000);
}

TEST_F(RpcFuzzTest, Rendezvous) {
  tpjit::v1::RendezvousRequest base;
  base.set_group("fuzz");
  base.set_rank(0);
  base.set_world(2);
  base.set_value("nccl-unique-id");
  base.set_timeout_ms(50);
  auto* stub = d_.barrier().async();
  FuzzUnary<tpjit::v1::RendezvousRequest, tpjit::v1::RendezvousReply>(
      "rendezvous", 4000, absl::Milliseconds(300), RandomOrMutated(base),
      [stub](auto* ctx, auto* req, auto* resp, auto done) {
        stub->Rendezvous(ctx, req, resp, std::move(done));
      });
  EXPECT_EQ(verdicts_.total(), 4000);
}

TEST_F(RpcFuzzTest, Compile) {
  tpjit::v1::CompileRequest base;
  base.set_backend(tpjit::v1::NVRTC);
  base.set_arch("sm_90a");
  auto* src = base.add_sources();
  src->set_name("k.cu");
  src->set_source("extern \"C\" __global__ void k(int* p) { *p = 1; }\n");
  src->add_name_expressions("k");
  base.add_options("-std=c++17");
  auto* stub = d_.stub().async();
  FuzzUnary<tpjit::v1::CompileRequest, tpjit::v1::CompileResponse>(
      "compile", 2000, absl::Seconds(5), RandomOrMutated(base),
      [stub](auto* ctx, auto* req, auto* resp, auto done) {
        stub->Compile(ctx, req, resp, std::move(done));
      });
  EXPECT_EQ(verdicts_.total(), 2000);
}

TEST_F(RpcFuzzTest, StatsStatusFetch) {
  auto* stub = d_.stub().async();
  FuzzUnary<tpjit::v1::StatsRequest, tpjit::v1::StatsResponse>(
      "stats", 300, absl::Seconds(5),
      RandomOrMutated(tpjit::v1::StatsRequest()),
      [stub](auto* ctx, auto* req, auto* resp, auto done) {
        stub->Stats(ctx, req, resp, std::move(done));
      });
  FuzzUnary<tpjit::v1::StatusRequest, tpjit::v1::StatusResponse>(
      "status", 300, absl::Seconds(5),
      RandomOrMutated(tpjit::v1::StatusRequest()),
      [stub](auto* ctx, auto* req, auto* resp, auto done) {
        stub->Status(ctx, req, resp, std::move(done));
      });
  Fuzzer fuzzer(kSeed);
  tpjit::v1::FetchRequest base;
  base.set_key(std::string(64, 'a'));
  auto make = RandomOrMutated(base);
  for (int i = 0; i < 300; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(5)));
    auto reader = d_.stub().Fetch(&ctx, make(fuzzer));
    tpjit::v1::FetchChunk chunk;
    while (reader->Read(&chunk)) {
    }
    verdicts_.Record("fetch", reader->Finish());
  }
  EXPECT_EQ(verdicts_.total(), 900);
}

TEST_F(RpcFuzzTest, Warmup) {
  tpjit::v1::WarmupRequest base;
  base.set_rank(0);
  base.set_world(1);
  base.set_group("fuzz");
  auto* spec = base.mutable_spec();
  spec->set_name("fuzz");
  spec->mutable_target()->set_arch("sm_90a");
  spec->mutable_target()->set_num_sms(132);
  spec->mutable_m_policy()->set_kind(tpjit::v1::MPolicy::EXPLICIT);
  for (int m : {1, 2, 64, 128}) spec->mutable_m_policy()->add_m_values(m);
  auto* shape = spec->add_shapes();
  shape->set_family("bf16_gemm_nt");
  shape->set_n(2048);
  shape->set_k(1024);
  auto make = RandomOrMutated(base);
  constexpr int kThreads = 4, kPerThread = 750;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Fuzzer fuzzer(kSeed + t);
      for (int i = 0; i < kPerThread; ++i) {
        grpc::ClientContext ctx;
        ctx.set_deadline(In(absl::Seconds(5)));
        auto reader = d_.stub().Warmup(&ctx, make(fuzzer));
        tpjit::v1::WarmupEvent event;
        while (reader->Read(&event)) {
        }
        verdicts_.Record("warmup", reader->Finish());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(verdicts_.total(), kThreads * kPerThread);
}

}  // namespace
}  // namespace tpjit::testing
