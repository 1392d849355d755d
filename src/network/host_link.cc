#include "network/host_link.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "base/fs.h"
#include "base/unique_fd.h"
#include "network/address_pool.h"

namespace nfc::network {
namespace {

// Serializes firewall changes across plugin processes (nat.h: removing the empty table must not race an
// addition). Not the pool's own lock: AddressPool takes that one itself.
Result<UniqueFd> LockFirewall(const std::string& pool_dir) {
  return AddressPool::LockDir(pool_dir + "/.firewall");
}

// The host routes the guests' packets (per network namespace; the plugin turns it on).
Status EnableForwarding() {
  const char* path = "/proc/sys/net/ipv4/ip_forward";
  auto now = fs::ReadFile(path, 16);
  if (now.ok() && now->rfind('1', 0) == 0) return Ok();
  UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd) return Error::Errno(std::string("open ") + path);
  return fs::WriteAll(fd.get(), "1\n", path);
}

// 02:fc (locally administered) + 4 bytes of a stable hash of the TAP's name (FNV-1a).
std::string MacFor(const std::string& tap) {
  uint32_t h = 2166136261U;
  for (unsigned char c : tap) h = (h ^ c) * 16777619U;
  char mac[18];
  std::snprintf(mac, sizeof(mac), "02:fc:%02x:%02x:%02x:%02x", h >> 24, (h >> 16) & 0xff, (h >> 8) & 0xff,
                h & 0xff);
  return mac;
}

Status Install(const HostLinkConfig& config, const HostLink& link, const std::vector<PortForward>& ports,
               const std::string& reclaimed_tap) {
  NFC_ASSIGN_OR_RETURN(UniqueFd lock, LockFirewall(config.pool_dir));
  // A block taken back from a dead owner whose cleanup failed: its rules would send that VM's ports here.
  if (!reclaimed_tap.empty() && reclaimed_tap != link.tap) {
    NFC_RETURN_IF_ERROR(RemoveVmNatRules(reclaimed_tap));
    NFC_RETURN_IF_ERROR(DeleteHostTap(reclaimed_tap));
  }
  NFC_RETURN_IF_ERROR(CreateHostTap(link.tap, link.mtu, link.host_ip + "/30", config.guard, link.host_ip));
  NFC_RETURN_IF_ERROR_CTX(EnableForwarding(), "turn on IPv4 forwarding");
  return AddVmNatRules({link.tap, link.guest_ip, config.cidr, ports});
}

Status Uninstall(const std::string& pool_dir, const std::string& tap) {
  NFC_ASSIGN_OR_RETURN(UniqueFd lock, LockFirewall(pool_dir));
  Status rules = RemoveVmNatRules(tap);
  Status device = DeleteHostTap(tap);
  return rules.ok() ? device : rules;
}

}  // namespace

Result<HostLink> AttachHostLink(const HostLinkConfig& config, const std::string& tap,
                                const std::string& owner, const std::vector<PortForward>& ports) {
  NFC_ASSIGN_OR_RETURN(Ipv4Net range, Ipv4Net::Parse(config.cidr, "host_network cidr"));
  AddressPool pool(config.pool_dir, range);
  NFC_ASSIGN_OR_RETURN(HostLease lease, pool.Acquire(owner, tap));
  HostLink link{tap, lease.block, lease.host_ip, lease.guest_ip, MacFor(tap), config.mtu};
  Status s = Install(config, link, ports, lease.reclaimed_tap);
  if (!s.ok()) {
    (void)Uninstall(config.pool_dir, tap);
    (void)pool.ReleaseOwnedBy(owner);
    return std::move(s).error().Context("host network link " + tap + " (" + lease.block + ")");
  }
  return link;
}

Status DetachHostLink(const std::string& pool_dir, const std::string& tap, const std::string& owner) {
  Status removed = Uninstall(pool_dir, tap);
  if (!removed.ok()) return std::move(removed).error().Context("host network link " + tap);
  // Only once its rules are gone: the block may go to the next VM.
  return AddressPool(pool_dir, {}).ReleaseOwnedBy(owner);
}

}  // namespace nfc::network
