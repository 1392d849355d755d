#include "vmm/firecracker/api_client.h"

#include <charconv>

#include "vmm/json_fields.h"

namespace nfc::vmm::firecracker {
Result<FirecrackerVersion> FirecrackerVersion::Parse(std::string_view text) {
  FirecrackerVersion v;
  v.text = std::string(text);
  std::string_view s = text;
  if (!s.empty() && s[0] == 'v') s.remove_prefix(1);
  // MAJOR.MINOR[.PATCH][anything]: from_chars rather than sscanf keeps scanf out of the static shim.
  int* fields[] = {&v.major, &v.minor, &v.patch};
  int parsed = 0;
  const char* p = s.data();
  const char* end = s.data() + s.size();
  for (int* field : fields) {
    if (parsed > 0) {
      if (p == end || *p != '.') break;
      ++p;
    }
    // from_chars takes a sign; a version has none ("1.-1" was accepted as minor -1, found by fuzzing).
    if (p == end || *p < '0' || *p > '9') break;
    auto [next, ec] = std::from_chars(p, end, *field);
    if (ec != std::errc()) break;
    p = next;
    ++parsed;
  }
  if (parsed < 2)
    return Error::InvalidArgument("cannot parse Firecracker version '" + std::string(text) + "'");
  return v;
}

std::string FaultMessage(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  std::string fault = StringMember(j, "fault_message");
  if (!fault.empty()) return fault;
  return body.empty() ? "(empty body)" : std::string(body);
}

ApiClient::ApiClient(std::string socket_path, std::chrono::milliseconds timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout), http_(socket_path_) {}

Result<ApiResponse> ApiClient::Send(std::string_view method, std::string_view path, std::string_view body) {
  auto deadline = std::chrono::steady_clock::now() + timeout_;
  auto r = http_.RoundTrip(method, path, body.empty() ? "" : "application/json", body, deadline);
  if (!r.ok()) return std::move(r).error().Context(std::string(method) + " " + std::string(path));
  ApiResponse out;
  out.status = r->status;
  out.body = std::move(r->body);
  return out;
}

Status ApiClient::Expect204(std::string_view method, std::string_view path, const nlohmann::json& body) {
  NFC_ASSIGN_OR_RETURN(ApiResponse r, Send(method, path, body.dump()));
  if (r.status == 204) return Ok();
  std::string what = std::string(method) + " " + std::string(path);
  Error e(r.status == 400 ? ErrorCode::kInvalidArgument : ErrorCode::kInternal,
          what + ": Firecracker answered " + std::to_string(r.status) + ": " + FaultMessage(r.body));
  return e;
}

Result<nlohmann::json> ApiClient::Get(std::string_view path) {
  NFC_ASSIGN_OR_RETURN(ApiResponse r, Send("GET", path, ""));
  std::string what = "GET " + std::string(path);
  if (r.status != 200) {
    return Error::Internal(what + ": Firecracker answered " + std::to_string(r.status) + ": " +
                           FaultMessage(r.body));
  }
  try {
    return nlohmann::json::parse(r.body);
  } catch (const nlohmann::json::exception& e) {
    return Error::DataLoss(what + ": answer is not JSON: " + e.what());
  }
}

}  // namespace nfc::vmm::firecracker
