// The go-plugin start-up contract, without any gRPC: who launched us, where to listen, what to print.
//
// A Nomad client launches a plugin with NOMAD_PLUGIN_MAGIC_COOKIE and PLUGIN_PROTOCOL_VERSIONS in the
// environment, reads exactly one handshake line from its stdout ("1|2|unix|/tmp/plugin123|grpc"), then dials
// that address (reference nomad-plugin-protocol.md 1.2-1.4). These helpers take the environment as a lookup
// function so tests can drive them without touching the process environment.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "base/error.h"

namespace nfc::plugin {

// Nomad's go-plugin handshake (plugins/base/plugin.go Handshake).
inline constexpr std::string_view kMagicCookieKey = "NOMAD_PLUGIN_MAGIC_COOKIE";
inline constexpr std::string_view kMagicCookieValue =
    "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255";
inline constexpr int kCoreProtocolVersion = 1;  // go-plugin's own protocol
inline constexpr int kAppProtocolVersion = 2;   // Nomad's plugin API generation (since 0.9)

using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
// Reads the real process environment.
EnvLookup ProcessEnv();

// True when the magic cookie variable is present at all (even with a wrong value): the process was started by
// a plugin host and must not behave like a CLI.
bool LaunchedByPluginHost(const EnvLookup& env);

// Checks the cookie value and that PLUGIN_PROTOCOL_VERSIONS (if set) offers our app protocol. The error
// message is meant for a person reading the agent's log.
Status CheckHandshakeEnvironment(const EnvLookup& env);

// A fresh, not yet existing socket path: $PLUGIN_UNIX_SOCKET_DIR, else $TMPDIR, else /tmp, +
// "plugin<random>".
Result<std::string> ChooseSocketPath(const EnvLookup& env);

// PLUGIN_UNIX_SOCKET_GROUP, if set: chown the socket to that group (name or numeric id) and chmod it 0660.
Status ApplySocketGroup(const EnvLookup& env, const std::string& socket_path);

// "1|2|unix|<path>|grpc|\n": core version, app version, network, address, protocol, and an empty
// server-certificate field (Nomad never uses AutoMTLS), exactly as Go plugin servers print it.
std::string HandshakeLine(std::string_view socket_path);

}  // namespace nfc::plugin
