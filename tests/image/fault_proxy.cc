#include "fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <optional>

#include "base/unique_fd.h"

namespace nfc::image::testing {

namespace {

constexpr auto kMaxFaultTime = std::chrono::seconds(20);  // no fault holds a connection longer

UniqueFd ConnectLoopback(int port) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!s || ::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return UniqueFd();
  return s;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool WriteAll(int fd, const std::string& s) {
  return WriteAll(fd, s.data(), s.size());
}

// The value of header `name` in an HTTP head ("" when absent), case-insensitively.
std::string HeaderValue(const std::string& head, const std::string& name) {
  for (size_t pos = head.find("\r\n"); pos != std::string::npos;) {
    size_t end = head.find("\r\n", pos + 2);
    if (end == std::string::npos) break;
    std::string line = head.substr(pos + 2, end - pos - 2);
    if (line.size() > name.size() && line[name.size()] == ':' &&
        strncasecmp(line.c_str(), name.c_str(), name.size()) == 0) {
      size_t v = name.size() + 1;
      while (v < line.size() && line[v] == ' ') ++v;
      return line.substr(v);
    }
    pos = end;
  }
  return "";
}

// Replaces (or adds) a header in an HTTP head that ends in "\r\n\r\n".
std::string SetHeader(std::string head, const std::string& name, const std::string& value) {
  for (size_t pos = head.find("\r\n"); pos != std::string::npos;) {
    size_t end = head.find("\r\n", pos + 2);
    if (end == std::string::npos || end == pos + 2) break;
    if (strncasecmp(head.c_str() + pos + 2, (name + ":").c_str(), name.size() + 1) == 0) {
      head.erase(pos + 2, end - pos - 2);
      head.insert(pos + 2, name + ": " + value);
      return head;
    }
    pos = end;
  }
  head.insert(head.size() - 2, name + ": " + value + "\r\n");
  return head;
}

}  // namespace

struct FaultProxy::Request {
  std::string raw;  // the head as received
  std::string path;
  std::string authorization;
};

Result<std::unique_ptr<FaultProxy>> FaultProxy::Start(int upstream_port) {
  auto p = std::make_unique<FaultProxy>();
  p->upstream_ = upstream_port;
  p->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (p->listen_fd_ < 0 || ::bind(p->listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(p->listen_fd_, 64) != 0) {
    return Error::Errno("fault proxy listen");
  }
  socklen_t len = sizeof a;
  if (::getsockname(p->listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return Error::Errno("fault proxy getsockname");
  }
  p->port_ = ntohs(a.sin_port);
  p->thread_ = std::thread([raw = p.get()] { raw->Serve(); });
  return p;
}

FaultProxy::~FaultProxy() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
}

void FaultProxy::Add(Rule rule) {
  std::lock_guard<std::mutex> l(mu_);
  rules_.push_back(std::move(rule));
}

void FaultProxy::Clear() {
  std::lock_guard<std::mutex> l(mu_);
  rules_.clear();
}

void FaultProxy::RequireBearer() {
  std::lock_guard<std::mutex> l(mu_);
  bearer_ = true;
}

int FaultProxy::faults_injected() const {
  std::lock_guard<std::mutex> l(mu_);
  return injected_;
}

int FaultProxy::token_requests() const {
  std::lock_guard<std::mutex> l(mu_);
  return token_requests_;
}

std::vector<FaultProxy::Seen> FaultProxy::requests() const {
  std::lock_guard<std::mutex> l(mu_);
  return seen_;
}

bool FaultProxy::WaitIdle(std::chrono::milliseconds limit) const {
  auto until = std::chrono::steady_clock::now() + limit;
  while (busy_) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void FaultProxy::Serve() {
  while (!stop_) {
    int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (stop_) return;
      continue;
    }
    busy_ = true;
    timeval tv{5, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    Handle(c);
    ::close(c);
    busy_ = false;
  }
}

std::string FaultProxy::Challenge() const {
  return "WWW-Authenticate: Bearer realm=\"http://" + host() + "/token\",service=\"fault-proxy\"\r\n";
}

void FaultProxy::Respond(int fd, const std::string& status, const std::string& headers,
                         const std::string& body) {
  WriteAll(fd, "HTTP/1.1 " + status + "\r\n" + headers + "Content-Length: " + std::to_string(body.size()) +
                   "\r\nConnection: close\r\n\r\n" + body);
}

// Bearer mode: /token hands out the current token; /v2/ requests without it get a challenge.
bool FaultProxy::Authorized(int fd, const Request& req) {
  std::lock_guard<std::mutex> l(mu_);
  if (!bearer_) return true;
  if (req.path.rfind("/token", 0) == 0) {
    ++token_requests_;
    Respond(fd, "200 OK", "Content-Type: application/json\r\n",
            R"({"token":"tok-)" + std::to_string(token_generation_) + R"(","expires_in":60})");
    return false;
  }
  if (req.authorization != "Bearer tok-" + std::to_string(token_generation_)) {
    Respond(fd, "401 Unauthorized", Challenge() + "Content-Type: application/json\r\n",
            R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})");
    return false;
  }
  return true;
}

bool FaultProxy::WaitForHangUp(int fd, std::chrono::seconds limit) const {
  auto until = std::chrono::steady_clock::now() + limit;
  char buf[512];
  while (!stop_ && std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 50) > 0) {
      ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0 || (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) return true;
    }
  }
  return false;
}

