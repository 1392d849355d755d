// Image references as Docker users write them, and content digests.
//
// "alpine" -> docker.io/library/alpine:latest; "localhost:5000/x" -> registry localhost:5000, repository x;
// "ghcr.io/o/r@sha256:..." pins a digest. Parsing follows the distribution reference grammar (lowercase path
// components separated by '/', a first component with '.', ':' or "localhost" names the registry).
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"

namespace nfc::image {

inline constexpr std::string_view kDockerHub = "docker.io";

struct Reference {
  std::string registry;    // "docker.io", "ghcr.io", "localhost:5000"
  std::string repository;  // "library/alpine"
  std::string tag;         // "latest" unless a digest alone was given
  std::string digest;      // "sha256:<64 hex>" or empty

  // The host[:port] to contact ("registry-1.docker.io" for docker.io).
  std::string ApiHost() const;
  // Canonical form: registry/repository[:tag][@digest].
  std::string String() const;
};

Result<Reference> ParseReference(std::string_view text);

// A validated "sha256:<64 lowercase hex>" digest (the only algorithm accepted).
Status ValidateDigest(std::string_view digest);
// The hex part of a valid digest.
std::string_view DigestHex(std::string_view digest);

// True for "localhost", "127.x.y.z", "::1" / "[::1]" with or without a port.
bool IsLoopbackHost(std::string_view host_port);

}  // namespace nfc::image
