#include "image/image_config.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace nfc::image {
namespace {

using json = nlohmann::json;

std::vector<std::string> StringList(const json& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string Str(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

Result<ImageConfig> ParseImageConfig(std::string_view text) {
  try {
    json j = json::parse(text);
    if (!j.is_object()) return Error::InvalidArgument("image config is not a JSON object");
    ImageConfig c;
    c.os = Str(j, "os");
    c.architecture = Str(j, "architecture");
    c.variant = Str(j, "variant");
    if (auto r = j.find("rootfs"); r != j.end() && r->is_object()) c.diff_ids = StringList(*r, "diff_ids");
    auto cfg = j.find("config");
    if (cfg == j.end() || !cfg->is_object()) return c;  // "config" is optional in the OCI spec
    c.entrypoint = StringList(*cfg, "Entrypoint");
    c.cmd = StringList(*cfg, "Cmd");
    c.env = StringList(*cfg, "Env");
    c.working_dir = Str(*cfg, "WorkingDir");
    c.user = Str(*cfg, "User");
    c.stop_signal = Str(*cfg, "StopSignal");
    if (auto p = cfg->find("ExposedPorts"); p != cfg->end() && p->is_object()) {
      for (auto it = p->begin(); it != p->end(); ++it) c.exposed_ports.push_back(it.key());
      std::sort(c.exposed_ports.begin(), c.exposed_ports.end());
    }
    if (auto l = cfg->find("Labels"); l != cfg->end() && l->is_object()) {
      for (auto it = l->begin(); it != l->end(); ++it) {
        if (it.value().is_string()) c.labels[it.key()] = it.value().get<std::string>();
      }
    }
    return c;
  } catch (const json::exception& e) {
    return Error::InvalidArgument(std::string("image config: ") + e.what());
  }
}

std::string ImageConfigToJson(const ImageConfig& c) {
  json j = {{"entrypoint", c.entrypoint},
            {"cmd", c.cmd},
            {"env", c.env},
            {"working_dir", c.working_dir},
            {"user", c.user},
            {"exposed_ports", c.exposed_ports},
            {"labels", c.labels},
            {"stop_signal", c.stop_signal},
            {"os", c.os},
            {"architecture", c.architecture},
            {"variant", c.variant}};
  return j.dump(2) + "\n";
}

Result<ImageConfig> ImageConfigFromJson(std::string_view text) {
  try {
    json j = json::parse(text);
    ImageConfig c;
    c.entrypoint = j.value("entrypoint", std::vector<std::string>{});
    c.cmd = j.value("cmd", std::vector<std::string>{});
    c.env = j.value("env", std::vector<std::string>{});
    c.working_dir = j.value("working_dir", "");
    c.user = j.value("user", "");
    c.exposed_ports = j.value("exposed_ports", std::vector<std::string>{});
    c.labels = j.value("labels", std::map<std::string, std::string>{});
    c.stop_signal = j.value("stop_signal", "");
    c.os = j.value("os", "");
    c.architecture = j.value("architecture", "");
    c.variant = j.value("variant", "");
    return c;
  } catch (const json::exception& e) {
    return Error::InvalidArgument(std::string("stored image config: ") + e.what());
  }
}

}  // namespace nfc::image
