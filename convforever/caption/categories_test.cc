#include "convforever/caption/categories.h"

#include "gtest/gtest.h"

namespace cf::caption {
namespace {

TEST(CategoriesTest, BundledFileHasFiftyInOrder) {
  auto c = LoadCategories("convforever/caption/data/categories.txt");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 50u);
  EXPECT_EQ(c->front(), "fish");
  EXPECT_EQ((*c)[18], "dog");
  EXPECT_EQ(c->back(), "landscape");
}

TEST(CategoriesTest, TrimsAndAllowsTrailingBlankLines) {
  auto c = ParseCategories("  cat \r\ndog\n\n\n", "mem");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c, (std::vector<std::string>{"cat", "dog"}));
}

TEST(CategoriesTest, BadFilesNameTheLine) {
  auto blank = ParseCategories("cat\n\ndog\n", "cats.txt");
  EXPECT_FALSE(blank.ok());
  EXPECT_NE(blank.status().message().find("cats.txt:2"), std::string::npos) << blank.status();
  auto dup = ParseCategories("cat\ndog\nCat\n", "cats.txt");
  EXPECT_NE(dup.status().message().find("cats.txt:3: duplicate"), std::string::npos) << dup.status();
  EXPECT_FALSE(ParseCategories("cat\nunknown\n", "x").ok());
  EXPECT_FALSE(ParseCategories("ca\"t\n", "x").ok());
  EXPECT_FALSE(ParseCategories("\n\n", "x").ok());
  EXPECT_TRUE(absl::IsNotFound(LoadCategories("/nonexistent/categories.txt").status()));
}

}  // namespace
}  // namespace cf::caption
