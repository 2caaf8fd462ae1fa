#include "convforever/distributed/peer_monitor.h"

#include <chrono>
#include <exception>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cf::distributed {
namespace {

std::string Key(int rank) { return absl::StrCat("cf_heartbeat/", rank); }

}  // namespace

PeerMonitor::PeerMonitor(c10::intrusive_ptr<c10d::Store> store, int rank, int world_size,
                         absl::Duration interval, std::string store_owner)
    : store_(std::move(store)),
      rank_(rank),
      world_size_(world_size),
      interval_(interval),
      store_owner_(std::move(store_owner)) {
  thread_ = std::thread([this] { Run(); });
}

PeerMonitor::~PeerMonitor() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  thread_.join();
}

void PeerMonitor::Run() {
  int64_t beat = 0;
  while (true) {
    try {
      std::lock_guard<std::mutex> lock(store_mu_);
      std::string value = std::to_string(++beat);
      store_->set(Key(rank_), std::vector<uint8_t>(value.begin(), value.end()));
    } catch (const std::exception&) {
      return;  // the store is gone (rank 0 exited, perhaps normally): nothing left to report to
    }
    std::unique_lock<std::mutex> lock(stop_mu_);
    if (stop_cv_.wait_for(lock, absl::ToChronoMilliseconds(interval_), [this] { return stop_; })) {
      return;
    }
  }
}

bool PeerMonitor::ReadCounters(std::vector<std::string>* values, std::string* error) {
  values->assign(world_size_, "");
  try {
    std::lock_guard<std::mutex> lock(store_mu_);
    for (int r = 0; r < world_size_; ++r) {
      if (!store_->check({Key(r)})) continue;  // never joined: stays empty
      std::vector<uint8_t> bytes = store_->get(Key(r));
      (*values)[r] = std::string(bytes.begin(), bytes.end());
    }
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
  return true;
}

std::string PeerMonitor::Diagnose() {
  std::vector<std::string> before, after;
  std::string error;
  if (!ReadCounters(&before, &error)) {
    return absl::StrCat("the rendezvous store (served by ", store_owner_,
                        ") is unreachable, so ", store_owner_, " has probably exited");
  }
  absl::Duration wait = interval_ * 3;
  std::this_thread::sleep_for(absl::ToChronoMilliseconds(wait));
  if (!ReadCounters(&after, &error)) {
    return absl::StrCat("the rendezvous store (served by ", store_owner_,
                        ") became unreachable, so ", store_owner_, " has probably exited");
  }
  std::vector<std::string> culprits;
  for (int r = 0; r < world_size_; ++r) {
    if (r == rank_) continue;
    if (after[r].empty()) {
      culprits.push_back(absl::StrCat("rank ", r, " never joined"));
    } else if (after[r] == before[r]) {
      culprits.push_back(absl::StrCat("rank ", r, " stopped responding (no heartbeat for ",
                                      absl::FormatDuration(wait), ")"));
    }
  }
  if (culprits.empty()) return "all peers still send heartbeats (a slow or stuck peer, or a network fault)";
  return absl::StrJoin(culprits, "; ");
}

}  // namespace cf::distributed
