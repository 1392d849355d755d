// Registry credentials from a Docker config.json: "auths" entries (base64 user:password, identitytoken) and
// credential helpers ("credHelpers" per registry, "credsStore" default), run as `docker-credential-<name>
// get`.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "image/store.h"

namespace nfc::image {

// The config file to read: explicit path, else $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json.
std::string DockerConfigPath(const std::string& explicit_path);

// Credentials for registry ("docker.io", "ghcr.io", "localhost:5000"); nullopt when the config has none.
// A missing config file is not an error; a malformed one is.
Result<std::optional<RegistryAuth>> LookupDockerCredentials(const std::string& config_path,
                                                            const std::string& registry);

// Runs credential helper `helper` (docker-credential-<helper> get) for `server`.
using CredentialHelper =
    std::function<Result<std::optional<RegistryAuth>>(const std::string& helper, const std::string& server)>;

// What a config.json's text says for registry: the lookup above without the file (the fuzz target's entry).
Result<std::optional<RegistryAuth>> CredentialsFromDockerConfig(std::string_view text,
                                                                const std::string& registry,
                                                                const CredentialHelper& run_helper);

}  // namespace nfc::image
