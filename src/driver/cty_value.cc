#include "driver/cty_value.h"

#define MSGPACK_NO_BOOST 1
#include <cmath>
#include <cstdio>
#include <exception>
#include <msgpack.hpp>
#include <set>

namespace nfc::driver {
namespace {

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Converts msgpack-cxx's object tree into CtyValue, applying cty's rules.
class Converter {
 public:
  explicit Converter(const CtyDecodeLimits& limits) : limits_(limits) {}

  Result<CtyValue> Convert(const msgpack::object& o, size_t depth, const std::string& path) {
    if (depth > limits_.max_depth) {
      return Error::InvalidArgument("msgpack value at " + path + " nests deeper than " +
                                    std::to_string(limits_.max_depth) + " levels");
    }
    switch (o.type) {
      case msgpack::type::NIL:
        return CtyValue();
      case msgpack::type::BOOLEAN:
        return CtyValue::Bool(o.via.boolean);
      case msgpack::type::POSITIVE_INTEGER:
        if (o.via.u64 > static_cast<uint64_t>(INT64_MAX)) return CtyValue::Uint(o.via.u64);
        return CtyValue::Int(static_cast<int64_t>(o.via.u64));
      case msgpack::type::NEGATIVE_INTEGER:
        return CtyValue::Int(o.via.i64);
      case msgpack::type::FLOAT32:
      case msgpack::type::FLOAT64:
        if (std::isnan(o.via.f64)) return Error::InvalidArgument("msgpack value at " + path + " is NaN");
        return CtyValue::Float(o.via.f64);
      case msgpack::type::STR:
        return CtyValue::String(std::string(o.via.str.ptr, o.via.str.size));
      case msgpack::type::BIN:
        return Error::InvalidArgument(
            "msgpack value at " + path +
            " is binary data; cty-msgpack never sends binary outside a dynamic-type "
            "wrapper, which Nomad does not use");
      case msgpack::type::EXT:
        return Error::InvalidArgument(
            "msgpack value at " + path + " is an extension of type " + std::to_string(o.via.ext.type()) +
            ", which cty uses for values that are not known yet (e.g. an interpolation that could not be "
            "resolved); the configuration must only contain known values");
      case msgpack::type::ARRAY: {
        CtyValue::List items;
        items.reserve(o.via.array.size);
        for (uint32_t i = 0; i < o.via.array.size; i++) {
          NFC_ASSIGN_OR_RETURN(CtyValue item,
                               Convert(o.via.array.ptr[i], depth + 1, path + "[" + std::to_string(i) + "]"));
          items.push_back(std::move(item));
        }
        return CtyValue::MakeList(std::move(items));
      }
      case msgpack::type::MAP: {
        CtyValue::Map entries;
        entries.reserve(o.via.map.size);
        std::set<std::string_view> seen;
        for (uint32_t i = 0; i < o.via.map.size; i++) {
          const msgpack::object_kv& kv = o.via.map.ptr[i];
          if (kv.key.type != msgpack::type::STR) {
            return Error::InvalidArgument("msgpack map at " + path +
                                          " has a key that is not a string (entry " + std::to_string(i) +
                                          ")");
          }
          std::string key(kv.key.via.str.ptr, kv.key.via.str.size);
          if (!seen.insert(std::string_view(kv.key.via.str.ptr, kv.key.via.str.size)).second) {
            return Error::InvalidArgument("msgpack map at " + path + " repeats the key " + Quote(key));
          }
          NFC_ASSIGN_OR_RETURN(CtyValue value, Convert(kv.val, depth + 1, path + "." + key));
          entries.emplace_back(std::move(key), std::move(value));
        }
        return CtyValue::MakeMap(std::move(entries));
      }
    }
    return Error::InvalidArgument("msgpack value at " + path + " has an unsupported type");
  }

 private:
  const CtyDecodeLimits& limits_;
};

}  // namespace

const CtyValue* CtyValue::Find(std::string_view key) const {
  if (kind() != Kind::kMap) return nullptr;
  for (const auto& [k, v] : as_map()) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::string_view CtyValue::KindName() const {
  switch (kind()) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
    case Kind::kUint:
    case Kind::kFloat:
      return "number";
    case Kind::kString:
      return "string";
    case Kind::kList:
      return "list";
    case Kind::kMap:
      return "map";
  }
  return "unknown";
}

std::string CtyValue::Describe() const {
  switch (kind()) {
    case Kind::kNull:
      return "null";
    case Kind::kBool:
      return as_bool() ? "true" : "false";
    case Kind::kInt:
      return std::to_string(as_int());
    case Kind::kUint:
      return std::to_string(as_uint());
    case Kind::kFloat: {
      char buf[64];
      snprintf(buf, sizeof(buf), "%.17g", as_float());
      return buf;
    }
    case Kind::kString:
      return Quote(as_string());
    case Kind::kList: {
      std::string out = "[";
      for (size_t i = 0; i < as_list().size(); i++) {
        if (i > 0) out += ", ";
        out += as_list()[i].Describe();
      }
      return out + "]";
    }
    case Kind::kMap: {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, v] : as_map()) {
        if (!first) out += ", ";
        first = false;
        out += Quote(k) + " = " + v.Describe();
      }
      return out + "}";
    }
  }
  return "?";
}

Result<CtyValue> DecodeCtyMsgpack(std::string_view bytes, const CtyDecodeLimits& limits) {
  if (bytes.empty()) return Error::InvalidArgument("empty msgpack payload (expected one value)");
  const size_t n = limits.max_container_entries;
  msgpack::unpack_limit unpack_limits(n, n, limits.max_string_bytes, limits.max_string_bytes,
                                      limits.max_string_bytes, limits.max_depth + 1);
  msgpack::object_handle handle;
  size_t offset = 0;
  try {
    msgpack::unpack(handle, bytes.data(), bytes.size(), offset, nullptr, nullptr, unpack_limits);
  } catch (const msgpack::insufficient_bytes&) {
    return Error::InvalidArgument("truncated msgpack payload (" + std::to_string(bytes.size()) +
                                  " bytes end inside a value)");
  } catch (const msgpack::depth_size_overflow&) {
    return Error::InvalidArgument("msgpack payload nests deeper than " + std::to_string(limits.max_depth) +
                                  " levels");
  } catch (const msgpack::size_overflow& e) {
    return Error::InvalidArgument(std::string("msgpack payload exceeds decoder limits: ") + e.what());
  } catch (const std::exception& e) {
    return Error::InvalidArgument(std::string("malformed msgpack payload: ") + e.what());
  }
  if (offset != bytes.size()) {
    return Error::InvalidArgument("msgpack payload has " + std::to_string(bytes.size() - offset) +
                                  " trailing bytes after the value (at offset " + std::to_string(offset) +
                                  ")");
  }
  Converter converter(limits);
  return converter.Convert(handle.get(), 0, "$");
}

}  // namespace nfc::driver
