#include "driver/config_reader.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace nfc::driver {
namespace {

bool IsDecimalText(std::string_view s, bool* has_fraction) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) i++;
  size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') i++, digits++;
  *has_fraction = false;
  if (i < s.size() && s[i] == '.') {
    i++;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (s[i] != '0') *has_fraction = true;
      i++, digits++;
    }
  }
  return digits > 0 && i == s.size();
}

}  // namespace

Result<int64_t> CtyNumberToInt64(const CtyValue& value) {
  switch (value.kind()) {
    case CtyValue::Kind::kInt:
      return value.as_int();
    case CtyValue::Kind::kUint:
      return Error::InvalidArgument("too large");
    case CtyValue::Kind::kFloat: {
      double d = value.as_float();
      if (std::isinf(d) || d != std::floor(d)) return Error::InvalidArgument("not a whole number");
      if (d < -9.2e18 || d > 9.2e18) return Error::InvalidArgument("too large");
      return static_cast<int64_t>(d);
    }
    case CtyValue::Kind::kString: {
      // cty sends numbers that are not exact float64 values as decimal text ("0.1", "100000000000000000000").
      const std::string& s = value.as_string();
      bool fraction = false;
      if (!IsDecimalText(s, &fraction)) return Error::InvalidArgument("not a number");
      if (fraction) return Error::InvalidArgument("not a whole number");
      std::string whole = s.substr(0, s.find('.'));
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(whole.c_str(), &end, 10);
      if (errno == ERANGE) return Error::InvalidArgument("too large");
      return static_cast<int64_t>(v);
    }
    default:
      return Error::InvalidArgument("not a number");
  }
}

Result<double> CtyNumberToDouble(const CtyValue& value) {
  switch (value.kind()) {
    case CtyValue::Kind::kInt:
      return static_cast<double>(value.as_int());
    case CtyValue::Kind::kUint:
      return static_cast<double>(value.as_uint());
    case CtyValue::Kind::kFloat:
      return value.as_float();
    case CtyValue::Kind::kString: {
      bool fraction = false;
      if (!IsDecimalText(value.as_string(), &fraction)) return Error::InvalidArgument("not a number");
      return std::strtod(value.as_string().c_str(), nullptr);
    }
    default:
      return Error::InvalidArgument("not a number");
  }
}

Status ConfigReader::CheckObject() const {
  if (root_.kind() != CtyValue::Kind::kMap) {
    return Error::InvalidArgument(what_ + " must be an object, got " + std::string(root_.KindName()) + " " +
                                  root_.Describe());
  }
  return Ok();
}

Error ConfigReader::Invalid(std::string_view key, const CtyValue& value, std::string_view problem) const {
  return Error::InvalidArgument(what_ + " option \"" + std::string(key) + "\" = " + value.Describe() + ": " +
                                std::string(problem));
}

Error ConfigReader::Invalid(std::string_view key, std::string_view problem) const {
  return Error::InvalidArgument(what_ + " option \"" + std::string(key) + "\": " + std::string(problem));
}

Result<const CtyValue*> ConfigReader::Block(std::string_view key) {
  const CtyValue* v = Get(key);
  if (v == nullptr) return v;
  const CtyValue* object = v;
  if (v->kind() == CtyValue::Kind::kList && v->as_list().size() == 1) object = &v->as_list()[0];
  if (object->kind() != CtyValue::Kind::kMap) {
    return Invalid(key, *v, "expected one " + std::string(key) + " block");
  }
  return object;
}

const CtyValue* ConfigReader::Get(std::string_view key) {
  consumed_.emplace(key);
  const CtyValue* v = root_.Find(key);
  if (v == nullptr || v->is_null()) return nullptr;
  return v;
}

Result<std::optional<std::string>> ConfigReader::String(std::string_view key) {
  const CtyValue* v = Get(key);
  if (v == nullptr) return std::optional<std::string>();
  if (v->kind() != CtyValue::Kind::kString) return Invalid(key, *v, "expected a string");
  return std::optional<std::string>(v->as_string());
}

Result<std::optional<int64_t>> ConfigReader::Integer(std::string_view key, int64_t min, int64_t max) {
  const CtyValue* v = Get(key);
  if (v == nullptr) return std::optional<int64_t>();
  const std::string range =
      "expected a whole number from " + std::to_string(min) + " to " + std::to_string(max);
  Result<int64_t> n = CtyNumberToInt64(*v);
  if (!n.ok() || *n < min || *n > max) return Invalid(key, *v, range);
  return std::optional<int64_t>(*n);
}

Result<std::optional<bool>> ConfigReader::Bool(std::string_view key) {
  const CtyValue* v = Get(key);
  if (v == nullptr) return std::optional<bool>();
  if (v->kind() != CtyValue::Kind::kBool) return Invalid(key, *v, "expected true or false");
  return std::optional<bool>(v->as_bool());
}

Result<std::optional<std::vector<std::string>>> ConfigReader::StringList(std::string_view key) {
  const CtyValue* v = Get(key);
  if (v == nullptr) return std::optional<std::vector<std::string>>();
  if (v->kind() != CtyValue::Kind::kList) return Invalid(key, *v, "expected a list of strings");
  std::vector<std::string> out;
  for (const CtyValue& item : v->as_list()) {
    if (item.kind() != CtyValue::Kind::kString) {
      return Invalid(
          key, *v,
          "expected a list of strings; element " + item.Describe() + " is a " + std::string(item.KindName()));
    }
    out.push_back(item.as_string());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Status ConfigReader::RejectUnknown() const {
  if (root_.kind() != CtyValue::Kind::kMap) return Ok();
  for (const auto& [key, value] : root_.as_map()) {
    if (consumed_.find(key) == consumed_.end()) {
      return Error::InvalidArgument(what_ + " has an unknown option \"" + key + "\" = " + value.Describe());
    }
  }
  return Ok();
}

}  // namespace nfc::driver
