#include "src/cache/lease.h"

#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "src/cache/entry_format.h"
#include "src/common/status_macros.h"

namespace tpjit {
namespace {

constexpr absl::string_view kLeaseMagicV1 = "tpjit-lease 1";
constexpr absl::string_view kLeaseMagicV2 = "tpjit-lease 2";

std::string Describe(const LeaseOwner& o) {
  return absl::StrCat("host ", o.host, " pid ", o.pid, " until ",
                      absl::FormatTime(o.expiry), " (token ", o.token, ")");
}

// The `name=value` lines after the magic line, in order (a value may be
// empty); false if a line is not of that form or a name differs from `names`.
bool SplitFields(const std::vector<absl::string_view>& lines,
                 const std::vector<absl::string_view>& names,
                 std::vector<absl::string_view>* values) {
  if (lines.size() != names.size() + 2 || !lines.back().empty()) return false;
  for (size_t i = 0; i < names.size(); ++i) {
    absl::string_view line = lines[i + 1];
    if (!absl::StartsWith(line, names[i]) || line.size() <= names[i].size() ||
        line[names[i].size()] != '=') {
      return false;
    }
    values->push_back(line.substr(names[i].size() + 1));
  }
  return true;
}

}  // namespace

std::string EncodeLeaseOwner(const LeaseOwner& o) {
  return absl::StrCat(
      kLeaseMagicV2, "\nhost=", o.host, "\npid=", o.pid,
      "\nproc_start=", o.proc_start, "\npid_space=", o.pid_space,
      "\nstart_ns=", absl::ToUnixNanos(o.start),
      "\nexpiry_ns=", absl::ToUnixNanos(o.expiry), "\ntoken=", o.token, "\n");
}

absl::StatusOr<LeaseOwner> DecodeLeaseOwner(absl::string_view text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  const bool v2 = !lines.empty() && lines[0] == kLeaseMagicV2;
  if (!v2 && (lines.empty() || lines[0] != kLeaseMagicV1)) {
    return absl::DataLossError("lease file is malformed");
  }
  std::vector<absl::string_view> names = {"host", "pid", "start_ns",
                                          "expiry_ns", "token"};
  if (v2) names.insert(names.begin() + 2, {"proc_start", "pid_space"});
  std::vector<absl::string_view> v;
  if (!SplitFields(lines, names, &v)) {
    return absl::DataLossError("lease file is malformed");
  }
  LeaseOwner o;
  int64_t start_ns = 0, expiry_ns = 0;
  const size_t t = v2 ? 2 : 0;  // index shift of the fields after pid
  bool ok = absl::SimpleAtoi(v[1], &o.pid) &&
            absl::SimpleAtoi(v[t + 2], &start_ns) &&
            absl::SimpleAtoi(v[t + 3], &expiry_ns);
  if (v2) ok = ok && absl::SimpleAtoi(v[2], &o.proc_start);
  o.host = std::string(v[0]);
  if (v2) o.pid_space = std::string(v[3]);
  o.token = std::string(v[t + 4]);
  if (!ok || o.token.empty()) {
    return absl::DataLossError("lease file has a malformed field");
  }
  o.start = absl::FromUnixNanos(start_ns);
  o.expiry = absl::FromUnixNanos(expiry_ns);
  return o;
}

// ---------------------------------------------------------------- Lease

struct Lease::State {
  LeaseManager* mgr = nullptr;
  std::string key;
  std::string token;
  absl::Mutex mu;
  LeaseOwner owner ABSL_GUARDED_BY(mu);
  bool held ABSL_GUARDED_BY(mu) = true;
  bool lost ABSL_GUARDED_BY(mu) = false;
  bool stop ABSL_GUARDED_BY(mu) = false;
  absl::CondVar wake;
  std::thread renewer;

  absl::Status RenewLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (!held) return absl::FailedPreconditionError("lease not held");
    absl::Status s = mgr->Renew(owner, key);
    if (absl::IsAborted(s)) lost = true;
    return s;
  }
};

Lease::Lease() = default;
Lease::Lease(std::unique_ptr<State> state) : state_(std::move(state)) {}
Lease::Lease(Lease&& other) noexcept = default;
Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    state_ = std::move(other.state_);
  }
  return *this;
}
Lease::~Lease() { Release(); }

bool Lease::held() const {
  if (!state_) return false;
  absl::MutexLock lock(&state_->mu);
  return state_->held;
}

const std::string& Lease::key() const {
  static const std::string* empty = new std::string();
  return state_ ? state_->key : *empty;
}

