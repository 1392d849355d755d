#include "init/host/dhcp.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "base/log.h"

namespace nfc::init::host {
namespace {

constexpr uint8_t kMagic[4] = {99, 130, 83, 99};
constexpr size_t kBootpSize = 236;
constexpr uint16_t kClientPort = 68;
constexpr uint16_t kServerPort = 67;

enum Option : uint8_t {
  kPad = 0,
  kSubnetMask = 1,
  kRouter = 3,
  kDns = 6,
  kHostname = 12,
  kDomain = 15,
  kMtu = 26,
  kBroadcastAddr = 28,
  kRequestedIp = 50,
  kLeaseTime = 51,
  kMessageType = 53,
  kServerId = 54,
  kParamList = 55,
  kMaxSize = 57,
  kT1 = 58,
  kT2 = 59,
  kClientId = 61,
  kClasslessRoutes = 121,
  kEnd = 255,
};

void Put16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void Put32(std::vector<uint8_t>& b, uint32_t v) {
  Put16(b, static_cast<uint16_t>(v >> 16));
  Put16(b, static_cast<uint16_t>(v));
}
void PutAddr(std::vector<uint8_t>& b, in_addr a) {
  const auto* p = reinterpret_cast<const uint8_t*>(&a.s_addr);
  b.insert(b.end(), p, p + 4);
}
// An option's length is one byte: longer data goes out as repeated instances (RFC 3396), each cut at a
// multiple of `unit` because the decoder reads every instance on its own (addresses are 4 bytes).
void PutOption(std::vector<uint8_t>& b, uint8_t code, const void* data, size_t len, size_t unit = 1) {
  const auto* p = static_cast<const uint8_t*>(data);
  const size_t most = 255 - 255 % unit;
  do {
    size_t n = std::min(len, most);
    b.push_back(code);
    b.push_back(static_cast<uint8_t>(n));
    b.insert(b.end(), p, p + n);
    p += n;
    len -= n;
  } while (len > 0);
}
uint32_t Get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
in_addr GetAddr(const uint8_t* p) {
  in_addr a;
  std::memcpy(&a.s_addr, p, 4);
  return a;
}

uint16_t Checksum(const uint8_t* data, size_t len, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += (uint32_t{data[i]} << 8) | data[i + 1];
  if (len & 1) sum += uint32_t{data[len - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

std::string AddrString(in_addr a) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

}  // namespace

std::vector<uint8_t> EncodeDhcp(const DhcpMessage& m) {
  std::vector<uint8_t> b;
  b.reserve(320);
  b.push_back(m.op);
  b.push_back(1);  // htype ethernet
  b.push_back(6);  // hlen
  b.push_back(0);  // hops
  Put32(b, m.xid);
  Put16(b, 0);  // secs
  Put16(b, m.broadcast ? 0x8000 : 0);
  PutAddr(b, m.ciaddr);
  PutAddr(b, m.yiaddr);
  PutAddr(b, in_addr{});  // siaddr
  PutAddr(b, in_addr{});  // giaddr
  b.insert(b.end(), m.chaddr, m.chaddr + 6);
  b.resize(kBootpSize, 0);  // rest of chaddr, sname, file
  b.insert(b.end(), kMagic, kMagic + 4);
  uint8_t type = static_cast<uint8_t>(m.type);
  PutOption(b, kMessageType, &type, 1);
  uint8_t client_id[7] = {1};
  std::memcpy(client_id + 1, m.chaddr, 6);
  PutOption(b, kClientId, client_id, sizeof client_id);
  if (m.requested_address) PutOption(b, kRequestedIp, &m.requested_address->s_addr, 4);
  if (m.server_id) PutOption(b, kServerId, &m.server_id->s_addr, 4);
  if (!m.hostname.empty())
    PutOption(b, kHostname, m.hostname.data(), std::min<size_t>(m.hostname.size(), 63));
  if (m.op == 1) {
    uint8_t max_size[2] = {1500 >> 8, 1500 & 0xff};
    PutOption(b, kMaxSize, max_size, 2);
    const uint8_t params[] = {kSubnetMask,    kRouter,    kDns,      kHostname, kDomain, kMtu,
                              kBroadcastAddr, kLeaseTime, kServerId, kT1,       kT2,     kClasslessRoutes};
    PutOption(b, kParamList, params, sizeof params);
  } else {
    // Replies (used by tests acting as a server): the lease as options.
    const DhcpLease& l = m.lease;
    uint32_t mask = l.prefix_len == 0 ? 0 : htonl(~0u << (32 - l.prefix_len));
    PutOption(b, kSubnetMask, &mask, 4);
    if (l.server_id.s_addr) PutOption(b, kServerId, &l.server_id.s_addr, 4);
    if (!l.routers.empty()) PutOption(b, kRouter, l.routers.data(), 4 * l.routers.size(), 4);
    if (!l.dns.empty()) PutOption(b, kDns, l.dns.data(), 4 * l.dns.size(), 4);
    if (!l.domain.empty()) PutOption(b, kDomain, l.domain.data(), std::min<size_t>(l.domain.size(), 255));
    if (!l.hostname.empty())
      PutOption(b, kHostname, l.hostname.data(), std::min<size_t>(l.hostname.size(), 255));
    if (l.mtu) {
      uint8_t mtu[2] = {static_cast<uint8_t>(l.mtu >> 8), static_cast<uint8_t>(l.mtu)};
      PutOption(b, kMtu, mtu, 2);
    }
    uint32_t lease = htonl(l.lease_seconds);
    if (l.lease_seconds) PutOption(b, kLeaseTime, &lease, 4);
    // One instance per up to 255 bytes of whole routes (each instance decodes on its own).
    std::vector<uint8_t> r;
    for (const auto& route : l.classless_routes) {
      std::vector<uint8_t> one{static_cast<uint8_t>(route.prefix_len)};
      const auto* d = reinterpret_cast<const uint8_t*>(&route.dst.s_addr);
      one.insert(one.end(), d, d + (route.prefix_len + 7) / 8);
      PutAddr(one, route.gateway);
      if (r.size() + one.size() > 255) {
        PutOption(b, kClasslessRoutes, r.data(), r.size());
        r.clear();
      }
      r.insert(r.end(), one.begin(), one.end());
    }
    if (!r.empty()) PutOption(b, kClasslessRoutes, r.data(), r.size());
  }
  b.push_back(kEnd);
  if (b.size() < 300) b.resize(300, 0);  // BOOTP minimum; some relays drop shorter messages
  return b;
}

namespace {

int PrefixLength(uint32_t mask) {
  int n = 0;
  while (n < 32 && (mask & (0x80000000u >> n))) n++;
  return n;
}

// RFC 3442: a sequence of (width, significant octets of the destination, gateway).
Status DecodeClasslessRoutes(const uint8_t* v, size_t len, std::vector<DhcpRoute>& routes) {
  size_t k = 0;
  while (k < len) {
    int width = v[k++];
    size_t octets = static_cast<size_t>((width + 7) / 8);
    if (width > 32 || k + octets + 4 > len)
      return Error::InvalidArgument("dhcp: malformed classless route option");
    DhcpRoute r;
    r.prefix_len = width;
    uint8_t dst[4] = {};
    std::memcpy(dst, v + k, octets);
    std::memcpy(&r.dst.s_addr, dst, 4);
    k += octets;
    r.gateway = GetAddr(v + k);
    k += 4;
    routes.push_back(r);
  }
  return Ok();
}

// One option of `len` bytes at v. Options of an unexpected length are ignored, as are unknown ones.
Status DecodeOption(uint8_t code, const uint8_t* v, size_t len, DhcpMessage& m) {
  DhcpLease& l = m.lease;
  switch (code) {
    case kMessageType:
      if (len != 1 || v[0] < 1 || v[0] > 8) return Error::InvalidArgument("dhcp: bad message type option");
      m.type = static_cast<DhcpType>(v[0]);
      break;
    case kSubnetMask:
      if (len == 4) l.prefix_len = PrefixLength(Get32(v));
      break;
    case kRouter:
      for (size_t k = 0; k + 4 <= len; k += 4) l.routers.push_back(GetAddr(v + k));
      break;
    case kDns:
      for (size_t k = 0; k + 4 <= len; k += 4) l.dns.push_back(GetAddr(v + k));
      break;
    case kHostname:
      l.hostname.assign(reinterpret_cast<const char*>(v), len);
      break;
    case kDomain:
      l.domain.assign(reinterpret_cast<const char*>(v), len);
      while (!l.domain.empty() && l.domain.back() == '\0') l.domain.pop_back();
      break;
    case kMtu:
      if (len == 2) l.mtu = (v[0] << 8) | v[1];
      break;
    case kLeaseTime:
      if (len == 4) l.lease_seconds = Get32(v);
      break;
    case kT1:
      if (len == 4) l.t1_seconds = Get32(v);
      break;
    case kT2:
      if (len == 4) l.t2_seconds = Get32(v);
      break;
    case kServerId:
      if (len == 4) {
        l.server_id = GetAddr(v);
        m.server_id = l.server_id;
      }
      break;
    case kRequestedIp:
      if (len == 4) m.requested_address = GetAddr(v);
      break;
    case kClasslessRoutes:
      return DecodeClasslessRoutes(v, len, l.classless_routes);
    default:
      break;
  }
  return Ok();
}

}  // namespace

Result<DhcpMessage> DecodeDhcp(std::span<const uint8_t> p) {
  if (p.size() < kBootpSize + 4)
    return Error::InvalidArgument("dhcp: message of " + std::to_string(p.size()) + " bytes is too short");
  if (std::memcmp(p.data() + kBootpSize, kMagic, 4) != 0)
    return Error::InvalidArgument("dhcp: no magic cookie");
  DhcpMessage m;
  m.op = p[0];
  m.xid = Get32(p.data() + 4);
  m.broadcast = (p[10] & 0x80) != 0;
  m.ciaddr = GetAddr(p.data() + 12);
  m.yiaddr = GetAddr(p.data() + 16);
  std::memcpy(m.chaddr, p.data() + 28, 6);
  m.lease.address = m.yiaddr;
  bool have_type = false;
  size_t i = kBootpSize + 4;
  while (i < p.size()) {
    uint8_t code = p[i++];
    if (code == kPad) continue;
    if (code == kEnd) break;
    if (i >= p.size()) return Error::InvalidArgument("dhcp: option " + std::to_string(code) + " truncated");
    size_t len = p[i++];
    if (i + len > p.size())
      return Error::InvalidArgument("dhcp: option " + std::to_string(code) + " overruns the message");
    NFC_RETURN_IF_ERROR(DecodeOption(code, p.data() + i, len, m));
    have_type = have_type || code == kMessageType;
    i += len;
  }
  if (!have_type) return Error::InvalidArgument("dhcp: message has no message type option (plain BOOTP)");
  return m;
}

std::vector<uint8_t> WrapIpv4Udp(std::span<const uint8_t> payload, in_addr src, in_addr dst, uint16_t sport,
                                 uint16_t dport) {
  size_t udp_len = 8 + payload.size();
  std::vector<uint8_t> b;
  b.reserve(20 + udp_len);
  b.push_back(0x45);
  b.push_back(0x10);  // low delay, as BOOTP clients traditionally set
  Put16(b, static_cast<uint16_t>(20 + udp_len));
  Put16(b, 0);  // id
  Put16(b, 0);  // flags/fragment
  b.push_back(64);
  b.push_back(IPPROTO_UDP);
  Put16(b, 0);  // checksum, below
  PutAddr(b, src);
  PutAddr(b, dst);
  uint16_t ip_sum = Checksum(b.data(), 20);
  b[10] = static_cast<uint8_t>(ip_sum >> 8);
  b[11] = static_cast<uint8_t>(ip_sum);
  Put16(b, sport);
  Put16(b, dport);
  Put16(b, static_cast<uint16_t>(udp_len));
  Put16(b, 0);
  b.insert(b.end(), payload.begin(), payload.end());
  // UDP checksum over the pseudo header (src, dst, proto, length) and the datagram.
  uint32_t pseudo = 0;
  for (int k = 12; k < 20; k += 2) pseudo += (uint32_t{b[k]} << 8) | b[k + 1];
  pseudo += IPPROTO_UDP + static_cast<uint32_t>(udp_len);
  uint16_t udp_sum = Checksum(b.data() + 20, udp_len, pseudo);
  if (udp_sum == 0) udp_sum = 0xffff;
  b[26] = static_cast<uint8_t>(udp_sum >> 8);
  b[27] = static_cast<uint8_t>(udp_sum);
  return b;
}

Result<std::span<const uint8_t>> UnwrapIpv4Udp(std::span<const uint8_t> p, uint16_t dport) {
  if (p.size() < 28 || (p[0] >> 4) != 4) return Error::InvalidArgument("not an IPv4 packet");
  size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
  size_t total = (size_t{p[2]} << 8) | p[3];
  if (ihl < 20 || total > p.size() || total < ihl + 8) return Error::InvalidArgument("malformed IPv4 header");
  if (p[9] != IPPROTO_UDP) return Error::InvalidArgument("not UDP");
  if ((p[6] & 0x3f) != 0 || p[7] != 0) return Error::InvalidArgument("fragmented");
  const uint8_t* udp = p.data() + ihl;
  uint16_t port = static_cast<uint16_t>((udp[2] << 8) | udp[3]);
  if (port != dport) return Error::InvalidArgument("other port");
  size_t udp_len = (size_t{udp[4]} << 8) | udp[5];
  if (udp_len < 8 || ihl + udp_len > total) return Error::InvalidArgument("malformed UDP header");
  return p.subspan(ihl + 8, udp_len - 8);
}

// ---- client ----

Status DhcpClient::Start(DhcpClock::time_point now) {
  fd_.Reset(socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_IP)));
  if (!fd_) return Error::Errno("dhcp: socket(AF_PACKET)");
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_IP);
  sll.sll_ifindex = nic_.ifindex;
  if (bind(fd_.get(), reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
    return Error::Errno("dhcp: bind packet socket to " + nic_.name);
  }
  SendDiscover(now);
  return Ok();
}

void DhcpClient::Send(const DhcpMessage& m) {
  auto payload = EncodeDhcp(m);
  auto packet = WrapIpv4Udp(payload, in_addr{}, in_addr{INADDR_BROADCAST}, kClientPort, kServerPort);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_IP);
  to.sll_ifindex = nic_.ifindex;
  to.sll_halen = 6;
  std::memset(to.sll_addr, 0xff, 6);
  if (sendto(fd_.get(), packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
    // Link not up yet, no carrier: the retransmission timer tries again.
    log::Debug("dhcp: send failed", {{"interface", nic_.name}, {"errno", errno}});
  }
}

void DhcpClient::SendDiscover(DhcpClock::time_point now) {
  state_ = State::kSelecting;
  uint32_t xid;
  if (getrandom(&xid, sizeof xid, GRND_NONBLOCK) != sizeof xid)
    xid = static_cast<uint32_t>(now.time_since_epoch().count());
  xid_ = xid;
  attempts_ = 0;
  backoff_ = std::chrono::seconds(2);
  DhcpMessage m;
  m.type = DhcpType::kDiscover;
  m.xid = xid_;
  std::memcpy(m.chaddr, nic_.mac_bytes, 6);
  m.hostname = hostname_;
  Send(m);
  deadline_ = now + backoff_;
}

void DhcpClient::SendRequest(DhcpClock::time_point now) {
  DhcpMessage m;
  m.type = DhcpType::kRequest;
  m.xid = xid_;
  std::memcpy(m.chaddr, nic_.mac_bytes, 6);
  m.hostname = hostname_;
  if (state_ == State::kRequesting) {
    m.requested_address = offer_.yiaddr;
    m.server_id = offer_.lease.server_id;
  } else {
    m.ciaddr = lease_->address;  // renewing/rebinding: the address we hold, no server id (RFC 2131 4.3.2)
  }
  Send(m);
  attempts_++;
  deadline_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, std::chrono::seconds(32));
}

void DhcpClient::EnterBound(DhcpClock::time_point now, const DhcpLease& lease) {
  lease_ = lease;
  state_ = State::kBound;
  bound_at_ = now;
  attempts_ = 0;
  backoff_ = std::chrono::seconds(2);
  if (lease.lease_seconds == 0xffffffffu || lease.lease_seconds == 0) {
    deadline_ = DhcpClock::time_point::max();  // infinite (or BOOTP-style) lease: nothing to renew
  } else {
    uint32_t t1 = lease.t1_seconds ? lease.t1_seconds : lease.lease_seconds / 2;
    deadline_ = now + std::chrono::seconds(t1);
  }
}

std::optional<DhcpClient::Event> DhcpClient::OnReadable(DhcpClock::time_point now) {
  std::optional<Event> event;
  uint8_t buf[2048];
  while (true) {
    sockaddr_ll from{};
    socklen_t fromlen = sizeof from;
    ssize_t n = recvfrom(fd_.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fromlen);
    if (n < 0) break;  // EAGAIN: drained (errors other than that also end this round; the timer retries)
    if (from.sll_pkttype == PACKET_OUTGOING) continue;
    auto payload = UnwrapIpv4Udp(std::span<const uint8_t>(buf, static_cast<size_t>(n)), kClientPort);
    if (!payload.ok()) continue;
    auto msg = DecodeDhcp(*payload);
    if (!msg.ok() || msg->op != 2 || msg->xid != xid_ || std::memcmp(msg->chaddr, nic_.mac_bytes, 6) != 0)
      continue;
    switch (state_) {
      case State::kSelecting:
        if (msg->type == DhcpType::kOffer && msg->yiaddr.s_addr != 0) {
          offer_ = *msg;
          state_ = State::kRequesting;
          attempts_ = 0;
          backoff_ = std::chrono::seconds(2);
          SendRequest(now);
        }
        break;
      case State::kRequesting:
      case State::kRenewing:
      case State::kRebinding:
        if (msg->type == DhcpType::kAck) {
          bool renewal =
              state_ != State::kRequesting && lease_ && lease_->address.s_addr == msg->yiaddr.s_addr;
          DhcpLease lease = msg->lease;
          if (lease.server_id.s_addr == 0 && state_ == State::kRequesting)
            lease.server_id = offer_.lease.server_id;
          EnterBound(now, lease);
          log::Info(renewal ? "dhcp: lease renewed" : "dhcp: lease acquired",
                    {{"interface", nic_.name},
                     {"address", AddrString(lease.address)},
                     {"prefix", lease.prefix_len},
                     {"lease_seconds", lease.lease_seconds}});
          event = Event{renewal ? EventKind::kRenewed : EventKind::kBound, lease};
        } else if (msg->type == DhcpType::kNak) {
          log::Warn("dhcp: server refused the address (NAK); starting over", {{"interface", nic_.name}});
          bool had = lease_.has_value() && state_ != State::kRequesting;
          std::optional<DhcpLease> old = lease_;
          lease_.reset();
          SendDiscover(now);
          if (had) event = Event{EventKind::kLost, *old};
        }
        break;
      default:
        break;
    }
  }
  return event;
}

std::optional<DhcpClient::Event> DhcpClient::OnDeadline(DhcpClock::time_point now) {
  if (now < deadline_) return std::nullopt;
  switch (state_) {
    case State::kIdle:
      break;
    case State::kSelecting:
      backoff_ = std::min(backoff_ * 2, std::chrono::seconds(32));
      {
        DhcpMessage m;
        m.type = DhcpType::kDiscover;
        m.xid = xid_;
        std::memcpy(m.chaddr, nic_.mac_bytes, 6);
        m.hostname = hostname_;
        Send(m);
      }
      deadline_ = now + backoff_;
      break;
    case State::kRequesting:
      if (attempts_ >= 4) {
        SendDiscover(now);
      } else {
        SendRequest(now);
      }
      break;
    case State::kBound:
      state_ = State::kRenewing;
      backoff_ = std::chrono::seconds(4);
      SendRequest(now);
      break;
    case State::kRenewing:
    case State::kRebinding: {
      auto lease_end = bound_at_ + std::chrono::seconds(lease_->lease_seconds);
      uint32_t t2s = lease_->t2_seconds ? lease_->t2_seconds : lease_->lease_seconds / 8 * 7;
      if (now >= lease_end) {
        log::Warn("dhcp: lease expired",
                  {{"interface", nic_.name}, {"address", AddrString(lease_->address)}});
        DhcpLease old = *lease_;
        lease_.reset();
        SendDiscover(now);
        return Event{EventKind::kLost, old};
      }
      if (state_ == State::kRenewing && now >= bound_at_ + std::chrono::seconds(t2s))
        state_ = State::kRebinding;
      SendRequest(now);
      deadline_ = std::min(deadline_, lease_end);
      break;
    }
  }
  return std::nullopt;
}

}  // namespace nfc::init::host
