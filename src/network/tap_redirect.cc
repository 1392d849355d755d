#include "network/tap_redirect.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <netlink/netlink.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/action.h>
#include <netlink/route/addr.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/route.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>

#include "base/unique_fd.h"
#include "network/libnl.h"
#include "network/netns.h"
#include "network/sidecar_link.h"

namespace nfc::network {
namespace {

constexpr uint32_t kIngressHandle = TC_HANDLE(0xffffU, 0);

using nl::Action;
using nl::Cache;
using nl::Classifier;
using nl::Link;
using nl::Qdisc;
using nl::Socket;

Error NlError(int err, const std::string& what) {
  return Error::Internal(what + ": " + nl_geterror(err));
}

Result<Cache> Links(nl_sock* sk) {
  nl_cache* c = nullptr;
  if (int err = rtnl_link_alloc_cache(sk, AF_UNSPEC, &c); err < 0) return NlError(err, "list links");
  return Cache(c);
}

std::string FormatAddress(nl_addr* a, int family, unsigned prefixlen) {
  char text[INET6_ADDRSTRLEN] = {};
  unsigned char zero[16] = {};
  const void* bytes = (a && nl_addr_get_len(a) > 0) ? nl_addr_get_binary_addr(a) : zero;
  ::inet_ntop(family, bytes, text, sizeof(text));
  return std::string(text) + "/" + std::to_string(prefixlen);
}

std::string IpOnly(nl_addr* a, int family) {
  std::string cidr = FormatAddress(a, family, 0);
  return cidr.substr(0, cidr.find('/'));
}

template <typename Fn>
void ForEach(nl_cache* cache, Fn fn) {
  for (nl_object* o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) fn(o);
}

// The interface of the IPv4 default route in the main table, or 0.
int DefaultRouteInterface(nl_cache* routes) {
  int found = 0;
  ForEach(routes, [&](nl_object* o) {
    auto* r = reinterpret_cast<rtnl_route*>(o);
    nl_addr* dst = rtnl_route_get_dst(r);
    if (found || rtnl_route_get_family(r) != AF_INET || rtnl_route_get_table(r) != RT_TABLE_MAIN) return;
    if (dst && nl_addr_get_prefixlen(dst) != 0) return;
    if (rtnl_route_get_nnexthops(r) < 1) return;
    found = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, 0));
  });
  return found;
}

Result<Link> FindUplink(nl_sock* sk, nl_cache* links, const std::string& name, const std::string& netns) {
  if (!name.empty()) {
    Link l(rtnl_link_get_by_name(links, name.c_str()));
    if (!l) return Error::NotFound("uplink interface '" + name + "' not found in network namespace " + netns);
    return l;
  }
  nl_cache* rc = nullptr;
  if (int err = rtnl_route_alloc_cache(sk, AF_INET, 0, &rc); err < 0) return NlError(err, "list routes");
  Cache routes(rc);
  int ifindex = DefaultRouteInterface(routes.get());
  if (ifindex == 0) {
    return Error::FailedPrecondition("network namespace " + netns +
                                     " has no IPv4 default route, so no uplink to give the VM (is it a "
                                     "Nomad bridge-mode namespace?)");
  }
  Link l(rtnl_link_get(links, ifindex));
  if (!l) return Error::Internal("default route interface #" + std::to_string(ifindex) + " vanished");
  return l;
}

Result<UplinkIdentity> Identity(nl_sock* sk, rtnl_link* link) {
  UplinkIdentity id;
  id.name = rtnl_link_get_name(link);
  id.mtu = rtnl_link_get_mtu(link);
  char mac[32] = {};
  if (nl_addr* a = rtnl_link_get_addr(link)) nl_addr2str(a, mac, sizeof(mac));
  id.mac = mac;
  nl_cache* ac = nullptr;
  if (int err = rtnl_addr_alloc_cache(sk, &ac); err < 0) return NlError(err, "list addresses");
  Cache addrs(ac);
  int ifindex = rtnl_link_get_ifindex(link);
  ForEach(addrs.get(), [&](nl_object* o) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    if (rtnl_addr_get_ifindex(a) != ifindex || rtnl_addr_get_scope(a) != RT_SCOPE_UNIVERSE) return;
    id.addresses.push_back(
        FormatAddress(rtnl_addr_get_local(a), rtnl_addr_get_family(a), rtnl_addr_get_prefixlen(a)));
  });
  if (id.addresses.empty()) {
    return Error::FailedPrecondition("uplink " + id.name + " has no global address to give the VM");
  }
  return id;
}