const std::string& Lease::token() const {
  static const std::string* empty = new std::string();
  return state_ ? state_->token : *empty;
}

absl::Time Lease::expiry() const {
  if (!state_) return absl::InfinitePast();
  absl::MutexLock lock(&state_->mu);
  return state_->owner.expiry;
}

bool Lease::lost() const {
  if (!state_) return false;
  absl::MutexLock lock(&state_->mu);
  return state_->lost;
}

absl::Status Lease::Renew() {
  if (!state_) return absl::FailedPreconditionError("lease not held");
  absl::MutexLock lock(&state_->mu);
  return state_->RenewLocked();
}

void Lease::Release() {
  if (!state_) return;
  {
    absl::MutexLock lock(&state_->mu);
    if (!state_->held) return;
    state_->held = false;
    state_->stop = true;
    state_->wake.Signal();
  }
  if (state_->renewer.joinable()) state_->renewer.join();
  absl::Status s = state_->mgr->RemoveIfToken(state_->key, state_->token);
  if (!s.ok() && !absl::IsNotFound(s)) {
    state_->mgr->dir().Log(
        absl::StrCat("releasing lease of ", state_->key, ": ", s.ToString()));
  }
}

void Lease::StartRenewer(absl::Duration every,
                         std::function<void(absl::Time)> on_renewed) {
  if (!held()) return;
  State* s = state_.get();
  if (s->renewer.joinable()) return;
  s->renewer = std::thread([s, every, on_renewed = std::move(on_renewed)] {
    absl::MutexLock lock(&s->mu);
    for (;;) {
      absl::Time until = absl::Now() + every;
      while (!s->stop && !s->wake.WaitWithDeadline(&s->mu, until)) {
      }
      if (s->stop) return;
      absl::Status st = s->RenewLocked();
      if (s->lost) return;
      if (st.ok() && on_renewed) {
        absl::Time expiry = s->owner.expiry;
        s->mu.Unlock();  // the callback may call back into the Lease
        on_renewed(expiry);
        s->mu.Lock();
      }
    }
  });
}

// --------------------------------------------------------- LeaseManager

absl::StatusOr<LeaseOwner> LeaseManager::ReadOwner(
    absl::string_view key) const {
  TPJIT_ASSIGN_OR_RETURN(std::string text,
                         cd_->fs->ReadFile(cd_->LeasePath(key)));
  return DecodeLeaseOwner(text);
}

bool LeaseManager::Exists(absl::string_view key) const {
  return cd_->fs->Stat(cd_->LeasePath(key)).ok();
}

absl::StatusOr<Lease> LeaseManager::TryAcquire(absl::string_view key) {
  TPJIT_RETURN_IF_ERROR(ValidateCacheKey(key));
  const std::string lease_name = absl::StrCat(key, kLeaseSuffix);
  const std::string lease_path = cd_->LeasePath(key);
  LeaseOwner owner;
  owner.host = cd_->host;
  owner.pid = cd_->pid;
  owner.start = cd_->clock->Now();
  owner.expiry = owner.start + ttl_;
  owner.token = RandomHex64() + RandomHex64();
  owner.proc_start = cd_->proc_start;
  owner.pid_space = cd_->pid_space;
  ScopedTempFile temp(cd_->fs, cd_->TempPath(lease_name));
  TPJIT_RETURN_IF_ERROR(
      WriteWholeFile(*cd_->fs, temp.path(), EncodeLeaseOwner(owner), true));
  for (int attempt = 0; attempt < 3; ++attempt) {
    absl::Status linked = cd_->fs->Link(temp.path(), lease_path);
    if (linked.ok()) {
      cd_->fs->SyncDir(cd_->dir).IgnoreError();
      auto state = std::make_unique<Lease::State>();
      state->mgr = this;
      state->key = std::string(key);
      state->token = owner.token;
      state->owner = owner;
      return Lease(std::move(state));
    }
    if (!absl::IsAlreadyExists(linked)) return linked;
    absl::StatusOr<LeaseOwner> current = ReadOwner(key);
    if (absl::IsNotFound(current.status())) continue;  // gone, or not yet seen
    if (absl::IsDataLoss(current.status())) {
      // Not written by us (ours appear whole): break it once it is old.
      auto info = cd_->fs->Stat(lease_path);
      if (info.ok() && cd_->clock->Now() - info->mtime > ttl_ &&
          RemoveIfToken(key, "").ok()) {
        continue;
      }
      return absl::UnavailableError(
          absl::StrCat("lease of ", key, " is unreadable and recent"));
    }
    if (!current.ok()) return current.status();
    if (!IsStale(*current)) {
      return absl::UnavailableError(
          absl::StrCat("key ", key, " is leased by ", Describe(*current)));
    }
    BreakIfStale(key, *current);
  }
  return absl::UnavailableError(
      absl::StrCat("lease of ", key, " keeps changing hands"));
}

