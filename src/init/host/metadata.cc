#include "init/host/metadata.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

namespace nfc::init::host {
namespace {

constexpr size_t kMetaValueLimit = 4 << 10;  // instance-id, hostname, meta_data.json: small documents
constexpr const char* kTokenTtl = "300";     // the token is used within seconds, at boot

std::string_view TrimLine(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t' || s.back() == '\n'))
    s.remove_suffix(1);
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

bool Printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

bool Transient(const Error& e) {
  return e.code() == ErrorCode::kUnavailable || e.code() == ErrorCode::kTimeout;
}

// The part a `--- NAME` line opens.
enum class Part { kNone, kMetaData, kCmdline, kFile };

Status OpenPart(std::string_view name, const std::string& where, UserDataBundle& b, Part& part) {
  if (name == "meta-data" || name == "nomados.cmdline") {
    auto& slot = name == "meta-data" ? b.meta_data : b.cmdline;
    if (slot) return Error::InvalidArgument(where + ": part '" + std::string(name) + "' given twice");
    slot.emplace();
    part = name == "meta-data" ? Part::kMetaData : Part::kCmdline;
    return Status();
  }
  if (name.rfind("nomad/", 0) != 0) {
    return Error::InvalidArgument(where + ": part '" + std::string(name.substr(0, 64)) +
                                  "' is not meta-data, nomados.cmdline or nomad/<file>");
  }
  std::string file(name.substr(6));
  if (!SafeConfigFileName(file)) {
    return Error::InvalidArgument(where + ": file name '" + file.substr(0, 64) +
                                  "' is not [A-Za-z0-9._-] (no leading dot)");
  }
  if (std::any_of(b.files.begin(), b.files.end(), [&](const auto& f) { return f.first == file; })) {
    return Error::InvalidArgument(where + ": file '" + file + "' given twice");
  }
  if (b.files.size() == kAgentFileCount) {
    return Error::InvalidArgument(where + ": more than " + std::to_string(kAgentFileCount) + " files");
  }
  b.files.emplace_back(file, "");
  part = Part::kFile;
  return Status();
}

// GET with the EC2 token (when given): the body on 200, nullopt on 404, an error otherwise.
Result<std::optional<std::string>> Get(const MetadataOptions& opts, const std::string& path,
                                       const std::string& token, size_t limit) {
  HttpTarget t = opts.target;
  t.body_limit = limit;
  HttpRequest req{.method = "GET", .path = path, .headers = {}};
  if (!token.empty()) req.headers.emplace_back("X-aws-ec2-metadata-token", token);
  NFC_ASSIGN_OR_RETURN(auto r, HttpDo(t, req));
  if (r.status == 200) return std::optional<std::string>(std::move(r.body));
  if (r.status == 404) return std::optional<std::string>();
  return Error::Unavailable("GET " + path + ": status " + std::to_string(r.status));
}

// The user-data's parts into `out`, through the config drive's readers.
void ApplyUserData(std::string_view text, const MetadataOptions& opts, CloudConfig& out) {
  auto bundle = ParseUserData(text);
  if (!bundle.ok()) {
    out.problems.push_back(Error::InvalidArgument("user-data: " + bundle.error().message()));
    return;
  }
  if (!*bundle) {
    out.problems.push_back(Error::InvalidArgument(
        "user-data: does not start with '" + std::string(kUserDataMagic) + "'; ignored (not cloud-init)"));
    return;
  }
  if ((*bundle)->meta_data) ReadMetaDataText(*(*bundle)->meta_data, out);
  if ((*bundle)->cmdline) ReadCmdlineText(*(*bundle)->cmdline, out);
  if ((*bundle)->files.empty()) return;
  StartMergedConfig(opts.baked_config, opts.merged_config, out);
  for (const auto& [name, data] : (*bundle)->files) {
    AddAgentFile(opts.merged_config, name, data, "user-data nomad/" + name, out);
  }
}

Status FetchEc2(const MetadataOptions& opts, CloudConfig& out) {
  HttpTarget t = opts.target;
  t.body_limit = kMetaValueLimit;
  NFC_ASSIGN_OR_RETURN(auto r, HttpDo(t, {.method = "PUT",
                                          .path = "/latest/api/token",
                                          .headers = {{"X-aws-ec2-metadata-token-ttl-seconds", kTokenTtl}}}));
  if (r.status == 403 || r.status == 404 || r.status == 405) {
    return Error::NotFound("ec2: PUT /latest/api/token: status " + std::to_string(r.status) + " (no IMDSv2)");
  }
  if (r.status != 200)
    return Error::Unavailable("ec2: PUT /latest/api/token: status " + std::to_string(r.status));
  std::string token(TrimLine(r.body));
  if (!ValidImdsToken(token))
    return Error::InvalidArgument("ec2: the token is not 1..1024 base64 characters");
  NFC_ASSIGN_OR_RETURN(auto id, Get(opts, "/latest/meta-data/instance-id", token, kMetaValueLimit));
  NFC_ASSIGN_OR_RETURN(auto host, Get(opts, "/latest/meta-data/hostname", token, kMetaValueLimit));
  NFC_ASSIGN_OR_RETURN(auto user, Get(opts, "/latest/user-data", token, kUserDataLimit));
  if (id) {
    std::string v(TrimLine(*id));
    if (!v.empty() && v.size() <= 255 && Printable(v)) {
      out.meta.instance_id = v;
    } else {
      out.problems.push_back(
          Error::InvalidArgument("meta-data/instance-id: not 1..255 printable characters"));
    }
  }
  if (host) {
    std::string v(TrimLine(*host));
    if (ValidHostname(v)) {
      out.meta.hostname = v;
    } else {
      out.problems.push_back(
          Error::InvalidArgument("meta-data/hostname '" + v.substr(0, 64) + "' is not a valid hostname"));
    }
  }
  if (user) ApplyUserData(*user, opts, out);
  return Status();
}

Status FetchOpenStack(const MetadataOptions& opts, CloudConfig& out) {
  NFC_ASSIGN_OR_RETURN(auto meta, Get(opts, "/openstack/latest/meta_data.json", "", kMetaValueLimit * 16));
  if (!meta) return Error::NotFound("openstack: GET /openstack/latest/meta_data.json: status 404");
  auto parsed = ParseOpenStackMetaData(*meta);
  if (!parsed.ok()) return Error::InvalidArgument("openstack: meta_data.json: " + parsed.error().message());
  NFC_ASSIGN_OR_RETURN(auto user, Get(opts, "/openstack/latest/user_data", "", kUserDataLimit));
  out.meta = *parsed;
  if (user) ApplyUserData(*user, opts, out);
  return Status();
}

}  // namespace

Result<std::optional<UserDataBundle>> ParseUserData(std::string_view text) {
  size_t nl = text.find('\n');
  if (TrimLine(text.substr(0, nl)) != kUserDataMagic) return std::optional<UserDataBundle>();
  text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  UserDataBundle b;
  Part part = Part::kNone;
  for (int line_no = 2; !text.empty(); line_no++) {
    nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    std::string where = "line " + std::to_string(line_no);
    if (line.rfind("--- ", 0) == 0) {
      NFC_RETURN_IF_ERROR(OpenPart(TrimLine(line.substr(4)), where, b, part));
      continue;
    }
    std::string* body = part == Part::kMetaData  ? &*b.meta_data
                        : part == Part::kCmdline ? &*b.cmdline
                        : part == Part::kFile    ? &b.files.back().second
                                                 : nullptr;
    if (!body) {
      std::string_view t = TrimLine(line);
      if (t.empty() || t.front() == '#') continue;
      return Error::InvalidArgument(where + ": text before the first `--- <part>` line");
    }
    body->append(line).push_back('\n');
  }
  return std::optional<UserDataBundle>(std::move(b));
}

Result<MetaData> ParseOpenStackMetaData(std::string_view json) {
  auto doc = nlohmann::json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Error::InvalidArgument("not a JSON object");
  MetaData m;
  if (auto it = doc.find("uuid"); it != doc.end()) {
    if (!it->is_string()) return Error::InvalidArgument("uuid: not a string");
    auto v = it->get<std::string>();
    if (v.empty() || v.size() > 255 || !Printable(v))
      return Error::InvalidArgument("uuid: 1..255 printable chars");
    m.instance_id = v;
  }
  if (auto it = doc.find("hostname"); it != doc.end()) {
    if (!it->is_string()) return Error::InvalidArgument("hostname: not a string");
    auto v = it->get<std::string>();
    if (!ValidHostname(v))
      return Error::InvalidArgument("hostname '" + v.substr(0, 64) + "' is not a valid hostname");
    m.hostname = v;
  }
  return m;
}

bool ValidImdsToken(std::string_view token) {
  return !token.empty() && token.size() <= 1024 && std::all_of(token.begin(), token.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("+/=_.-").find(c) != std::string_view::npos;
  });
}

Result<CloudConfig> FetchMetadata(const MetadataOptions& opts) {
  std::vector<std::string> flavours = opts.flavour == "auto" ? std::vector<std::string>{"ec2", "openstack"}
                                                             : std::vector<std::string>{opts.flavour};
  std::string url = "http://" + opts.target.address + ":" + std::to_string(opts.target.port);
  Error last = Error::Unavailable("metadata service not asked (nomados.metadata attempts=0)");
  auto delay = opts.retry_delay;
  for (int round = 0; round < opts.attempts; round++) {
    if (round > 0) {
      std::this_thread::sleep_for(delay);
      delay *= 2;
    }
    std::string answered;  // flavours that answered, but not as this flavour
    bool transient = false;
    for (const auto& f : flavours) {
      CloudConfig c{
          .source = url, .label = f, .meta = {}, .cmdline_words = {}, .agent_files = {}, .problems = {}};
      Status st = f == "ec2" ? FetchEc2(opts, c) : FetchOpenStack(opts, c);
      if (st.ok()) return c;
      last = st.error();
      // The same address and port for every flavour: when it does not answer, the next will not either.
      if (Transient(last)) {
        transient = true;
        break;
      }
      answered += (answered.empty() ? "" : "; ") + last.message();
    }
    if (!transient) return Error::NotFound(url + ": " + answered);
  }
  return Error(last.code(),
               url + ": no answer after " + std::to_string(opts.attempts) + " attempts: " + last.message());
}

}  // namespace nfc::init::host
