// --data=parquet against files written by the real `datasets` library (testing/hf_datasets_tool.py):
// byte-exact images, labels and class names in both Hub layouts, several row groups, a shard read
// over loopback HTTP by Range requests identically to the local file, and errors that name the
// file and column.
#include "convforever/data/parquet_source.h"

#include <atomic>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "convforever/data/test_util.h"
#include "convforever/data/testing/hf_python.h"
#include "convforever/http/testing/test_server.h"

namespace cf::data {
namespace {

using ::cf::data::testing::RunHfTool;
using ::cf::data::testing::TempDir;
using ::cf::data::testing::WriteFile;

// The fixtures and their manifest, written once per test binary.
struct Fixtures {
  std::string dir;
  nlohmann::json manifest;
};

const Fixtures& GetFixtures() {
  static const Fixtures* f = [] {
    auto* fx = new Fixtures;
    fx->dir = TempDir("hf_parquet");
    std::string out, err;
    const int rc = RunHfTool({"write-fixtures", fx->dir}, &out, &err);
    EXPECT_EQ(rc, 0) << err;
    auto text = ReadFile(fx->dir + "/manifest.json");
    if (text.ok()) fx->manifest = nlohmann::json::parse(*text);
    return fx;
  }();
  return *f;
}

// The manifest's rows of the given files, in order: (image bytes or nullopt, label).
std::vector<std::pair<std::optional<std::string>, int64_t>> Expected(const std::vector<std::string>& files) {
  std::vector<std::pair<std::optional<std::string>, int64_t>> rows;
  for (const auto& f : files) {
    for (const auto& r : GetFixtures().manifest["files"][f]) {
      std::optional<std::string> bytes;
      if (!r[0].is_null()) bytes = absl::HexStringToBytes(r[0].get<std::string>());
      rows.push_back({bytes, r[1].get<int64_t>()});
    }
  }
  return rows;
}

std::vector<int64_t> AllIndices(const Source& s) {
  std::vector<int64_t> idx(s.size());
  for (int64_t i = 0; i < s.size(); ++i) idx[i] = i;
  return idx;
}

DatasetSpec Spec(const std::string& path, const std::string& split = "train") {
  DatasetSpec spec;
  spec.kind = "parquet";
  spec.path = path;
  spec.split = split;
  return spec;
}

// Every row of `source` equals `want` (byte-exact images, labels; null images skipped as
// "missing_image"), with keys "<file name>:<row>".
void ExpectRows(Source& source, const std::vector<std::pair<std::optional<std::string>, int64_t>>& want,
                const std::vector<std::pair<std::string, int64_t>>& files) {
  ASSERT_EQ(source.size(), static_cast<int64_t>(want.size()));
  std::vector<FetchResult> got = source.Fetch(AllIndices(source));
  int64_t i = 0;
  for (const auto& [name, rows] : files) {
    for (int64_t r = 0; r < rows; ++r, ++i) {
      const std::string key = absl::StrCat(name, ":", r);
      EXPECT_EQ(source.SampleKey(i), key);
      if (!want[i].first) {
        EXPECT_FALSE(got[i].record.ok()) << key;
        EXPECT_EQ(got[i].skip_reason, "missing_image") << key;
        continue;
      }
      ASSERT_TRUE(got[i].record.ok()) << key << ": " << got[i].record.status();
      EXPECT_TRUE(got[i].record->encoded == *want[i].first) << key << ": image bytes differ";
      EXPECT_EQ(got[i].record->label, want[i].second) << key;
      EXPECT_EQ(got[i].record->key, key);
    }
  }
}

const std::vector<std::string> kNames = {"cat", "dog", "bird", "fish"};

TEST(ParquetSourceTest, HubDataLayoutReadByteExactAcrossFilesAndRowGroups) {
  CF_REQUIRE_VENV_PYTHON();
  const Fixtures& fx = GetFixtures();
  auto source = OpenSource(Spec(fx.dir + "/hub"));
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ((*source)->class_names(), kNames);
  EXPECT_EQ((*source)->num_classes(), 4);
  ExpectRows(**source,
             Expected({"hub/data/train-00000-of-00002.parquet", "hub/data/train-00001-of-00002.parquet"}),
             {{"train-00000-of-00002.parquet", 23}, {"train-00001-of-00002.parquet", 17}});
  // datasets wrote 4 rows per row group: 6 in the first file.
  auto file = ParquetImageFile::Open(fx.dir + "/hub/data/train-00000-of-00002.parquet", {});
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->row_group_rows(), (std::vector<int64_t>{4, 4, 4, 4, 4, 3}));

