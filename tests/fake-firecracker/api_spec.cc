#include "api_spec.h"

#include <sstream>

namespace nfc::fakefc {
namespace {

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// serde's names for what it expected, close enough for the messages tests read.
std::string Describe(const nlohmann::json& v) {
  if (v.is_string()) return "string \"" + v.get<std::string>() + "\"";
  if (v.is_boolean()) return std::string("boolean `") + (v.get<bool>() ? "true" : "false") + "`";
  if (v.is_number_integer()) return "integer `" + v.dump() + "`";
  if (v.is_number()) return "floating point `" + v.dump() + "`";
  if (v.is_null()) return "null";
  if (v.is_array()) return "sequence";
  return "map";
}

}  // namespace

Result<ApiSpec> ApiSpec::Load(const std::string& yaml_path) {
  ApiSpec spec;
  try {
    spec.root_ = YAML::LoadFile(yaml_path);
    spec.version_ = spec.root_["info"]["version"].as<std::string>();
    if (!spec.root_["paths"] || !spec.root_["definitions"]) {
      return Error::InvalidArgument(yaml_path + ": not a swagger document with paths and definitions");
    }
  } catch (const YAML::Exception& e) {
    return Error::InvalidArgument("load spec " + yaml_path + ": " + e.what());
  }
  return spec;
}

bool ApiSpec::HasDefinition(const std::string& name) const {
  return static_cast<bool>(root_["definitions"][name]);
}

YAML::Node ApiSpec::Resolve(const YAML::Node& schema) const {
  YAML::Node s = schema;
  for (int depth = 0; depth < 8 && s && s["$ref"]; depth++) {
    std::string ref = s["$ref"].as<std::string>();
    const std::string prefix = "#/definitions/";
    if (ref.rfind(prefix, 0) != 0) break;
    s = root_["definitions"][ref.substr(prefix.size())];
  }
  return s;
}

std::optional<ApiOperation> ApiSpec::Match(const std::string& method, const std::string& path) const {
  auto want = Split(path);
  for (const auto& entry : root_["paths"]) {
    std::string tmpl = entry.first.as<std::string>();
    auto parts = Split(tmpl);
    if (parts.size() != want.size()) continue;
    std::map<std::string, std::string> params;
    bool ok = true;
    for (size_t i = 0; i < parts.size() && ok; i++) {
      if (parts[i].size() > 2 && parts[i].front() == '{' && parts[i].back() == '}') {
        params[parts[i].substr(1, parts[i].size() - 2)] = want[i];
      } else if (parts[i] != want[i]) {
        ok = false;
      }
    }
    if (!ok) continue;
    YAML::Node op = entry.second[Lower(method)];
    if (!op) return std::nullopt;
    ApiOperation result;
    result.method = Upper(method);
    result.path_template = tmpl;
    result.path_params = std::move(params);
    for (const auto& p : op["parameters"]) {
      if (p["in"] && p["in"].as<std::string>() == "body") {
        result.has_body = true;
        result.body_required = p["required"] && p["required"].as<bool>();
        result.body_schema = Resolve(p["schema"]);
      }
    }
    return result;
  }
  return std::nullopt;
}

std::string ApiSpec::ValidateBody(const ApiOperation& op, const nlohmann::json& body) const {
  if (!op.has_body) return "";
  return Validate(op.body_schema, body, "");
}

std::string ApiSpec::Validate(const YAML::Node& raw, const nlohmann::json& v,
                              const std::string& where) const {
  YAML::Node s = Resolve(raw);
  if (!s) return "";
  std::string at = where.empty() ? "" : " at `" + where + "`";
  std::string type = s["type"] ? s["type"].as<std::string>() : (s["properties"] ? "object" : "");
  if (type == "object") {
    if (!v.is_object()) return "invalid type: " + Describe(v) + ", expected struct" + at;
    bool additional = s["additionalProperties"] && s["additionalProperties"].IsScalar() &&
                      s["additionalProperties"].as<std::string>() == "true";
    YAML::Node props = s["properties"];
    if (!additional) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!props || !props[it.key()]) {
          std::string expected;
          if (props) {
            for (const auto& p : props)
              expected += (expected.empty() ? "`" : ", `") + p.first.as<std::string>() + "`";
          }
          return "unknown field `" + it.key() + "`, expected one of " + expected + at;
        }
      }
    }
    for (const auto& r : s["required"]) {
      std::string name = r.as<std::string>();
      if (!v.contains(name)) return "missing field `" + name + "`" + at;
    }
    if (props) {
      for (const auto& p : props) {
        std::string name = p.first.as<std::string>();
        if (!v.contains(name)) continue;
        // serde's Option<T> accepts null for fields that are not required.
        if (v[name].is_null()) continue;
        std::string err = Validate(p.second, v[name], where.empty() ? name : where + "." + name);
        if (!err.empty()) return err;
      }
    }
    return "";
  }
  if (type == "string") {
    if (!v.is_string()) return "invalid type: " + Describe(v) + ", expected a string" + at;
    if (s["enum"]) {
      std::string expected;
      for (const auto& e : s["enum"]) {
        std::string option = e.as<std::string>();
        if (option == v.get<std::string>()) return "";
        expected += (expected.empty() ? "`" : ", `") + option + "`";
      }
      return "unknown variant `" + v.get<std::string>() + "`, expected one of " + expected + at;
    }
    return "";
  }
  if (type == "integer") {
    if (!v.is_number_integer()) return "invalid type: " + Describe(v) + ", expected an integer" + at;
    if (v.is_number_unsigned() || v.get<long long>() >= 0) {
      // Firecracker's integers are unsigned Rust types.
    } else {
      return "invalid value: integer `" + v.dump() + "`, expected an unsigned integer" + at;
    }
    long long n =
        v.is_number_unsigned() ? static_cast<long long>(v.get<unsigned long long>()) : v.get<long long>();
    if (s["minimum"] && n < s["minimum"].as<long long>()) {
      return "invalid value: integer `" + v.dump() + "`, below the minimum " +
             s["minimum"].as<std::string>() + at;
    }
    if (s["maximum"] && n > s["maximum"].as<long long>()) {
      return "invalid value: integer `" + v.dump() + "`, above the maximum " +
             s["maximum"].as<std::string>() + at;
    }
    return "";
  }
  if (type == "number") {
    if (!v.is_number()) return "invalid type: " + Describe(v) + ", expected a number" + at;
    return "";
  }
  if (type == "boolean") {
    if (!v.is_boolean()) return "invalid type: " + Describe(v) + ", expected a boolean" + at;
    return "";
  }
  if (type == "array") {
    if (!v.is_array()) return "invalid type: " + Describe(v) + ", expected a sequence" + at;
    for (size_t i = 0; i < v.size(); i++) {
      std::string err = Validate(s["items"], v[i], where + "[" + std::to_string(i) + "]");
      if (!err.empty()) return err;
    }
    return "";
  }
  return "";
}

}  // namespace nfc::fakefc
