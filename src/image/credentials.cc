#include "image/credentials.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/process.h"
#include "base/unique_fd.h"

namespace nfc::image {
namespace {

using json = nlohmann::json;

Result<std::string> Base64Decode(const std::string& in) {
  std::string out(in.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return Error::InvalidArgument("invalid base64");
  // EVP_DecodeBlock counts padding as zero bytes; base64 has at most two of them ("====" decodes to 3).
  size_t pad = 0;
  for (size_t i = in.size(); i > 0 && in[i - 1] == '=' && pad < 2; --i) ++pad;
  if (pad > static_cast<size_t>(n)) return Error::InvalidArgument("invalid base64");
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

// The keys Docker writes for a registry in "auths": the bare host, and URL forms (Docker Hub's is special).
std::vector<std::string> CandidateKeys(const std::string& registry) {
  if (registry == "docker.io") {
    return {"https://index.docker.io/v1/", "index.docker.io", "docker.io", "https://index.docker.io/v1",
            "registry-1.docker.io"};
  }
  return {registry, "https://" + registry, "http://" + registry, "https://" + registry + "/v1/",
          "https://" + registry + "/v2/"};
}

// Docker runs docker-credential-<name> from PATH; a name with a slash would name some other file.
Status CheckHelperName(const std::string& field, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name.find('\0') != std::string::npos) {
    return Error::InvalidArgument(field + ": \"" + name + "\" is not a credential helper name");
  }
  return Ok();
}

Result<std::optional<RegistryAuth>> RunHelper(const std::string& helper, const std::string& server) {
  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0) return Error::Errno("pipe");
  UniqueFd in_r(in_pipe[0]), in_w(in_pipe[1]), out_r(out_pipe[0]), out_w(out_pipe[1]);
  SpawnOptions so;
  so.argv = {"docker-credential-" + helper, "get"};
  so.stdin_fd = in_r.get();
  so.stdout_fd = out_w.get();
  auto child = Spawn(so);
  if (!child.ok()) return std::move(child).error().Context("credential helper docker-credential-" + helper);
  in_r.Reset();
  out_w.Reset();
  std::string input = server + "\n";
  if (::write(in_w.get(), input.data(), input.size()) < 0) { /* the helper may exit early; its status tells */
  }
  in_w.Reset();
  std::string output;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out_r.get(), buf, sizeof buf)) > 0 && output.size() < (1 << 20)) output.append(buf, n);
  NFC_ASSIGN_OR_RETURN(int status, WaitForExit(child->pid));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    // Helpers exit 1 with "credentials not found in native keychain" for unknown servers.
    if (output.find("not found") != std::string::npos) return std::optional<RegistryAuth>();
    return Error(ErrorCode::kUnauthenticated, "credential helper docker-credential-" + helper + " failed (" +
                                                  DescribeWaitStatus(status) + "): " + output.substr(0, 200));
  }
  try {
    json j = json::parse(output);
    RegistryAuth a;
    std::string user = j.value("Username", "");
    std::string secret = j.value("Secret", "");
    if (user == "<token>") {
      a.identity_token = secret;
    } else {
      a.username = user;
      a.password = secret;
    }
    return std::optional<RegistryAuth>(a);
  } catch (const json::exception& e) {
    return Error(ErrorCode::kUnauthenticated,
                 "credential helper docker-credential-" + helper + " printed invalid JSON: " + e.what());
  }
}

}  // namespace

std::string DockerConfigPath(const std::string& explicit_path) {
  if (!explicit_path.empty()) return explicit_path;
  if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d) return std::string(d) + "/config.json";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.docker/config.json";
  return "/root/.docker/config.json";
}

Result<std::optional<RegistryAuth>> LookupDockerCredentials(const std::string& config_path,
                                                            const std::string& registry) {
  std::ifstream f(config_path);
  if (!f) return std::optional<RegistryAuth>();
  std::stringstream ss;
  ss << f.rdbuf();
  auto found = CredentialsFromDockerConfig(ss.str(), registry, RunHelper);
  if (!found.ok()) return std::move(found).error().Context("docker config " + config_path);
  return found;
}

Result<std::optional<RegistryAuth>> CredentialsFromDockerConfig(std::string_view text,
                                                                const std::string& registry,
                                                                const CredentialHelper& run_helper) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return Error::InvalidArgument(e.what());
  }
  if (!j.is_object()) return Error::InvalidArgument("not a JSON object");
  auto keys = CandidateKeys(registry);
  if (auto helpers = j.find("credHelpers"); helpers != j.end() && helpers->is_object()) {
    for (const auto& k : keys) {
      if (auto h = helpers->find(k); h != helpers->end() && h->is_string()) {
        NFC_RETURN_IF_ERROR(CheckHelperName("credHelpers[\"" + k + "\"]", h->get<std::string>()));
        return run_helper(h->get<std::string>(), k);
      }
    }
  }
  if (auto auths = j.find("auths"); auths != j.end() && auths->is_object()) {
    for (const auto& k : keys) {
      auto a = auths->find(k);
      if (a == auths->end() || !a->is_object()) continue;
      RegistryAuth out;
      if (auto enc = a->find("auth");
          enc != a->end() && enc->is_string() && !enc->get<std::string>().empty()) {
        auto dec = Base64Decode(enc->get<std::string>());
        if (!dec.ok() || dec->find(':') == std::string::npos) {
          return Error::InvalidArgument("auths[\"" + k + "\"].auth is not base64 of user:password");
        }
        out.username = dec->substr(0, dec->find(':'));
        out.password = dec->substr(dec->find(':') + 1);
      }
      if (a->contains("username") && (*a)["username"].is_string()) out.username = (*a)["username"];
      if (a->contains("password") && (*a)["password"].is_string()) out.password = (*a)["password"];
      if (a->contains("identitytoken") && (*a)["identitytoken"].is_string()) {
        out.identity_token = (*a)["identitytoken"];
      }
      if (out.username.empty() && out.identity_token.empty()) continue;  // an entry kept for a helper
      return std::optional<RegistryAuth>(out);
    }
  }
  if (auto store = j.find("credsStore");
      store != j.end() && store->is_string() && !store->get<std::string>().empty()) {
    NFC_RETURN_IF_ERROR(CheckHelperName("credsStore", store->get<std::string>()));
    return run_helper(store->get<std::string>(), keys.front());
  }
  return std::optional<RegistryAuth>();
}

}  // namespace nfc::image
