// The real ChildProcess against real processes that crash, hang, answer
// garbage or are interrupted from another thread; and NvccCompile starting
// nvcc through the launcher it is given.
#include "src/common/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <future>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "src/compile/nvcc.h"
#include "tests/testlib/status.h"
#include "tests/testlib/subprocess.h"
#include "tests/testlib/temp_dir.h"
#include "tests/testlib/wait.h"

namespace tpjit {
namespace {

using ::tpjit::testing::Running;
using ::tpjit::testing::WaitUntil;

class ChildProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { signal(SIGPIPE, SIG_IGN); }

  std::unique_ptr<ChildProcess> Shell(const std::string& script) {
    auto child = ProcessLauncher::Real()->Launch({"/bin/sh", "-c", script}, {});
    EXPECT_TRUE(child.ok()) << child.status();
    return child.ok() ? std::move(*child) : nullptr;
  }

  absl::StatusOr<tpjit::v1::WorkerResponse> Call(ChildProcess& child,
                                                 absl::Duration limit) {
    tpjit::v1::WorkerRequest request;
    request.set_kind(tpjit::v1::WorkerRequest::SELF_TEST);
    return child.Call(request, absl::Now() + limit);
  }
};

TEST_F(ChildProcessTest, ACrashIsUnavailableAndNamesTheSignal) {
  auto child = Shell("cat >/dev/null & kill -SEGV $$");
  ASSERT_NE(child, nullptr);
  const int pid = child->pid();
  auto r = Call(*child, absl::Seconds(30));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  // The pid as it was, not as negated once reaped.
  EXPECT_NE(r.status().message().find(
                absl::StrCat("worker pid ", pid, " died (killed by signal")),
            std::string::npos)
      << r.status();
  child->Kill();
  EXPECT_LT(child->pid(), 0);
  child->Kill();  // harmless twice
}

// The worker is dead (a zombie, not yet reaped) before the request is
// written: the write fails, and the error still says how it died.
TEST_F(ChildProcessTest, ADeathBeforeTheRequestIsNamedToo) {
  auto child = Shell("kill -SEGV $$");
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(
      WaitUntil([&] { return testing::ProcessState(child->pid()) == 'Z'; },
                absl::Seconds(30)))
      << "never died";
  const int pid = child->pid();
  auto r = Call(*child, absl::Seconds(30));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find(absl::StrCat(
                "worker pid ", pid, " died (killed by signal 11)")),
            std::string::npos)
      << r.status();
  child->Kill();
}

TEST_F(ChildProcessTest, AHangIsDeadlineExceeded) {
  auto child = Shell("exec sleep 60");
  ASSERT_NE(child, nullptr);
  const absl::Time start = absl::Now();
  auto r = Call(*child, absl::Milliseconds(200));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  child->Kill();
}

TEST_F(ChildProcessTest, GarbageIsUnavailable) {
  // A length prefix beyond any frame, then bytes that are no protobuf.
  for (const char* garbage :
       {"\\377\\377\\377\\377xyz",
        "\\005\\000\\000\\000\\377\\377\\377\\377\\377"}) {
    auto child = Shell(std::string("cat >/dev/null & printf '") + garbage +
                       "'; exec sleep 60");
    ASSERT_NE(child, nullptr);
    auto r = Call(*child, absl::Seconds(30));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << garbage;
    EXPECT_NE(r.status().message().find("garbage"), std::string::npos)
        << r.status();
    child->Kill();
  }
}

// A call whose time limit passed leaves its answer to come; the next call
// skips it (an earlier call's id) and returns its own. The "worker" copies
// to its output what the test writes into a FIFO, when the test writes it.
TEST_F(ChildProcessTest, ALateAnswerIsNotTakenForTheNextCallsOwn) {
  testing::TempDir dir("tpjit-late-answer-");
  const std::string fifo = dir.Sub("answers");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const int answers = open(fifo.c_str(), O_RDWR);  // never blocks
  ASSERT_GE(answers, 0);
  auto child = Shell("cat >/dev/null & exec cat " + fifo);
  ASSERT_NE(child, nullptr);
  auto first = Call(*child, absl::Milliseconds(50));
  EXPECT_EQ(first.status().code(), absl::StatusCode::kDeadlineExceeded);
  for (int id : {1, 2}) {  // the first call's late answer, then the second's
    tpjit::v1::WorkerResponse answer;
    answer.set_id(id);
    answer.set_version(absl::StrCat("answer to call ", id));
    ASSERT_TRUE(WriteFrame(answers, answer.SerializeAsString()));
  }
  auto second = Call(*child, absl::Seconds(30));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->version(), "answer to call 2");
  // An answer to a call not made yet is garbage, not skipped.
  tpjit::v1::WorkerResponse ahead;
  ahead.set_id(9);
  ASSERT_TRUE(WriteFrame(answers, ahead.SerializeAsString()));
  auto third = Call(*child, absl::Seconds(30));
  EXPECT_EQ(third.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(third.status().message().find("answered request 9 to request 3"),
            std::string::npos)
      << third.status();
  child->Kill();
  close(answers);
}

