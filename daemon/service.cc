#include "daemon/service.h"

#include <atomic>
#include <deque>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "src/common/request_limits.h"

namespace tpjit {
namespace {

using tpjit::v1::FetchChunk;
using tpjit::v1::WarmupEvent;

constexpr size_t kChunkBytes = 1 << 20;

// Per-RPC request size limits, below the server-wide --max-request-bytes
// (which Compile alone may use in full: sources can be big). A valid
// request of each kind is far smaller: a warm-up spec holds at most 512
// shapes and one M list; Fetch/Stats/Status carry a key or nothing.
constexpr size_t kMaxWarmupRequestBytes = 2 << 20;
constexpr size_t kMaxSmallRequestBytes = 4 << 10;

// Streams one rank's warm-up: progress (coalesced to the latest while a
// write is in flight), then the manifest. Lifetime: owned by gRPC until
// OnDone; holds a reference on the job and detaches before deleting itself.
class WarmupReactor final : public grpc::ServerWriteReactor<WarmupEvent>,
                            public JobListener {
 public:
  // Queues planning on the daemon's planning pool; answers at once (and
  // never plans) when the request is too big or the pool's queue is full.
  WarmupReactor(Daemon* daemon, const tpjit::v1::WarmupRequest* request)
      : daemon_(daemon) {
    absl::Status s = CheckRequestBytes("warmup", request->ByteSizeLong(),
                                       kMaxWarmupRequestBytes);
    if (s.ok()) s = daemon->PostPlan([this, request] { Begin(*request); });
    if (!s.ok()) {
      absl::MutexLock lock(&mu_);
      begun_ = true;
      finishing_ = true;
      final_status_ = s;
      PumpLocked();
    }
  }

  void OnProgress(const tpjit::v1::WarmupProgress& progress) override {
    absl::MutexLock lock(&mu_);
    WarmupEvent e;
    *e.mutable_progress() = progress;
    pending_progress_ = std::move(e);
    PumpLocked();
  }

  void OnFinished(const absl::Status& status,
                  const tpjit::v1::Manifest& manifest,
                  const tpjit::v1::WarmupSummary& summary) override {
    absl::MutexLock lock(&mu_);
    final_status_ = status;
    if (status.ok()) {
      WarmupEvent e;
      *e.mutable_manifest() = manifest;
      *e.mutable_summary() = summary;
      e.mutable_summary()->set_attached(attached_);
      final_event_ = std::move(e);
    }
    finishing_ = true;
    PumpLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {  // the client went away
      if (!finished_) {
        finished_ = true;
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      }
      return;
    }
    PumpLocked();
  }

  void OnDone() override {
    std::shared_ptr<Job> job;
    {
      absl::MutexLock lock(&mu_);
      job = job_;
    }
    if (job) job->Detach(this);
    // Detach guarantees no further listener calls; a call in flight holds
    // the job's lock, which Detach waited for.
    delete this;
  }

  // The client went away (or the server is shutting down): a queued or
  // running plan stops at its next check, and the call finishes CANCELLED
  // as soon as no write is in flight (OnWriteDone finishes it otherwise).
  void OnCancel() override {
    cancelled_.store(true);
    absl::MutexLock lock(&mu_);
    PumpLocked();
  }

 private:
  void Begin(const tpjit::v1::WarmupRequest& request) {
    std::shared_ptr<Job> job;
    bool attached = false;
    absl::Status s = absl::CancelledError("warmup: the client went away");
    if (!cancelled_.load()) {
      s = daemon_->Warmup(request, this, &job, &attached,
                          [this] { return cancelled_.load(); });
    }
    absl::MutexLock lock(&mu_);
    job_ = job;
    attached_ = attached;
    if (final_event_) final_event_->mutable_summary()->set_attached(attached);
    if (!s.ok()) {
      finishing_ = true;
      final_status_ = s;
    }
    begun_ = true;
    PumpLocked();
  }

  // Nothing is written (so the call cannot finish and delete the reactor)
  // before Begin has returned.
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!begun_ || writing_ || finished_) return;
    if (cancelled_.load()) {
      finished_ = true;
      Finish(grpc::Status(grpc::StatusCode::CANCELLED,
                          "warmup: the client went away"));
      return;
    }
    if (pending_progress_) {
      current_ = std::move(*pending_progress_);
      pending_progress_.reset();
      writing_ = true;
      StartWrite(&current_);
      return;
    }
    if (!finishing_) return;
    if (final_event_) {
      current_ = std::move(*final_event_);
      final_event_.reset();
      writing_ = true;
      StartWrite(&current_);
      return;
    }
    finished_ = true;
    Finish(ToGrpc(final_status_));
  }

