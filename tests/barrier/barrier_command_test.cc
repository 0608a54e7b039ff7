#include "cli/barrier_command.h"

#include <sstream>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tpjit {
namespace {

using ::testing::HasSubstr;

struct CommandRun {
  int code;
  std::string out, err;
};

CommandRun Barrier(std::vector<std::string> args) {
  std::ostringstream out, err;
  int code = RunBarrierCommand(args, out, err);
  return {code, out.str(), err.str()};
}

TEST(BarrierCommandTest, Help) {
  CommandRun r = Barrier({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("--timeout"));
  EXPECT_THAT(r.out, HasSubstr("TPJIT_BARRIER_TIMEOUT"));
}

TEST(BarrierCommandTest, UsageErrorsNameTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  } cases[] = {
      {{"--rank", "0", "--world", "2"}, "--group is required"},
      {{"--group", "g", "--world", "2"}, "--rank is required"},
      {{"--group", "g", "--rank", "x", "--world", "2"}, "--rank: \"x\""},
      {{"--group", "g", "--rank", "2", "--world", "2"},
       "--rank 2 is out of range for --world 2 (want 0..1)"},
      {{"--group", "g", "--rank", "0", "--world", "0"}, "--world"},
      {{"--group", "g", "--rank", "0", "--world", "2", "--timeout", "soon"},
       "--timeout: \"soon\""},
      {{"--group", "g", "--rank", "0", "--world", "2", "--on-timeout", "x"},
       "--on-timeout"},
      {{"--group", "g", "--rank", "0", "--world", "2", "--bogus"},
       "unknown flag --bogus"},
      {{"--group", "g", "--rank", "0", "--world", "2", "extra"},
       "unexpected argument \"extra\""},
  };
  for (const Case& c : cases) {
    CommandRun r = Barrier(c.args);
    EXPECT_EQ(r.code, 2) << c.says;
    EXPECT_THAT(r.err, HasSubstr(c.says));
    EXPECT_THAT(r.err, HasSubstr("usage: tpjit barrier"));
  }
}

TEST(BarrierCommandTest, MissingDaemonFailsFastWithExitOne) {
  const absl::Time start = absl::Now();
  CommandRun r =
      Barrier({"barrier", "--group", "g", "--rank", "0", "--world", "2",
               "--timeout", "30", "--socket", "/nonexistent/tpjitd.sock"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("not reachable at unix:/nonexistent"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

}  // namespace
}  // namespace tpjit