// A worker killed in a compile takes the compile's whole process group with
// it: its compiler leads a group (as RunCommand makes it), and that
// compiler's child (cicc, ptxas) has no parent-death signal of its own.
TEST_F(ChildProcessTest, KillTakesTheCompilersProcessGroupAlong) {
  for (bool interrupt : {false, true}) {
    testing::TempDir dir("tpjit-group-kill-");
    const std::string file = dir.Sub("grandchild");
    // setsid: the compiler stand-in leads its own group (and session).
    auto child = Shell(
        "cat >/dev/null & setsid /bin/sh -c 'sleep 60 & echo $! "
        "> " +
        file + ".tmp; mv " + file + ".tmp " + file + "; wait' & wait");
    ASSERT_NE(child, nullptr);
    pid_t grandchild = 0;
    ASSERT_TRUE(WaitUntil(
        [&] {
          grandchild = std::atoi(testing::ReadWholeFile(file).c_str());
          return grandchild > 0;
        },
        absl::Seconds(30)))
        << "the compiler never started";
    ASSERT_TRUE(Running(grandchild));
    if (interrupt) child->Interrupt();
    child->Kill();
    EXPECT_TRUE(
        WaitUntil([&] { return !Running(grandchild); }, absl::Seconds(30)))
        << "the compiler's child outlived the worker (interrupt=" << interrupt
        << ")";
    if (Running(grandchild)) kill(grandchild, SIGKILL);
  }
}

TEST_F(ChildProcessTest, InterruptEndsACallFromAnotherThread) {
  auto child = Shell("exec sleep 60");
  ASSERT_NE(child, nullptr);
  auto pending = std::async(std::launch::async,
                            [&] { return Call(*child, absl::Hours(1)); });
  // The call returns only once the interrupt arrived, whenever that is.
  while (pending.wait_for(std::chrono::milliseconds(5)) !=
         std::future_status::ready) {
    child->Interrupt();
  }
  EXPECT_EQ(pending.get().status().code(), absl::StatusCode::kUnavailable);
  child->Kill();
  child->Interrupt();  // harmless once reaped
}

// Records what NvccCompile asks to run and answers "killed at the limit".
class RecordingLauncher final : public ProcessLauncher {
 public:
  absl::StatusOr<std::unique_ptr<ChildProcess>> Launch(
      const std::vector<std::string>&,
      const std::vector<std::string>&) override {
    return absl::UnimplementedError("not used");
  }
  absl::StatusOr<CommandResult> Run(const std::vector<std::string>& argv,
                                    const std::string&, double timeout_seconds,
                                    const SandboxSpec&) override {
    argv_ = argv;
    timeout_ = timeout_seconds;
    CommandResult r;
    r.timed_out = true;
    return r;
  }
  std::vector<std::string> argv_;
  double timeout_ = 0;
};

TEST(NvccTest, StartsNvccThroughItsLauncher) {
  RecordingLauncher launcher;
  NvccInput input;
  input.nvcc = "/opt/cuda/bin/nvcc";
  input.source_name = "k.cu";
  input.source = "__global__ void k() {}";
  input.arch = "sm_90a";
  input.timeout_seconds = 7;
  input.launcher = &launcher;
  auto out = NvccCompile(input);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_FALSE(launcher.argv_.empty());
  EXPECT_EQ(launcher.argv_[0], "/opt/cuda/bin/nvcc");
  EXPECT_DOUBLE_EQ(launcher.timeout_, 7);
}

}  // namespace
}  // namespace tpjit