Result<std::vector<GatewayRoute>> GatewayRoutes(nl_sock* sk, int ifindex) {
  nl_cache* rc = nullptr;
  if (int err = rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &rc); err < 0) return NlError(err, "list routes");
  Cache routes(rc);
  std::vector<GatewayRoute> out;
  ForEach(routes.get(), [&](nl_object* o) {
    auto* r = reinterpret_cast<rtnl_route*>(o);
    if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_type(r) != RTN_UNICAST) return;
    if (rtnl_route_get_nnexthops(r) != 1) return;
    rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
    nl_addr* gw = rtnl_route_nh_get_gateway(nh);
    if (!gw || rtnl_route_nh_get_ifindex(nh) != ifindex) return;  // connected routes follow from the address
    int family = rtnl_route_get_family(r);
    nl_addr* dst = rtnl_route_get_dst(r);
    out.push_back({FormatAddress(dst, family, dst ? nl_addr_get_prefixlen(dst) : 0), IpOnly(gw, family),
                   rtnl_route_get_priority(r)});
  });
  return out;
}

Status CreatePersistentTap(const std::string& tap) {
  UniqueFd tun(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!tun) return Error::Errno("open /dev/net/tun");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, tap.c_str(), IFNAMSIZ - 1);
  // Firecracker and QEMU attach with IFF_VNET_HDR themselves; only the multi-queue flag must match, and
  // neither uses it.
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(tun.get(), TUNSETIFF, &ifr) != 0) return Error::Errno("create TAP " + tap);
  if (::ioctl(tun.get(), TUNSETPERSIST, 1) != 0) return Error::Errno("make TAP " + tap + " persistent");
  return Ok();
}

Status SetUp(nl_sock* sk, rtnl_link* link, uint32_t mtu) {
  Link change(rtnl_link_alloc());
  rtnl_link_set_flags(change.get(), IFF_UP);
  if (mtu) rtnl_link_set_mtu(change.get(), mtu);
  if (int err = rtnl_link_change(sk, link, change.get(), 0); err < 0) {
    return NlError(err, std::string("bring up ") + rtnl_link_get_name(link));
  }
  return Ok();
}

Status AddIngressQdisc(nl_sock* sk, int ifindex, const std::string& dev) {
  Qdisc q(rtnl_qdisc_alloc());
  rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_INGRESS);
  rtnl_tc_set_handle(TC_CAST(q.get()), kIngressHandle);
  if (int err = rtnl_tc_set_kind(TC_CAST(q.get()), "ingress"); err < 0)
    return NlError(err, "tc kind ingress");
  int err = rtnl_qdisc_add(sk, q.get(), NLM_F_CREATE);
  if (err < 0 && err != -NLE_EXIST) return NlError(err, "add ingress qdisc on " + dev);
  return Ok();
}

