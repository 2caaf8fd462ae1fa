// The preflight's hub check (only with --hub_repo): the snapshots the run pushes can reach the
// repo. A token is found as the trainer finds it (hub::ReadToken: HF_TOKEN, HF_TOKEN_PATH,
// $HF_HOME/token, ~/.cache/huggingface/token), the Hub at HF_ENDPOINT accepts it (whoami-v2, one
// attempt with the preflight's timeout), and the repo's namespace is the token's user or one of
// its organisations, with a token role that writes. Nothing is created or uploaded. The token
// never appears in the row (HubClient scrubs its messages of it).
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "convforever/hub/hub_client.h"
#include "convforever/http/headers.h"
#include "convforever/train/preflight_checks.h"

namespace cf::train::preflight {
namespace {
constexpr char kName[] = "hub";
}  // namespace

CheckRow CheckHub(Context& c) {
  const std::string& repo = c.options.hub_repo;
  if (repo.empty()) return {kName, CheckStatus::kSkip, "no --hub_repo"};
  if (absl::Status s = hub::ValidateRepoId(repo); !s.ok()) {
    return {kName, CheckStatus::kFail, absl::StrCat("--hub_repo: ", s.message())};
  }
  hub::HubClientOptions options = hub::HubClientOptions::FromEnvironment();
  if (options.token.empty()) {
    return {kName, CheckStatus::kFail,
            "no Hub token: set HF_TOKEN (or HF_TOKEN_PATH, or log in so that $HF_HOME/token or "
            "~/.cache/huggingface/token holds one)"};
  }
  options.retry.max_attempts = 1;
  options.api_timeout = absl::Seconds(c.preflight.timeout_s);
  hub::HubClient client(options);
  absl::StatusOr<hub::WhoAmI> who = client.Whoami();
  if (!who.ok()) {
    return {kName, CheckStatus::kFail,
            absl::StrCat("the token is refused by ", http::RedactUrl(options.endpoint), ": ",
                         http::RedactUrlsInText(std::string(who.status().message())))};
  }
  const std::string ns = repo.substr(0, repo.find('/'));
  const bool own = ns == who->name ||
                   std::find(who->orgs.begin(), who->orgs.end(), ns) != who->orgs.end();
  const std::string who_text = absl::StrCat(
      "token of '", who->name, "'", who->orgs.empty() ? "" : absl::StrCat(" (orgs: ", absl::StrJoin(who->orgs, ", "), ")"),
      who->token_role.empty() ? "" : absl::StrCat(", role ", who->token_role));
  if (!own) {
    return {kName, CheckStatus::kFail,
            absl::StrCat(who_text, " cannot write to ", repo, ": '", ns, "' is neither the user nor one of its orgs")};
  }
  if (who->token_role == "read") {
    return {kName, CheckStatus::kFail, absl::StrCat(who_text, ": a read-only token cannot push to ", repo)};
  }
  return {kName, CheckStatus::kOk,
          absl::StrCat(who_text, " at ", http::RedactUrl(options.endpoint), " may write to ", repo)};
}

}  // namespace cf::train::preflight
