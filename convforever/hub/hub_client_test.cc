// HubClient against FakeHub (a real HTTP server on 127.0.0.1) and, for echoing servers, a bare
// TestServer. Retry waits go through a FakeClock, so nothing here sleeps for real.
#include "convforever/hub/hub_client.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "convforever/http/testing/test_server.h"
#include "convforever/hub/hub_json.h"
#include "convforever/hub/testing/fake_hub.h"
#include "gtest/gtest.h"

namespace cf::hub {
namespace {

using testing::FakeHub;
using testing::Fault;

class HubClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto hub = FakeHub::Start();
    ASSERT_TRUE(hub.ok()) << hub.status();
    hub_ = std::move(hub).value();
  }
  HubClientOptions Options(const std::string& token) {
    HubClientOptions o;
    o.endpoint = hub_->endpoint();
    o.token = token;
    o.clock = &clock_;
    return o;
  }
  HubClient Client() { return HubClient(Options(hub_->options().token)); }

  std::unique_ptr<FakeHub> hub_;
  http::FakeClock clock_;
  const RepoId model_{"convforever/tiny", RepoType::kModel};
};

TEST_F(HubClientTest, WhoamiSendsTheToken) {
  HubClient client = Client();
  auto who = client.Whoami();
  ASSERT_TRUE(who.ok()) << who.status();
  EXPECT_EQ(who->name, "tester");
  EXPECT_EQ(who->orgs, std::vector<std::string>{"convforever"});
  EXPECT_EQ(who->token_role, "write");  // auth.accessToken.role, as the Hub answers
}

TEST_F(HubClientTest, CreateRepoTwiceIsFine) {
  HubClient client = Client();
  ASSERT_TRUE(client.CreateRepo(model_, /*private_repo=*/true).ok());
  ASSERT_TRUE(client.CreateRepo(model_, true).ok());  // 409: exists
  auto repo = hub_->repo("model", "convforever/tiny");
  ASSERT_TRUE(repo.has_value());
  EXPECT_TRUE(repo->private_repo);
  EXPECT_EQ(client.retries(), 0);  // a 409 is an answer, not a transient failure
}

TEST_F(HubClientTest, BadRepoIdsAndTypesAreRejectedByName) {
  for (const char* bad : {"noslash", "/x", "x/", "a/b/c", "a/b c", "a/../b"}) {
    absl::Status s = ValidateRepoId(bad);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_TRUE(absl::StrContains(s.message(), bad)) << s;
  }
  EXPECT_TRUE(ValidateRepoId("org-1/My_model.v2").ok());
  auto t = ParseRepoType("space");
  ASSERT_FALSE(t.ok());
  EXPECT_TRUE(absl::StrContains(t.status().message(), "space"));
}

TEST_F(HubClientTest, ForbiddenNamespaceNamesTheRepo) {
  HubClient client = Client();
  absl::Status s = client.CreateRepo({"someone-else/x", RepoType::kDataset}, false);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "dataset repo someone-else/x")) << s;
}

TEST_F(HubClientTest, MissingRepoNamesTheRepo) {
  HubClient client = Client();
  auto r = client.Preupload({"convforever/absent", RepoType::kModel}, {{"a.txt", 1, "a"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(absl::StrContains(r.status().message(), "model repo convforever/absent"))
      << r.status();
}

TEST_F(HubClientTest, WrongTokenIsUnauthenticatedNamingRepoNotToken) {
  const std::string secret = "hf_WRONGwrongWRONG987654321";
  HubClient client(Options(secret));
  absl::Status s = client.CreateRepo(model_, false);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "model repo convforever/tiny")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "HF_TOKEN")) << s;
  EXPECT_FALSE(absl::StrContains(s.message(), secret)) << s;
}

