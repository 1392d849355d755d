// ApiSpec: Firecracker's swagger 2.0 API description (specs/firecracker-api-v*.yaml) as a request and
// response validator.
//
// Load() refuses a spec the validator could not apply faithfully: an unresolved $ref, a body parameter
// without a schema, an unknown `type`, a keyword it does not enforce (pattern, allOf...), a `required` name
// that is not a property. The one known self-contradiction in the published specs is corrected explicitly
// and reported (errata()). A spec that loads is therefore checked completely; nothing validates as "fine"
// because the validator did not understand it.
//
// Match() finds the operation for a method and path ("/drives/{drive_id}" templates); ValidateBody() checks a
// JSON body against the operation's body schema the way Firecracker's serde structs do: required fields,
// null only for fields that are not required (serde's Option), types, enums, unsigned integers of the
// format's width, minimum/maximum, and unknown fields refused (deny_unknown_fields) unless the schema says
// additionalProperties. Messages imitate Firecracker's so tests see what the real VMM would answer.
// ValidateResponse() checks the fake's own answers against the operation's response schemas.
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
  YAML::Node body_schema;  // as written in the spec (may be a $ref)
  YAML::Node responses;    // status code (or "default") -> {schema?}
};

class ApiSpec {
 public:
  static Result<ApiSpec> Load(const std::string& yaml_path);

  const std::string& version() const { return version_; }
  // True if this spec's version is at least major.minor (state rules that changed between versions).
  bool AtLeast(int major, int minor) const;
  // nullopt: no such path or no such method on it.
  std::optional<ApiOperation> Match(const std::string& method, const std::string& path) const;
  // Empty string: valid. Otherwise Firecracker-style fault text.
  std::string ValidateBody(const ApiOperation& op, const nlohmann::json& body) const;
  // Empty string: the spec allows this answer to `op` (the status is listed or `default` exists; a schema
  // means a JSON body matching it, no schema means no body). Otherwise what is wrong with it.
  std::string ValidateResponse(const ApiOperation& op, int status, const std::string& body) const;
  // Answers to requests that match no operation: the spec's `Error` definition.
  std::string ValidateFault(const std::string& body) const;
  // The spec errors Load corrected (see ApplyErrata), for the fake to announce.
  const std::vector<std::string>& errata() const { return errata_; }

 private:
  void ApplyErrata();
  std::string CheckSpec() const;
  std::string CheckOperation(const YAML::Node& op, const std::string& where) const;
  std::string CheckSchema(const YAML::Node& schema, const std::string& where) const;
  // Follows $ref chains; error text when a reference does not resolve or the schema is missing.
  std::string Resolve(const YAML::Node& schema, YAML::Node* out) const;
  std::string Validate(const YAML::Node& schema, const nlohmann::json& value, const std::string& where) const;
  std::string ValidateObject(const YAML::Node& s, const nlohmann::json& v, const std::string& where) const;
  std::string ValidateInteger(const YAML::Node& s, const nlohmann::json& v, const std::string& where) const;
  std::string ValidateNumber(const YAML::Node& s, const nlohmann::json& v, const std::string& where) const;
  std::string ValidateJsonText(const YAML::Node& schema, const std::string& body) const;
  YAML::Node root_;
  std::string version_;
  int major_ = 0, minor_ = 0;
  std::vector<std::string> errata_;
};

}  // namespace nfc::fakefc
