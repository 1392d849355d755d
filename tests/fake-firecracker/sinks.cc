#include "sinks.h"

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>

namespace nfc::fakefc {

void Sinks::ConfigureLogger(const nlohmann::json& body) {
  if (body.contains("log_path") && body["log_path"].is_string())
    log_path_ = body["log_path"].get<std::string>();
  show_level_ =
      body.contains("show_level") && body["show_level"].is_boolean() && body["show_level"].get<bool>();
}

void Sinks::ConfigureMetrics(const std::string& path) {
  metrics_path_ = path;
  next_flush_ = std::chrono::steady_clock::now() + std::chrono::seconds(60);
}

void Sinks::Log(const std::string& message, const std::string& level) {
  if (log_path_.empty()) return;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &utc);
  char nanos[16];
  std::snprintf(nanos, sizeof nanos, ".%09ld", ts.tv_nsec);
  std::ofstream f(log_path_, std::ios::app);
  f << when << nanos << " [" << id_ << ":main" << (show_level_ ? ":" + level : "") << "] " << message << "\n";
}

void Sinks::CountRequest(const std::string& operation, bool failed) {
  requests_[operation] = requests_.value(operation, 0) + 1;
  if (failed) requests_["fails"] = requests_.value("fails", 0) + 1;
}

void Sinks::FlushMetrics() {
  if (metrics_path_.empty()) return;
  next_flush_ = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  nlohmann::json m = {{"utc_timestamp_ms", now_ms.count()}, {"api_server", requests_}};
  std::ofstream f(metrics_path_, std::ios::app);
  f << m.dump() << "\n";
}

void Sinks::MaybeFlushMetrics() {
  if (!metrics_path_.empty() && std::chrono::steady_clock::now() >= next_flush_) FlushMetrics();
}

Result<std::vector<std::pair<std::string, nlohmann::json>>> ConfigFileRequests(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Error::NotFound("cannot open " + path + ": " + std::strerror(errno));
  nlohmann::json cfg = nlohmann::json::parse(f, nullptr, false);
  if (!cfg.is_object()) return Error::InvalidArgument(path + " is not a JSON object");
  if (!cfg.contains("boot-source")) return Error::InvalidArgument("missing field `boot-source`");
  std::vector<std::pair<std::string, nlohmann::json>> calls;
  for (const auto& [key, value] : cfg.items()) {
    if (value.is_null()) continue;
    if (key == "drives" || key == "network-interfaces") {
      if (!value.is_array()) return Error::InvalidArgument("`" + key + "` is not a list");
      const char* id = key == "drives" ? "drive_id" : "iface_id";
      for (const auto& item : value) {
        std::string name =
            item.is_object() && item.contains(id) && item[id].is_string() ? item[id].get<std::string>() : "";
        calls.emplace_back("/" + key + "/" + name, item);
      }
    } else {
      calls.emplace_back(key == "mmds-config" ? "/mmds/config" : "/" + key, value);
    }
  }
  auto rank = [](const std::string& p) {
    if (p == "/mmds/config") return 2;  // names NICs, which must exist first
    return p.rfind("/drives/", 0) == 0 || p.rfind("/network-interfaces/", 0) == 0 ? 1 : 0;
  };
  std::stable_sort(calls.begin(), calls.end(),
                   [&](const auto& x, const auto& y) { return rank(x.first) < rank(y.first); });
  calls.emplace_back("/actions", nlohmann::json{{"action_type", "InstanceStart"}});
  return calls;
}

}  // namespace nfc::fakefc
