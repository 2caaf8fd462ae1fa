#include "convforever/http/multi_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <map>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "convforever/http/curl_transfer.h"

namespace cf::http {

namespace {

struct Job {
  Request request;
  MultiClient::Callback done;
  int attempt = 0;  // attempts finished
  absl::Time started;  // of the attempt on the wire
  std::unique_ptr<internal::CurlTransfer> transfer;
  // A hedged request and its copy share this: each retries on its own; the first to finish for
  // good reports, and the other is dropped when it next finishes or is about to start.
  struct Hedge {
    bool done = false;
  };
  std::shared_ptr<Hedge> hedge;  // null: not hedged
};

}  // namespace

class MultiClient::Engine {
 public:
  explicit Engine(MultiClientOptions options);
  ~Engine() { curl_multi_cleanup(multi_); }

  void Run();  // the engine thread's body; returns after RequestStop()
  void RequestStop();
  void Submit(std::unique_ptr<Job> job);
  void Wait();
  int64_t outstanding();

  std::atomic<int64_t> attempts{0};
  std::atomic<int64_t> retries{0};
  std::atomic<int64_t> hedges{0};
  std::atomic<bool> halted{false};

 private:
  void Complete(std::unique_ptr<Job> job, absl::StatusOr<Response> outcome);
  void CancelWaiting(const char* why);  // everything not on the wire
  absl::Duration StartReady();          // returns the limiter's wait if it held a start back
  bool DrainFinished();                 // true if a transfer finished
  void Finished(CURL* easy, CURLcode code);
  int PollTimeoutMs(absl::Duration limiter_wait);
  // Attempts on the wire that count toward max_in_flight (stragglers beyond the cap count too);
  // `next` gets when the next one turns into a straggler.
  int Busy(absl::Time now, absl::Time* next);

  const MultiClientOptions options_;
  CURLM* multi_;
  std::mutex mu_;
  std::condition_variable idle_;
  std::deque<std::unique_ptr<Job>> incoming_;  // guarded by mu_
  int64_t outstanding_ = 0;                     // guarded by mu_
  bool stop_ = false;                           // guarded by mu_
  bool stopped_ = false;                        // guarded by mu_

  // Engine thread only.
  std::deque<std::unique_ptr<Job>> ready_;
  std::multimap<absl::Time, std::unique_ptr<Job>> delayed_;  // retries waiting for their time
  std::map<CURL*, std::unique_ptr<Job>> active_;
  std::vector<std::unique_ptr<internal::CurlTransfer>> free_transfers_;
  int consecutive_429s_ = 0;
  double mean_latency_s_ = 0;  // running mean of finished attempts (stragglers' threshold)
  absl::Time next_straggler_ = absl::InfiniteFuture();
  int busy_ = 0;  // Busy() as of the last StartReady
  absl::BitGen rng_;
};

MultiClient::Engine::Engine(MultiClientOptions options) : options_(std::move(options)) {
  EnsureCurlInitialized();
  multi_ = curl_multi_init();
  const long wire = options_.max_in_flight * (options_.straggler_after == absl::InfiniteDuration() ? 1 : 2);
  const long host_conns = options_.max_host_connections > 0 ? options_.max_host_connections : wire;
  curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, host_conns);
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, wire);
}

void MultiClient::Engine::RequestStop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  curl_multi_wakeup(multi_);
}

void MultiClient::Engine::Submit(std::unique_ptr<Job> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopped_ && !stop_ && !halted.load()) {
      incoming_.push_back(std::move(job));
      ++outstanding_;
    }
  }
  if (job != nullptr) {  // not accepted: shut down or halted
    job->done(absl::CancelledError(absl::StrCat(job->request.Describe(), ": client shut down or halted")));
    return;
  }
  curl_multi_wakeup(multi_);
}

void MultiClient::Engine::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_.wait(lock, [this] { return outstanding_ == 0; });
}

int64_t MultiClient::Engine::outstanding() {
  std::lock_guard<std::mutex> lock(mu_);
  return outstanding_;
}

void MultiClient::Engine::Complete(std::unique_ptr<Job> job, absl::StatusOr<Response> outcome) {
  if (job->transfer != nullptr) free_transfers_.push_back(std::move(job->transfer));
  if (job->hedge != nullptr) {
    if (job->hedge->done) return;  // its sibling reported already
    job->hedge->done = true;
    // The sibling still on the wire (the straggler, usually) is dropped now rather than holding
    // a connection until its timeout.
    for (auto it = active_.begin(); it != active_.end();) {
      if (it->second->hedge == job->hedge) {
        curl_multi_remove_handle(multi_, it->first);
        it = active_.erase(it);
      } else {
        ++it;
      }
    }
  }
  job->done(std::move(outcome));
  std::lock_guard<std::mutex> lock(mu_);
  if (--outstanding_ == 0) idle_.notify_all();
}

