#include "base/log.h"

#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>

namespace nfc::log {
namespace {

struct Sink {
  std::mutex mu;
  int fd = 2;
  Format format = Format::kText;
  std::atomic<Level> min_level{Level::kInfo};
  std::string module;
  bool broken = false;
};

Sink& TheSink() {
  static Sink* sink = new Sink;  // never destroyed: logging may happen during static destruction
  return *sink;
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kTrace:
      return "trace";
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kOff:
      return "off";
  }
  return "info";
}

std::string_view LevelTag(Level level) {
  switch (level) {
    case Level::kTrace:
      return "[TRACE]";
    case Level::kDebug:
      return "[DEBUG]";
    case Level::kInfo:
      return "[INFO] ";
    case Level::kWarn:
      return "[WARN] ";
    case Level::kError:
      return "[ERROR]";
    case Level::kOff:
      return "";
  }
  return "";
}

nlohmann::ordered_json JsonValue(const Field& f) {
  switch (f.kind) {
    case Field::Kind::kString:
      return f.value;
    case Field::Kind::kInt:
      return f.int_value;
    case Field::Kind::kUint:
      return f.uint_value;
    case Field::Kind::kFloat:
      return f.float_value;  // NaN and infinities become null, which JSON allows
    case Field::Kind::kBool:
      return f.value == "true";
  }
  return f.value;
}

long long NowMicros() {
  struct timeval tv;
  gettimeofday(&tv, nullptr);
  return static_cast<long long>(tv.tv_sec) * 1000000 + tv.tv_usec;
}

}  // namespace

void Configure(int fd, Format format, Level min_level, std::string module) {
  Sink& s = TheSink();
  std::lock_guard lock(s.mu);
  s.fd = fd;
  s.format = format;
  s.min_level = min_level;
  s.module = std::move(module);
  s.broken = false;
}

Level ParseLevel(std::string_view name, Level fallback) {
  static constexpr std::pair<std::string_view, Level> kNames[] = {
      {"trace", Level::kTrace}, {"debug", Level::kDebug}, {"info", Level::kInfo},
      {"warn", Level::kWarn},   {"error", Level::kError}, {"off", Level::kOff}};
  for (const auto& [n, l] : kNames) {
    if (n.size() == name.size() && strncasecmp(n.data(), name.data(), n.size()) == 0) return l;
  }
  return fallback;
}

Level MinLevel() {
  return TheSink().min_level.load();
}

std::string HclogTimestamp(long long unix_micros) {
  time_t secs = static_cast<time_t>(unix_micros / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, unix_micros % 1000000);
  return buf;
}

std::string FormatRecord(Format format, Level level, std::string_view module, std::string_view message,
                         Fields fields, long long unix_micros) {
  if (format == Format::kJson) {
    nlohmann::ordered_json j;
    j["@level"] = LevelName(level);
    j["@message"] = message;
    if (!module.empty()) j["@module"] = module;
    j["@timestamp"] = HclogTimestamp(unix_micros);
    for (const Field& f : fields) j[f.key] = JsonValue(f);
    // Invalid UTF-8 from a peer must not abort logging: replace it.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  std::string line = HclogTimestamp(unix_micros);
  line += ' ';
  line += LevelTag(level);
  line += ' ';
  if (!module.empty()) {
    line += module;
    line += ": ";
  }
  line += message;
  for (const Field& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    bool quote = f.value.empty() || f.value.find_first_of(" \t\"=") != std::string::npos;
    if (quote) line += '"';
    line += f.value;
    if (quote) line += '"';
  }
  line += '\n';
  return line;
}

void Write(Level level, std::string_view message, Fields fields) {
  Sink& s = TheSink();
  if (level < s.min_level.load() || level == Level::kOff) return;
  std::lock_guard lock(s.mu);
  if (s.broken || s.fd < 0) return;
  std::string rec = FormatRecord(s.format, level, s.module, message, fields, NowMicros());
  size_t off = 0;
  while (off < rec.size()) {
    ssize_t n = ::write(s.fd, rec.data() + off, rec.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      // EPIPE: the reader (the Nomad agent) is gone. Stop writing; SIGPIPE is ignored by our binaries.
      s.broken = true;
      return;
    }
    off += static_cast<size_t>(n);
  }
}

}  // namespace nfc::log
