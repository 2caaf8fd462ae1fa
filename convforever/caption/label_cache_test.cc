#include "convforever/caption/label_cache.h"

#include "gtest/gtest.h"

namespace cf::caption {
namespace {

TEST(LabelCacheTest, PersistsAcrossOpensWithinNamespace) {
  const std::string path = ::testing::TempDir() + "/cache.sqlite";
  std::remove(path.c_str());
  const std::string ns = CacheNamespace("m", 1, false, {"dog", "cat"});
  {
    auto cache = LabelCache::Open(path, ns, /*batch=*/2);
    ASSERT_TRUE(cache.ok()) << cache.status();
    EXPECT_FALSE((*cache)->Get("a dog").value().has_value());
    ASSERT_TRUE((*cache)->Put("a dog", "dog").ok());
    ASSERT_TRUE((*cache)->Put("a cat", "cat").ok());
    ASSERT_TRUE((*cache)->Put("it's a 'quote'", "cat").ok());  // left in an open batch
    EXPECT_EQ((*cache)->Get("a dog").value().value(), "dog");
  }
  auto again = LabelCache::Open(path, ns);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->Get("a cat").value().value(), "cat");
  EXPECT_EQ((*again)->Get("it's a 'quote'").value().value(), "cat");  // flushed on close
  auto other = LabelCache::Open(path, CacheNamespace("m2", 1, false, {"dog", "cat"}));
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE((*other)->Get("a cat").value().has_value());
}

TEST(LabelCacheTest, NamespaceChangesWithEveryPart) {
  const std::vector<std::string> c = {"dog", "cat"};
  const std::string base = CacheNamespace("m", 1, false, c);
  EXPECT_EQ(base, CacheNamespace("m", 1, false, c));
  EXPECT_NE(base, CacheNamespace("m", 2, false, c));
  EXPECT_NE(base, CacheNamespace("m", 1, true, c));
  EXPECT_NE(base, CacheNamespace("m", 1, false, {"cat", "dog"}));
}

TEST(LabelCacheTest, UnopenablePathIsAnError) {
  auto cache = LabelCache::Open("/nonexistent-dir/x/cache.sqlite", "ns");
  ASSERT_FALSE(cache.ok());
  EXPECT_NE(cache.status().message().find("/nonexistent-dir/x/cache.sqlite"), std::string::npos);
}

}  // namespace
}  // namespace cf::caption
