#include "tests/cache/fault_injecting_file_system.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace tpjit::testing {

class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(FaultInjectingFileSystem* fs, std::string path,
                    std::unique_ptr<WritableFile> base)
      : fs_(fs), path_(std::move(path)), base_(std::move(base)) {}

  absl::Status Append(absl::string_view data) override {
    if (absl::Status s = fs_->Before(FsOp::kAppend, path_); !s.ok()) return s;
    absl::Status error;
    int64_t n = static_cast<int64_t>(data.size());
    int64_t keep = fs_->WriteLimit(path_, written_, n, &error);
    absl::Status s = base_->Append(data.substr(0, keep));
    if (s.ok()) {
      written_ += n;
      s = error;
    }
    fs_->After(FsOp::kAppend, path_, s);
    return s;
  }
  absl::Status Sync() override {
    if (absl::Status s = fs_->Before(FsOp::kSync, path_); !s.ok()) return s;
    absl::Status s = base_->Sync();
    fs_->After(FsOp::kSync, path_, s);
    return s;
  }
  absl::Status Close() override {
    if (absl::Status s = fs_->Before(FsOp::kClose, path_); !s.ok()) return s;
    absl::Status s = base_->Close();
    fs_->After(FsOp::kClose, path_, s);
    return s;
  }

 private:
  FaultInjectingFileSystem* fs_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
  int64_t written_ = 0;  // bytes the writer believes it wrote
};

void FaultInjectingFileSystem::FailOp(FsOp op, absl::Status status,
                                      std::string path_part, int times) {
  absl::MutexLock lock(&mu_);
  faults_.push_back({op, std::move(status), std::move(path_part), times});
}

void FaultInjectingFileSystem::NoSpaceAfter(int64_t bytes,
                                            std::string path_part) {
  absl::MutexLock lock(&mu_);
  no_space_after_ = bytes;
  no_space_part_ = std::move(path_part);
}

void FaultInjectingFileSystem::CrashAfter(FsOp op, std::string path_part) {
  absl::MutexLock lock(&mu_);
  crash_armed_ = true;
  crash_op_ = op;
  crash_part_ = std::move(path_part);
}

void FaultInjectingFileSystem::TearWrites(int64_t keep_bytes,
                                          std::string path_part) {
  absl::MutexLock lock(&mu_);
  tear_after_ = keep_bytes;
  tear_part_ = std::move(path_part);
}

void FaultInjectingFileSystem::HideFor(std::string path_part, int calls) {
  absl::MutexLock lock(&mu_);
  hide_part_ = std::move(path_part);
  hide_calls_ = calls;
}

void FaultInjectingFileSystem::SetBeforeRename(
    std::function<void(const std::string&, const std::string&)> hook) {
  absl::MutexLock lock(&mu_);
  before_rename_ = std::move(hook);
}

void FaultInjectingFileSystem::Reset() {
  absl::MutexLock lock(&mu_);
  faults_.clear();
  crashed_ = crash_armed_ = false;
  no_space_after_ = tear_after_ = -1;
  hide_calls_ = 0;
  before_rename_ = nullptr;
}

bool FaultInjectingFileSystem::crashed() const {
  absl::MutexLock lock(&mu_);
  return crashed_;
}

int FaultInjectingFileSystem::Count(FsOp op) const {
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(op);
  return it == counts_.end() ? 0 : it->second;
}

absl::Status FaultInjectingFileSystem::Before(FsOp op,
                                              const std::string& path) {
  absl::MutexLock lock(&mu_);
  ++counts_[op];
  if (crashed_) return absl::AbortedError("simulated crash: process is dead");
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (it->op != op || !absl::StrContains(path, it->path_part)) continue;
    absl::Status s = it->status;
    if (--it->times <= 0) faults_.erase(it);
    return s;
  }
  return absl::OkStatus();
}

void FaultInjectingFileSystem::After(FsOp op, const std::string& path,
                                     const absl::Status& s) {
  absl::MutexLock lock(&mu_);
  if (s.ok() && crash_armed_ && op == crash_op_ &&
      absl::StrContains(path, crash_part_)) {
    crashed_ = true;
  }
}

bool FaultInjectingFileSystem::Hidden(const std::string& path) {
  absl::MutexLock lock(&mu_);
  if (hide_calls_ <= 0 || !absl::StrContains(path, hide_part_)) return false;
  --hide_calls_;
  return true;
}

