// ApiSpec: Firecracker's swagger 2.0 API description (specs/firecracker-api-v*.yaml) as a request validator.
//
// Match() finds the operation for a method and path ("/drives/{drive_id}" templates); ValidateBody() checks a
// JSON body against the operation's body schema the way Firecracker's serde structs do: required fields,
// types, enums, minimum/maximum, and unknown fields refused (deny_unknown_fields) unless the schema says
// additionalProperties. Messages imitate Firecracker's so tests see what the real VMM would answer.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"

namespace nfc::fakefc {

struct ApiOperation {
  std::string method;                              // "PUT"
  std::string path_template;                       // "/drives/{drive_id}"
  std::map<std::string, std::string> path_params;  // filled by Match: {"drive_id": "rootfs"}
  bool has_body = false;
  bool body_required = false;
  YAML::Node body_schema;  // resolved $ref
};

class ApiSpec {
 public:
  static Result<ApiSpec> Load(const std::string& yaml_path);

  const std::string& version() const { return version_; }
  // nullopt: no such path or no such method on it.
  std::optional<ApiOperation> Match(const std::string& method, const std::string& path) const;
  // Empty string: valid. Otherwise Firecracker-style fault text.
  std::string ValidateBody(const ApiOperation& op, const nlohmann::json& body) const;
  // True if the definition exists in this version (e.g. "SerialDevice" only from 1.14).
  bool HasDefinition(const std::string& name) const;

 private:
  std::string Validate(const YAML::Node& schema, const nlohmann::json& value, const std::string& where) const;
  YAML::Node Resolve(const YAML::Node& schema) const;
  YAML::Node root_;
  std::string version_;
};

}  // namespace nfc::fakefc
