#include "task/network.h"

#include <sstream>

#include "network/tap_redirect.h"

namespace nfc::task {

std::string PlannedTap(const driver::NomadTask& task) {
  bool group = task.network && task.network->mode == driver::NetworkIsolation::Mode::kGroup &&
               !task.network->netns_path.empty();
  return group ? network::TapNameForTask(task.id) : "";
}

Result<TaskNetwork> AttachTaskNetwork(const driver::NomadTask& task, const network::EgressGuard& guard) {
  TaskNetwork out;
  if (!task.network || task.network->mode != driver::NetworkIsolation::Mode::kGroup) return out;
  if (task.network->netns_path.empty()) {
    return Error::InvalidArgument("network isolation mode is group but network_isolation_spec.path is empty");
  }
  std::string tap = PlannedTap(task);
  NFC_ASSIGN_OR_RETURN(network::TapAttachment a,
                       network::AttachTap(task.network->netns_path, tap, "", guard));
  out.mode = "group";
  out.netns_path = a.netns_path;
  out.tap = a.tap;
  out.nic = vmm::NetworkInterface{"eth0", a.tap, a.uplink.mac, a.uplink.mtu};
  out.guest.interfaces.push_back({"eth0", a.uplink.mac, a.uplink.mtu, a.uplink.addresses});
  for (const auto& r : a.routes) out.guest.routes.push_back({r.destination, r.gateway, "", r.metric});
  for (const auto& cidr : a.uplink.addresses) {
    if (cidr.find(':') == std::string::npos) {
      out.address = cidr.substr(0, cidr.find('/'));
      break;
    }
  }
  return out;
}

Status DetachTaskNetwork(const std::string& netns_path, const std::string& tap) {
  if (netns_path.empty() || tap.empty()) return Ok();
  return network::DetachTap(netns_path, tap);
}

std::optional<guest::DnsConfig> GuestDns(const driver::NomadTask& task, const TaskNetwork& network,
                                         std::string_view host_resolv_conf) {
  if (task.dns && (!task.dns->servers.empty() || !task.dns->searches.empty() || !task.dns->options.empty())) {
    return guest::DnsConfig{task.dns->servers, task.dns->searches, task.dns->options};
  }
  if (network.mode != "group") return std::nullopt;
  std::istringstream in{std::string(host_resolv_conf)};
  guest::DnsConfig dns;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key, value;
    words >> key;
    if (key == "nameserver" && words >> value) {
      bool loopback = value.rfind("127.", 0) == 0 || value == "::1";
      if (!loopback) dns.servers.push_back(value);
    } else if (key == "search" || key == "domain") {
      while (words >> value) dns.searches.push_back(value);
    } else if (key == "options") {
      while (words >> value) dns.options.push_back(value);
    }
  }
  if (dns.servers.empty()) return std::nullopt;
  return dns;
}

}  // namespace nfc::task
