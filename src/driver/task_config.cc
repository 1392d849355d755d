#include "driver/task_config.h"

#include <arpa/inet.h>

#include "driver/config_reader.h"

namespace nfc::driver {
namespace {

constexpr std::string_view kWhat = "task config";

// `args`: a list of strings (docker style) or one string split into words (seed style).
Result<std::optional<std::vector<std::string>>> DecodeArgs(ConfigReader& r) {
  const CtyValue* v = r.Get("args");
  if (v == nullptr) return std::optional<std::vector<std::string>>();
  if (v->kind() == CtyValue::Kind::kString) {
    Result<std::vector<std::string>> words = SplitShellWords(v->as_string());
    if (!words.ok()) return r.Invalid("args", *v, words.error().message());
    return std::optional<std::vector<std::string>>(std::move(*words));
  }
  if (v->kind() != CtyValue::Kind::kList) {
    return r.Invalid("args", *v, "expected a list of strings, or one string of shell-quoted words");
  }
  std::vector<std::string> out;
  for (const CtyValue& item : v->as_list()) {
    // HCL keeps `args = ["-n", 3]` as a tuple with a number; accept scalars like docker's list(string) would.
    switch (item.kind()) {
      case CtyValue::Kind::kString:
        out.push_back(item.as_string());
        break;
      case CtyValue::Kind::kInt:
      case CtyValue::Kind::kUint:
      case CtyValue::Kind::kFloat:
      case CtyValue::Kind::kBool:
        out.push_back(item.Describe());
        break;
      default:
        return r.Invalid("args", *v,
                         "expected a list of strings; element " + item.Describe() + " is a " +
                             std::string(item.KindName()));
    }
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Status CheckEnvName(const ConfigReader& r, const CtyValue& whole, const std::string& name) {
  if (name.empty() || name.find('=') != std::string::npos || name.find('\0') != std::string::npos) {
    return r.Invalid("env", whole, "variable name \"" + name + "\" must be non-empty and contain no '='");
  }
  return Ok();
}

// A map entry's value as text: strings as they are, numbers and bools in their HCL spelling.
Result<std::string> Scalar(const ConfigReader& r, std::string_view option, const CtyValue& whole,
                           const std::string& key, const CtyValue& value) {
  switch (value.kind()) {
    case CtyValue::Kind::kString:
      return value.as_string();
    case CtyValue::Kind::kInt:
    case CtyValue::Kind::kUint:
    case CtyValue::Kind::kFloat:
    case CtyValue::Kind::kBool:
      return value.Describe();
    default:
      return r.Invalid(option, whole, "value of \"" + key + "\" must be a string, got " + value.Describe());
  }
}

Status AppendEnvMap(const ConfigReader& r, const CtyValue& whole, const CtyValue& map,
                    std::vector<std::pair<std::string, std::string>>* out) {
  for (const auto& [key, value] : map.as_map()) {
    NFC_RETURN_IF_ERROR(CheckEnvName(r, whole, key));
    NFC_ASSIGN_OR_RETURN(std::string text, Scalar(r, "env", whole, key, value));
    out->emplace_back(key, std::move(text));
  }
  return Ok();
}

// `env`: a map (`env = { K = "v" }`), a list of "K=V" strings (seed), or a list of maps (block syntax
// `env { K = "v" }`, which Nomad's HCL2 jobspec turns into a list of objects).
Result<std::vector<std::pair<std::string, std::string>>> DecodeEnv(ConfigReader& r) {
  std::vector<std::pair<std::string, std::string>> out;
  const CtyValue* v = r.Get("env");
  if (v == nullptr) return out;
  if (v->kind() == CtyValue::Kind::kMap) {
    NFC_RETURN_IF_ERROR(AppendEnvMap(r, *v, *v, &out));
    return out;
  }
  if (v->kind() != CtyValue::Kind::kList) {
    return r.Invalid("env", *v, "expected a map of strings or a list of \"NAME=value\" strings");
  }
  for (const CtyValue& item : v->as_list()) {
    if (item.kind() == CtyValue::Kind::kMap) {
      NFC_RETURN_IF_ERROR(AppendEnvMap(r, *v, item, &out));
      continue;
    }
    if (item.kind() != CtyValue::Kind::kString) {
      return r.Invalid("env", *v, "element " + item.Describe() + " is not a \"NAME=value\" string");
    }
    const std::string& s = item.as_string();
    size_t eq = s.find('=');
    if (eq == std::string::npos) {
      return r.Invalid("env", *v, "element \"" + s + "\" is not of the form NAME=value");
    }
    std::string name = s.substr(0, eq);
    NFC_RETURN_IF_ERROR(CheckEnvName(r, *v, name));
    out.emplace_back(std::move(name), s.substr(eq + 1));
  }
  return out;
}

Result<std::optional<RegistryAuth>> DecodeAuth(ConfigReader& r) {
  NFC_ASSIGN_OR_RETURN(const CtyValue* object, r.Block("auth"));
  if (object == nullptr) return std::optional<RegistryAuth>();
  ConfigReader sub(*object, std::string(kWhat) + " block \"auth\":");
  RegistryAuth auth;
  NFC_ASSIGN_OR_RETURN(auto username, sub.String("username"));
  NFC_ASSIGN_OR_RETURN(auto password, sub.String("password"));
  NFC_ASSIGN_OR_RETURN(auto server, sub.String("server_address"));
  NFC_RETURN_IF_ERROR(sub.RejectUnknown());
  auth.username = username.value_or("");
  auth.password = password.value_or("");
  auth.server_address = server.value_or("");
  if (auth.username.empty() != auth.password.empty()) {
    return r.Invalid("auth", "username and password must be given together");
  }
  return std::optional<RegistryAuth>(std::move(auth));
}

Result<std::optional<std::chrono::milliseconds>> DecodePullTimeout(ConfigReader& r) {
  NFC_ASSIGN_OR_RETURN(auto text, r.String("image_pull_timeout"));
  if (!text) return std::optional<std::chrono::milliseconds>();
  auto d = ParseDuration(*text);
  if (!d.ok()) return r.Invalid("image_pull_timeout", CtyValue::String(*text), d.error().message());
  if (*d < std::chrono::seconds(1) || *d > std::chrono::hours(24)) {
    return r.Invalid("image_pull_timeout", CtyValue::String(*text), "expected from 1s to 24h");
  }
  return std::optional<std::chrono::milliseconds>(*d);
}

// A size attribute ("256MiB") of at least `min`; `min_text` says it in the same units.
Result<std::optional<uint64_t>> DecodeSize(ConfigReader& r, std::string_view key, uint64_t min,
                                           std::string_view min_text) {
  NFC_ASSIGN_OR_RETURN(auto text, r.String(key));
  if (!text) return std::optional<uint64_t>();
  auto n = ParseByteSize(*text);
  if (!n.ok()) return r.Invalid(key, CtyValue::String(*text), n.error().message());
  if (*n < min) return r.Invalid(key, CtyValue::String(*text), "expected at least " + std::string(min_text));
  return std::optional<uint64_t>(*n);
}

// `labels`: a map (`labels = { a = "b" }`) or, in block syntax (`labels { a = "b" }`), a list of maps, as
// the docker driver accepts both. Numbers and bools become text, as HCL's map(string) would make them.
Result<std::map<std::string, std::string>> DecodeLabels(ConfigReader& r) {
  std::map<std::string, std::string> out;
  const CtyValue* v = r.Get("labels");
  if (v == nullptr) return out;
  std::vector<const CtyValue*> maps = {v};
  if (v->kind() == CtyValue::Kind::kList) {
    maps.clear();
    for (const CtyValue& item : v->as_list()) maps.push_back(&item);
  }
  for (const CtyValue* m : maps) {
    if (m->kind() != CtyValue::Kind::kMap) return r.Invalid("labels", *v, "expected a map of strings");
    for (const auto& [key, value] : m->as_map()) {
      if (key.empty()) return r.Invalid("labels", *v, "a label name must not be empty");
      NFC_ASSIGN_OR_RETURN(out[key], Scalar(r, "labels", *v, key, value));
    }
  }
  return out;
}

Result<std::vector<std::string>> DecodeDnsServers(ConfigReader& r) {
  NFC_ASSIGN_OR_RETURN(auto servers, r.StringList("dns_servers"));
  if (!servers) return std::vector<std::string>();
  for (const auto& s : *servers) {
    in6_addr v6{};
    in_addr v4{};
    if (::inet_pton(AF_INET, s.c_str(), &v4) != 1 && ::inet_pton(AF_INET6, s.c_str(), &v6) != 1) {
      return r.Invalid("dns_servers", CtyValue::String(s), "expected an IPv4 or IPv6 address");
    }
  }
  return std::move(*servers);
}

// resolv.conf words: no blanks or line breaks inside one (they would split it or start a new directive).
Result<std::vector<std::string>> DecodeResolvWords(ConfigReader& r, std::string_view key) {
  NFC_ASSIGN_OR_RETURN(auto words, r.StringList(key));
  if (!words) return std::vector<std::string>();
  for (const auto& w : *words) {
    if (w.empty() || w.find_first_of(" \t\r\n#;") != std::string::npos) {
      return r.Invalid(key, CtyValue::String(w), "expected one non-empty word without blanks, '#' or ';'");
    }
  }
  return std::move(*words);
}

Status RequireAbsolute(const ConfigReader& r, std::string_view key, const std::optional<std::string>& path) {
  if (path && (path->empty() || (*path)[0] != '/')) {
    return r.Invalid(key, CtyValue::String(*path), "expected an absolute path on the host");
  }
  return Ok();
}

}  // namespace

spec::Node TaskConfigSpec() {
  using namespace spec;
  return Object({
      {"image", Attr("image", "string", true)},
      // The count has two spellings, so neither has a schema default (1 is applied when both are absent).
      {"vcpu_count", Attr("vcpu_count", "number")},
      {"vpu_count", Attr("vpu_count", "number")},
      {"mem_size", Attr("mem_size", "number")},
      {"entrypoint", Attr("entrypoint", "list(string)")},
      {"command", Attr("command", "string")},
      {"args", Attr("args", "any")},
      {"env", Attr("env", "any")},
      {"work_dir", Attr("work_dir", "string")},
      {"user", Attr("user", "string")},
      {"kernel", Attr("kernel", "string")},
      {"initrd", Attr("initrd", "string")},
      {"boot_args", Attr("boot_args", "string")},
      {"backend", Attr("backend", "string")},
      {"force_pull", AttrWithDefault("force_pull", "bool", BoolLiteral(false))},
      {"warm_start", Attr("warm_start", "bool")},
      {"image_pull_timeout", Attr("image_pull_timeout", "string")},
      {"task_dir_max_size", Attr("task_dir_max_size", "string")},
      {"volume_size", Attr("volume_size", "string")},
      {"scratch_size", Attr("scratch_size", "string")},
      {"auth_soft_fail", AttrWithDefault("auth_soft_fail", "bool", BoolLiteral(false))},
      {"hostname", Attr("hostname", "string")},
      {"dns_servers", Attr("dns_servers", "list(string)")},
      {"dns_search_domains", Attr("dns_search_domains", "list(string)")},
      {"dns_options", Attr("dns_options", "list(string)")},
      {"labels", Attr("labels", "any")},
      {"auth", Block("auth", false,
                     Object({
                         {"username", Attr("username", "string")},
                         {"password", Attr("password", "string")},
                         {"server_address", Attr("server_address", "string")},
                     }))},
  });
}

Result<TaskConfig> DecodeTaskConfig(const CtyValue& value) {
  ConfigReader r(value, std::string(kWhat));
  NFC_RETURN_IF_ERROR(r.CheckObject());
  TaskConfig config;

  NFC_ASSIGN_OR_RETURN(auto image, r.String("image"));
  if (!image || image->empty())
    return r.Invalid("image", "is required (an OCI image reference such as \"alpine:3.19\")");
  for (char c : *image) {
    if (c == ' ' || c == '\t' || c == '\n') {
      return r.Invalid("image", CtyValue::String(*image), "an image reference contains no whitespace");
    }
  }
  config.image = *image;

  NFC_ASSIGN_OR_RETURN(auto vcpu, r.Integer("vcpu_count", 1, kMaxVcpuCount));
  NFC_ASSIGN_OR_RETURN(auto vpu, r.Integer("vpu_count", 1, kMaxVcpuCount));
  if (vcpu && vpu && *vcpu != *vpu) {
    return Error::InvalidArgument("task config sets both \"vcpu_count\" = " + std::to_string(*vcpu) +
                                  " and its alias \"vpu_count\" = " + std::to_string(*vpu) +
                                  "; set only \"vcpu_count\"");
  }
  config.vcpu_count = vcpu ? vcpu : vpu;
  NFC_ASSIGN_OR_RETURN(config.mem_size_mib, r.Integer("mem_size", kMinMemSizeMiB, kMaxMemSizeMiB));

  NFC_ASSIGN_OR_RETURN(config.entrypoint, r.StringList("entrypoint"));
  NFC_ASSIGN_OR_RETURN(config.command, r.String("command"));
  if (config.command && config.command->empty()) {
    return r.Invalid("command", CtyValue::String(""),
                     "must not be empty (leave it out to use the image's command)");
  }
  NFC_ASSIGN_OR_RETURN(config.args, DecodeArgs(r));
  NFC_ASSIGN_OR_RETURN(config.env, DecodeEnv(r));

  NFC_ASSIGN_OR_RETURN(config.work_dir, r.String("work_dir"));
  if (config.work_dir && (config.work_dir->empty() || (*config.work_dir)[0] != '/')) {
    return r.Invalid("work_dir", CtyValue::String(*config.work_dir),
                     "expected an absolute path inside the guest");
  }
  NFC_ASSIGN_OR_RETURN(config.user, r.String("user"));
  NFC_ASSIGN_OR_RETURN(config.kernel, r.String("kernel"));
  NFC_RETURN_IF_ERROR(RequireAbsolute(r, "kernel", config.kernel));
  NFC_ASSIGN_OR_RETURN(config.initrd, r.String("initrd"));
  NFC_RETURN_IF_ERROR(RequireAbsolute(r, "initrd", config.initrd));
  NFC_ASSIGN_OR_RETURN(config.boot_args, r.String("boot_args"));

  NFC_ASSIGN_OR_RETURN(auto backend, r.String("backend"));
  if (backend) {
    Result<Backend> parsed = ParseBackend(*backend);
    if (!parsed.ok()) return r.Invalid("backend", CtyValue::String(*backend), parsed.error().message());
    config.backend = *parsed;
  }
  NFC_ASSIGN_OR_RETURN(auto force_pull, r.Bool("force_pull"));
  config.force_pull = force_pull.value_or(false);
  NFC_ASSIGN_OR_RETURN(config.warm_start, r.Bool("warm_start"));
  NFC_ASSIGN_OR_RETURN(config.image_pull_timeout, DecodePullTimeout(r));
  NFC_ASSIGN_OR_RETURN(config.auth, DecodeAuth(r));
  NFC_ASSIGN_OR_RETURN(config.task_dir_max_bytes, DecodeSize(r, "task_dir_max_size", 4096, "4KiB"));
  NFC_ASSIGN_OR_RETURN(config.volume_size_bytes, DecodeSize(r, "volume_size", uint64_t{16} << 20, "16MiB"));
  NFC_ASSIGN_OR_RETURN(config.scratch_size_bytes, DecodeSize(r, "scratch_size", uint64_t{16} << 20, "16MiB"));
  NFC_ASSIGN_OR_RETURN(auto soft_fail, r.Bool("auth_soft_fail"));
  config.auth_soft_fail = soft_fail.value_or(false);
  NFC_ASSIGN_OR_RETURN(config.hostname, r.String("hostname"));
  if (config.hostname) {
    if (Status ok = CheckHostname(*config.hostname); !ok.ok()) {
      return r.Invalid("hostname", CtyValue::String(*config.hostname), ok.error().message());
    }
  }
  NFC_ASSIGN_OR_RETURN(config.dns_servers, DecodeDnsServers(r));
  NFC_ASSIGN_OR_RETURN(config.dns_search_domains, DecodeResolvWords(r, "dns_search_domains"));
  NFC_ASSIGN_OR_RETURN(config.dns_options, DecodeResolvWords(r, "dns_options"));
  NFC_ASSIGN_OR_RETURN(config.labels, DecodeLabels(r));
  NFC_RETURN_IF_ERROR(r.RejectUnknown());
  return config;
}

Status CheckHostname(std::string_view name) {
  if (name.empty() || name.size() > 64) return Error::InvalidArgument("expected 1 to 64 characters");
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    std::string_view label = name.substr(start, dot == std::string_view::npos ? name.npos : dot - start);
    if (label.empty() || label.size() > 63) {
      return Error::InvalidArgument("each dot-separated label must have 1 to 63 characters");
    }
    if (label.front() == '-' || label.back() == '-') {
      return Error::InvalidArgument("a label must not begin or end with '-'");
    }
    for (char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return Error::InvalidArgument("only letters, digits, '-' and '.' are allowed");
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return Ok();
}

Result<TaskConfig> DecodeTaskConfigMsgpack(std::string_view msgpack) {
  Result<CtyValue> value = DecodeCtyMsgpack(msgpack);
  if (!value.ok()) return std::move(value).error().Context(kWhat);
  return DecodeTaskConfig(*value);
}

Result<std::vector<std::string>> SplitShellWords(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); i++) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\'') {
      size_t end = text.find('\'', i + 1);
      if (end == std::string_view::npos) {
        return Error::InvalidArgument("unterminated single quote starting at offset " + std::to_string(i));
      }
      word.append(text.substr(i + 1, end - i - 1));
      i = end;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; j++) {
        if (text[j] == '\\' && j + 1 < text.size() &&
            (text[j + 1] == '"' || text[j + 1] == '\\' || text[j + 1] == '$' || text[j + 1] == '`')) {
          j++;
        }
        word += text[j];
      }
      if (j >= text.size()) {
        return Error::InvalidArgument("unterminated double quote starting at offset " + std::to_string(i));
      }
      i = j;
    } else if (c == '\\') {
      if (i + 1 >= text.size()) return Error::InvalidArgument("trailing backslash");
      word += text[++i];
    } else {
      word += c;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace nfc::driver