void MultiClient::Engine::CancelWaiting(const char* why) {
  std::vector<std::unique_ptr<Job>> waiting;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& job : incoming_) waiting.push_back(std::move(job));
    incoming_.clear();
  }
  for (auto& job : ready_) waiting.push_back(std::move(job));
  ready_.clear();
  for (auto& [t, job] : delayed_) waiting.push_back(std::move(job));
  delayed_.clear();
  for (auto& job : waiting) {
    const std::string what = job->request.Describe();
    Complete(std::move(job), absl::CancelledError(absl::StrCat(what, ": ", why)));
  }
}

int MultiClient::Engine::Busy(absl::Time now, absl::Time* next) {
  *next = absl::InfiniteFuture();
  if (options_.straggler_after == absl::InfiniteDuration()) return static_cast<int>(active_.size());
  const absl::Duration after = std::max(
      options_.straggler_after, absl::Seconds(options_.straggler_latency_multiple * mean_latency_s_));
  int stragglers = 0;
  for (const auto& [easy, job] : active_) {
    if (now - job->started < after) {
      *next = std::min(*next, job->started + after);
      continue;
    }
    ++stragglers;
    // Hedge it once: a copy starts first in line (as a retry would, from the retry budget).
    if (options_.hedge_stragglers && job->hedge == nullptr &&
        (options_.retry_budget == nullptr || options_.retry_budget->TryConsumeRetry())) {
      auto copy = std::make_unique<Job>();
      copy->request = job->request;
      copy->done = job->done;
      copy->attempt = job->attempt;
      job->hedge = copy->hedge = std::make_shared<Job::Hedge>();
      hedges.fetch_add(1);
      ready_.push_front(std::move(copy));
    }
  }
  return static_cast<int>(active_.size()) - std::min(stragglers, options_.max_in_flight);
}

absl::Duration MultiClient::Engine::StartReady() {
  // Due retries go ahead of requests not yet started (in due order): behind a full queue they
  // would wait for all of it and start long after their hint.
  const absl::Time now = absl::Now();
  std::vector<std::unique_ptr<Job>> due;
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    due.push_back(std::move(delayed_.begin()->second));
    delayed_.erase(delayed_.begin());
  }
  for (auto it = due.rbegin(); it != due.rend(); ++it) ready_.push_front(std::move(*it));
  busy_ = Busy(now, &next_straggler_);
  while (busy_ < options_.max_in_flight && !ready_.empty()) {
    if (options_.rate_limiter != nullptr) {
      const absl::Duration wait = options_.rate_limiter->TryAcquire();
      if (wait > absl::ZeroDuration()) return wait;
    }
    std::unique_ptr<Job> job = std::move(ready_.front());
    ready_.pop_front();
    if (job->hedge != nullptr && job->hedge->done) continue;  // its sibling already reported
    if (!free_transfers_.empty()) {
      job->transfer = std::move(free_transfers_.back());
      free_transfers_.pop_back();
    } else {
      job->transfer = std::make_unique<internal::CurlTransfer>();
    }
    absl::Status prepared = job->transfer->Prepare(&job->request);
    if (!prepared.ok()) {
      Complete(std::move(job), prepared);
      continue;
    }
    attempts.fetch_add(1);
    if (options_.retry_budget != nullptr) options_.retry_budget->RecordRequest();
    CURL* easy = job->transfer->easy();
    job->started = absl::Now();
    next_straggler_ = std::min(next_straggler_, job->started + options_.straggler_after);
    ++busy_;
    curl_multi_add_handle(multi_, easy);
    active_.emplace(easy, std::move(job));
  }
  return absl::InfiniteDuration();
}

void MultiClient::Engine::Finished(CURL* easy, CURLcode code) {
  curl_multi_remove_handle(multi_, easy);
  auto it = active_.find(easy);
  if (it == active_.end()) return;  // a hedged sibling dropped while its message was queued
  std::unique_ptr<Job> job = std::move(it->second);
  active_.erase(it);
  absl::StatusOr<Response> outcome = job->transfer->Finish(code);
  ++job->attempt;
  if (job->hedge != nullptr && job->hedge->done) {  // the sibling won: nothing to report
    free_transfers_.push_back(std::move(job->transfer));
    return;
  }
  if (outcome.ok() && outcome->ok()) {  // answers only: a timeout says nothing about the usual latency
    const double latency_s = absl::ToDoubleSeconds(absl::Now() - job->started);
    mean_latency_s_ = mean_latency_s_ == 0 ? latency_s : 0.95 * mean_latency_s_ + 0.05 * latency_s;
  }
  if (outcome.ok()) {
    outcome->attempts = job->attempt;
    consecutive_429s_ = outcome->status == 429 ? consecutive_429s_ + 1 : 0;
  }
  const bool retry = options_.retry.has_value() && job->attempt < std::max(1, options_.retry->max_attempts) &&
                     ShouldRetry(*options_.retry, outcome) &&
                     (options_.retry_budget == nullptr || options_.retry_budget->TryConsumeRetry());
  if (retry) {
    retries.fetch_add(1);
    const absl::Time t = absl::Now();
    const absl::Duration delay = RetryDelay(*options_.retry, job->attempt - 1, outcome, t, rng_);
    if (options_.pause_limiter_on_429 && options_.rate_limiter != nullptr && outcome.ok() &&
        outcome->status == 429 && consecutive_429s_ >= std::max(1, options_.pause_after_consecutive_429s)) {
      options_.rate_limiter->PauseFor(delay);
    }
    free_transfers_.push_back(std::move(job->transfer));
    delayed_.emplace(t + delay, std::move(job));
    return;
  }
  if (!outcome.ok() && job->attempt > 1) {
    outcome = absl::Status(outcome.status().code(),
                           absl::StrCat(outcome.status().message(), " (after ", job->attempt, " attempts)"));
  }
  const bool halt = options_.halt_on && options_.halt_on(outcome);
  Complete(std::move(job), std::move(outcome));
  if (halt && !halted.exchange(true)) CancelWaiting("halted after a fatal answer");
}

