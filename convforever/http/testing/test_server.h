// TestServer: a small HTTP/1.1 server on 127.0.0.1 (ephemeral port) for tests of HTTP clients.
//
// Register handlers by method and path prefix (the longest matching prefix wins; method "*"
// matches any); a handler gets the parsed request and returns the status, headers and body to
// send, optionally after a delay, chunked, with the connection closed afterwards, with the
// connection dropped instead of answered, or dropped after part of the body (drop_after_bytes).
// Requests without a handler get 404. Every request is logged for assertions (method, path with
// query, headers, body, connection id).
// Supports keep-alive, `Expect: 100-continue`, and Content-Length or chunked request bodies; a
// HEAD answer sends the headers of the handler's response (Content-Length of its body), no body.
// One thread per connection; handlers may run concurrently and must be thread-safe. Stop() (or
// the destructor) closes the listener and every connection, interrupts delays and joins all
// threads. Test-only.
#ifndef CONVFOREVER_HTTP_TESTING_TEST_SERVER_H_
#define CONVFOREVER_HTTP_TESTING_TEST_SERVER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "convforever/http/headers.h"

namespace cf::http::testing {

struct ServerRequest {
  std::string method;
  std::string path;  // as sent: "/v1/chat/completions?x=1"
  Headers headers;
  std::string body;  // de-chunked
  int64_t connection_id = 0;
  int64_t sequence = 0;  // 0-based order of arrival at the server
  absl::Time received;   // when the whole request had arrived
};

struct ServerResponse {
  int status = 200;
  Headers headers;
  std::string body;
  absl::Duration delay = absl::ZeroDuration();  // wait before answering (interrupted by Stop)
  bool drop_connection = false;  // close the socket without answering
  bool chunked = false;          // Transfer-Encoding: chunked instead of Content-Length
  bool close_connection = false; // "Connection: close", then close
  // >= 0: send the headers (announcing the whole body) and only this many body bytes, then
  // close the connection, as a link that drops mid-transfer does. Not with `chunked`.
  int64_t drop_after_bytes = -1;

  static ServerResponse Json(int status, std::string body);
  static ServerResponse Text(int status, std::string body);
};

using Handler = std::function<ServerResponse(const ServerRequest&)>;

class TestServer {
 public:
  // Binds 127.0.0.1:0 and starts accepting.
  static absl::StatusOr<std::unique_ptr<TestServer>> Start();
  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  // Registers (or replaces) the handler for `method` ("GET", ..., or "*") and `path_prefix`.
  void Handle(const std::string& method, const std::string& path_prefix, Handler handler);

  int port() const { return port_; }
  std::string base_url() const;  // "http://127.0.0.1:<port>"

  std::vector<ServerRequest> requests() const;  // copy of the log
  int64_t request_count() const;
  int64_t connection_count() const { return connections_.load(); }
  void ClearRequests();

  // Idempotent.
  void Stop();

 private:
  TestServer() = default;
  void AcceptLoop();
  void ServeConnection(int fd, int64_t connection_id);
  Handler FindHandler(const std::string& method, const std::string& path) const;
  bool SleepUnlessStopped(absl::Duration d);

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> connections_{0};
  std::thread accept_thread_;

  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  struct Route {
    std::string method, prefix;
    Handler handler;
  };
  std::vector<Route> routes_;                 // guarded by mu_
  std::vector<ServerRequest> log_;            // guarded by mu_
  std::vector<int> open_fds_;                 // guarded by mu_
  std::vector<std::thread> connection_threads_;  // guarded by mu_
};

}  // namespace cf::http::testing

#endif  // CONVFOREVER_HTTP_TESTING_TEST_SERVER_H_
