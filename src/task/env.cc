#include "task/env.h"

namespace nfc::task {
namespace {

Status Check(const std::string& name, const std::string& value, const std::string& source) {
  if (name.empty() || name.find('=') != std::string::npos || name.find('\0') != std::string::npos) {
    return Error::InvalidArgument(source + ": invalid environment variable name \"" + name + "\"");
  }
  if (value.find('\0') != std::string::npos) {
    return Error::InvalidArgument(source + ": value of environment variable " + name +
                                  " contains a NUL byte");
  }
  return Ok();
}

}  // namespace

Result<std::map<std::string, std::string>> TaskEnvOverrides(
    const std::map<std::string, std::string>& task_config_env,
    const std::map<std::string, std::string>& nomad_env) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : task_config_env) {
    NFC_RETURN_IF_ERROR(Check(name, value, "task config env"));
    out[name] = value;
  }
  for (const auto& [name, value] : nomad_env) {
    NFC_RETURN_IF_ERROR(Check(name, value, "Nomad task env"));
    out[name] = value;
  }
  return out;
}

}  // namespace nfc::task
