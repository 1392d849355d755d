#include "task/sidecar.h"

#include <algorithm>
#include <map>
#include <set>

#include "network/sidecar_link.h"
#include "network/tap_redirect.h"

namespace nfc::task {
namespace {

constexpr std::string_view kUpstreamAddr = "NOMAD_UPSTREAM_ADDR_";
constexpr std::string_view kUpstreamPort = "NOMAD_UPSTREAM_PORT_";

// The app ports the task's ports name, in order, without repeats and without Envoy's own.
std::vector<uint16_t> AppPorts(const driver::NomadTask& task) {
  std::vector<uint16_t> out;
  for (const auto& p : task.resources.ports) {
    if (p.task_port < 0 || p.label.rfind("connect-proxy-", 0) == 0) continue;
    int32_t port = p.task_port > 0 ? p.task_port : p.host_port;
    if (port <= 0 || port > 65535) continue;
    if (std::find(out.begin(), out.end(), port) == out.end()) out.push_back(static_cast<uint16_t>(port));
  }
  return out;
}

// name → the upstream's endpoint; ADDR wins over PORT for the same name.
std::map<std::string, network::Endpoint> Upstreams(const std::map<std::string, std::string>& env) {
  std::map<std::string, network::Endpoint> out;
  for (const auto& [key, value] : env) {
    if (key.rfind(kUpstreamPort, 0) == 0 && !out.count(key.substr(kUpstreamPort.size()))) {
      if (auto e = network::ParseEndpoint("127.0.0.1:" + value); e.ok() && e->port != 0)
        out[key.substr(kUpstreamPort.size())] = *e;
    }
  }
  for (const auto& [key, value] : env) {
    if (key.rfind(kUpstreamAddr, 0) != 0) continue;
    if (auto e = network::ParseEndpoint(value); e.ok() && e->port != 0)
      out[key.substr(kUpstreamAddr.size())] = *e;
  }
  return out;
}

}  // namespace

SidecarForwards SidecarForwardsFor(const driver::NomadTask& task) {
  SidecarForwards out;
  for (const auto& p : task.resources.ports) {
    bool envoy = p.task_port < 0 || p.label.rfind("connect-proxy-", 0) == 0;
    if (envoy && p.host_port > 0 && p.host_port <= 65535)
      out.netns_ports.push_back(static_cast<uint16_t>(p.host_port));
  }
  std::vector<uint16_t> app = AppPorts(task);
  for (uint16_t port : app) {
    out.shim.push_back({{"127.0.0.1", port}, {network::kSidecarGuestAddress, port}, true, true});
  }
  std::set<uint16_t> seen(app.begin(), app.end());  // the app's own port cannot also be an upstream's
  for (const auto& [name, upstream] : Upstreams(task.env)) {
    if (!seen.insert(upstream.port).second) continue;
    bool loopback = upstream.address.rfind("127.", 0) == 0;
    std::string in_guest = loopback ? upstream.address : "127.0.0.1";
    std::string in_netns = upstream.address == "0.0.0.0" ? "127.0.0.1" : upstream.address;
    std::string link_end = network::kSidecarNetnsAddress;
    out.guest.push_back(
        {in_guest + ":" + std::to_string(upstream.port), link_end + ":" + std::to_string(upstream.port)});
    out.shim.push_back({{link_end, upstream.port}, {in_netns, upstream.port}, true, true});
  }
  return out;
}

Status AttachSidecar(const driver::NomadTask& task, TaskNetwork& net) {
  SidecarForwards forwards = SidecarForwardsFor(task);
  if (Status s = network::AttachSidecarLink(net.netns_path, net.tap, forwards.netns_ports); !s.ok()) {
    (void)network::DetachTap(net.netns_path, net.tap);
    return s;
  }
  net.guest.interfaces.at(0).addresses.push_back(std::string(network::kSidecarGuestAddress) + "/" +
                                                 std::to_string(network::kSidecarPrefixLength));
  net.guest.forwards = std::move(forwards.guest);
  net.shim_relays = std::move(forwards.shim);
  return Ok();
}

}  // namespace nfc::task