bool LeaseManager::OwnerIsGone(const LeaseOwner& owner) const {
  if (owner.proc_start == 0 || owner.pid_space.empty() ||
      owner.host != cd_->host || owner.pid_space != cd_->pid_space ||
      cd_->processes == nullptr) {
    return false;  // not a process we can look up
  }
  absl::StatusOr<uint64_t> start = cd_->processes->StartTime(owner.pid);
  if (absl::IsNotFound(start.status())) return true;
  return start.ok() && *start != owner.proc_start;
}

bool LeaseManager::IsStale(const LeaseOwner& owner) const {
  return cd_->clock->Now() > owner.expiry || OwnerIsGone(owner);
}

bool LeaseManager::BreakIfStale(absl::string_view key,
                                const LeaseOwner& owner) {
  const bool expired = cd_->clock->Now() > owner.expiry;
  if (!expired && !OwnerIsGone(owner)) return false;
  if (!RemoveIfToken(key, owner.token).ok()) return false;
  CacheCounters::Add(cd_->counters->lease_breaks);
  cd_->Log(absl::StrCat("broke ", expired ? "expired" : "dead owner's",
                        " lease of ", key, " held by ", Describe(owner)));
  return true;
}

absl::Status LeaseManager::RemoveIfToken(absl::string_view key,
                                         absl::string_view token) {
  const std::string lease_path = cd_->LeasePath(key);
  const std::string tomb =
      cd_->TempPath(absl::StrCat(key, kLeaseSuffix, ".gone"));
  TPJIT_RETURN_IF_ERROR(cd_->fs->Rename(lease_path, tomb));
  bool ours = false;
  if (auto text = cd_->fs->ReadFile(tomb); text.ok()) {
    auto moved = DecodeLeaseOwner(*text);
    ours = moved.ok() ? moved->token == token : token.empty();
  }
  if (!ours) {
    // Someone else's lease: put it back unless the name was taken meanwhile.
    cd_->fs->Link(tomb, lease_path).IgnoreError();
  }
  cd_->fs->Unlink(tomb).IgnoreError();
  cd_->fs->SyncDir(cd_->dir).IgnoreError();
  if (!ours) return absl::AbortedError("lease changed hands");
  return absl::OkStatus();
}

absl::Status LeaseManager::Renew(LeaseOwner& owner, absl::string_view key) {
  absl::StatusOr<LeaseOwner> current = ReadOwner(key);
  if (absl::IsNotFound(current.status())) {
    return absl::AbortedError(absl::StrCat("lease of ", key, " was removed"));
  }
  if (!current.ok()) return current.status();
  if (current->token != owner.token) {
    return absl::AbortedError(
        absl::StrCat("lease of ", key, " was lost to ", Describe(*current)));
  }
  LeaseOwner next = owner;
  next.expiry = cd_->clock->Now() + ttl_;
  TPJIT_RETURN_IF_ERROR(WriteFileAtomically(*cd_, cd_->LeasePath(key),
                                            absl::StrCat(key, kLeaseSuffix),
                                            EncodeLeaseOwner(next)));
  owner = next;
  return absl::OkStatus();
}

int LeaseManager::BreakStaleLeases() {
  auto names = cd_->fs->ListDir(cd_->dir);
  if (!names.ok()) return 0;
  int broken = 0;
  for (const std::string& name : *names) {
    if (IsTempName(name) || !absl::EndsWith(name, kLeaseSuffix)) continue;
    absl::string_view key =
        absl::string_view(name).substr(0, name.size() - kLeaseSuffix.size());
    if (!IsValidCacheKey(key)) continue;
    absl::StatusOr<LeaseOwner> owner = ReadOwner(key);
    if (owner.ok()) {
      broken += BreakIfStale(key, *owner) ? 1 : 0;
    } else if (absl::IsDataLoss(owner.status())) {
      auto info = cd_->fs->Stat(cd_->LeasePath(key));
      if (info.ok() && cd_->clock->Now() - info->mtime > ttl_ &&
          RemoveIfToken(key, "").ok()) {
        ++broken;
      }
    }
  }
  return broken;
}

}  // namespace tpjit
