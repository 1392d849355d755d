// Tests only: an HTTP server on 127.0.0.1 (a free port), one connection at a time, each request answered by a
// handler with raw response bytes; kHang holds the connection open without answering (timeouts).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "base/unique_fd.h"

namespace nfc::init::host::testing {

class LoopbackHttpServer {
 public:
  static constexpr const char* kHang = "<hang>";
  using Handler = std::function<std::string(const std::string& request)>;

  explicit LoopbackHttpServer(Handler h) : handler_(std::move(h)) {
    listen_.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_.get(), 8) != 0 ||
        ::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      std::abort();  // a test server that cannot listen on loopback: nothing to test against
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~LoopbackHttpServer() {
    stop_ = true;
    thread_.join();
  }
  uint16_t port() const { return port_; }
  int requests() const { return requests_; }

 private:
  bool WaitReadable(int fd) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) return true;
    }
    return false;
  }
  void Serve() {
    while (WaitReadable(listen_.get())) {
      UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) continue;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos && WaitReadable(c.get())) {
        ssize_t n = ::read(c.get(), buf, sizeof buf);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      requests_++;
      std::string resp = handler_(req);
      if (resp == kHang) {
        while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return;
      }
      for (size_t sent = 0; sent < resp.size();) {
        ssize_t n = ::send(c.get(), resp.data() + sent, resp.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;  // the client gave up (a refused oversize body)
        sent += static_cast<size_t>(n);
      }
    }
  }

  Handler handler_;
  UniqueFd listen_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

}  // namespace nfc::init::host::testing
