// What the stand-in writes besides API answers, in Firecracker's shapes: the logger's lines
// ("<time> [<id>:<thread>] <message>", the level too with show_level), the metrics sink's JSON objects (one
// per flush: FlushMetrics, every 60 s, at exit), and the API requests a --config-file stands for.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"

namespace nfc::fakefc {

class Sinks {
 public:
  explicit Sinks(std::string id) : id_(std::move(id)) {}

  // PUT /logger accepted (body as given) / PUT /metrics accepted.
  void ConfigureLogger(const nlohmann::json& body);
  void ConfigureMetrics(const std::string& path);

  void Log(const std::string& message, const std::string& level = "Info");
  // Counts one API request by its operation ("PUT /drives/{drive_id}") and whether it failed.
  void CountRequest(const std::string& operation, bool failed);
  // Writes one metrics object now.
  void FlushMetrics();
  // Writes one when the 60 s period is over.
  void MaybeFlushMetrics();

 private:
  std::string id_;
  std::string log_path_;
  bool show_level_ = false;
  std::string metrics_path_;
  nlohmann::json requests_ = nlohmann::json::object();
  std::chrono::steady_clock::time_point next_flush_{};
};

// The API requests (PUT path, body) a Firecracker --config-file stands for, in an order Firecracker accepts
// (machine and boot source, then devices, then MMDS), InstanceStart last. The error names what is wrong.
Result<std::vector<std::pair<std::string, nlohmann::json>>> ConfigFileRequests(const std::string& path);

}  // namespace nfc::fakefc
