// `tpjit recipe`: bad input exits 2 naming what is wrong (before any daemon
// is asked), an absent daemon exits 1. The calls against a real tpjitd are
// in tests/generic/recipe_daemon_test.cc.
#include "cli/recipe_command.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tpjit::cli {
namespace {

using ::testing::HasSubstr;

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome RunRecipe(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int code = RunRecipeCommand(args, out, err);
  return {code, out.str(), err.str()};
}

TEST(RecipeCommandTest, BadInputExits2NamingTheProblem) {
  const std::string nobody = "/nonexistent/tpjitd.sock";
  struct Case {
    std::vector<std::string> args;
    std::string names;
  };
  const std::vector<Case> cases = {
      {{}, "missing subcommand"},
      {{"frobnicate"}, "unknown subcommand \"frobnicate\""},
      {{"show"}, "show needs a GROUP"},
      {{"prefetch", "--wait"}, "prefetch needs a GROUP"},
      {{"ls", "extra"}, "unexpected argument \"extra\""},
      {{"show", "g", "h"}, "unexpected argument \"h\""},
      {{"ls", "--bogus"}, "--bogus"},
      {{"ls", "--wait"}, "--wait"},  // prefetch's flag
      {{"show", ""}, "GROUP is empty"},
      {{"prefetch", "g", "--include-dir", "/nonexistent/inc"},
       "--include-dir: /nonexistent/inc is not a directory"},
      {{"ls", "--timeout", "soon"}, "--timeout"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.insert(args.end(), {"--socket", nobody});
    if (c.args.empty()) args.clear();
    Outcome o = RunRecipe(args);
    EXPECT_EQ(o.code, 2) << ::testing::PrintToString(c.args) << o.err;
    EXPECT_THAT(o.err, HasSubstr(c.names)) << o.err;
    EXPECT_THAT(o.err, HasSubstr("usage:"));
  }
}

TEST(RecipeCommandTest, HelpAndAbsentDaemon) {
  Outcome help = RunRecipe({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_THAT(help.out, HasSubstr("tpjit recipe prefetch GROUP"));
  Outcome sub = RunRecipe({"prefetch", "--help"});
  EXPECT_EQ(sub.code, 0);
  EXPECT_THAT(sub.out, HasSubstr("--include-dir"));
  Outcome down = RunRecipe(
      {"ls", "--socket", "/nonexistent/tpjitd.sock", "--timeout", "0.5"});
  EXPECT_EQ(down.code, 1);
  EXPECT_THAT(down.err, HasSubstr("not reachable"));
}

}  // namespace
}  // namespace tpjit::cli
