// The runtime/training split: `maskwatch` must not load LibTorch, and still runs the
// training commands (by handing them to `maskwatch-train`).
#include <gtest/gtest.h>

#include "support.h"
#include "util/subprocess.h"

using namespace maskwatch;
using namespace maskwatch::test;

TEST(RuntimeExecutable, HasNoLibTorchInItsDynamicDependencies) {
  const auto ldd = run_process({"/usr/bin/ldd", MASKWATCH_TEST_BINARY});
  ASSERT_EQ(ldd.exit_code, 0);
  EXPECT_NE(ldd.out.find("libopencv_dnn"), std::string::npos) << ldd.out;  // the listing is real
  EXPECT_EQ(ldd.out.find("torch"), std::string::npos) << ldd.out;
  EXPECT_EQ(ldd.out.find("libc10"), std::string::npos) << ldd.out;
  // The training executable is the one that has it.
  const auto train = run_process({"/usr/bin/ldd", MASKWATCH_TEST_TRAIN_BINARY});
  EXPECT_NE(train.out.find("libtorch"), std::string::npos);
}

TEST(RuntimeExecutable, HandsTrainingCommandsToTheTrainingExecutable) {
  const auto r = run_cli({"train", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("--fine-tune-epochs"), std::string::npos) << r.out;
  const auto bad = run_cli({"train", "--no-such-flag"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("usage error"), std::string::npos) << bad.err;
  const auto help = run_cli({"--help"});
  EXPECT_NE(help.out.find("train"), std::string::npos);
  EXPECT_NE(help.out.find("detect"), std::string::npos);
}
