#include "api_spec.h"

#include <charconv>
#include <climits>
#include <cstdio>
#include <regex>
#include <set>
#include <sstream>

namespace nfc::fakefc {
namespace {

const std::set<std::string> kTypes = {"object", "string", "integer", "number", "boolean", "array"};
// Everything else (pattern, allOf, maxLength, x-nullable...) would be silently ignored, so Load refuses it.
const std::set<std::string> kKeywords = {
    "type", "description", "properties", "required", "enum",    "format",  "default",
    "$ref", "readOnly",    "items",      "example",  "minimum", "maximum", "additionalProperties"};
const std::set<std::string> kMethods = {"get", "put", "patch", "post", "delete"};
const std::string kRefPrefix = "#/definitions/";

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

std::string SchemaType(const YAML::Node& s) {
  if (s["type"]) return s["type"].as<std::string>();
  return s["properties"] ? "object" : "";
}

// An integer bound from the spec, kept as sign + magnitude so comparing it with a u64 cannot wrap.
struct IntBound {
  bool negative = false;
  unsigned long long magnitude = 0;
};

std::optional<IntBound> ParseIntBound(const std::string& text) {
  IntBound b;
  const char* first = text.data();
  const char* last = text.data() + text.size();
  if (first != last && *first == '-') {
    b.negative = true;
    first++;
  }
  auto [end, ec] = std::from_chars(first, last, b.magnitude);
  if (ec != std::errc() || end != last || first == last) return std::nullopt;
  return b;
}

std::optional<double> ParseNumber(const std::string& text) {
  double d = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return d;
}

bool IsTrue(const YAML::Node& n) {
  return n.IsScalar() && n.as<std::string>() == "true";
}
bool IsFalse(const YAML::Node& n) {
  return n.IsScalar() && n.as<std::string>() == "false";
}

}  // namespace

Result<ApiSpec> ApiSpec::Load(const std::string& yaml_path) {
  ApiSpec spec;
  try {
    spec.root_ = YAML::LoadFile(yaml_path);
    if (!spec.root_.IsMap() || !spec.root_["paths"].IsMap() || !spec.root_["definitions"].IsMap() ||
        !spec.root_["info"]["version"]) {
      return Error::InvalidArgument(yaml_path +
                                    ": not a swagger document with info.version, paths and "
                                    "definitions");
    }
    spec.version_ = spec.root_["info"]["version"].as<std::string>();
    if (std::sscanf(spec.version_.c_str(), "%d.%d", &spec.major_, &spec.minor_) != 2) {
      return Error::InvalidArgument(yaml_path + ": info.version \"" + spec.version_ + "\" is not N.N.N");
    }
    spec.ApplyErrata();
    std::string err = spec.CheckSpec();
    if (!err.empty()) return Error::InvalidArgument(yaml_path + ": " + err);
  } catch (const YAML::Exception& e) {
    return Error::InvalidArgument("load spec " + yaml_path + ": " + e.what());
  } catch (const std::regex_error& e) {
    return Error::InvalidArgument("load spec " + yaml_path + ": bad format pattern: " + e.what());
  }
  return spec;
}

// Known contradictions in the published specs, each resolved the way Firecracker itself reads the body.
// Anything not listed here that contradicts itself fails CheckSpec.
void ApiSpec::ApplyErrata() {
  YAML::Node cpu = root_["definitions"]["CpuConfig"];
  if (cpu && cpu["type"] && cpu["type"].as<std::string>() == "string" && cpu["properties"]) {
    // 1.7.0 and 1.10.1 declare it `type: string` with object properties typed `object`, while Firecracker
    // takes a JSON object whose modifiers are arrays (a custom CPU template). The fake accepts any object.
    root_["definitions"]["CpuConfig"] = YAML::Load("{type: object, additionalProperties: true}");
    errata_.push_back("definitions/CpuConfig: `type: string` with properties read as any JSON object");
  }
}

bool ApiSpec::AtLeast(int major, int minor) const {
  return major_ > major || (major_ == major && minor_ >= minor);
}

std::string ApiSpec::CheckSpec() const {
  for (const auto& def : root_["definitions"]) {
    std::string err = CheckSchema(def.second, "definitions/" + def.first.as<std::string>());
    if (!err.empty()) return err;
  }
  for (const auto& path : root_["paths"]) {
    if (!path.second.IsMap()) return "path " + path.first.as<std::string>() + " is not a map";
    for (const auto& op : path.second) {
      std::string method = op.first.as<std::string>();
      std::string where = Upper(method) + " " + path.first.as<std::string>();
      if (!kMethods.count(method)) return "unsupported key `" + method + "` in path " + where;
      std::string err = CheckOperation(op.second, where);
      if (!err.empty()) return err;
    }
  }
  return "";
}

std::string ApiSpec::CheckOperation(const YAML::Node& op, const std::string& where) const {
  if (!op.IsMap()) return where + ": operation is not a map";
  for (const auto& p : op["parameters"]) {
    std::string in = p["in"] ? p["in"].as<std::string>() : "";
    if (in == "body") {
      if (!p["schema"]) return where + ": body parameter without a schema";
      std::string err = CheckSchema(p["schema"], where + " body");
      if (!err.empty()) return err;
    } else if (in != "path" || !p["type"] || p["type"].as<std::string>() != "string") {
      // Path IDs are the only other parameters Firecracker has; anything else would go unchecked.
      return where + ": unsupported parameter (in: " + in + ")";
    }
  }
  if (!op["responses"].IsMap() || op["responses"].size() == 0) return where + ": no responses";
  for (const auto& r : op["responses"]) {
    if (!r.second["schema"]) continue;
    std::string err = CheckSchema(r.second["schema"], where + " response " + r.first.as<std::string>());
    if (!err.empty()) return err;
  }
  return "";
}

std::string ApiSpec::CheckSchema(const YAML::Node& s, const std::string& where) const {
  if (!s.IsMap()) return "schema at " + where + " is not a map";
  for (const auto& kv : s) {
    std::string key = kv.first.as<std::string>();
    if (!kKeywords.count(key)) return "unsupported keyword `" + key + "` at " + where;
  }
  if (s["$ref"]) {
    YAML::Node target;  // the definition itself is checked on its own
    std::string err = Resolve(s, &target);
    return err.empty() ? "" : err + " at " + where;
  }
  std::string type = SchemaType(s);
  if (!kTypes.count(type)) return "unknown type `" + type + "` at " + where;
  if (s["properties"]) {
    if (type != "object" || !s["properties"].IsMap()) return "properties on a non-object at " + where;
    for (const auto& p : s["properties"]) {
      std::string err = CheckSchema(p.second, where + "." + p.first.as<std::string>());
      if (!err.empty()) return err;
    }
  }
  for (const auto& r : s["required"]) {
    std::string name = r.as<std::string>();
    if (!s["properties"] || !s["properties"][name])
      return "required `" + name + "` is no property at " + where;
  }
  if (const YAML::Node& ap = s["additionalProperties"]; ap && !IsTrue(ap) && !IsFalse(ap)) {
    std::string err = CheckSchema(ap, where + "{}");
    if (!err.empty()) return err;
  }
  if ((type == "array") != static_cast<bool>(s["items"])) return "array needs exactly its items at " + where;
  if (s["items"]) {
    std::string err = CheckSchema(s["items"], where + "[]");
    if (!err.empty()) return err;
  }
  if (s["enum"] && (type != "string" || !s["enum"].IsSequence())) return "enum on a non-string at " + where;
  if (s["format"]) {
    std::string format = s["format"].as<std::string>();
    if (type == "integer" && format != "int32" && format != "int64") {
      return "unknown integer format `" + format + "` at " + where;
    }
    if (type == "string") std::regex check(format);  // the specs use it as a pattern (MMDS ipv4_address)
    if (type != "integer" && type != "string") return "format on a " + type + " at " + where;
  }
  for (const char* bound : {"minimum", "maximum"}) {
    if (!s[bound]) continue;
    std::string text = s[bound].as<std::string>();
    bool ok = type == "integer" ? ParseIntBound(text).has_value()
                                : type == "number" && ParseNumber(text).has_value();
    if (!ok) return std::string(bound) + " `" + text + "` does not fit type " + type + " at " + where;
  }
  return "";
}

std::string ApiSpec::Resolve(const YAML::Node& schema, YAML::Node* out) const {
  YAML::Node s;
  s.reset(schema);  // reset, not =: assigning a yaml-cpp node would overwrite the spec's own node
  for (int depth = 0; depth < 8; depth++) {
    if (!s.IsDefined() || s.IsNull()) return "spec error: no schema";
    if (!s.IsMap() || !s["$ref"]) {
      out->reset(s);
      return "";
    }
    std::string ref = s["$ref"].as<std::string>();
    if (ref.rfind(kRefPrefix, 0) != 0) return "spec error: unresolved $ref `" + ref + "`";
    const YAML::Node& definitions = root_["definitions"];
    YAML::Node target = definitions[ref.substr(kRefPrefix.size())];
    if (!target) return "spec error: unresolved $ref `" + ref + "`";
    s.reset(target);
  }
  return "spec error: $ref chain deeper than 8";
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
    const YAML::Node& methods = entry.second;
    YAML::Node op = methods[Lower(method)];
    if (!op) return std::nullopt;
    ApiOperation result;
    result.method = Upper(method);
    result.path_template = tmpl;
    result.path_params = std::move(params);
    result.responses.reset(op["responses"]);
    for (const auto& p : op["parameters"]) {
      if (p["in"] && p["in"].as<std::string>() == "body") {
        result.has_body = true;
        result.body_required = p["required"] && p["required"].as<bool>();
        result.body_schema.reset(p["schema"]);
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

std::string ApiSpec::ValidateResponse(const ApiOperation& op, int status, const std::string& body) const {
  std::string what = "status " + std::to_string(status) + " to " + op.method + " " + op.path_template;
  YAML::Node response;
  for (const auto& r : op.responses) {
    if (r.first.as<std::string>() == std::to_string(status)) response.reset(r.second);
  }
  if (!response) {
    for (const auto& r : op.responses) {
      if (r.first.as<std::string>() == "default") response.reset(r.second);
    }
  }
  if (!response) return what + ": the spec lists no such answer";
  if (!response["schema"]) return body.empty() ? "" : what + ": the spec gives no body, the answer has one";
  if (body.empty()) return what + ": the spec gives a body, the answer has none";
  std::string err = ValidateJsonText(response["schema"], body);
  return err.empty() ? "" : what + ": " + err;
}

std::string ApiSpec::ValidateFault(const std::string& body) const {
  YAML::Node error_ref = YAML::Load("$ref: \"#/definitions/Error\"");
  return ValidateJsonText(error_ref, body);
}

std::string ApiSpec::ValidateJsonText(const YAML::Node& schema, const std::string& body) const {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body);
  } catch (const nlohmann::json::exception& e) {
    return std::string("body is not JSON: ") + e.what();
  }
  return Validate(schema, j, "");
}

std::string ApiSpec::Validate(const YAML::Node& raw, const nlohmann::json& v,
                              const std::string& where) const {
  YAML::Node resolved;
  std::string at = where.empty() ? "" : " at `" + where + "`";
  std::string err = Resolve(raw, &resolved);
  if (!err.empty()) return err + at;
  const YAML::Node& s = resolved;
  std::string type = SchemaType(s);
  if (type == "object") return ValidateObject(s, v, where);
  if (type == "integer") return ValidateInteger(s, v, where);
  if (type == "number") return ValidateNumber(s, v, where);
  if (type == "string") {
    if (!v.is_string()) return "invalid type: " + Describe(v) + ", expected a string" + at;
    std::string text = v.get<std::string>();
    if (s["format"] && !std::regex_match(text, std::regex(s["format"].as<std::string>()))) {
      return "invalid value: string \"" + text + "\", expected the format " + s["format"].as<std::string>() +
             at;
    }
    if (!s["enum"]) return "";
    std::string expected;
    for (const auto& e : s["enum"]) {
      std::string option = e.as<std::string>();
      if (option == text) return "";
      expected += (expected.empty() ? "`" : ", `") + option + "`";
    }
    return "unknown variant `" + text + "`, expected one of " + expected + at;
  }
  if (type == "boolean") {
    if (!v.is_boolean()) return "invalid type: " + Describe(v) + ", expected a boolean" + at;
    return "";
  }
  if (type == "array") {
    if (!v.is_array()) return "invalid type: " + Describe(v) + ", expected a sequence" + at;
    for (size_t i = 0; i < v.size(); i++) {
      err = Validate(s["items"], v[i], where + "[" + std::to_string(i) + "]");
      if (!err.empty()) return err;
    }
    return "";
  }
  return "spec error: unknown type `" + type + "`" + at;
}

std::string ApiSpec::ValidateObject(const YAML::Node& s, const nlohmann::json& v,
                                    const std::string& where) const {
  std::string at = where.empty() ? "" : " at `" + where + "`";
  if (!v.is_object()) return "invalid type: " + Describe(v) + ", expected struct" + at;
  const YAML::Node& props = s["properties"];
  const YAML::Node& additional = s["additionalProperties"];
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (props && props[it.key()]) continue;
    if (additional && IsTrue(additional)) continue;
    if (additional && !IsFalse(additional)) {
      std::string err = Validate(additional, it.value(), where.empty() ? it.key() : where + "." + it.key());
      if (!err.empty()) return err;
      continue;
    }
    std::string expected;
    for (const auto& p : props)
      expected += (expected.empty() ? "`" : ", `") + p.first.as<std::string>() + "`";
    return "unknown field `" + it.key() + "`, expected one of " + expected + at;
  }
  std::set<std::string> required;
  for (const auto& r : s["required"]) required.insert(r.as<std::string>());
  for (const auto& name : required) {
    if (!v.contains(name)) return "missing field `" + name + "`" + at;
  }
  for (const auto& p : props) {
    std::string name = p.first.as<std::string>();
    if (!v.contains(name)) continue;
    // serde's Option<T> takes null for a field that is not required; a required (non-Option) field does not.
    if (v[name].is_null() && !required.count(name)) continue;
    std::string err = Validate(p.second, v[name], where.empty() ? name : where + "." + name);
    if (!err.empty()) return err;
  }
  return "";
}

std::string ApiSpec::ValidateInteger(const YAML::Node& s, const nlohmann::json& v,
                                     const std::string& where) const {
  std::string at = where.empty() ? "" : " at `" + where + "`";
  // Firecracker's integers are unsigned Rust types; format int32 is a u32 there, anything else up to a u64.
  bool narrow = s["format"] && s["format"].as<std::string>() == "int32";
  std::string expected = narrow ? "u32" : "u64";
  if (!v.is_number_integer()) return "invalid type: " + Describe(v) + ", expected " + expected + at;
  if (!v.is_number_unsigned() && v.get<long long>() < 0) {
    return "invalid value: integer `" + v.dump() + "`, expected " + expected + at;
  }
  unsigned long long n = v.get<unsigned long long>();
  if (narrow && n > UINT32_MAX) return "invalid value: integer `" + v.dump() + "`, expected u32" + at;
  if (s["minimum"]) {
    IntBound min = *ParseIntBound(s["minimum"].as<std::string>());  // Load checked it parses
    if (!min.negative && n < min.magnitude) {
      return "invalid value: integer `" + v.dump() + "`, below the minimum " +
             s["minimum"].as<std::string>() + at;
    }
  }
  if (s["maximum"]) {
    IntBound max = *ParseIntBound(s["maximum"].as<std::string>());
    if (max.negative || n > max.magnitude) {
      return "invalid value: integer `" + v.dump() + "`, above the maximum " +
             s["maximum"].as<std::string>() + at;
    }
  }
  return "";
}

std::string ApiSpec::ValidateNumber(const YAML::Node& s, const nlohmann::json& v,
                                    const std::string& where) const {
  std::string at = where.empty() ? "" : " at `" + where + "`";
  if (!v.is_number()) return "invalid type: " + Describe(v) + ", expected f64" + at;
  double d = v.get<double>();
  auto bound = [&](const char* key) { return s[key] ? ParseNumber(s[key].as<std::string>()) : std::nullopt; };
  if (auto min = bound("minimum"); min && d < *min) {
    return "invalid value: " + Describe(v) + ", below the minimum " + s["minimum"].as<std::string>() + at;
  }
  if (auto max = bound("maximum"); max && d > *max) {
    return "invalid value: " + Describe(v) + ", above the maximum " + s["maximum"].as<std::string>() + at;
  }
  return "";
}

}  // namespace nfc::fakefc
