// classify: label caption records with an LLM (see classifier.h). Run as `tools/cf classify`.
//
//   OPENROUTER_API_KEY=... classify --input captions.jsonl --output labeled.jsonl
//   classify --input - --output out.jsonl --base_url http://127.0.0.1:8080/v1 --requests_per_minute 0
//
//   HF_TOKEN=... classify --input captions.jsonl --output labeled.jsonl --hub_repo ORG/ConvForever-data-attempt-1
//
// The API key comes from OPENROUTER_API_KEY or --api_key_file, never from a flag value; the Hub
// token (for --hub_repo) from HF_TOKEN or huggingface_hub's token file, never from a flag. Rerun
// the same command after a crash or kill: it resumes (and uploads shards an earlier run left
// local). Exit codes: 0 done, 1 error, 2 bad flags (or the Hub refused the repo/token at start),
// 3 the endpoint refused the key or the account (401/402/403), 4 labeling done but some shards
// could not be uploaded to --hub_repo (they are complete on disk; rerun or `hub upload` them).
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "convforever/base/cli_help.h"
#include "convforever/base/signals.h"
#include "convforever/caption/categories.h"
#include "convforever/caption/classifier.h"
#include "convforever/caption/hub_shard_sink.h"
#include "convforever/hub/hub_client.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

DEFINE_string(input, "-", "caption JSONL file, or - for stdin");
DEFINE_string(output, "", "labeled JSONL output (appended; rerun resumes)");
DEFINE_string(categories, "", "categories file, one per line (default: the bundled 50 categories)");
DEFINE_string(caption_field, "caption", "input field holding the caption");
DEFINE_string(id_field, "id", "input field holding the record id");
DEFINE_string(passthrough_fields, "url,path", "input fields copied to the output");
DEFINE_string(base_url, "https://openrouter.ai/api/v1", "OpenAI-compatible API base URL");
DEFINE_string(model, "amazon/nova-2-lite-v1:free", "model name");
DEFINE_string(api_key_file, "", "file holding the API key (else $OPENROUTER_API_KEY)");
DEFINE_int32(concurrency, 16, "requests in flight");
DEFINE_double(requests_per_minute, 20, "token-bucket limit on requests started (0 = unlimited)");
DEFINE_double(rate_limit_pause, 0, "seconds between request starts (the original tool's flag; the stricter of this and --requests_per_minute wins)");
DEFINE_int32(max_attempts, 6, "attempts per request, the first included");
DEFINE_double(timeout_s, 60, "per-request timeout in seconds");
DEFINE_bool(json_schema, false, "ask for a JSON-schema answer (enum of categories); parsed strictly");
DEFINE_int32(max_tokens, 20, "max_tokens of each answer");
DEFINE_double(temperature, 0, "sampling temperature");
DEFINE_string(on_failure, "retry_later",
              "when a request still fails after its retries: 'retry_later' (not written; rerunning the same "
              "command retries it) or 'unknown' (written as label unknown with its error, and never retried)");
DEFINE_int64(sync_every, 1000, "records per output shard");
DEFINE_string(shard_dir, "", "directory for shard_<start>_<end>.jsonl files (default <output>.shards)");
DEFINE_string(hub_repo, "",
              "ORG/NAME Hugging Face dataset repo: each shard is committed to it as it closes (token from "
              "$HF_TOKEN or the huggingface token file; the original project names it "
              "ORG/ConvForever-data-attempt-N). Empty: shards stay local");
DEFINE_bool(hub_private, true, "create --hub_repo as a private dataset if it does not exist yet");
DEFINE_string(cache, "", "SQLite caption->label cache (default <output>.cache.sqlite; 'none' disables)");
DEFINE_int64(limit, 0, "stop after this many new records (0 = all)");
DEFINE_bool(progress, true, "show the progress line");

namespace {

std::string DefaultCategoriesPath(const char* argv0) {
  std::vector<std::string> candidates;
  if (const char* r = std::getenv("RUNFILES_DIR")) {
    candidates.push_back(std::string(r) + "/convforever/convforever/caption/data/categories.txt");
  }
  candidates.push_back(std::string(argv0) + ".runfiles/convforever/convforever/caption/data/categories.txt");
  candidates.push_back("convforever/caption/data/categories.txt");
  for (const std::string& c : candidates) {
    if (access(c.c_str(), R_OK) == 0) return c;
  }
  return candidates.back();
}

// The key, or "" when none is configured. Never logged.
absl::StatusOr<std::string> ReadApiKey() {
  if (!FLAGS_api_key_file.empty()) {
    std::ifstream in(FLAGS_api_key_file);
    if (!in) return absl::NotFoundError("cannot read --api_key_file " + FLAGS_api_key_file);
    std::stringstream ss;
    ss << in.rdbuf();
    return std::string(absl::StripAsciiWhitespace(ss.str()));
  }
  const char* env = std::getenv("OPENROUTER_API_KEY");
  return std::string(env != nullptr ? absl::StripAsciiWhitespace(env) : "");
}

}  // namespace

