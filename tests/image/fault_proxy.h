// Test stand-in for a misbehaving registry: a plain-HTTP proxy on loopback in front of a real registry
// (Debian's docker-registry), which breaks the responses a test asks it to break. Rules match a part of the
// request path; the first rule that matches and has uses left applies. It can also play a token-auth
// registry (RequireBearer): every /v2/ request then needs the current bearer token, which the proxy's own
// /token realm hands out, and a kExpireToken rule makes the token expire mid-pull.
//
// One connection at a time (enough for one client); every fault is bounded in time, so a client that never
// hangs up cannot keep a test running.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"

namespace nfc::image::testing {

class FaultProxy {
 public:
  enum class Fault {
    kStatus,         // answer `status` with `headers` instead of forwarding
    kTruncate,       // forward half the body, then close
    kReset,          // forward half the body, then reset the connection (RST)
    kStall,          // forward the headers and half the body, then nothing until the client hangs up
    kTrickle,        // forward the body one byte per `interval`
    kContentLength,  // forward the whole body under a Content-Length off by `delta`
    kRewriteBody,    // insert a space after the body's first byte (valid JSON still, another digest)
    kFlipByte,       // change one byte in the middle of the body (same length)
    kExpireToken,    // (RequireBearer) the token expires now: 401 with a challenge
  };
  struct Rule {
    Fault fault = Fault::kStatus;
    std::string path_part;
    int times = -1;                           // matching requests it applies to; -1: every one
    int status = 500;                         // kStatus
    std::string headers;                      // kStatus: extra header lines, each ending in "\r\n"
    int64_t delta = 0;                        // kContentLength
    std::chrono::milliseconds interval{100};  // kTrickle
  };
  struct Seen {
    std::chrono::steady_clock::time_point at;
    std::string path;
    bool faulted = false;
  };

  static Result<std::unique_ptr<FaultProxy>> Start(int upstream_port);
  ~FaultProxy();

  void Add(Rule rule);
  void Clear();
  // Shorthands kept for the older tests: a 500 for the first `count` matches; every match truncated.
  void FailFirst(const std::string& path_part, int count) { Add({Fault::kStatus, path_part, count, 500}); }
  void Truncate(const std::string& path_part) { Add({Fault::kTruncate, path_part}); }
  void RequireBearer();

  int port() const { return port_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  int faults_injected() const;
  int token_requests() const;
  std::vector<Seen> requests() const;
  // Waits (bounded) until the proxy holds no connection, so a test can count its own fds.
  bool WaitIdle(std::chrono::milliseconds limit = std::chrono::seconds(5)) const;

 private:
  struct Request;
  void Serve();
  void Handle(int fd);
  bool Authorized(int fd, const Request& req);
  void Forward(int fd, const Request& req, const Rule* rule);
  void Respond(int fd, const std::string& status, const std::string& headers, const std::string& body);
  std::string Challenge() const;
  bool WaitForHangUp(int fd, std::chrono::seconds limit) const;

  int port_ = 0, upstream_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> busy_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Rule> rules_;
  std::vector<Seen> seen_;
  int injected_ = 0;
  bool bearer_ = false;
  int token_generation_ = 1;
  int token_requests_ = 0;
};

}  // namespace nfc::image::testing
