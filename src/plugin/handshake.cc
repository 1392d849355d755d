#include "plugin/handshake.h"

#include <grp.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace nfc::plugin {
namespace {

bool OffersVersion(std::string_view list, int version) {
  const std::string wanted = std::to_string(version);
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item == wanted) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

bool LaunchedByPluginHost(const EnvLookup& env) {
  return env(kMagicCookieKey).has_value();
}

Status CheckHandshakeEnvironment(const EnvLookup& env) {
  std::optional<std::string> cookie = env(kMagicCookieKey);
  if (!cookie || *cookie != kMagicCookieValue) {
    return Error::InvalidArgument(
        "this binary is a Nomad task-driver plugin, but " + std::string(kMagicCookieKey) +
        " does not hold Nomad's magic cookie; it is meant to be started by a Nomad client agent (install it "
        "in the "
        "agent's plugin_dir), or run without that variable to use it as a command-line tool");
  }
  if (std::optional<std::string> versions = env("PLUGIN_PROTOCOL_VERSIONS")) {
    if (!OffersVersion(*versions, kAppProtocolVersion)) {
      return Error::InvalidArgument("PLUGIN_PROTOCOL_VERSIONS=\"" + *versions +
                                    "\": this plugin speaks protocol " + std::to_string(kAppProtocolVersion) +
                                    " only (Nomad 0.9 and later); the host offers none that match");
    }
  }
  return Ok();
}

Result<std::string> ChooseSocketPath(const EnvLookup& env) {
  std::string dir;
  if (auto d = env("PLUGIN_UNIX_SOCKET_DIR"); d && !d->empty()) {
    dir = *d;
  } else if (auto t = env("TMPDIR"); t && !t->empty()) {
    dir = *t;
  } else {
    dir = "/tmp";
  }
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  for (int attempt = 0; attempt < 16; attempt++) {
    unsigned long long nonce = 0;
    if (getrandom(&nonce, sizeof(nonce), 0) != static_cast<ssize_t>(sizeof(nonce))) {
      return Error::Errno("getrandom for the plugin socket name");
    }
    std::string path = dir + "/plugin" + std::to_string(nonce % 10000000000ULL);
    if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return Error::InvalidArgument("plugin socket path \"" + path +
                                    "\" is longer than a unix socket allows (" +
                                    std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                                    " bytes); set PLUGIN_UNIX_SOCKET_DIR or TMPDIR to a shorter directory");
    }
    struct stat st;
    if (lstat(path.c_str(), &st) == 0)
      continue;  // taken: gRPC would unlink a stale socket there, so pick again
    if (errno != ENOENT) return Error::Errno("lstat " + path);
    return path;
  }
  return Error::Internal("could not find a free plugin socket name in " + dir);
}

Status ApplySocketGroup(const EnvLookup& env, const std::string& socket_path) {
  std::optional<std::string> group = env("PLUGIN_UNIX_SOCKET_GROUP");
  if (!group || group->empty()) return Ok();
  gid_t gid;
  char* end = nullptr;
  errno = 0;
  unsigned long numeric = std::strtoul(group->c_str(), &end, 10);
  if (errno == 0 && end != group->c_str() && *end == '\0') {
    gid = static_cast<gid_t>(numeric);
  } else {
    struct group grp;
    struct group* found = nullptr;
    char buf[4096];
    int rc = getgrnam_r(group->c_str(), &grp, buf, sizeof(buf), &found);
    if (rc != 0) return Error::Sys(rc, "look up PLUGIN_UNIX_SOCKET_GROUP=\"" + *group + "\"");
    if (found == nullptr)
      return Error::NotFound("PLUGIN_UNIX_SOCKET_GROUP=\"" + *group + "\": no such group");
    gid = grp.gr_gid;
  }
  if (chown(socket_path.c_str(), static_cast<uid_t>(-1), gid) != 0) {
    return Error::Errno("chown " + socket_path + " to group " + *group);
  }
  if (chmod(socket_path.c_str(), 0660) != 0) return Error::Errno("chmod 0660 " + socket_path);
  return Ok();
}

std::string HandshakeLine(std::string_view socket_path) {
  return std::to_string(kCoreProtocolVersion) + "|" + std::to_string(kAppProtocolVersion) + "|unix|" +
         std::string(socket_path) + "|grpc|\n";
}

}  // namespace nfc::plugin