// A server that echoes the Authorization header in its error body: the client must scrub it.
TEST_F(HubClientTest, TokenEchoedByServerIsScrubbedFromErrors) {
  auto server = http::testing::TestServer::Start();
  ASSERT_TRUE(server.ok());
  (*server)->Handle("*", "/", [](const http::testing::ServerRequest& r) {
    http::testing::ServerResponse resp = http::testing::ServerResponse::Text(
        403, "denied for " + r.headers.Get("Authorization").value_or("?"));
    resp.headers.Set("X-Error-Message", "bad " + r.headers.Get("Authorization").value_or("?"));
    return resp;
  });
  const std::string secret = "hf_SECRETsecretSECRET12345";
  HubClientOptions o = Options(secret);
  o.endpoint = (*server)->base_url();
  HubClient client(o);
  for (absl::Status s : {client.CreateRepo(model_, false), client.Whoami().status(),
                         client.Commit(model_, "x", "", {}).status()}) {
    EXPECT_FALSE(s.ok());
    EXPECT_FALSE(absl::StrContains(s.ToString(), secret)) << s;
    EXPECT_TRUE(absl::StrContains(s.ToString(), "<token>")) << s;
  }
  // The server did receive it: the scrubbing is what kept it out of the messages.
  EXPECT_TRUE(absl::StrContains((*server)->requests()[0].headers.Get("Authorization").value_or(""),
                                secret));
}

TEST_F(HubClientTest, TokenFromEnvironmentAndTokenFile) {
  const std::string home = std::string(getenv("TEST_TMPDIR")) + "/hf_home";
  std::filesystem::create_directories(home);
  std::ofstream(home + "/token") << "  hf_fromfile123\n";
  setenv("HF_HOME", home.c_str(), 1);
  unsetenv("HF_TOKEN_PATH");
  setenv("HF_TOKEN", "hf_fromenv456", 1);
  EXPECT_EQ(ReadToken(), "hf_fromenv456");
  unsetenv("HF_TOKEN");
  EXPECT_EQ(ReadToken(), "hf_fromfile123");
  setenv("HF_ENDPOINT", "http://127.0.0.1:9/", 1);
  HubClientOptions o = HubClientOptions::FromEnvironment();
  EXPECT_EQ(o.endpoint, "http://127.0.0.1:9");
  EXPECT_EQ(o.token, "hf_fromfile123");
  unsetenv("HF_ENDPOINT");
  unsetenv("HF_HOME");
  EXPECT_EQ(HubClientOptions::FromEnvironment().endpoint, "https://huggingface.co");
}