  auto test = OpenSource(Spec(fx.dir + "/hub", "test"));
  ASSERT_TRUE(test.ok()) << test.status();
  ExpectRows(**test, Expected({"hub/data/test-00000-of-00001.parquet"}), {{"test-00000-of-00001.parquet", 9}});
}

TEST(ParquetSourceTest, ConverterLayoutFileAndBracePatternAndValidationSplit) {
  CF_REQUIRE_VENV_PYTHON();
  const Fixtures& fx = GetFixtures();
  for (const std::string& path : {fx.dir + "/convert", fx.dir + "/convert/default",
                                  fx.dir + "/convert/default/train/0000.parquet"}) {
    auto source = OpenSource(Spec(path));
    ASSERT_TRUE(source.ok()) << path << ": " << source.status();
    ExpectRows(**source, Expected({"convert/default/train/0000.parquet"}), {{"0000.parquet", 12}});
  }
  auto val = OpenSource(Spec(fx.dir + "/convert", "val"));  // "val" finds validation/
  ASSERT_TRUE(val.ok()) << val.status();
  EXPECT_EQ((*val)->size(), 6);
  auto braces = OpenSource(Spec(fx.dir + "/hub/data/train-{00000..00001}-of-00002.parquet"));
  ASSERT_TRUE(braces.ok()) << braces.status();
  EXPECT_EQ((*braces)->size(), 40);
}

TEST(ParquetSourceTest, SmallCacheAndManyThreadsGiveTheSameRows) {
  CF_REQUIRE_VENV_PYTHON();
  const Fixtures& fx = GetFixtures();
  ParquetSourceOptions o;
  o.cache_bytes = 1;  // one row group at a time
  auto source = OpenParquetSource(Spec(fx.dir + "/hub"), o);
  ASSERT_TRUE(source.ok()) << source.status();
  const auto want = Expected({"hub/data/train-00000-of-00002.parquet", "hub/data/train-00001-of-00002.parquet"});
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 5; ++rep) {
        for (int64_t i = t; i < (*source)->size(); i += 3) {
          auto got = (*source)->Fetch({i, (i * 7) % (*source)->size()});
          for (size_t k = 0; k < got.size(); ++k) {
            const int64_t j = k == 0 ? i : (i * 7) % (*source)->size();
            const bool ok = want[j].first ? (got[k].record.ok() && got[k].record->encoded == *want[j].first &&
                                             got[k].record->label == want[j].second)
                                          : got[k].skip_reason == "missing_image";
            if (!ok) ++mismatches;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

// Serves `bytes` at /f.parquet with HTTP Range support (or without, answering 200 whole).
void ServeFile(http::testing::TestServer& server, const std::string& bytes, bool ranges) {
  server.Handle("GET", "/f.parquet", [bytes, ranges](const http::testing::ServerRequest& r) {
    const auto range = r.headers.Get("Range");
    if (!ranges || !range) return http::testing::ServerResponse::Text(200, bytes);
    absl::string_view v = *range;
    int64_t a = 0, b = 0;
    const bool parsed = absl::ConsumePrefix(&v, "bytes=") && v.find('-') != absl::string_view::npos &&
                        absl::SimpleAtoi(v.substr(0, v.find('-')), &a) &&
                        absl::SimpleAtoi(v.substr(v.find('-') + 1), &b);
    if (!parsed || a > b || a >= static_cast<int64_t>(bytes.size())) return http::testing::ServerResponse::Text(416, "");
    b = std::min<int64_t>(b, bytes.size() - 1);
    http::testing::ServerResponse resp;
    resp.status = 206;
    resp.body = bytes.substr(a, b - a + 1);
    resp.headers.Set("Content-Range", absl::StrCat("bytes ", a, "-", b, "/", bytes.size()));
    return resp;
  });
}

TEST(ParquetSourceTest, RemoteFileReadByRangeRequestsLikeTheLocalOne) {
  CF_REQUIRE_VENV_PYTHON();
  const Fixtures& fx = GetFixtures();
  const std::string local = fx.dir + "/hub/data/train-00000-of-00002.parquet";
  auto bytes = ReadFile(local);
  ASSERT_TRUE(bytes.ok());
  auto server = http::testing::TestServer::Start();
  ASSERT_TRUE(server.ok());
  ServeFile(**server, *bytes, /*ranges=*/true);
  const std::string url = (*server)->base_url() + "/f.parquet";

  ParquetSourceOptions o;
  o.http.bearer_token = "hf_secret_token";
  o.http.token_host = "huggingface.co";  // not this server: the token must not reach it
  DatasetSpec spec = Spec(url);
  spec.class_list_path = fx.dir + "/classes.txt";
  WriteFile(spec.class_list_path, "cat\ndog\nbird\nfish\n");
  auto remote = OpenParquetSource(spec, o);
  ASSERT_TRUE(remote.ok()) << remote.status();
  int64_t served_at_open = 0;
  for (const auto& r : (*server)->requests()) served_at_open += r.headers.Get("Range") ? 1 : 0;
  EXPECT_GE(served_at_open, 2);  // the probe, then the footer

  ExpectRows(**remote, Expected({"hub/data/train-00000-of-00002.parquet"}), {{"f.parquet", 23}});
  const auto log = (*server)->requests();
  EXPECT_GT(log.size(), 6u);  // at least one read per row group
  for (const auto& r : log) {
    EXPECT_EQ(r.method, "GET");
    EXPECT_TRUE(r.headers.Get("Range").has_value()) << "a whole-file GET: " << r.path;
    EXPECT_FALSE(r.headers.Get("Authorization").has_value()) << "token sent to a host it is not for";
  }
}

TEST(ParquetSourceTest, TokenGoesOnlyToItsHostAndNeverIntoMessages) {
  CF_REQUIRE_VENV_PYTHON();
  const Fixtures& fx = GetFixtures();
  auto bytes = ReadFile(fx.dir + "/convert/default/train/0000.parquet");
  ASSERT_TRUE(bytes.ok());
  auto server = http::testing::TestServer::Start();
  ASSERT_TRUE(server.ok());
  ServeFile(**server, *bytes, /*ranges=*/true);
  HttpRangeOptions http;
  http.bearer_token = "hf_secret_token";
  http.token_host = "127.0.0.1";
  auto file = ParquetImageFile::Open((*server)->base_url() + "/f.parquet", http);
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_FALSE((*server)->requests().empty());
  for (const auto& r : (*server)->requests()) {
    EXPECT_EQ(r.headers.Get("Authorization").value_or(""), "Bearer hf_secret_token");
  }
  // A URL with credentials in it, on a server without the file: the message redacts them.
  auto missing = ParquetImageFile::Open(
      absl::StrCat("http://user:pw_in_url@127.0.0.1:", (*server)->port(), "/nothing.parquet"), http);
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "nothing.parquet")) << missing.status();
  EXPECT_FALSE(absl::StrContains(missing.status().message(), "pw_in_url")) << missing.status();
  EXPECT_FALSE(absl::StrContains(missing.status().message(), "hf_secret_token")) << missing.status();
}

TEST(ParquetSourceTest, ServerWithoutRangeSupportIsAnErrorAtOpen) {
  CF_REQUIRE_VENV_PYTHON();
  const Fixtures& fx = GetFixtures();
  auto bytes = ReadFile(fx.dir + "/convert/default/train/0000.parquet");
  auto server = http::testing::TestServer::Start();
  ASSERT_TRUE(server.ok());
  ServeFile(**server, *bytes, /*ranges=*/false);
  auto source = OpenSource(Spec((*server)->base_url() + "/f.parquet"));
  ASSERT_FALSE(source.ok());
  EXPECT_TRUE(absl::StrContains(source.status().message(), "Range")) << source.status();
  EXPECT_EQ((*server)->request_count(), 1);  // the probe: nothing more was downloaded
}

TEST(ParquetSourceTest, ErrorsNameTheFileAndColumn) {
  CF_REQUIRE_VENV_PYTHON();
  const Fixtures& fx = GetFixtures();
  auto no_image = OpenSource(Spec(fx.dir + "/no_image.parquet"));
  ASSERT_FALSE(no_image.ok());
  EXPECT_TRUE(absl::StrContains(no_image.status().message(), "no_image.parquet")) << no_image.status();
  EXPECT_TRUE(absl::StrContains(no_image.status().message(), "no column 'image'")) << no_image.status();

  auto string_label = OpenSource(Spec(fx.dir + "/string_label.parquet"));
  ASSERT_FALSE(string_label.ok());
  EXPECT_TRUE(absl::StrContains(string_label.status().message(), "string_label.parquet")) << string_label.status();
  EXPECT_TRUE(absl::StrContains(string_label.status().message(), "column 'label' is string")) << string_label.status();

  DatasetSpec spec = Spec(fx.dir + "/hub");
  spec.class_list_path = fx.dir + "/wrong_classes.txt";
  WriteFile(spec.class_list_path, "cat\ndog\nfish\nbird\n");
  auto mismatch = OpenSource(spec);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_TRUE(absl::StrContains(mismatch.status().message(), "wrong_classes.txt")) << mismatch.status();
  EXPECT_TRUE(absl::StrContains(mismatch.status().message(), "train-00000-of-00002.parquet")) << mismatch.status();
  EXPECT_TRUE(absl::StrContains(mismatch.status().message(), "class 2 is 'fish'")) << mismatch.status();

  auto two = OpenSource(Spec(fx.dir + "/twoconfigs"));
  ASSERT_FALSE(two.ok());
  EXPECT_TRUE(absl::StrContains(two.status().message(), "several configs")) << two.status();
  EXPECT_TRUE(absl::StrContains(two.status().message(), "a, b")) << two.status();

  auto none = OpenSource(Spec(fx.dir + "/hub", "nosuchsplit"));
  ASSERT_FALSE(none.ok());
  EXPECT_TRUE(absl::StrContains(none.status().message(), "nosuchsplit")) << none.status();

  auto missing = OpenSource(Spec(fx.dir + "/absent.parquet"));
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "absent.parquet")) << missing.status();
}

TEST(ParquetSourceTest, UrlHostIgnoresUserPortAndPath) {
  EXPECT_EQ(UrlHost("https://huggingface.co/datasets/x/resolve/main/a.parquet"), "huggingface.co");
  EXPECT_EQ(UrlHost("https://user:pw@HuggingFace.co:443/x"), "huggingface.co");
  EXPECT_EQ(UrlHost("http://127.0.0.1:8080"), "127.0.0.1");
  EXPECT_EQ(UrlHost("/local/file.parquet"), "");
}

}  // namespace
}  // namespace cf::data
