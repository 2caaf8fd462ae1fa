#include "convforever/base/progress.h"

#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace cf::base {
namespace {

TEST(Progress, FormatDuration) {
  EXPECT_EQ(ProgressLine::FormatDuration(0), "0:00");
  EXPECT_EQ(ProgressLine::FormatDuration(59.6), "1:00");
  EXPECT_EQ(ProgressLine::FormatDuration(3725), "1:02:05");
  EXPECT_EQ(ProgressLine::FormatDuration(-1), "?");
}

TEST(Progress, RenderWithTotalShowsPercentAndEta) {
  ProgressOptions o;
  o.label = "epoch 1";
  o.unit = "img";
  o.total = 1000;
  o.is_terminal = 0;
  ProgressLine p(o);
  EXPECT_EQ(p.Render(250, 50.0, "loss 0.42"),
            "epoch 1 250/1000 25.0% | 50.0 img/s | ETA 0:15 | loss 0.42");
}

TEST(Progress, RenderWithoutTotalHasNoEta) {
  ProgressOptions o;
  o.is_terminal = 0;
  ProgressLine p(o);
  EXPECT_EQ(p.Render(7, 2.5, ""), "7 | 2.5 it/s");
}

TEST(Progress, PlainModeWritesWholeLinesOnly) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  ProgressOptions o;
  o.label = "x";
  o.total = 10;
  o.out = f;
  o.is_terminal = 0;
  o.plain_interval = std::chrono::milliseconds(0);
  {
    ProgressLine p(o);
    p.Update(5);
    p.Finish("done");
  }
  std::rewind(f);
  char buf[512] = {};
  const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  const std::string out(buf, n);
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_NE(out.find("x 5/10 50.0%"), std::string::npos) << out;
  EXPECT_NE(out.find("| done | "), std::string::npos) << out;
  EXPECT_EQ(out.back(), '\n');
}

}  // namespace
}  // namespace cf::base
