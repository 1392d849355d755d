#include "task/network.h"

#include <sstream>

#include "network/host_link.h"
#include "network/tap_redirect.h"
#include "shim/task_dir.h"
#include "task/sidecar.h"

namespace nfc::task {

namespace {

bool HostMode(const driver::NomadTask& task) {
  return !task.network || task.network->mode == driver::NetworkIsolation::Mode::kHost;
}

// The task's ports, each once, forwarded from the host to the same port of the guest.
std::vector<network::PortForward> PortsOf(const driver::NomadTask& task) {
  std::vector<network::PortForward> out;
  for (const auto& p : task.resources.ports) {
    if (p.host_port <= 0 || p.host_port > 65535 || p.host_ip.find(':') != std::string::npos) continue;
    network::PortForward f{static_cast<uint16_t>(p.host_port), p.host_ip};
    bool seen = false;
    for (const auto& o : out) seen = seen || (o.port == f.port && o.host_ip == f.host_ip);
    if (!seen) out.push_back(f);
  }
  return out;
}

Result<TaskNetwork> AttachHostLink(const driver::NomadTask& task, const NetworkPolicy& policy,
                                   const std::string& task_dir) {
  network::HostLinkConfig config{HostPoolDir(policy.data_dir), policy.host_cidr, policy.guard};
  NFC_ASSIGN_OR_RETURN(
      network::HostLink link,
      network::AttachHostLink(config, network::TapNameForTask(task.id), task_dir, PortsOf(task)));
  TaskNetwork out;
  out.mode = "host";
  out.tap = link.tap;
  out.address = link.guest_ip;
  out.host_lease = link.block;
  out.nic = vmm::NetworkInterface{vmm::NicId(0), link.tap, link.mac, link.mtu};
  out.guest.interfaces.push_back({"eth0", link.mac, link.mtu, {link.guest_ip + "/30"}});
  out.guest.routes.push_back({"0.0.0.0/0", link.host_ip, "", 0});
  return out;
}

}  // namespace

std::string HostPoolDir(const std::string& data_dir) {
  return data_dir + "/host-network";
}

std::string PlannedTap(const driver::NomadTask& task, bool host_network) {
  bool group = task.network && task.network->mode == driver::NetworkIsolation::Mode::kGroup &&
               !task.network->netns_path.empty();
  return group || (host_network && HostMode(task)) ? network::TapNameForTask(task.id) : "";
}

Result<TaskNetwork> AttachTaskNetwork(const driver::NomadTask& task, const NetworkPolicy& policy,
                                      const std::string& task_dir) {
  if (policy.host_network && HostMode(task)) return AttachHostLink(task, policy, task_dir);
  const network::EgressGuard& guard = policy.guard;
  TaskNetwork out;
  if (!task.network || task.network->mode != driver::NetworkIsolation::Mode::kGroup) return out;
  if (task.network->netns_path.empty()) {
    return Error::InvalidArgument("network isolation mode is group but network_isolation_spec.path is empty");
  }
  std::string tap = PlannedTap(task, false);
  NFC_ASSIGN_OR_RETURN(network::TapAttachment a,
                       network::AttachTap(task.network->netns_path, tap, "", guard));
  out.mode = "group";
  out.netns_path = a.netns_path;
  out.tap = a.tap;
  out.nic = vmm::NetworkInterface{vmm::NicId(0), a.tap, a.uplink.mac, a.uplink.mtu};
  out.guest.interfaces.push_back({"eth0", a.uplink.mac, a.uplink.mtu, a.uplink.addresses});
  for (const auto& r : a.routes) out.guest.routes.push_back({r.destination, r.gateway, "", r.metric});
  for (const auto& cidr : a.uplink.addresses) {
    if (cidr.find(':') == std::string::npos) {
      out.address = cidr.substr(0, cidr.find('/'));
      break;
    }
  }
  if (policy.sidecar_bridge) NFC_RETURN_IF_ERROR(AttachSidecar(task, out));
  return out;
}

Status DetachTaskNetwork(const std::string& netns_path, const std::string& tap, const std::string& task_dir) {
  if (tap.empty()) return Ok();
  if (netns_path.empty()) {
    if (task_dir.empty()) return Error::InvalidArgument("host network link " + tap + ": no task directory");
    std::string data_dir = shim::DataDirOf(shim::TaskDir{task_dir});
    return network::DetachHostLink(HostPoolDir(data_dir), tap, task_dir);
  }
  return network::DetachTap(netns_path, tap);
}

std::optional<guest::DnsConfig> GuestDns(const driver::NomadTask& task, const TaskNetwork& network,
                                         std::string_view host_resolv_conf) {
  if (task.dns && (!task.dns->servers.empty() || !task.dns->searches.empty() || !task.dns->options.empty())) {
    return guest::DnsConfig{task.dns->servers, task.dns->searches, task.dns->options};
  }
  if (network.mode != "group" && network.mode != "host") return std::nullopt;
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
