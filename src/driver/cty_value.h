// CtyValue and the cty-msgpack decoder: how Nomad's configuration values reach the plugin.
//
// The Nomad client decodes the agent's `plugin { config {} }` block and each task's `config {}` block with
// the schema we return, and sends the resulting cty value encoded by go-cty's msgpack package (reference
// nomad-plugin-protocol.md 4.2): null as nil, numbers as the smallest int form, as float64, or, when not
// exactly a float64, as a *decimal string*; strings as str8/16/32; lists/sets/tuples as arrays; maps/objects
// as maps with string keys. Unknown values travel as msgpack extensions and are refused here with a clear
// error.
//
// The decoder does not know the schema, so a number sent as decimal text decodes as kString; the typed
// readers in config_reader.h accept such text wherever they expect a number. Values are plain C++ (no msgpack
// types leak).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/error.h"

namespace nfc::driver {

class CtyValue {
 public:
  enum class Kind { kNull, kBool, kInt, kUint, kFloat, kString, kList, kMap };
  using List = std::vector<CtyValue>;
  using Map = std::vector<std::pair<std::string, CtyValue>>;  // wire order; keys unique

  CtyValue() = default;  // null
  static CtyValue Bool(bool b) { return CtyValue(b); }
  static CtyValue Int(int64_t i) { return CtyValue(i); }
  // Only for integers above INT64_MAX; smaller ones are kInt.
  static CtyValue Uint(uint64_t u) { return CtyValue(u); }
  static CtyValue Float(double d) { return CtyValue(d); }
  static CtyValue String(std::string s) { return CtyValue(std::move(s)); }
  static CtyValue MakeList(List items) { return CtyValue(std::move(items)); }
  static CtyValue MakeMap(Map entries) { return CtyValue(std::move(entries)); }

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_null() const { return kind() == Kind::kNull; }
  bool as_bool() const { return std::get<bool>(v_); }
  int64_t as_int() const { return std::get<int64_t>(v_); }
  uint64_t as_uint() const { return std::get<uint64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  const List& as_list() const { return std::get<List>(v_); }
  const Map& as_map() const { return std::get<Map>(v_); }
  // Map lookup; null pointer if absent (or if this is not a map).
  const CtyValue* Find(std::string_view key) const;

  // Compact rendering for error messages: "512", "\"text\"", "[\"a\", 1]", "{\"k\" = \"v\"}", "null".
  std::string Describe() const;
  // "null", "bool", "number", "string", "list", "map".
  std::string_view KindName() const;

  bool operator==(const CtyValue& other) const = default;

 private:
  explicit CtyValue(bool b) : v_(b) {}
  explicit CtyValue(int64_t i) : v_(i) {}
  explicit CtyValue(uint64_t u) : v_(u) {}
  explicit CtyValue(double d) : v_(d) {}
  explicit CtyValue(std::string s) : v_(std::move(s)) {}
  explicit CtyValue(List l) : v_(std::move(l)) {}
  explicit CtyValue(Map m) : v_(std::move(m)) {}

  std::variant<std::monostate, bool, int64_t, uint64_t, double, std::string, List, Map> v_;
};

// Limits that keep hostile or corrupt input from exhausting memory; far above anything a job file produces.
struct CtyDecodeLimits {
  size_t max_depth = 32;
  size_t max_container_entries = 100000;
  size_t max_string_bytes = 4 << 20;
};

// Decodes exactly one msgpack value occupying all of `bytes`. Errors name the problem and its byte offset.
Result<CtyValue> DecodeCtyMsgpack(std::string_view bytes, const CtyDecodeLimits& limits = {});

}  // namespace nfc::driver
