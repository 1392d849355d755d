// QmpClient: the QEMU Machine Protocol over a unix socket (vmm.md 6.4).
//
// Connect() reads the greeting and negotiates capabilities; Execute() sends one command and returns its
// "return" value, or an Error carrying QMP's error class and description. Asynchronous events that arrive in
// between are kept and can be taken with TakeEvents(). Not thread-safe: one caller at a time.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc::vmm::qemu {

class QmpClient {
 public:
  QmpClient() = default;

  // Connects to `path`, retrying until `timeout` while the socket does not exist or refuses.
  Status Connect(const std::string& path, std::chrono::milliseconds timeout);
  // Talks QMP over an already connected socket: reads the greeting, negotiates capabilities (tests, fuzzing).
  Status Handshake(UniqueFd fd, std::chrono::steady_clock::time_point deadline);
  bool connected() const { return fd_.valid(); }
  void Close() { fd_.Reset(); }

  // The QEMU version from the greeting, e.g. "7.2.22".
  const std::string& version() const { return version_; }

  Result<nlohmann::json> Execute(const std::string& command, const nlohmann::json& arguments = nullptr,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Execute() with `fd` passed along (SCM_RIGHTS), as `getfd` and `add-fd` expect: QEMU then holds a copy.
  Result<nlohmann::json> ExecuteWithFd(const std::string& command, const nlohmann::json& arguments, int fd,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Reads whatever is buffered without blocking (events after QEMU exited are still readable).
  void DrainEvents();
  std::vector<nlohmann::json> TakeEvents();

 private:
  Result<nlohmann::json> ReadMessage(std::chrono::steady_clock::time_point deadline);
  Status ParseBuffered(bool* got, nlohmann::json* out);
  Status Send(const std::string& command, const std::string& line, int fd);
  Result<nlohmann::json> Answer(const std::string& command, long id, std::chrono::milliseconds timeout);

  UniqueFd fd_;
  std::string buffer_;
  std::string version_;
  std::vector<nlohmann::json> events_;
  long next_id_ = 1;
};

}  // namespace nfc::vmm::qemu
