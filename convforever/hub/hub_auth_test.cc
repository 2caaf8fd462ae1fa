// Where the Hub token may go: to the Hub's API only. FakeHub serves storage on another origin
// (localhost:<second port>) with presigned URLs and refuses any Authorization header there, as S3
// does; these tests also read the raw request logs of both servers, so a leak is seen even where a
// lenient server would have accepted it.
#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "convforever/hub/hub_client.h"
#include "convforever/hub/sha256.h"
#include "convforever/hub/testing/fake_hub.h"
#include "convforever/hub/upload_folder.h"
#include "gtest/gtest.h"

namespace cf::hub {
namespace {

using testing::FakeHub;
using testing::FakeHubOptions;

class HubAuthTest : public ::testing::Test {
 protected:
  void Start(FakeHubOptions options = {}) {
    auto hub = FakeHub::Start(std::move(options));
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(hub).value();
  }
  HubClient Client() {
    HubClientOptions o;
    o.endpoint = hub_->endpoint();
    o.token = hub_->options().token;
    o.clock = &clock_;
    return HubClient(o);
  }
  std::string Dir(const std::string& name) {
    return absl::StrCat(std::getenv("TEST_TMPDIR"), "/", name);
  }
  // Every storage request carried no Authorization; every Hub request but the presigned
  // completion carried exactly our token.
  void ExpectTokenOnlyOnHubApi() {
    EXPECT_EQ(hub_->token_leaks(), 0);
    EXPECT_TRUE(hub_->violations().empty()) << hub_->violations().front();
    for (const auto& r : hub_->storage_server().requests()) {
      EXPECT_FALSE(r.headers.Has("Authorization")) << r.method << " " << r.path;
      EXPECT_FALSE(absl::StrContains(r.headers.DebugString() + r.path, hub_->options().token));
    }
    for (const auto& r : hub_->server().requests()) {
      if (absl::StartsWith(r.path, "/lfs-complete/")) {
        EXPECT_FALSE(r.headers.Has("Authorization")) << r.path;
      } else {
        EXPECT_EQ(r.headers.Get("Authorization"), "Bearer " + hub_->options().token) << r.path;
      }
    }
  }

  std::unique_ptr<FakeHub> hub_;
  http::FakeClock clock_;
  const RepoId repo_{"convforever/auth", RepoType::kModel};
};

// Basic (1.5 MB) and multipart (2.5 MB in 1 MB parts) LFS uploads, then every file downloaded
// back through resolve (LFS: a 302 to storage, followed without the token) and compared by sha256.
TEST_F(HubAuthTest, UploadsSendNoTokenToStorageAndTheRepoHoldsTheBytes) {
  Start();
  const std::string dir = Dir("ckpt");
  ASSERT_TRUE(testing::WriteFakeCheckpoint(dir, 2500 * 1024, 3).ok());
  ASSERT_TRUE(testing::WriteFakeCheckpoint(dir + "/small", 1500 * 1024, 4).ok());
  HubClient client = Client();
  ASSERT_TRUE(client.CreateRepo(repo_, false).ok());
  auto result = UploadFolder(client, dir, repo_, "", "auth test");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->lfs_files, 2);
  EXPECT_GT(hub_->part_puts(), 0);
  EXPECT_EQ(hub_->basic_puts(), 1);
  EXPECT_EQ(hub_->completions(), 1);
  for (const std::string path : {"model.safetensors", "config.json", "small/model.safetensors",
                                 "small/README.md"}) {
    const std::string local = Dir("down_" + std::to_string(std::hash<std::string>()(path)));
    auto n = client.DownloadFile(repo_, path, local);
    ASSERT_TRUE(n.ok()) << path << ": " << n.status();
    auto got = Sha256File(local);
    auto want = Sha256File(dir + "/" + path);
    ASSERT_TRUE(got.ok() && want.ok());
    EXPECT_EQ(got->sha256, want->sha256) << path;
    EXPECT_EQ(*n, want->size) << path;
  }
  EXPECT_EQ(hub_->storage_gets(), 2);  // the two LFS files came from storage
  ExpectTokenOnlyOnHubApi();
}

// An expired presigned URL is refused by storage; the error names the redacted URL and carries
// neither the token nor the signature.
TEST_F(HubAuthTest, ExpiredStorageUrlIsAClearErrorWithoutSecrets) {
  FakeHubOptions o;
  o.url_lifetime = absl::Seconds(-10);
  Start(o);
  const std::string dir = Dir("expired");
  ASSERT_TRUE(testing::WriteFakeCheckpoint(dir, 200 * 1024, 5).ok());
  HubClient client = Client();
  ASSERT_TRUE(client.CreateRepo(repo_, false).ok());
  auto result = UploadFolder(client, dir, repo_, "", "expired");
  ASSERT_FALSE(result.ok());
  const std::string msg(result.status().message());
  EXPECT_TRUE(absl::StrContains(msg, "model.safetensors")) << msg;
  EXPECT_TRUE(absl::StrContains(msg, "expired")) << msg;
  EXPECT_TRUE(absl::StrContains(msg, "Signature=REDACTED")) << msg;
  EXPECT_FALSE(absl::StrContains(msg, hub_->options().token)) << msg;
  EXPECT_GE(hub_->unsigned_refusals(), 1);
  EXPECT_EQ(hub_->token_leaks(), 0);
}

// The fake itself is as strict as S3: a token on a storage URL, or a URL without a valid
// signature, is refused (so a client that leaks cannot pass the tests above).
TEST_F(HubAuthTest, FakeStorageRefusesTokensAndUnsignedUrls) {
  Start();
  const std::string base = hub_->storage_url() + "/lfs/" + std::string(64, 'a');
  http::Request unsigned_get;
  unsigned_get.url = base;
  auto r = http::Fetch(unsigned_get);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 403);
  http::Request forged = unsigned_get;
  forged.url = base + "?Expires=9999999999&Signature=00";
  r = http::Fetch(forged);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 403);
  http::Request with_token = forged;
  with_token.headers.Set("Authorization", "Bearer " + hub_->options().token);
  r = http::Fetch(with_token);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(absl::StrContains(r->body, "Only one auth mechanism allowed")) << r->body;
  EXPECT_EQ(hub_->token_leaks(), 1);
}

}  // namespace
}  // namespace cf::hub
