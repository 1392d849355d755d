#include "image/manifest.h"

#include <sys/utsname.h>

#include <nlohmann/json.hpp>

#include "image/reference.h"

namespace nfc::image {
namespace {

using json = nlohmann::json;

std::string StringField(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// "schemaVersion" when it is an integer, else 0. value() would throw for a registry that sends "2" (a
// string): found by the manifest fuzz target; it threw outside ParseManifest's try.
int64_t SchemaVersion(const json& j) {
  auto it = j.find("schemaVersion");
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

Result<Descriptor> ParseDescriptor(const json& j, std::string_view where) {
  if (!j.is_object()) return Error::InvalidArgument(std::string(where) + ": descriptor is not an object");
  Descriptor d;
  d.media_type = StringField(j, "mediaType");
  d.digest = StringField(j, "digest");
  if (auto st = ValidateDigest(d.digest); !st.ok()) {
    return std::move(st).error().Context(std::string(where));
  }
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0) {
    return Error::InvalidArgument(std::string(where) + ": descriptor " + d.digest + " has no valid \"size\"");
  }
  d.size = size->get<int64_t>();
  if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
    d.os = StringField(*p, "os");
    d.architecture = StringField(*p, "architecture");
    d.variant = StringField(*p, "variant");
  }
  return d;
}

}  // namespace

std::string ManifestAcceptHeader() {
  std::string s;
  for (std::string_view t : {media::kOciIndex, media::kOciManifest, media::kDockerList,
                             media::kDockerManifest, media::kDockerSchema1Signed, media::kDockerSchema1}) {
    if (!s.empty()) s += ", ";
    s += t;
  }
  return s;
}

std::string Platform::String() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

Platform HostPlatform() {
  Platform p;
  struct utsname u {};
  std::string machine = uname(&u) == 0 ? u.machine : "x86_64";
  if (machine == "x86_64") {
    p.architecture = "amd64";
  } else if (machine == "aarch64") {
    p.architecture = "arm64";
    p.variant = "v8";
  } else if (machine.starts_with("armv7")) {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (machine == "i686" || machine == "i386") {
    p.architecture = "386";
  } else {
    p.architecture = machine;  // ppc64le, s390x, riscv64 are spelled the same
  }
  return p;
}

Result<Platform> ParsePlatform(std::string_view text) {
  Platform p;
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    size_t slash = text.find('/', pos);
    parts.emplace_back(text.substr(pos, slash == std::string_view::npos ? text.npos : slash - pos));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty()) {
    return Error::InvalidArgument("platform \"" + std::string(text) + "\": expected os/arch[/variant]");
  }
  p.os = parts[0];
  p.architecture = parts[1];
  if (parts.size() == 3) p.variant = parts[2];
  return p;
}

Result<Manifest> ParseManifest(std::string_view body, std::string_view content_type) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    return Error::InvalidArgument(std::string("manifest is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) return Error::InvalidArgument("manifest is not a JSON object");
  std::string type(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  std::string body_type = StringField(j, "mediaType");
  if (type.empty() || type == "application/json" || type == "text/plain" ||
      type == "application/octet-stream") {
    type = body_type;
  }
  if (type.empty()) {  // OCI allows omitting mediaType: decide by shape
    if (j.contains("manifests")) {
      type = media::kOciIndex;
    } else if (j.contains("config") && j.contains("layers")) {
      type = media::kOciManifest;
    } else if (SchemaVersion(j) == 1) {
      type = media::kDockerSchema1;
    }
  }
  if (type == media::kDockerSchema1 || type == media::kDockerSchema1Signed || (SchemaVersion(j) == 1)) {
    return Error::Unimplemented(
        "manifest is Docker schema 1 (deprecated since 2017, unsupported): re-push the image with a current "
        "client so the registry serves a schema 2 or OCI manifest");
  }
  Manifest m;
  m.media_type = type;
  try {
    if (type == media::kOciIndex || type == media::kDockerList) {
      m.kind = ManifestKind::kIndex;
      auto list = j.find("manifests");
      if (list == j.end() || !list->is_array())
        return Error::InvalidArgument("index has no \"manifests\" array");
      for (size_t i = 0; i < list->size(); ++i) {
        NFC_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor((*list)[i], "index entry " + std::to_string(i)));
        m.manifests.push_back(std::move(d));
      }
      return m;
    }
    if (type == media::kOciManifest || type == media::kDockerManifest) {
      m.kind = ManifestKind::kImage;
      auto cfg = j.find("config");
      if (cfg == j.end()) return Error::InvalidArgument("image manifest has no \"config\"");
      NFC_ASSIGN_OR_RETURN(m.config, ParseDescriptor(*cfg, "config"));
      auto layers = j.find("layers");
      if (layers == j.end() || !layers->is_array()) {
        return Error::InvalidArgument("image manifest has no \"layers\" array");
      }
      for (size_t i = 0; i < layers->size(); ++i) {
        NFC_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor((*layers)[i], "layer " + std::to_string(i)));
        m.layers.push_back(std::move(d));
      }
      return m;
    }
  } catch (const json::exception& e) {
    return Error::InvalidArgument(std::string("manifest: ") + e.what());
  }
  return Error::Unimplemented("unsupported manifest media type \"" + type + "\"");
}

Result<Descriptor> SelectPlatform(const Manifest& index, const Platform& want) {
  auto norm_variant = [](const std::string& arch, const std::string& v) {
    return (arch == "arm64" && v.empty()) ? std::string("v8") : v;
  };
  const Descriptor* loose = nullptr;
  std::string available;
  for (const auto& d : index.manifests) {
    if (d.os.empty() && d.architecture.empty()) continue;  // attestations and other non-image entries
    if (d.architecture == "unknown") continue;             // buildkit attestation manifests
    if (!available.empty()) available += ", ";
    available += d.os + "/" + d.architecture + (d.variant.empty() ? "" : "/" + d.variant);
    if (d.os != want.os || d.architecture != want.architecture) continue;
    if (norm_variant(d.architecture, d.variant) == norm_variant(want.architecture, want.variant)) return d;
    if (want.variant.empty() && !loose) loose = &d;
  }
  if (loose) return *loose;
  return Error::NotFound("no image for platform " + want.String() +
                         " in the index (available: " + (available.empty() ? "none" : available) + ")");
}

Result<std::string> LayerCompression(std::string_view t) {
  if (t == media::kOciLayer || t == "application/vnd.docker.image.rootfs.diff.tar" ||
      t == "application/vnd.oci.image.layer.nondistributable.v1.tar") {
    return std::string();
  }
  if (t == media::kOciLayerGzip || t == media::kDockerLayerGzip || t == media::kOciLayerNondistGzip ||
      t == "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip") {
    return std::string("gzip");
  }
  if (t == media::kOciLayerZstd || t == "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd") {
    return std::string("zstd");
  }
  return Error::Unimplemented("unsupported layer media type \"" + std::string(t) +
                              "\" (supported: tar, tar+gzip, tar+zstd)");
}

}  // namespace nfc::image