void FaultProxy::Handle(int fd) {
  Request req;
  char buf[65536];
  while (req.raw.find("\r\n\r\n") == std::string::npos && req.raw.size() < sizeof buf) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return;
    req.raw.append(buf, static_cast<size_t>(n));
    if (!std::isupper(static_cast<unsigned char>(req.raw[0]))) return;  // not HTTP (a TLS ClientHello)
  }
  if (req.raw.rfind("GET ", 0) != 0 && req.raw.rfind("HEAD ", 0) != 0) return;
  size_t sp1 = req.raw.find(' '), sp2 = req.raw.find(' ', sp1 + 1);
  req.path = req.raw.substr(sp1 + 1, sp2 - sp1 - 1);
  req.authorization = HeaderValue(req.raw, "Authorization");
  if (!Authorized(fd, req)) return;
  std::optional<Rule> rule;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& r : rules_) {
      if (r.times == 0 || req.path.find(r.path_part) == std::string::npos) continue;
      if (r.times > 0) --r.times;
      ++injected_;
      rule = r;
      break;
    }
    seen_.push_back({std::chrono::steady_clock::now(), req.path, rule.has_value()});
    if (rule && rule->fault == Fault::kExpireToken) ++token_generation_;
  }
  if (rule && rule->fault == Fault::kStatus) {
    const std::string reason = rule->status == 429 ? " Too Many Requests" : " Injected Fault";
    Respond(fd, std::to_string(rule->status) + reason, rule->headers,
            R"({"errors":[{"code":"INJECTED","message":"injected by the test"}]})");
    return;
  }
  if (rule && rule->fault == Fault::kExpireToken) {
    Respond(fd, "401 Unauthorized", Challenge(),
            R"({"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]})");
    return;
  }
  Forward(fd, req, rule ? &*rule : nullptr);
}

void FaultProxy::Forward(int fd, const Request& req, const Rule* rule) {
  std::string upstream_req = req.raw;
  upstream_req.insert(upstream_req.find("\r\n\r\n") + 2, "Connection: close\r\n");
  UniqueFd up = ConnectLoopback(upstream_);
  if (!up || !WriteAll(up.get(), upstream_req)) return;
  std::string resp;
  char buf[65536];
  ssize_t n;
  while ((n = ::recv(up.get(), buf, sizeof buf, 0)) > 0) resp.append(buf, static_cast<size_t>(n));
  size_t split = resp.find("\r\n\r\n");
  if (!rule || split == std::string::npos) {
    WriteAll(fd, resp);
    return;
  }
  std::string head = resp.substr(0, split + 4), body = resp.substr(split + 4);
  const std::string half = body.substr(0, body.size() / 2);
  switch (rule->fault) {
    case Fault::kTruncate:
      WriteAll(fd, head + half);
      return;
    case Fault::kReset: {
      WriteAll(fd, head + half);
      linger lg{1, 0};  // close() now sends RST instead of FIN
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      return;
    }
    case Fault::kStall:
      WriteAll(fd, head + half);
      WaitForHangUp(fd, kMaxFaultTime);
      return;
    case Fault::kTrickle: {
      if (!WriteAll(fd, head)) return;
      auto until = std::chrono::steady_clock::now() + kMaxFaultTime;
      for (char c : body) {
        if (stop_ || std::chrono::steady_clock::now() > until || !WriteAll(fd, &c, 1)) return;
        std::this_thread::sleep_for(rule->interval);
      }
      return;
    }
    case Fault::kContentLength:
      head =
          SetHeader(head, "Content-Length", std::to_string(static_cast<int64_t>(body.size()) + rule->delta));
      WriteAll(fd, head + body);
      return;
    case Fault::kRewriteBody:
      if (!body.empty()) body.insert(1, " ");
      WriteAll(fd, SetHeader(head, "Content-Length", std::to_string(body.size())) + body);
      return;
    case Fault::kFlipByte:
      if (!body.empty()) body[body.size() / 2] ^= 0x20;
      WriteAll(fd, head + body);
      return;
    case Fault::kStatus:
    case Fault::kExpireToken:
      return;  // answered in Handle
  }
}

}  // namespace nfc::image::testing