TEST_F(HubClientTest, RateLimitIsWaitedOutWithTheResetPlusOneSecond) {
  HubClient client = Client();
  ASSERT_TRUE(client.CreateRepo(model_, false).ok());
  hub_->InjectFault(Fault::k429, 2, "/preupload/");
  const absl::Time start = clock_.Now();
  auto r = client.Preupload(model_, {{"a.txt", 1, "a"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(client.retries(), 2);
  EXPECT_EQ(clock_.Now() - start, absl::Seconds(6));  // 2 x (t=2 + 1)
}

TEST_F(HubClientTest, ServerErrorsRetriedWithBackoffUntilTheyRunOut) {
  HubClient client = Client();
  hub_->InjectFault(Fault::k500, 10, "/whoami");
  const absl::Time start = clock_.Now();
  auto who = client.Whoami();
  ASSERT_FALSE(who.ok());
  EXPECT_EQ(who.status().code(), absl::StatusCode::kUnavailable) << who.status();
  EXPECT_EQ(client.requests(), 5);
  EXPECT_EQ(clock_.Now() - start, absl::Seconds(1 + 2 + 4 + 8));
}

TEST_F(HubClientTest, CommitIsNotRetriedOn500ButIsOnHintedRateLimitAndDrops) {
  HubClient client = Client();
  ASSERT_TRUE(client.CreateRepo(model_, false).ok());
  const std::vector<CommitOperation> ops = {CommitOperation::Regular("a.txt", "hello")};
  hub_->InjectFault(Fault::k500, 1, "/commit/");
  auto c = client.Commit(model_, "first", "", ops);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(hub_->commits(), 0);
  EXPECT_EQ(client.retries(), 0);
  hub_->InjectFault(Fault::k503, 1, "/commit/");  // no hint: maybe applied, not blindly resent
  EXPECT_FALSE(client.Commit(model_, "second", "", ops).ok());
  EXPECT_EQ(client.retries(), 0);
  hub_->InjectFault(Fault::k503WithRetryAfter, 1, "/commit/");
  hub_->InjectFault(Fault::k429, 1, "/commit/");
  hub_->InjectFault(Fault::kDrop, 1, "/commit/");
  c = client.Commit(model_, "third", "", ops);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(client.retries(), 3);
  EXPECT_EQ(hub_->commits(), 1);
  EXPECT_FALSE(c->commit_oid.empty());
  EXPECT_EQ(hub_->file("model", "convforever/tiny", "a.txt"), "hello");
}

TEST_F(HubClientTest, CommitPayloadShape) {
  const std::string payload = CommitPayload(
      "sum", "desc",
      {CommitOperation::Regular("a b.txt", std::string("x\0y", 3)),
       CommitOperation::Lfs("m.bin", std::string(64, 'a'), 12), CommitOperation::Delete("old")});
  EXPECT_EQ(payload,
            "{\"key\":\"header\",\"value\":{\"description\":\"desc\",\"summary\":\"sum\"}}\n"
            "{\"key\":\"file\",\"value\":{\"content\":\"eAB5\",\"encoding\":\"base64\",\"path\":\"a b.txt\"}}\n"
            "{\"key\":\"lfsFile\",\"value\":{\"algo\":\"sha256\",\"oid\":\"" + std::string(64, 'a') +
            "\",\"path\":\"m.bin\",\"size\":12}}\n"
            "{\"key\":\"deletedFile\",\"value\":{\"path\":\"old\"}}\n");
}

// The fake itself must catch bad clients, or the upload tests prove nothing.
TEST_F(HubClientTest, FakeHubRejectsBadCommits) {
  HubClient client = Client();
  ASSERT_TRUE(client.CreateRepo(model_, false).ok());
  auto c = client.Commit(model_, "x", "", {CommitOperation::Lfs("m.bin", std::string(64, 'b'), 3)});
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(absl::StrContains(c.status().message(), "never uploaded")) << c.status();
  c = client.Commit(model_, "x", "", {CommitOperation::Delete("nope.txt")});
  EXPECT_FALSE(c.ok());
  http::Request raw;
  raw.method = "POST";
  raw.url = hub_->endpoint() + "/api/models/convforever/tiny/commit/main";
  raw.headers.Set("Authorization", "Bearer " + hub_->options().token);
  raw.body = "{\"key\":\"header\",\"value\":{\"summary\":\"s\"}}\n"
             "{\"key\":\"file\",\"value\":{\"path\":\"a\",\"encoding\":\"base64\",\"content\":\"!!\"}}\n";
  auto resp = http::Fetch(raw);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 400);
  EXPECT_EQ(hub_->violations().size(), 3u);
  EXPECT_EQ(hub_->commits(), 0);
}

// The Hub's JSON answers, parsed without HTTP (hub_json.h). Each case below crashed or misread
// before the parsers moved out of the client: json::value() threw on a wrong-typed field
// (uncaught: the process terminated), the part count overflowed, duplicate part numbers passed.
TEST(HubJsonTest, WrongTypedFieldsReadAsAbsentInsteadOfThrowing) {
  auto files = ParsePreupload(
      R"({"files":[{"path":"a.bin","uploadMode":7,"shouldIgnore":"yes"},)"
      R"({"path":"b.safetensors","uploadMode":"lfs","shouldIgnore":false}]})");
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_FALSE((*files)[0].lfs);
  EXPECT_FALSE((*files)[0].should_ignore);
  EXPECT_TRUE((*files)[1].lfs);
  const CommitInfo info = ParseCommit(R"({"commitUrl":1,"commitOid":"abc"})");
  EXPECT_EQ(info.commit_url, "");
  EXPECT_EQ(info.commit_oid, "abc");
  const LfsObject object{"model.safetensors", "/tmp/x", "0123", 10};
  auto batch = ParseLfsBatch(R"({"objects":[{"oid":42},{"oid":"0123"}]})", {&object, 1});
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_FALSE((*batch)[0].upload);  // no actions: already stored
}

TEST(HubJsonTest, LfsBatchShapes) {
  const LfsObject objects[] = {{"a.bin", "/a", "aa", 10}, {"b.bin", "/b", "bb", 25}};
  auto batch = ParseLfsBatch(R"({"transfer":"basic","objects":[)"
                             R"({"oid":"bb","size":25,"actions":{"upload":{"href":"https://s3/b",)"
                             R"("header":{"chunk_size":"10","1":"https://s3/b?p=1","2":"https://s3/b?p=2",)"
                             R"("3":"https://s3/b?p=3"}},"verify":{"href":"https://hub/verify"}}},)"
                             R"({"oid":"aa","size":10,"actions":{"upload":{"href":"https://s3/a"}}}]})",
                             objects);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_TRUE((*batch)[0].upload);
  EXPECT_EQ((*batch)[0].href, "https://s3/a");
  EXPECT_EQ((*batch)[0].chunk_size, 0);
  EXPECT_FALSE((*batch)[0].verify_href.has_value());
  EXPECT_EQ((*batch)[1].chunk_size, 10);
  EXPECT_EQ((*batch)[1].part_urls,
            (std::vector<std::string>{"https://s3/b?p=1", "https://s3/b?p=2", "https://s3/b?p=3"}));
  EXPECT_EQ((*batch)[1].verify_href, "https://hub/verify");
}

TEST(HubJsonTest, BadLfsAnswersAreErrors) {
  const LfsObject big{"big.bin", "/big", "cc", int64_t{1} << 40};
  // chunk_size near INT64_MAX: size + chunk - 1 overflowed computing the part count.
  auto overflow = ParseLfsBatch(R"({"objects":[{"oid":"cc","actions":{"upload":{"href":"h",)"
                                R"("header":{"chunk_size":9223372036854775807,"1":"u"}}}}]})",
                                {&big, 1});
  EXPECT_TRUE(overflow.ok()) << overflow.status();  // one part of everything
  const LfsObject two{"two.bin", "/two", "dd", 20};
  auto duplicate = ParseLfsBatch(R"({"objects":[{"oid":"dd","actions":{"upload":{"href":"h",)"
                                 R"("header":{"chunk_size":10,"1":"u1","01":"u1bis"}}}}]})",
                                 {&two, 1});
  EXPECT_TRUE(absl::IsDataLoss(duplicate.status())) << duplicate.status();
  EXPECT_TRUE(absl::IsFailedPrecondition(
      ParseLfsBatch(R"({"objects":[{"oid":"dd","error":{"code":422,"message":"too big"}}]})", {&two, 1})
          .status()));
  EXPECT_TRUE(absl::IsDataLoss(ParseLfsBatch(R"({"objects":[]})", {&two, 1}).status()));
  EXPECT_TRUE(absl::IsDataLoss(
      ParseLfsBatch(R"({"objects":[{"oid":"dd","actions":{"upload":{}}}]})", {&two, 1}).status()));
  EXPECT_TRUE(absl::IsDataLoss(ParseLfsBatch(
      R"({"objects":[{"oid":"dd","actions":{"verify":{"href":3}}}]})", {&two, 1}).status()));
  EXPECT_TRUE(absl::IsDataLoss(ParseWhoAmI(R"({"name":["x"]})").status()));
}

// An error object nested a million deep was dumped into the message (recursion per level: stack
// overflow). Bodies past the JSON limits are refused before parsing.
TEST(HubJsonTest, DeeplyNestedAnswerIsAnError) {
  const int depth = 1'000'000;
  const std::string deep = std::string(depth, '[') + std::string(depth, ']');
  const LfsObject object{"a.bin", "/a", "aa", 10};
  auto batch = ParseLfsBatch(R"({"objects":[{"oid":"aa","error":)" + deep + "}]}", {&object, 1});
  EXPECT_TRUE(absl::IsDataLoss(batch.status())) << batch.status();
  EXPECT_TRUE(absl::StrContains(batch.status().message(), "nested deeper than"));
  EXPECT_TRUE(absl::IsDataLoss(ParsePreupload(R"({"files":[)" + deep + "]}").status()));
}

}  // namespace
}  // namespace cf::hub