  Daemon* const daemon_;
  std::atomic<bool> cancelled_{false};
  absl::Mutex mu_;
  std::shared_ptr<Job> job_ ABSL_GUARDED_BY(mu_);
  bool attached_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<WarmupEvent> pending_progress_ ABSL_GUARDED_BY(mu_);
  std::optional<WarmupEvent> final_event_ ABSL_GUARDED_BY(mu_);
  absl::Status final_status_ ABSL_GUARDED_BY(mu_);
  WarmupEvent current_ ABSL_GUARDED_BY(mu_);
  bool begun_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// Streams one cubin in chunks of at most 1 MiB.
class FetchReactor final : public grpc::ServerWriteReactor<FetchChunk> {
 public:
  // The cubin is read on the daemon's read pool (it may come from the
  // cache on disk), never on this reactor thread.
  FetchReactor(Daemon* daemon, const tpjit::v1::FetchRequest* request) {
    absl::Status size = CheckRequestBytes("fetch", request->ByteSizeLong(),
                                          kMaxSmallRequestBytes);
    if (!size.ok()) {
      Finish(ToGrpc(size));
      return;
    }
    absl::Status posted = daemon->PostRead("fetch", [this, daemon, request] {
      auto bytes = daemon->Fetch(request->key());
      if (!bytes.ok()) {
        Finish(ToGrpc(bytes.status()));
        return;
      }
      bytes_ = std::move(*bytes);
      Next();
    });
    if (!posted.ok()) Finish(ToGrpc(posted));
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (offset_ >= bytes_.size() && !(bytes_.empty() && offset_ == 0)) {
      Finish(grpc::Status::OK);
      return;
    }
    size_t n = std::min(kChunkBytes, bytes_.size() - offset_);
    chunk_.set_data(bytes_.substr(offset_, n));
    chunk_.set_offset(static_cast<int64_t>(offset_));
    chunk_.set_total_bytes(static_cast<int64_t>(bytes_.size()));
    offset_ += n;
    if (n == 0) offset_ = 1;  // an empty cubin: one empty chunk
    StartWrite(&chunk_);
  }
  std::string bytes_;
  size_t offset_ = 0;
  FetchChunk chunk_;
};

}  // namespace

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

grpc::ServerWriteReactor<WarmupEvent>* TpjitService::Warmup(
    grpc::CallbackServerContext* context,
    const tpjit::v1::WarmupRequest* request) {
  (void)context;
  return new WarmupReactor(daemon_, request);
}

grpc::ServerUnaryReactor* TpjitService::Compile(
    grpc::CallbackServerContext* context,
    const tpjit::v1::CompileRequest* request,
    tpjit::v1::CompileResponse* response) {
  auto* reactor = context->DefaultReactor();
  absl::Status posted =
      daemon_->PostPrepare([this, context, reactor, request, response] {
        if (context->IsCancelled()) {  // the client went away while queued
          reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED,
                                       "compile: the client went away"));
          return;
        }
        daemon_->Compile(
            *request,
            [reactor, response](absl::StatusOr<tpjit::v1::CompileResponse> r) {
              if (r.ok()) *response = std::move(*r);
              reactor->Finish(ToGrpc(r.status()));
            });
      });
  if (!posted.ok()) reactor->Finish(ToGrpc(posted));
  return reactor;
}

grpc::ServerWriteReactor<FetchChunk>* TpjitService::Fetch(
    grpc::CallbackServerContext* context,
    const tpjit::v1::FetchRequest* request) {
  (void)context;
  return new FetchReactor(daemon_, request);
}

grpc::ServerUnaryReactor* TpjitService::AwaitKeys(
    grpc::CallbackServerContext* context,
    const tpjit::v1::AwaitKeysRequest* request,
    tpjit::v1::AwaitKeysResponse* response) {
  auto* reactor = context->DefaultReactor();
  // 4096 keys of 64 digits and their framing.
  absl::Status s =
      CheckRequestBytes("await_keys", request->ByteSizeLong(), 512 << 10);
  if (!s.ok()) {
    reactor->Finish(ToGrpc(s));
    return reactor;
  }
  // The cache lookups read files: on the read pool.
  s = daemon_->PostRead("await_keys", [this, reactor, request, response] {
    daemon_->AwaitKeys(
        *request,
        [reactor, response](absl::StatusOr<tpjit::v1::AwaitKeysResponse> r) {
          if (r.ok()) *response = std::move(*r);
          reactor->Finish(ToGrpc(r.status()));
        });
  });
  if (!s.ok()) reactor->Finish(ToGrpc(s));
  return reactor;
}

grpc::ServerUnaryReactor* TpjitService::Stats(
    grpc::CallbackServerContext* context,
    const tpjit::v1::StatsRequest* request,
    tpjit::v1::StatsResponse* response) {
  auto* reactor = context->DefaultReactor();
  absl::Status s = CheckRequestBytes("stats", request->ByteSizeLong(),
                                     kMaxSmallRequestBytes);
  if (s.ok()) *response = daemon_->Stats();
  reactor->Finish(ToGrpc(s));
  return reactor;
}

grpc::ServerUnaryReactor* TpjitService::Status(
    grpc::CallbackServerContext* context,
    const tpjit::v1::StatusRequest* request,
    tpjit::v1::StatusResponse* response) {
  auto* reactor = context->DefaultReactor();
  absl::Status s = CheckRequestBytes("status", request->ByteSizeLong(),
                                     kMaxSmallRequestBytes);
  if (s.ok()) *response = daemon_->Status();
  reactor->Finish(ToGrpc(s));
  return reactor;
}

}  // namespace tpjit