// Every frame entering `from` leaves through `to`: u32 matching everything, mirred egress redirect.
Status AddRedirect(nl_sock* sk, int from, int to, const std::string& what) {
  NFC_RETURN_IF_ERROR(AddIngressQdisc(sk, from, what));
  Classifier c(rtnl_cls_alloc());
  rtnl_tc_set_ifindex(TC_CAST(c.get()), from);
  rtnl_tc_set_parent(TC_CAST(c.get()), kIngressHandle);
  if (int err = rtnl_tc_set_kind(TC_CAST(c.get()), "u32"); err < 0) return NlError(err, "tc kind u32");
  rtnl_cls_set_prio(c.get(), kRedirectFilterPriority);
  rtnl_cls_set_protocol(c.get(), ETH_P_ALL);
  rtnl_u32_add_key_uint32(c.get(), 0, 0, 0, 0);
  rtnl_u32_set_cls_terminal(c.get());
  Action act(rtnl_act_alloc());  // the classifier takes its own reference
  if (!act) return Error::Internal("tc: cannot allocate an action");
  rtnl_tc_set_kind(TC_CAST(act.get()), "mirred");
  rtnl_mirred_set_action(act.get(), TCA_EGRESS_REDIR);
  rtnl_mirred_set_policy(act.get(), TC_ACT_STOLEN);
  rtnl_mirred_set_ifindex(act.get(), static_cast<uint32_t>(to));
  if (int err = rtnl_u32_add_action(c.get(), act.get()); err < 0)
    return NlError(err, "tc: attach mirred action");
  if (int err = rtnl_cls_add(sk, c.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) {
    return NlError(err, "redirect " + what);
  }
  return Ok();
}

// An IPv4 CIDR as address and prefix length; "a.b.c.d" alone is a /32.
Result<std::pair<in_addr, uint8_t>> ParseCidr(const std::string& cidr) {
  std::string ip = cidr.substr(0, cidr.find('/'));
  int prefix = 32;
  if (auto slash = cidr.find('/'); slash != std::string::npos) {
    std::string len = cidr.substr(slash + 1);
    bool digits = !len.empty() && len.size() <= 2 && len.find_first_not_of("0123456789") == std::string::npos;
    prefix = digits ? std::stoi(len) : -1;
  }
  in_addr addr{};
  if (::inet_pton(AF_INET, ip.c_str(), &addr) != 1 || prefix < 0 || prefix > 32) {
    return Error::InvalidArgument("'" + cidr + "' is not an IPv4 CIDR such as \"169.254.0.0/16\"");
  }
  return std::make_pair(addr, static_cast<uint8_t>(prefix));
}

// One match of a u32 filter: a byte, or an IPv4 prefix, at an offset into the IP header.
struct U32Match {
  enum { kByte, kPrefix } kind;
  int offset;
  uint8_t value = 0, mask = 0;
  in_addr addr{};
};

// The namespace's loopback device: the same index in every network namespace.
constexpr uint32_t kLoopbackIndex = 1;

// A u32 filter on `ifindex`'s ingress that drops the IPv4 packets matching all of `matches`. The drop is a
// redirect to the namespace's loopback (mirred, which the uplink redirect needs anyway; the "drop" action,
// act_gact, is missing from some kernels): there the frame, addressed to another MAC, is discarded by the IP
// stack, and when loopback is down mirred itself drops it.
Status AddDrop(nl_sock* sk, int ifindex, const std::vector<U32Match>& matches, const std::string& what) {
  Classifier c(rtnl_cls_alloc());
  rtnl_tc_set_ifindex(TC_CAST(c.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(c.get()), kIngressHandle);
  if (int err = rtnl_tc_set_kind(TC_CAST(c.get()), "u32"); err < 0) return NlError(err, "tc kind u32");
  rtnl_cls_set_prio(c.get(), kEgressGuardPriority);
  rtnl_cls_set_protocol(c.get(), ETH_P_IP);
  for (const U32Match& m : matches) {
    int err = m.kind == U32Match::kByte ? rtnl_u32_add_key_uint8(c.get(), m.value, m.mask, m.offset, 0)
                                        : rtnl_u32_add_key_in_addr(c.get(), &m.addr, m.mask, m.offset, 0);
    if (err < 0) return NlError(err, "egress guard: u32 key for " + what);
  }
  rtnl_u32_set_cls_terminal(c.get());
  Action act(rtnl_act_alloc());
  if (!act) return Error::Internal("tc: cannot allocate an action");
  rtnl_tc_set_kind(TC_CAST(act.get()), "mirred");
  rtnl_mirred_set_action(act.get(), TCA_EGRESS_REDIR);
  rtnl_mirred_set_policy(act.get(), TC_ACT_STOLEN);
  rtnl_mirred_set_ifindex(act.get(), kLoopbackIndex);
  if (int err = rtnl_u32_add_action(c.get(), act.get()); err < 0)
    return NlError(err, "tc: attach mirred action");
  if (int err = rtnl_cls_add(sk, c.get(), NLM_F_CREATE); err < 0)
    return NlError(err, "egress guard: " + what);
  return Ok();
}

// Offsets into the IPv4 header (and the TCP header behind one without options).
constexpr int kVersionIhl = 0, kProtocol = 9, kDestination = 16, kTcpFlags = 20 + 13;

// The guard's drop filters on the TAP (see EgressGuard).
Status AddEgressGuard(nl_sock* sk, int tap_index, const EgressGuard& guard,
                      const std::vector<GatewayRoute>& routes) {
  if (!guard.enabled) return Ok();
  NFC_RETURN_IF_ERROR(AddIngressQdisc(sk, tap_index, "the TAP"));
  for (const std::string& cidr : guard.blocked_cidrs) {
    NFC_ASSIGN_OR_RETURN(auto net, ParseCidr(cidr));
    NFC_RETURN_IF_ERROR(AddDrop(sk, tap_index, {{U32Match::kPrefix, kDestination, 0, net.second, net.first}},
                                "drop to " + cidr));
  }
  if (!guard.block_gateway_connections) return Ok();
  std::vector<std::string> done;
  for (const GatewayRoute& r : routes) {
    auto gw = ParseCidr(r.gateway);
    if (!gw.ok() || std::find(done.begin(), done.end(), r.gateway) != done.end()) continue;  // IPv6, repeats
    done.push_back(r.gateway);
    U32Match to{U32Match::kPrefix, kDestination, 0, 32, gw->first};
    // TCP SYN without ACK in a packet without IP options (version 4, header length 5).
    NFC_RETURN_IF_ERROR(AddDrop(sk, tap_index,
                                {to,
                                 {U32Match::kByte, kVersionIhl, 0x45, 0xff},
                                 {U32Match::kByte, kProtocol, IPPROTO_TCP, 0xff},
                                 {U32Match::kByte, kTcpFlags, 0x02, 0x12}},
                                "TCP connections to " + r.gateway));
    // Any header length other than 5 (binary 0101): bit 3 or bit 1 set, or bit 2 or bit 0 clear.
    for (auto [value, mask] :
         {std::pair<uint8_t, uint8_t>{0x08, 0x08}, {0x02, 0x02}, {0x00, 0x04}, {0x00, 0x01}}) {
      NFC_RETURN_IF_ERROR(AddDrop(sk, tap_index, {to, {U32Match::kByte, kVersionIhl, value, mask}},
                                  "packets with IP options to " + r.gateway));
    }
  }
  return Ok();
}

// The TAP our filter on `ifindex` redirects to, 0 when there is no filter of ours.
Result<int> RedirectTarget(nl_sock* sk, int ifindex) {
  nl_cache* cc = nullptr;
  int err = rtnl_cls_alloc_cache(sk, ifindex, kIngressHandle, &cc);
  if (err == -NLE_INVAL || err == -NLE_OBJ_NOTFOUND) return 0;  // no ingress qdisc
  if (err < 0) return NlError(err, "list ingress filters");
  Cache filters(cc);
  // A u32 filter dumps as several objects (hash table, divisor, key node); only the key node has the action.
  int target = 0;
  ForEach(filters.get(), [&](nl_object* o) {
    auto* c = reinterpret_cast<rtnl_cls*>(o);
    if (rtnl_cls_get_prio(c) != kRedirectFilterPriority) return;
    if (rtnl_act* a = rtnl_u32_get_action(c)) {
      target = static_cast<int>(rtnl_mirred_get_ifindex(a));
    } else if (target == 0) {
      target = -1;  // ours, but its action is not visible (yet)
    }
  });
  return target;
}

Status DeleteRedirect(nl_sock* sk, int ifindex, const std::string& dev) {
  Classifier c(rtnl_cls_alloc());
  rtnl_tc_set_ifindex(TC_CAST(c.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(c.get()), kIngressHandle);
  rtnl_tc_set_kind(TC_CAST(c.get()), "u32");
  rtnl_cls_set_prio(c.get(), kRedirectFilterPriority);
  rtnl_cls_set_protocol(c.get(), ETH_P_ALL);
  int err = rtnl_cls_delete(sk, c.get(), 0);
  if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_INVAL && err != -NLE_NOATTR) {
    return NlError(err, "remove the redirect from " + dev);
  }
  return Ok();
}

Status AttachInNetns(const std::string& netns, const std::string& tap, const std::string& uplink_name,
                     const EgressGuard& guard, TapAttachment* out) {
  NFC_ASSIGN_OR_RETURN(Socket sk, nl::ConnectRoute());
  NFC_ASSIGN_OR_RETURN(Cache links, Links(sk.get()));
  NFC_ASSIGN_OR_RETURN(Link uplink, FindUplink(sk.get(), links.get(), uplink_name, netns));
  NFC_ASSIGN_OR_RETURN(out->uplink, Identity(sk.get(), uplink.get()));
  int uplink_index = rtnl_link_get_ifindex(uplink.get());
  NFC_ASSIGN_OR_RETURN(out->routes, GatewayRoutes(sk.get(), uplink_index));

  Link existing(rtnl_link_get_by_name(links.get(), tap.c_str()));
  NFC_ASSIGN_OR_RETURN(int owner, RedirectTarget(sk.get(), uplink_index));
  if (owner != 0) {
    if (existing && owner == rtnl_link_get_ifindex(existing.get())) return Ok();  // attached before
    return Error::FailedPrecondition("uplink " + out->uplink.name + " in " + netns +
                                     " is already redirected to another VM's TAP: one VM per allocation "
                                     "network can own its address");
  }
  if (!existing) {
    NFC_RETURN_IF_ERROR(CreatePersistentTap(tap));
    NFC_ASSIGN_OR_RETURN(links, Links(sk.get()));
    existing.reset(rtnl_link_get_by_name(links.get(), tap.c_str()));
    if (!existing) return Error::Internal("TAP " + tap + " was created but is not listed");
  }
  NFC_RETURN_IF_ERROR(SetUp(sk.get(), existing.get(), out->uplink.mtu));
  int tap_index = rtnl_link_get_ifindex(existing.get());
  // The guard is in place before any frame of the guest can reach the uplink.
  Status s = AddEgressGuard(sk.get(), tap_index, guard, out->routes);
  if (s.ok()) s = AddRedirect(sk.get(), tap_index, uplink_index, tap + " → " + out->uplink.name);
  if (s.ok()) s = AddRedirect(sk.get(), uplink_index, tap_index, out->uplink.name + " → " + tap);
  if (!s.ok()) {
    // Leave the namespace as Nomad made it.
    (void)DeleteRedirect(sk.get(), uplink_index, out->uplink.name);
    (void)rtnl_link_delete(sk.get(), existing.get());
  }
  return s;
}

Status DetachInNetns(const std::string& tap) {
  NFC_ASSIGN_OR_RETURN(Socket sk, nl::ConnectRoute());
  NFC_ASSIGN_OR_RETURN(Cache links, Links(sk.get()));
  Link tap_link(rtnl_link_get_by_name(links.get(), tap.c_str()));
  if (!tap_link) return Ok();
  int tap_index = rtnl_link_get_ifindex(tap_link.get());
  // The uplink is whichever interface redirects to our TAP.
  Status result = Ok();
  ForEach(links.get(), [&](nl_object* o) {
    auto* l = reinterpret_cast<rtnl_link*>(o);
    int index = rtnl_link_get_ifindex(l);
    if (index == tap_index || !result.ok()) return;
    auto target = RedirectTarget(sk.get(), index);
    if (!target.ok()) {
      result = target.error();
    } else if (*target == tap_index) {
      result = DeleteRedirect(sk.get(), index, rtnl_link_get_name(l));
      if (result.ok()) result = RemoveSidecarUplinkFilters(index);  // network/sidecar_link.h
    }
  });
  NFC_RETURN_IF_ERROR(result);
  // Deleting the TAP removes its own qdisc and filter.
  if (int err = rtnl_link_delete(sk.get(), tap_link.get()); err < 0 && err != -NLE_OBJ_NOTFOUND) {
    return NlError(err, "delete TAP " + tap);
  }
  return Ok();
}

Status AddAddress(nl_sock* sk, int ifindex, const std::string& cidr) {
  nl_addr* local = nullptr;
  if (int err = nl_addr_parse(cidr.c_str(), AF_INET, &local); err < 0) return NlError(err, "address " + cidr);
  nl::NlAddr hold(local);
  nl::Addr a(rtnl_addr_alloc());
  rtnl_addr_set_ifindex(a.get(), ifindex);
  rtnl_addr_set_local(a.get(), local);
  int err = rtnl_addr_add(sk, a.get(), 0);
  if (err < 0 && err != -NLE_EXIST) return NlError(err, "add address " + cidr);
  return Ok();
}

}  // namespace

Status CreateHostTap(const std::string& tap, uint32_t mtu, const std::string& address,
                     const EgressGuard& guard, const std::string& gateway) {
  if (tap.empty() || tap.size() >= IFNAMSIZ || tap.find('/') != std::string::npos) {
    return Error::InvalidArgument("TAP name '" + tap + "' must be 1-15 characters without '/'");
  }
  NFC_ASSIGN_OR_RETURN(Socket sk, nl::ConnectRoute());
  NFC_ASSIGN_OR_RETURN(Cache links, Links(sk.get()));
  // A leftover of an earlier attempt is made afresh, so its filters are not doubled.
  if (Link old(rtnl_link_get_by_name(links.get(), tap.c_str())); old) {
    if (int err = rtnl_link_delete(sk.get(), old.get()); err < 0 && err != -NLE_OBJ_NOTFOUND) {
      return NlError(err, "delete the earlier TAP " + tap);
    }
  }
  NFC_RETURN_IF_ERROR(CreatePersistentTap(tap));
  NFC_ASSIGN_OR_RETURN(links, Links(sk.get()));
  Link link(rtnl_link_get_by_name(links.get(), tap.c_str()));
  if (!link) return Error::Internal("TAP " + tap + " was created but is not listed");
  int index = rtnl_link_get_ifindex(link.get());
  NFC_RETURN_IF_ERROR(AddAddress(sk.get(), index, address));
  // The guard's filters are in place before the TAP carries a frame.
  NFC_RETURN_IF_ERROR(AddEgressGuard(sk.get(), index, guard, {{"0.0.0.0/0", gateway, 0}}));
  return SetUp(sk.get(), link.get(), mtu);
}

Status CreateDetachedTap(const std::string& tap) {
  return CreatePersistentTap(tap);
}

Status DeleteHostTap(const std::string& tap) {
  return DetachInNetns(tap);
}

Result<TapAttachment> AttachTap(const std::string& netns_path, const std::string& tap,
                                const std::string& uplink_name, const EgressGuard& guard) {
  if (tap.empty() || tap.size() >= IFNAMSIZ || tap.find('/') != std::string::npos) {
    return Error::InvalidArgument("TAP name '" + tap + "' must be 1-15 characters without '/'");
  }
  TapAttachment out;
  out.netns_path = netns_path;
  out.tap = tap;
  Status s = RunInNetns(netns_path, [&] { return AttachInNetns(netns_path, tap, uplink_name, guard, &out); });
  if (!s.ok()) return std::move(s).error().Context("attach TAP " + tap + " in " + netns_path);
  return out;
}

Status DetachTap(const std::string& netns_path, const std::string& tap) {
  // Nomad destroyed the namespace (the path is gone, or left as a plain file after the unmount): the TAP went
  // with it.
  auto ns = OpenNetns(netns_path);
  if (!ns.ok() && (ns.error().sys_errno() == ENOENT || ns.error().code() == ErrorCode::kInvalidArgument)) {
    return Ok();
  }
  Status s = RunInNetns(netns_path, [&] { return DetachInNetns(tap); });
  if (!s.ok()) return std::move(s).error().Context("detach TAP " + tap + " in " + netns_path);
  return Ok();
}

std::string TapNameForTask(const std::string& task_id) {
  // FNV-1a: stable across processes and versions (std::hash is not).
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : task_id) h = (h ^ c) * 1099511628211ULL;
  char name[IFNAMSIZ];
  std::snprintf(name, sizeof(name), "nfc%010llx", static_cast<unsigned long long>(h & 0xffffffffffULL));
  return name;
}

}  // namespace nfc::network
