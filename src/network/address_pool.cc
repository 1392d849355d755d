#include "network/address_pool.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "base/fs.h"

namespace nfc::network {
namespace {

constexpr uint32_t kBlockSize = 4;  // a /30

uint32_t Mask(int prefix) {
  return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
}

Result<uint32_t> ParseAddress(const std::string& ip, const std::string& field, const std::string& text) {
  in_addr a{};
  if (::inet_pton(AF_INET, ip.c_str(), &a) != 1) {
    return Error::InvalidArgument(field + " \"" + text + "\" is not an IPv4 CIDR such as \"10.229.0.0/16\"");
  }
  return ntohl(a.s_addr);
}

// The lease file's text: owner, then the TAP, one per line.
std::string LeaseText(const std::string& owner, const std::string& tap) {
  return owner + "\n" + tap + "\n";
}

std::string OwnerOf(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

std::string TapOf(const std::string& text) {
  auto nl = text.find('\n');
  if (nl == std::string::npos) return "";
  std::string rest = text.substr(nl + 1);
  return rest.substr(0, rest.find('\n'));
}

}  // namespace

std::string Ipv4ToString(uint32_t host_order) {
  in_addr a{htonl(host_order)};
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, text, sizeof(text));
  return text;
}

Result<Ipv4Net> Ipv4Net::Parse(const std::string& text, const std::string& field) {
  auto slash = text.find('/');
  std::string len = slash == std::string::npos ? "" : text.substr(slash + 1);
  bool digits = !len.empty() && len.size() <= 2 && len.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || std::stoi(len) > 32) {
    return Error::InvalidArgument(field + " \"" + text + "\" is not an IPv4 CIDR such as \"10.229.0.0/16\"");
  }
  NFC_ASSIGN_OR_RETURN(uint32_t addr, ParseAddress(text.substr(0, slash), field, text));
  Ipv4Net net;
  net.prefix = std::stoi(len);
  net.base = addr & Mask(net.prefix);
  return net;
}

std::string Ipv4Net::ToString() const {
  return Ipv4ToString(base) + "/" + std::to_string(prefix);
}

Result<HostLease> HostLease::OfBlock(const std::string& block) {
  NFC_ASSIGN_OR_RETURN(Ipv4Net net, Ipv4Net::Parse(block, "host network lease"));
  if (net.prefix != kPrefix || net.ToString() != block) {
    return Error::InvalidArgument("host network lease \"" + block + "\" is not a /30 block");
  }
  return HostLease{block, Ipv4ToString(net.base + 1), Ipv4ToString(net.base + 2)};
}

Result<UniqueFd> AddressPool::LockDir(const std::string& dir) {
  NFC_RETURN_IF_ERROR(fs::MakeDirs(dir, 0700));
  UniqueFd fd(::open((dir + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return Error::Errno("open " + dir + "/.lock");
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return Error::Errno("flock " + dir + "/.lock");
  }
  return fd;
}

Result<HostLease> AddressPool::Acquire(const std::string& owner, const std::string& tap) {
  if (range_.prefix > HostLease::kPrefix) {
    return Error::InvalidArgument("host_network cidr \"" + range_.ToString() +
                                  "\" is smaller than one /30 (one VM's link)");
  }
  NFC_ASSIGN_OR_RETURN(UniqueFd lock, LockDir(dir_));
  uint64_t end = uint64_t{range_.base} + (uint64_t{1} << (32 - range_.prefix));
  for (uint64_t base = range_.base; base < end; base += kBlockSize) {
    std::string first = Ipv4ToString(static_cast<uint32_t>(base));
    std::string lease = dir_ + "/" + first;
    std::string reclaimed;
    if (fs::Exists(lease)) {
      auto holder = fs::ReadFile(lease, 4096);
      // Empty: a crash between creating and writing it (both happen under the lock).
      if (holder.ok() && !OwnerOf(*holder).empty() && fs::Exists(OwnerOf(*holder))) continue;
      if (holder.ok()) reclaimed = TapOf(*holder);
      if (::unlink(lease.c_str()) != 0 && errno != ENOENT) return Error::Errno("reclaim lease " + lease);
    }
    NFC_RETURN_IF_ERROR_CTX(fs::WriteFileDurably(lease, LeaseText(owner, tap), 0600), "host network lease");
    NFC_ASSIGN_OR_RETURN(HostLease out, HostLease::OfBlock(first + "/30"));
    out.reclaimed_tap = reclaimed;
    return out;
  }
  return Error(ErrorCode::kResourceExhausted, "every /30 of host_network cidr \"" + range_.ToString() +
                                                  "\" is leased to a running VM (" + dir_ +
                                                  "); widen host_network.cidr");
}

Status AddressPool::ReleaseOwnedBy(const std::string& owner) {
  if (!fs::Exists(dir_)) return Ok();
  NFC_ASSIGN_OR_RETURN(UniqueFd lock, LockDir(dir_));
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return Error::Errno("opendir " + dir_);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') names.push_back(e->d_name);
  }
  ::closedir(d);
  for (const auto& name : names) {
    std::string lease = dir_ + "/" + name;
    auto holder = fs::ReadFile(lease, 4096);
    if (!holder.ok() || OwnerOf(*holder) != owner) continue;
    if (::unlink(lease.c_str()) != 0 && errno != ENOENT) return Error::Errno("release lease " + lease);
  }
  return Ok();
}

}  // namespace nfc::network
