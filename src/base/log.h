// Leveled, structured logging.
//
// Formats: hclog JSON (what the Nomad agent parses from a plugin's stderr, reference 1.5: "@level",
// "@message",
// "@module", "@timestamp" as 2006-01-02T15:04:05.000000Z07:00, plus one key per field) and a human text
// format for the CLI and consoles. Writes go to one fd with a single write(2) per record; a write that fails
// with EPIPE (the agent died and took our stderr pipe with it) disables the sink instead of killing the
// process. Thread-safe.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace nfc::log {

enum class Level { kTrace = 0, kDebug, kInfo, kWarn, kError, kOff };
enum class Format { kJson, kText };

// One key/value of a record. A field remembers whether it was given a string, an integer, a floating-point
// number or a bool, so JSON records carry numbers and booleans as JSON values ("pid":123,
// "oom_killed":false); the text format prints every kind the same way (value as written by std::to_string,
// bools as true/false).
struct Field {
  enum class Kind { kString, kInt, kUint, kFloat, kBool };

  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v ? v : "") {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, bool b) : key(k), value(b ? "true" : "false"), kind(Kind::kBool) {}
  template <typename N>
  requires std::is_integral_v<N> && std::is_signed_v<N> Field(std::string_view k, N n)
      : key(k), value(std::to_string(n)), kind(Kind::kInt), int_value(n) {}
  template <typename N>
  requires std::is_integral_v<N> && std::is_unsigned_v<N> &&
      (!std::is_same_v<N, bool>)Field(std::string_view k, N n)
      : key(k), value(std::to_string(n)), kind(Kind::kUint), uint_value(n) {}
  template <typename N>
  requires std::is_floating_point_v<N> Field(std::string_view k, N n)
      : key(k), value(std::to_string(n)), kind(Kind::kFloat), float_value(n) {}

  std::string key;
  std::string value;  // the text form, for every kind
  Kind kind = Kind::kString;
  long long int_value = 0;
  unsigned long long uint_value = 0;
  double float_value = 0;
};

using Fields = std::initializer_list<Field>;

// Process-wide configuration; call early in main (not thread-safe against concurrent logging).
void Configure(int fd, Format format, Level min_level, std::string module = {});
// Parses "trace|debug|info|warn|error|off" (case-insensitive); unknown -> fallback.
Level ParseLevel(std::string_view name, Level fallback);
Level MinLevel();

void Write(Level level, std::string_view message, Fields fields = {});

inline void Trace(std::string_view m, Fields f = {}) {
  Write(Level::kTrace, m, f);
}
inline void Debug(std::string_view m, Fields f = {}) {
  Write(Level::kDebug, m, f);
}
inline void Info(std::string_view m, Fields f = {}) {
  Write(Level::kInfo, m, f);
}
inline void Warn(std::string_view m, Fields f = {}) {
  Write(Level::kWarn, m, f);
}
inline void Error(std::string_view m, Fields f = {}) {
  Write(Level::kError, m, f);
}

// Formats one record without writing it (used by tests and by sinks other than fds).
std::string FormatRecord(Format format, Level level, std::string_view module, std::string_view message,
                         Fields fields, long long unix_micros);
// "2006-01-02T15:04:05.000000Z" for the given UTC microseconds since the epoch.
std::string HclogTimestamp(long long unix_micros);

}  // namespace nfc::log
