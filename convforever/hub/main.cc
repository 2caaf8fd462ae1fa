// hub: command-line access to the Hugging Face Hub client (wired as `tools/cf hub ...`).
//
//   hub upload PATH --repo ORG/NAME [--repo_type=model|dataset] [--path_in_repo=P]
//                   [--commit_message=M] [--private]
//   hub whoami
//
// PATH is a file (committed as P, default its file name) or a folder (committed under P, default
// the repo root) in one commit; the repo is created if it does not exist. The endpoint comes from
// HF_ENDPOINT and the token from HF_TOKEN or $HF_HOME/token: never from a flag.
// Exit status: 0 done, 1 failed (a one-line reason on stderr), 2 bad usage.
#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "convforever/base/cli_help.h"
#include "convforever/hub/hub_client.h"
#include "convforever/hub/upload_folder.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

DEFINE_string(repo, "", "target repo, ORG/NAME");
DEFINE_string(repo_type, "model", "model or dataset");
DEFINE_string(path_in_repo, "", "destination in the repo (file: its path; folder: a prefix)");
DEFINE_string(commit_message, "", "commit summary (default: 'Upload <name> with ConvForever')");
DEFINE_bool(private, false, "create the repo private if it does not exist yet");

namespace {

constexpr char kUsage[] =
    "usage: hub upload PATH --repo ORG/NAME [--repo_type=model|dataset] [--path_in_repo=P] "
    "[--commit_message=M] [--private]\n       hub whoami";

int Fail(const absl::Status& status) {
  std::cerr << "hub: " << status.message() << "\n";
  return 1;
}

int Upload(const std::string& path) {
  if (absl::Status s = cf::hub::ValidateRepoId(FLAGS_repo); !s.ok()) {
    std::cerr << "hub: --repo: " << s.message() << "\n" << kUsage << "\n";
    return 2;
  }
  auto type = cf::hub::ParseRepoType(FLAGS_repo_type);
  if (!type.ok()) {
    std::cerr << "hub: --repo_type: " << type.status().message() << "\n";
    return 2;
  }
  const cf::hub::RepoId repo{FLAGS_repo, *type};
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool is_dir = fs::is_directory(path, ec);
  if (!is_dir && !fs::is_regular_file(path, ec)) {
    return Fail(absl::NotFoundError(absl::StrCat(path, " is neither a file nor a folder")));
  }
  const std::string name = fs::path(path).lexically_normal().filename().string();
  const std::string message = FLAGS_commit_message.empty()
                                  ? absl::StrCat("Upload ", name, " with ConvForever")
                                  : FLAGS_commit_message;
  cf::hub::HubClient client(cf::hub::HubClientOptions::FromEnvironment());
  if (absl::Status s = client.CreateRepo(repo, FLAGS_private); !s.ok()) return Fail(s);
  absl::StatusOr<cf::hub::UploadResult> result =
      is_dir ? cf::hub::UploadFolder(client, path, repo, FLAGS_path_in_repo, message)
             : cf::hub::UploadFiles(
                   client, repo,
                   {{path, FLAGS_path_in_repo.empty() ? name : FLAGS_path_in_repo}}, message);
  if (!result.ok()) return Fail(result.status());
  std::cout << "uploaded " << result->regular_files + result->lfs_files << " files ("
            << result->lfs_files << " through LFS, " << result->bytes << " bytes) to "
            << repo.Describe() << ": " << result->commit.commit_url << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (cf::base::PrintHelpIfAsked(argc, argv, kUsage, "convforever/hub/main.cc")) return 0;
  gflags::SetUsageMessage(kUsage);
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "upload" && argc == 3) return Upload(argv[2]);
  if (command == "whoami" && argc == 2) {
    cf::hub::HubClient client(cf::hub::HubClientOptions::FromEnvironment());
    auto who = client.Whoami();
    if (!who.ok()) return Fail(who.status());
    std::cout << who->name;
    for (const std::string& org : who->orgs) std::cout << " " << org;
    std::cout << "\n";
    return 0;
  }
  std::cerr << kUsage << "\n";
  return 2;
}