int64_t FaultInjectingFileSystem::WriteLimit(const std::string& path,
                                             int64_t offset, int64_t n,
                                             absl::Status* error) {
  absl::MutexLock lock(&mu_);
  int64_t keep = n;
  if (no_space_after_ >= 0 && absl::StrContains(path, no_space_part_) &&
      offset + n > no_space_after_) {
    keep = std::max<int64_t>(0, no_space_after_ - offset);
    *error = absl::ResourceExhaustedError(
        absl::StrCat("write ", path, ": No space left on device (injected)"));
  }
  if (tear_after_ >= 0 && absl::StrContains(path, tear_part_)) {
    keep = std::min(keep, std::max<int64_t>(0, tear_after_ - offset));
  }
  return keep;
}

absl::StatusOr<std::unique_ptr<WritableFile>>
FaultInjectingFileSystem::NewWritableFile(const std::string& path,
                                          bool exclusive) {
  if (absl::Status s = Before(FsOp::kOpen, path); !s.ok()) return s;
  auto base = target()->NewWritableFile(path, exclusive);
  After(FsOp::kOpen, path, base.status());
  if (!base.ok()) return base.status();
  return std::make_unique<FaultWritableFile>(this, path, *std::move(base));
}

absl::StatusOr<std::string> FaultInjectingFileSystem::ReadFile(
    const std::string& path) {
  if (absl::Status s = Before(FsOp::kRead, path); !s.ok()) return s;
  if (Hidden(path)) {
    return absl::NotFoundError(absl::StrCat("open ", path, " (hidden)"));
  }
  return target()->ReadFile(path);
}

absl::StatusOr<FileInfo> FaultInjectingFileSystem::Stat(
    const std::string& path) {
  if (absl::Status s = Before(FsOp::kStat, path); !s.ok()) return s;
  if (Hidden(path)) {
    return absl::NotFoundError(absl::StrCat("stat ", path, " (hidden)"));
  }
  return target()->Stat(path);
}

absl::StatusOr<std::vector<std::string>> FaultInjectingFileSystem::ListDir(
    const std::string& dir) {
  if (absl::Status s = Before(FsOp::kList, dir); !s.ok()) return s;
  auto names = target()->ListDir(dir);
  if (!names.ok()) return names;
  absl::MutexLock lock(&mu_);
  if (hide_calls_ > 0) {
    auto hidden = [&](const std::string& n) {
      return absl::StrContains(JoinPath(dir, n), hide_part_);
    };
    size_t before = names->size();
    names->erase(std::remove_if(names->begin(), names->end(), hidden),
                 names->end());
    if (names->size() != before) --hide_calls_;
  }
  return names;
}

absl::Status FaultInjectingFileSystem::Rename(const std::string& from,
                                              const std::string& to) {
  if (absl::Status s = Before(FsOp::kRename, to); !s.ok()) return s;
  std::function<void(const std::string&, const std::string&)> hook;
  {
    absl::MutexLock lock(&mu_);
    hook = before_rename_;
  }
  if (hook) hook(from, to);
  absl::Status s = target()->Rename(from, to);
  After(FsOp::kRename, to, s);
  return s;
}

absl::Status FaultInjectingFileSystem::Link(const std::string& from,
                                            const std::string& to) {
  if (absl::Status s = Before(FsOp::kLink, to); !s.ok()) return s;
  absl::Status s = target()->Link(from, to);
  After(FsOp::kLink, to, s);
  return s;
}

absl::Status FaultInjectingFileSystem::Unlink(const std::string& path) {
  if (absl::Status s = Before(FsOp::kUnlink, path); !s.ok()) return s;
  absl::Status s = target()->Unlink(path);
  After(FsOp::kUnlink, path, s);
  return s;
}

absl::Status FaultInjectingFileSystem::CreateDirs(const std::string& dir) {
  if (absl::Status s = Before(FsOp::kMkdir, dir); !s.ok()) return s;
  return target()->CreateDirs(dir);
}

absl::Status FaultInjectingFileSystem::SyncDir(const std::string& dir) {
  if (absl::Status s = Before(FsOp::kSyncDir, dir); !s.ok()) return s;
  return target()->SyncDir(dir);
}

absl::Status FaultInjectingFileSystem::SetMTime(const std::string& path,
                                                absl::Time t) {
  if (absl::Status s = Before(FsOp::kSetMTime, path); !s.ok()) return s;
  return target()->SetMTime(path, t);
}

}  // namespace tpjit::testing