int main(int argc, char** argv) {
  constexpr char kUsage[] = "label caption records with an LLM: classify --input X.jsonl --output Y.jsonl";
  if (cf::base::PrintHelpIfAsked(argc, argv, kUsage, "convforever/caption/main.cc")) return 0;
  gflags::SetUsageMessage(kUsage);
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  cf::base::InstallStopHandlers();

  if (FLAGS_output.empty()) {
    std::cerr << "classify: --output is required\n";
    return 2;
  }
  if (FLAGS_on_failure != "unknown" && FLAGS_on_failure != "retry_later") {
    std::cerr << "classify: --on_failure must be 'unknown' or 'retry_later'\n";
    return 2;
  }
  const std::string categories_path = FLAGS_categories.empty() ? DefaultCategoriesPath(argv[0]) : FLAGS_categories;
  auto categories = cf::caption::LoadCategories(categories_path);
  if (!categories.ok()) {
    std::cerr << "classify: " << categories.status().message() << "\n";
    return 2;
  }
  auto key = ReadApiKey();
  if (!key.ok()) {
    std::cerr << "classify: " << key.status().message() << "\n";
    return 2;
  }
  if (key->empty() && FLAGS_base_url.find("openrouter.ai") != std::string::npos) {
    std::cerr << "classify: set OPENROUTER_API_KEY (or --api_key_file) for " << FLAGS_base_url << "\n";
    return 2;
  }

  cf::caption::ClassifierOptions o;
  o.base_url = FLAGS_base_url;
  while (!o.base_url.empty() && o.base_url.back() == '/') o.base_url.pop_back();
  o.api_key = *key;
  o.prompt = {.model = FLAGS_model, .temperature = FLAGS_temperature, .max_tokens = FLAGS_max_tokens,
              .json_schema = FLAGS_json_schema};
  o.categories = *categories;
  o.concurrency = FLAGS_concurrency;
  o.requests_per_minute = FLAGS_requests_per_minute;
  o.rate_limit_pause_s = FLAGS_rate_limit_pause;
  o.max_attempts = FLAGS_max_attempts;
  o.timeout = absl::Seconds(FLAGS_timeout_s);
  o.on_failure = FLAGS_on_failure == "retry_later" ? cf::caption::OnFailure::kRetryLater
                                                   : cf::caption::OnFailure::kUnknown;
  o.input.caption_field = FLAGS_caption_field;
  o.input.id_field = FLAGS_id_field;
  o.input.passthrough_fields = absl::StrSplit(FLAGS_passthrough_fields, ',', absl::SkipEmpty());
  o.output = {.path = FLAGS_output,
              .shard_dir = FLAGS_shard_dir.empty() ? FLAGS_output + ".shards" : FLAGS_shard_dir,
              .sync_every = FLAGS_sync_every,
              .id_field = FLAGS_id_field};
  o.cache_path = FLAGS_cache == "none" ? "" : (FLAGS_cache.empty() ? FLAGS_output + ".cache.sqlite" : FLAGS_cache);
  o.limit = FLAGS_limit;
  o.progress = FLAGS_progress;
  cf::caption::LocalShardSink local_sink;
  std::unique_ptr<cf::caption::HubShardSink> hub_sink;
  if (!FLAGS_hub_repo.empty()) {
    // Created before any labeling: a bad repo id or a refused token is reported now, not hours later.
    const cf::hub::HubClientOptions hub_options = cf::hub::HubClientOptions::FromEnvironment();
    auto created = cf::caption::HubShardSink::Create(hub_options, FLAGS_hub_repo, o.output.shard_dir,
                                                     FLAGS_hub_private);
    if (!created.ok()) {
      std::cerr << "classify: " << created.status().message() << "\n";
      if (hub_options.token.empty()) {
        std::cerr << "classify: no Hub token: set HF_TOKEN (or log in so that ~/.cache/huggingface/token exists)\n";
      }
      return 2;
    }
    hub_sink = std::move(created).value();
  }
  cf::caption::ShardSink* sink = hub_sink != nullptr ? static_cast<cf::caption::ShardSink*>(hub_sink.get())
                                                     : &local_sink;
  std::ifstream file;
  std::istream* in = &std::cin;
  if (FLAGS_input != "-") {
    file.open(FLAGS_input, std::ios::binary);
    if (!file) {
      std::cerr << "classify: cannot open --input " << FLAGS_input << "\n";
      return 2;
    }
    in = &file;
  }
  cf::caption::ClassifySummary summary;
  const absl::Status status =
      cf::caption::RunClassifier(o, *in, FLAGS_input == "-" ? "<stdin>" : FLAGS_input, sink, &summary);
  std::cerr << summary.Format();
  if (summary.left_for_later > 0) {
    std::cerr << "classify: " << summary.left_for_later
              << " record(s) failed after their retries and were not written; rerun the same command to retry them\n";
  }
  bool hub_incomplete = false;
  if (hub_sink != nullptr) {
    std::cerr << "hub: " << hub_sink->uploaded() << " shard(s) uploaded to " << hub_sink->repo().Describe()
              << ", " << hub_sink->failed() << " failed upload(s)\n";
    if (!hub_sink->close_status().ok()) {
      hub_incomplete = true;
      std::cerr << "classify: " << hub_sink->close_status().message() << "\n"
                << "classify: the shards are complete on disk in " << o.output.shard_dir
                << "; rerun the same command, or push them with: tools/cf hub upload " << o.output.shard_dir
                << " --repo " << FLAGS_hub_repo << " --repo_type dataset\n";
    }
  }
  if (!status.ok()) {
    std::cerr << "classify: " << status.message() << "\n";
    const bool auth = (absl::IsUnauthenticated(status) || absl::IsPermissionDenied(status) ||
                       absl::IsFailedPrecondition(status)) &&
                      status.message().find("/chat/completions") != absl::string_view::npos;
    if (auth) std::cerr << "classify: check the API key, credits and model access; rerun the same command to resume\n";
    return auth ? 3 : 1;
  }
  // Labeling succeeded; a distinct code (not 0) so that a script chaining classify with training on
  // the Hub dataset does not go on without the data, and not 1, which means "labeling failed".
  return hub_incomplete ? 4 : 0;
}
