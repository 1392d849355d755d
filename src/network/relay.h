// Relay: a small single-threaded TCP and UDP port forwarder (epoll), the sidecar bridge between the
// allocation's network namespace and a microVM (docs/networking.md, "Sidecars"): the task shim relays
// 127.0.0.1:<app port> of the namespace to the guest, and the guest's nomad-init relays 127.0.0.1:<upstream
// port> of the guest to the namespace.
//
// Each Forward listens on one IPv4 address and port and relays to one target: TCP byte streams (a new
// connection to the target per accepted one; half-close passed on; a reset or a failed connect closes both
// sides) and UDP datagrams (one session per client address, with its own socket towards the target, ended
// after an idle time). The peer of the target sees the relay's address, not the original client's.
//
// No threads inside, no libraries beyond libc: nomad-init links it statically and runs it in a forked child.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"

namespace nfc::network {

struct Endpoint {
  std::string address;  // IPv4, dotted
  uint16_t port = 0;
  std::string ToString() const { return address + ":" + std::to_string(port); }
};

// "127.0.0.1:8080" → {address, port}; errors name the text.
Result<Endpoint> ParseEndpoint(const std::string& text);

struct Forward {
  Endpoint listen;
  Endpoint target;
  bool tcp = true;
  bool udp = true;
};

struct RelayOptions {
  std::chrono::milliseconds udp_idle{60000};  // a UDP session without datagrams either way ends
  size_t buffer_bytes = 65536;                // per direction of a TCP connection
  size_t max_connections = 4096;              // TCP connections plus UDP sessions; more are refused
};

struct RelayStats {
  uint64_t tcp_accepted = 0, tcp_open = 0, udp_sessions = 0, udp_open = 0;
};

class Relay {
 public:
  // Binds every listener now (so an address in use is an error here, naming the forward), SO_REUSEADDR on
  // TCP listeners. Listeners are close-on-exec.
  static Result<std::unique_ptr<Relay>> Listen(const std::vector<Forward>& forwards,
                                               RelayOptions options = {});
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  // Relays until `stop_fd` (an eventfd or pipe; -1: none) becomes readable, then closes every socket.
  Status Run(int stop_fd);

  RelayStats Stats() const;

  // The port each listener got, in the order of the forwards (tests bind port 0).
  std::vector<uint16_t> ListenPorts() const;

  // Closes every descriptor from 3 up that is not the relay's own (in a forked child).
  void CloseOtherFds() const;

  struct Impl;

 private:
  explicit Relay(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Run in a thread of its own (the task shim, which has threads anyway), stopped and joined on destruction.
class RelayThread {
 public:
  static Result<std::unique_ptr<RelayThread>> Start(const std::vector<Forward>& forwards,
                                                    RelayOptions options = {});
  ~RelayThread();
  RelayThread(const RelayThread&) = delete;
  RelayThread& operator=(const RelayThread&) = delete;
  const Relay& relay() const { return *relay_; }

 private:
  RelayThread() = default;
  std::unique_ptr<Relay> relay_;
  int stop_fd_ = -1;
  std::thread thread_;
};

// Starts Run in a forked child process (for a single-threaded parent such as PID 1: no thread of the parent
// can hold a lock the child needs). The child relays until it is killed (SIGTERM or SIGKILL); the parent's
// copies of the sockets are closed. Returns the child's pid.
Result<pid_t> RunRelayInChild(std::unique_ptr<Relay> relay);

}  // namespace nfc::network
