#include "convforever/http/multi_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <map>
#include <queue>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "convforever/http/curl_transfer.h"

namespace cf::http {

struct MultiClient::Job {
  Request request;
  Callback done;
  int attempt = 0;  // attempts finished
  std::unique_ptr<internal::CurlTransfer> transfer;
};

struct MultiClient::Impl {
  CURLM* multi = nullptr;
  std::mutex mu;
  std::condition_variable idle;
  std::deque<std::unique_ptr<Job>> incoming;  // guarded by mu
  int64_t outstanding = 0;                     // guarded by mu
  bool stop = false;                           // guarded by mu
  bool stopped = false;                        // guarded by mu

  // Engine thread only.
  std::deque<std::unique_ptr<Job>> ready;
  std::multimap<absl::Time, std::unique_ptr<Job>> delayed;
  std::map<CURL*, std::unique_ptr<Job>> active;
  std::vector<std::unique_ptr<internal::CurlTransfer>> free_transfers;
  absl::BitGen rng;
};

MultiClient::MultiClient(MultiClientOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  EnsureCurlInitialized();
  options_.max_in_flight = std::max(1, options_.max_in_flight);
  impl_->multi = curl_multi_init();
  const long host_conns = options_.max_host_connections > 0 ? options_.max_host_connections
                                                            : options_.max_in_flight;
  curl_multi_setopt(impl_->multi, CURLMOPT_MAX_HOST_CONNECTIONS, host_conns);
  curl_multi_setopt(impl_->multi, CURLMOPT_MAXCONNECTS, static_cast<long>(options_.max_in_flight));
  thread_ = std::thread([this] { Loop(); });
}

MultiClient::~MultiClient() {
  Shutdown();
  curl_multi_cleanup(impl_->multi);
}

void MultiClient::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->stop) {
      // Already stopping; fall through to join if this is the first caller to get here.
    }
    impl_->stop = true;
  }
  curl_multi_wakeup(impl_->multi);
  if (thread_.joinable()) thread_.join();
}

void MultiClient::Submit(Request request, Callback done) {
  auto job = std::make_unique<Job>();
  job->request = std::move(request);
  job->done = std::move(done);
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->stopped && !impl_->stop && !halted_.load()) {
      impl_->incoming.push_back(std::move(job));
      ++impl_->outstanding;
    }
  }
  if (job != nullptr) {  // not accepted: the engine is shut down
    job->done(absl::CancelledError(absl::StrCat(job->request.Describe(), ": client shut down")));
    return;
  }
  curl_multi_wakeup(impl_->multi);
}

std::future<absl::StatusOr<Response>> MultiClient::Submit(Request request) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<Response>>>();
  auto future = promise->get_future();
  Submit(std::move(request),
         [promise](absl::StatusOr<Response> outcome) { promise->set_value(std::move(outcome)); });
  return future;
}

void MultiClient::Wait() {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->idle.wait(lock, [this] { return impl_->outstanding == 0; });
}

int64_t MultiClient::outstanding() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->outstanding;
}

