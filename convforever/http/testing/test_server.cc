#include "convforever/http/testing/test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace cf::http::testing {

ServerResponse ServerResponse::Json(int status, std::string body) {
  ServerResponse r;
  r.status = status;
  r.headers.Set("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

ServerResponse ServerResponse::Text(int status, std::string body) {
  ServerResponse r;
  r.status = status;
  r.headers.Set("Content-Type", "text/plain");
  r.body = std::move(body);
  return r;
}

namespace {

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

bool SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Buffered reads from one socket.
class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}
  // Reads until `delim` is in the buffer; returns the text before it (consumed with it).
  bool ReadUntil(const std::string& delim, std::string* out) {
    for (;;) {
      const size_t pos = buf_.find(delim);
      if (pos != std::string::npos) {
        *out = buf_.substr(0, pos);
        buf_.erase(0, pos + delim.size());
        return true;
      }
      if (!Fill()) return false;
    }
  }
  bool ReadExactly(size_t n, std::string* out) {
    while (buf_.size() < n) {
      if (!Fill()) return false;
    }
    out->append(buf_, 0, n);
    buf_.erase(0, n);
    return true;
  }

 private:
  bool Fill() {
    char chunk[16384];
    for (;;) {
      const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buf_.append(chunk, static_cast<size_t>(n));
      return true;
    }
  }
  int fd_;
  std::string buf_;
};

// Parses one request off the connection; false when the peer closed or sent garbage.
bool ReadRequest(int fd, Reader& in, ServerRequest* req) {
  std::string head;
  if (!in.ReadUntil("\r\n\r\n", &head)) return false;
  std::vector<std::string> lines = absl::StrSplit(head, "\r\n");
  std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
  if (first.size() < 3) return false;
  req->method = first[0];
  req->path = first[1];
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    req->headers.Add(absl::StripAsciiWhitespace(lines[i].substr(0, colon)),
                     absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  if (auto expect = req->headers.Get("Expect"); expect && absl::EqualsIgnoreCase(*expect, "100-continue")) {
    if (!SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n")) return false;
  }
  const auto te = req->headers.Get("Transfer-Encoding");
  if (te && absl::StrContains(absl::AsciiStrToLower(*te), "chunked")) {
    for (;;) {
      std::string size_line;
      if (!in.ReadUntil("\r\n", &size_line)) return false;
      size_t size = 0;
      const std::string hex(absl::StripAsciiWhitespace(size_line.substr(0, size_line.find(';'))));
      if (hex.empty() || !absl::SimpleHexAtoi(hex, &size)) return false;
      std::string chunk;
      if (size > 0 && !in.ReadExactly(size, &req->body)) return false;
      std::string crlf;
      if (size == 0) {  // trailers end with an empty line
        std::string trailer;
        do {
          if (!in.ReadUntil("\r\n", &trailer)) return false;
        } while (!trailer.empty());
        return true;
      }
      if (!in.ReadUntil("\r\n", &crlf)) return false;
    }
  }
  size_t length = 0;
  if (auto cl = req->headers.Get("Content-Length")) {
    if (!absl::SimpleAtoi(*cl, &length)) return false;
  }
  return length == 0 || in.ReadExactly(length, &req->body);
}

// A HEAD answer carries the headers a GET would (Content-Length of the body) but no body.
std::string Serialize(const ServerResponse& r, bool keep_alive, bool head) {
  std::string out = absl::StrCat("HTTP/1.1 ", r.status, " ", Reason(r.status), "\r\n");
  for (const auto& [name, value] : r.headers.entries()) absl::StrAppend(&out, name, ": ", value, "\r\n");
  absl::StrAppend(&out, "Connection: ", keep_alive ? "keep-alive" : "close", "\r\n");
  if (head) {
    absl::StrAppend(&out, "Content-Length: ", r.body.size(), "\r\n\r\n");
  } else if (r.chunked) {
    absl::StrAppend(&out, "Transfer-Encoding: chunked\r\n\r\n");
    for (size_t i = 0; i < r.body.size(); i += 1000) {
      const absl::string_view piece = absl::string_view(r.body).substr(i, 1000);
      absl::StrAppend(&out, absl::Hex(piece.size()), "\r\n", piece, "\r\n");
    }
    absl::StrAppend(&out, "0\r\n\r\n");
  } else {
    absl::StrAppend(&out, "Content-Length: ", r.body.size(), "\r\n\r\n", r.body);
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TestServer>> TestServer::Start() {
  std::unique_ptr<TestServer> server(new TestServer());
  server->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (server->listen_fd_ < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  const int one = 1;
  ::setsockopt(server->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(server->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(server->listen_fd_, 512) != 0) {
    return absl::InternalError(absl::StrCat("bind/listen on 127.0.0.1: ", strerror(errno)));
  }
  socklen_t len = sizeof(addr);
  ::getsockname(server->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  server->port_ = ntohs(addr.sin_port);
  server->accept_thread_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

TestServer::~TestServer() { Stop(); }

std::string TestServer::base_url() const { return absl::StrCat("http://127.0.0.1:", port_); }

void TestServer::Handle(const std::string& method, const std::string& path_prefix, Handler handler) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Route& r : routes_) {
    if (r.method == method && r.prefix == path_prefix) {
      r.handler = std::move(handler);
      return;
    }
  }
  routes_.push_back(Route{method, path_prefix, std::move(handler)});
}

Handler TestServer::FindHandler(const std::string& method, const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Route* best = nullptr;
  for (const Route& r : routes_) {
    if ((r.method == "*" || r.method == method) && absl::StartsWith(path, r.prefix) &&
        (best == nullptr || r.prefix.size() > best->prefix.size())) {
      best = &r;
    }
  }
  return best != nullptr ? best->handler : Handler();
}

std::vector<ServerRequest> TestServer::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

int64_t TestServer::request_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(log_.size());
}

void TestServer::ClearRequests() {
  std::lock_guard<std::mutex> lock(mu_);
  log_.clear();
}

bool TestServer::SleepUnlessStopped(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !stop_cv_.wait_for(lock, absl::ToChronoNanoseconds(d), [this] { return stopping_.load(); });
}

void TestServer::AcceptLoop() {
  for (;;) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (stopping_.load()) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_.load()) {
      ::close(fd);
      return;
    }
    const int64_t id = connections_.fetch_add(1);
    open_fds_.push_back(fd);
    connection_threads_.emplace_back([this, fd, id] { ServeConnection(fd, id); });
  }
}

void TestServer::ServeConnection(int fd, int64_t connection_id) {
  Reader in(fd);
  for (;;) {
    ServerRequest req;
    if (!ReadRequest(fd, in, &req)) break;
    req.connection_id = connection_id;
    req.received = absl::Now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      req.sequence = static_cast<int64_t>(log_.size());
      log_.push_back(req);
    }
    Handler handler = FindHandler(req.method, req.path);
    ServerResponse resp = handler ? handler(req)
                                  : ServerResponse::Text(404, absl::StrCat("no handler for ", req.method,
                                                                           " ", req.path));
    if (resp.delay > absl::ZeroDuration() && !SleepUnlessStopped(resp.delay)) break;
    if (resp.drop_connection) break;
    const auto conn = req.headers.Get("Connection");
    const bool keep_alive = !resp.close_connection && !(conn && absl::EqualsIgnoreCase(*conn, "close"));
    if (resp.drop_after_bytes >= 0 && !resp.chunked && req.method != "HEAD") {
      const std::string all = Serialize(resp, /*keep_alive=*/false, /*head=*/false);
      const size_t body_at = all.size() - resp.body.size();
      const size_t sent = std::min<size_t>(resp.drop_after_bytes, resp.body.size());
      SendAll(fd, absl::string_view(all).substr(0, body_at + sent));
      break;
    }
    if (!SendAll(fd, Serialize(resp, keep_alive, req.method == "HEAD")) || !keep_alive) break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find(open_fds_.begin(), open_fds_.end(), fd);
  if (it != open_fds_.end()) open_fds_.erase(it);
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

void TestServer::Stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_cv_.notify_all();
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);  // wakes blocked recv()s
  }
  ::shutdown(listen_fd_, SHUT_RDWR);  // wakes accept()
  if (accept_thread_.joinable()) accept_thread_.join();
  ::close(listen_fd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(connection_threads_);
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace cf::http::testing