bool MultiClient::Engine::DrainFinished() {
  int running = 0;
  curl_multi_perform(multi_, &running);
  int queued = 0;
  bool any = false;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &queued)) {
    if (msg->msg != CURLMSG_DONE) continue;
    Finished(msg->easy_handle, msg->data.result);
    any = true;
  }
  return any;
}

int MultiClient::Engine::PollTimeoutMs(absl::Duration limiter_wait) {
  absl::Duration timeout = absl::Seconds(1);
  long curl_ms = -1;
  curl_multi_timeout(multi_, &curl_ms);
  if (curl_ms >= 0) timeout = std::min(timeout, absl::Milliseconds(curl_ms));
  if (!delayed_.empty()) timeout = std::min(timeout, delayed_.begin()->first - absl::Now());
  if (!ready_.empty() && busy_ < options_.max_in_flight) {
    timeout = std::min(timeout, limiter_wait);
  }
  // With a full house and work waiting, wake when the oldest attempt turns into a straggler.
  if (!ready_.empty()) timeout = std::min(timeout, next_straggler_ - absl::Now());
  timeout = absl::Ceil(std::max(timeout, absl::ZeroDuration()), absl::Milliseconds(1));
  return static_cast<int>(absl::ToInt64Milliseconds(timeout));
}

void MultiClient::Engine::Run() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (!incoming_.empty()) {
        ready_.push_back(std::move(incoming_.front()));
        incoming_.pop_front();
      }
      if (stop_) break;
    }
    const absl::Duration limiter_wait = StartReady();
    if (DrainFinished()) continue;  // slots freed: start more before sleeping
    // Sleep until curl, a due retry or the limiter needs us (Submit and stop wake us early).
    curl_multi_poll(multi_, nullptr, 0, PollTimeoutMs(limiter_wait), nullptr);
  }
  // Shutdown: whatever has not finished is cancelled.
  std::vector<std::unique_ptr<Job>> on_wire;
  for (auto& [easy, job] : active_) {
    curl_multi_remove_handle(multi_, easy);
    on_wire.push_back(std::move(job));
  }
  active_.clear();
  for (auto& job : on_wire) {
    const std::string what = job->request.Describe();
    Complete(std::move(job), absl::CancelledError(absl::StrCat(what, ": client shut down")));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  CancelWaiting("client shut down");
}

MultiClient::MultiClient(MultiClientOptions options) {
  options.max_in_flight = std::max(1, options.max_in_flight);
  engine_ = std::make_unique<Engine>(std::move(options));
  thread_ = std::thread([this] { engine_->Run(); });
}

MultiClient::~MultiClient() { Shutdown(); }

void MultiClient::Shutdown() {
  engine_->RequestStop();
  if (thread_.joinable()) thread_.join();
}

void MultiClient::Submit(Request request, Callback done) {
  auto job = std::make_unique<Job>();
  job->request = std::move(request);
  job->done = std::move(done);
  engine_->Submit(std::move(job));
}

std::future<absl::StatusOr<Response>> MultiClient::Submit(Request request) {
  auto promise = std::make_shared<std::promise<absl::StatusOr<Response>>>();
  auto future = promise->get_future();
  Submit(std::move(request),
         [promise](absl::StatusOr<Response> outcome) { promise->set_value(std::move(outcome)); });
  return future;
}

void MultiClient::Wait() { engine_->Wait(); }
int64_t MultiClient::attempts() const { return engine_->attempts.load(); }
int64_t MultiClient::retries() const { return engine_->retries.load(); }
int64_t MultiClient::hedges() const { return engine_->hedges.load(); }
int64_t MultiClient::outstanding() const { return engine_->outstanding(); }
bool MultiClient::halted() const { return engine_->halted.load(); }

}  // namespace cf::http