void MultiClient::Loop() {
  Impl& s = *impl_;
  auto complete = [&](std::unique_ptr<Job> job, absl::StatusOr<Response> outcome) {
    if (job->transfer != nullptr) s.free_transfers.push_back(std::move(job->transfer));
    job->done(std::move(outcome));
    std::lock_guard<std::mutex> lock(s.mu);
    if (--s.outstanding == 0) s.idle.notify_all();
  };

  // Halt: every request not on the wire is cancelled now.
  auto cancel_waiting = [&]() {
    std::vector<std::unique_ptr<Job>> waiting;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      for (auto& job : s.incoming) waiting.push_back(std::move(job));
      s.incoming.clear();
    }
    for (auto& job : s.ready) waiting.push_back(std::move(job));
    s.ready.clear();
    for (auto& [t, job] : s.delayed) waiting.push_back(std::move(job));
    s.delayed.clear();
    for (auto& job : waiting) {
      const std::string what = job->request.Describe();
      complete(std::move(job), absl::CancelledError(absl::StrCat(what, ": halted after a fatal answer")));
    }
  };

  for (;;) {
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      while (!s.incoming.empty()) {
        s.ready.push_back(std::move(s.incoming.front()));
        s.incoming.pop_front();
      }
      stopping = s.stop;
    }
    if (stopping) break;

    // Due retries join the ready queue.
    absl::Time now = absl::Now();
    while (!s.delayed.empty() && s.delayed.begin()->first <= now) {
      s.ready.push_back(std::move(s.delayed.begin()->second));
      s.delayed.erase(s.delayed.begin());
    }

    // Start what the in-flight cap and the limiter allow.
    absl::Duration limiter_wait = absl::InfiniteDuration();
    while (static_cast<int>(s.active.size()) < options_.max_in_flight && !s.ready.empty()) {
      if (options_.rate_limiter != nullptr) {
        const absl::Duration wait = options_.rate_limiter->TryAcquire();
        if (wait > absl::ZeroDuration()) {
          limiter_wait = wait;
          break;
        }
      }
      std::unique_ptr<Job> job = std::move(s.ready.front());
      s.ready.pop_front();
      if (!s.free_transfers.empty()) {
        job->transfer = std::move(s.free_transfers.back());
        s.free_transfers.pop_back();
      } else {
        job->transfer = std::make_unique<internal::CurlTransfer>();
      }
      absl::Status prepared = job->transfer->Prepare(&job->request);
      if (!prepared.ok()) {
        complete(std::move(job), prepared);
        continue;
      }
      attempts_.fetch_add(1);
      if (options_.retry_budget != nullptr) options_.retry_budget->RecordRequest();
      CURL* easy = job->transfer->easy();
      curl_multi_add_handle(s.multi, easy);
      s.active.emplace(easy, std::move(job));
    }

    int running = 0;
    curl_multi_perform(s.multi, &running);
    int queued = 0;
    bool finished_any = false;
    while (CURLMsg* msg = curl_multi_info_read(s.multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      const CURLcode code = msg->data.result;
      curl_multi_remove_handle(s.multi, easy);
      auto it = s.active.find(easy);
      std::unique_ptr<Job> job = std::move(it->second);
      s.active.erase(it);
      finished_any = true;
      absl::StatusOr<Response> outcome = job->transfer->Finish(code);
      ++job->attempt;
      if (outcome.ok()) outcome->attempts = job->attempt;
      const bool retry = options_.retry.has_value() &&
                         job->attempt < std::max(1, options_.retry->max_attempts) &&
                         ShouldRetry(*options_.retry, outcome) &&
                         (options_.retry_budget == nullptr || options_.retry_budget->TryConsumeRetry());
      if (retry) {
        retries_.fetch_add(1);
        const absl::Time t = absl::Now();
        const absl::Duration delay = RetryDelay(*options_.retry, job->attempt - 1, outcome, t, s.rng);
        if (options_.pause_limiter_on_429 && options_.rate_limiter != nullptr && outcome.ok() &&
            outcome->status == 429) {
          options_.rate_limiter->PauseFor(delay);
        }
        s.free_transfers.push_back(std::move(job->transfer));
        s.delayed.emplace(t + delay, std::move(job));
        continue;
      }
      if (!outcome.ok() && job->attempt > 1) {
        outcome = absl::Status(outcome.status().code(),
                               absl::StrCat(outcome.status().message(), " (after ", job->attempt,
                                            " attempts)"));
      }
      const bool halt = options_.halt_on && options_.halt_on(outcome);
      complete(std::move(job), std::move(outcome));
      if (halt && !halted_.exchange(true)) cancel_waiting();
    }
    if (finished_any) continue;  // free slots: start more before sleeping

    // Sleep until curl, a due retry or the limiter needs us (a Submit wakes us early).
    absl::Duration timeout = absl::Seconds(1);
    long curl_ms = -1;
    curl_multi_timeout(s.multi, &curl_ms);
    if (curl_ms >= 0) timeout = std::min(timeout, absl::Milliseconds(curl_ms));
    if (!s.delayed.empty()) timeout = std::min(timeout, s.delayed.begin()->first - absl::Now());
    if (!s.ready.empty() && static_cast<int>(s.active.size()) < options_.max_in_flight) {
      timeout = std::min(timeout, limiter_wait);
    }
    const int timeout_ms =
        static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(absl::Ceil(
                                                  std::max(timeout, absl::ZeroDuration()),
                                                  absl::Milliseconds(1)))));
    curl_multi_poll(s.multi, nullptr, 0, timeout_ms, nullptr);
  }

  // Shutdown: everything not finished is cancelled.
  std::vector<std::unique_ptr<Job>> leftover;
  for (auto& [easy, job] : s.active) {
    curl_multi_remove_handle(s.multi, easy);
    leftover.push_back(std::move(job));
  }
  s.active.clear();
  for (auto& [t, job] : s.delayed) leftover.push_back(std::move(job));
  s.delayed.clear();
  for (auto& job : s.ready) leftover.push_back(std::move(job));
  s.ready.clear();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    for (auto& job : s.incoming) leftover.push_back(std::move(job));
    s.incoming.clear();
    s.stopped = true;
  }
  for (auto& job : leftover) {
    const std::string what = job->request.Describe();
    complete(std::move(job), absl::CancelledError(absl::StrCat(what, ": client shut down")));
  }
}

}  // namespace cf::http
