#include "shim/exit_record.h"

#include <nlohmann/json.hpp>

#include "base/fs.h"

namespace nfc::shim {

Status WriteExitRecord(const std::string& path, const ExitResult& result) {
  nlohmann::json j = {
      {"version", kExitRecordVersion},
      {"exit_code", result.exit_code},
      {"signal", result.signal},
      {"oom_killed", result.oom_killed},
      {"err", result.err},
      {"completed_at_unix_nanos", result.completed_at_unix_nanos},
  };
  // error_handler::replace: an err message carrying invalid UTF-8 (e.g. a console excerpt) must not throw.
  std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  NFC_RETURN_IF_ERROR_CTX(fs::WriteFileDurably(path, text, 0600), "write exit record");
  return Ok();
}

Result<std::optional<ExitResult>> ReadExitRecord(const std::string& path) {
  auto read = fs::ReadFile(path, 1 << 20);
  if (!read.ok()) {
    if (read.error().code() == ErrorCode::kNotFound) return std::optional<ExitResult>();
    if (read.error().code() == ErrorCode::kResourceExhausted)
      return Error::DataLoss("exit record " + path + " is larger than 1 MiB");
    return std::move(read).error().Context("read exit record");
  }
  const std::string& text = *read;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Error::DataLoss("exit record " + path + " is not a JSON object");
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer() || version->get<int>() != kExitRecordVersion) {
    return Error::DataLoss("exit record " + path + ": unsupported version (want " +
                           std::to_string(kExitRecordVersion) + ")");
  }
  ExitResult r;
  try {
    r.exit_code = j.at("exit_code").get<int>();
    r.signal = j.at("signal").get<int>();
    r.oom_killed = j.at("oom_killed").get<bool>();
    r.err = j.at("err").get<std::string>();
    r.completed_at_unix_nanos = j.at("completed_at_unix_nanos").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    return Error::DataLoss("exit record " + path + ": " + e.what());
  }
  return std::optional<ExitResult>(std::move(r));
}

}  // namespace nfc::shim
