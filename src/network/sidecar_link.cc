#include "network/sidecar_link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/pkt_sched.h>
#include <linux/tc_act/tc_mirred.h>
#include <netinet/in.h>
#include <netlink/netlink.h>
#include <netlink/route/act/mirred.h>
#include <netlink/route/action.h>
#include <netlink/route/addr.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/route.h>
#include <unistd.h>

#include <memory>

#include "base/unique_fd.h"
#include "network/libnl.h"
#include "network/netns.h"

namespace nfc::network {
namespace {

constexpr uint32_t kIngressHandle = TC_HANDLE(0xffffU, 0);

using nl::Action;
using nl::Addr;
using nl::Cache;
using nl::Classifier;
using nl::Link;
using nl::NlAddr;
using nl::Qdisc;
using nl::Socket;

Error NlError(int err, const std::string& what) {
  return Error::Internal("sidecar link: " + what + ": " + nl_geterror(err));
}

Status AddAddress(nl_sock* sk, int ifindex) {
  std::string cidr = std::string(kSidecarNetnsAddress) + "/" + std::to_string(kSidecarPrefixLength);
  nl_addr* parsed = nullptr;
  if (int err = nl_addr_parse(cidr.c_str(), AF_INET, &parsed); err < 0) return NlError(err, "parse " + cidr);
  NlAddr local(parsed);
  Addr a(rtnl_addr_alloc());
  rtnl_addr_set_ifindex(a.get(), ifindex);
  rtnl_addr_set_local(a.get(), local.get());
  rtnl_addr_set_prefixlen(a.get(), kSidecarPrefixLength);
  int err = rtnl_addr_add(sk, a.get(), 0);
  if (err < 0 && err != -NLE_EXIST) return NlError(err, "add " + cidr);
  return Ok();
}

// One u32 key: `value` under `mask` at `offset` of the network header, 8, 16 or 32 bits wide.
struct Key {
  int bits;
  uint32_t value, mask;
  int offset;
};

Status DeleteFilters(nl_sock* sk, int ifindex, uint16_t prio, uint16_t protocol) {
  Classifier old(rtnl_cls_alloc());
  rtnl_tc_set_ifindex(TC_CAST(old.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(old.get()), kIngressHandle);
  rtnl_tc_set_kind(TC_CAST(old.get()), "u32");
  rtnl_cls_set_prio(old.get(), prio);
  rtnl_cls_set_protocol(old.get(), protocol);
  int err = rtnl_cls_delete(sk, old.get(), 0);
  if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_INVAL && err != -NLE_NOATTR)
    return NlError(err, "remove filters at priority " + std::to_string(prio));
  return Ok();
}

// A u32 filter on `ifindex`'s ingress matching all `keys`. Without `mirror_to` it has no action: a match ends
// the chain with "OK" and the frame goes up this namespace's stack (the filters after it, the redirect, never
// see it). With `mirror_to`, a copy of the frame also leaves through that interface.
Status AddFilter(nl_sock* sk, int ifindex, uint16_t prio, uint16_t protocol, const std::vector<Key>& keys,
                 const std::string& what, int mirror_to = 0) {
  Classifier c(rtnl_cls_alloc());
  rtnl_tc_set_ifindex(TC_CAST(c.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(c.get()), kIngressHandle);
  if (int err = rtnl_tc_set_kind(TC_CAST(c.get()), "u32"); err < 0) return NlError(err, "tc kind u32");
  rtnl_cls_set_prio(c.get(), prio);
  rtnl_cls_set_protocol(c.get(), protocol);
  for (const Key& k : keys) {
    int err = k.bits == 8    ? rtnl_u32_add_key_uint8(c.get(), static_cast<uint8_t>(k.value),
                                                      static_cast<uint8_t>(k.mask), k.offset, 0)
              : k.bits == 16 ? rtnl_u32_add_key_uint16(c.get(), static_cast<uint16_t>(k.value),
                                                       static_cast<uint16_t>(k.mask), k.offset, 0)
                             : rtnl_u32_add_key_uint32(c.get(), k.value, k.mask, k.offset, 0);  // host order
    if (err < 0) return NlError(err, "u32 key for " + what);
  }
  rtnl_u32_set_cls_terminal(c.get());
  Action act(mirror_to ? rtnl_act_alloc() : nullptr);
  if (mirror_to) {
    if (!act) return Error::Internal("tc: cannot allocate an action");
    rtnl_tc_set_kind(TC_CAST(act.get()), "mirred");
    rtnl_mirred_set_action(act.get(), TCA_EGRESS_MIRROR);
    rtnl_mirred_set_policy(act.get(), TC_ACT_OK);
    rtnl_mirred_set_ifindex(act.get(), static_cast<uint32_t>(mirror_to));
    if (int err = rtnl_u32_add_action(c.get(), act.get()); err < 0) return NlError(err, "mirred for " + what);
  }
  if (int err = rtnl_cls_add(sk, c.get(), NLM_F_CREATE); err < 0) return NlError(err, what);
  return Ok();
}

Status AddIngress(nl_sock* sk, int ifindex, const std::string& dev) {
  Qdisc q(rtnl_qdisc_alloc());
  rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_INGRESS);
  rtnl_tc_set_handle(TC_CAST(q.get()), kIngressHandle);
  rtnl_tc_set_kind(TC_CAST(q.get()), "ingress");
  if (int err = rtnl_qdisc_add(sk, q.get(), NLM_F_CREATE); err < 0 && err != -NLE_EXIST)
    return NlError(err, "add ingress qdisc on " + dev);
  return Ok();
}

Status RemoveUplinkFilters(nl_sock* sk, int uplink) {
  NFC_RETURN_IF_ERROR(DeleteFilters(sk, uplink, kSidecarUplinkArpPriority, ETH_P_ARP));
  return DeleteFilters(sk, uplink, kSidecarUplinkPortsPriority, ETH_P_IP);
}

uint32_t NetnsEnd() {
  in_addr a{};
  ::inet_pton(AF_INET, kSidecarNetnsAddress, &a);
  return ntohl(a.s_addr);
}

// The TAP's side: the guest's IPv4 to the namespace's end, and ARP asking for it or answering it (target
// protocol address at offset 24), up the namespace's stack.
Status AddTapFilters(nl_sock* sk, int tap) {
  NFC_RETURN_IF_ERROR(DeleteFilters(sk, tap, kSidecarPassPriority, ETH_P_IP));
  NFC_RETURN_IF_ERROR(DeleteFilters(sk, tap, kSidecarArpPassPriority, ETH_P_ARP));
  NFC_RETURN_IF_ERROR(AddFilter(sk, tap, kSidecarPassPriority, ETH_P_IP, {{32, NetnsEnd(), ~0U, 16}},
                                "IPv4 to the namespace"));
  return AddFilter(sk, tap, kSidecarArpPassPriority, ETH_P_ARP, {{32, NetnsEnd(), ~0U, 24}},
                   "ARP for the namespace");
}

// The uplink's side: ARP to both; TCP and UDP (in packets without IP options) to the namespace's ephemeral
// ports and to `ports` up the namespace's stack.
Status AddUplinkFilters(nl_sock* sk, int uplink, int tap, const std::vector<uint16_t>& ports) {
  NFC_RETURN_IF_ERROR(RemoveUplinkFilters(sk, uplink));
  NFC_RETURN_IF_ERROR(AddFilter(sk, uplink, kSidecarUplinkArpPriority, ETH_P_ARP, {{32, 0, 0, 0}},
                                "ARP to the guest and the namespace", tap));
  for (uint8_t proto : {uint8_t{IPPROTO_TCP}, uint8_t{IPPROTO_UDP}}) {
    std::vector<std::pair<uint32_t, uint32_t>> dports = {{kSidecarNetnsEphemeralFirst, 0xf000}};
    for (uint16_t p : ports) dports.emplace_back(p, 0xffff);
    for (auto [port, mask] : dports) {
      NFC_RETURN_IF_ERROR(AddFilter(sk, uplink, kSidecarUplinkPortsPriority, ETH_P_IP,
                                    {{8, 0x45, 0xff, 0}, {8, proto, 0xff, 9}, {16, port, mask, 22}},
                                    "the namespace's port " + std::to_string(port)));
    }
  }
  return Ok();
}

// The interface of the IPv4 default route: the uplink Nomad's CNI configuration made.
Result<int> DefaultRouteInterface(nl_sock* sk) {
  nl_cache* rc = nullptr;
  if (int err = rtnl_route_alloc_cache(sk, AF_INET, 0, &rc); err < 0) return NlError(err, "list routes");
  Cache routes(rc);
  for (nl_object* o = nl_cache_get_first(routes.get()); o; o = nl_cache_get_next(o)) {
    auto* r = reinterpret_cast<rtnl_route*>(o);
    nl_addr* dst = rtnl_route_get_dst(r);
    if (rtnl_route_get_table(r) != RT_TABLE_MAIN || (dst && nl_addr_get_prefixlen(dst) != 0)) continue;
    if (rtnl_route_get_nnexthops(r) >= 1) return rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, 0));
  }
  return Error::FailedPrecondition("sidecar link: the namespace has no IPv4 default route (no uplink)");
}

// Read through this thread's namespace: net sysctls are per namespace.
Status SetEphemeralPorts() {
  const char* path = "/proc/sys/net/ipv4/ip_local_port_range";
  std::string range = std::to_string(kSidecarNetnsEphemeralFirst) + " 65535\n";
  UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), range.data(), range.size()) != static_cast<ssize_t>(range.size()))
    return Error::Errno(std::string("sidecar link: set ") + path + " to " +
                        range.substr(0, range.size() - 1));
  return Ok();
}

Status AttachInNetns(const std::string& tap, const std::vector<uint16_t>& netns_ports) {
  NFC_ASSIGN_OR_RETURN(Socket sk, nl::ConnectRoute());
  nl_cache* lc = nullptr;
  if (int err = rtnl_link_alloc_cache(sk.get(), AF_UNSPEC, &lc); err < 0) return NlError(err, "list links");
  Cache links(lc);
  Link link(rtnl_link_get_by_name(links.get(), tap.c_str()));
  if (!link) return Error::NotFound("sidecar link: TAP " + tap + " not found");
  int ifindex = rtnl_link_get_ifindex(link.get());
  NFC_RETURN_IF_ERROR(AddAddress(sk.get(), ifindex));
  NFC_RETURN_IF_ERROR(AddIngress(sk.get(), ifindex, tap));
  NFC_RETURN_IF_ERROR(AddTapFilters(sk.get(), ifindex));
  NFC_ASSIGN_OR_RETURN(int uplink, DefaultRouteInterface(sk.get()));
  // The namespace's own connections pick their ports where the uplink's filters send the replies.
  NFC_RETURN_IF_ERROR(SetEphemeralPorts());
  return AddUplinkFilters(sk.get(), uplink, ifindex, netns_ports);
}

}  // namespace

Status AttachSidecarLink(const std::string& netns_path, const std::string& tap,
                         const std::vector<uint16_t>& netns_ports) {
  Status s = RunInNetns(netns_path, [&] { return AttachInNetns(tap, netns_ports); });
  if (!s.ok()) return std::move(s).error().Context("attach the sidecar link on " + tap + " in " + netns_path);
  return Ok();
}

Status RemoveSidecarUplinkFilters(int ifindex) {
  NFC_ASSIGN_OR_RETURN(Socket sk, nl::ConnectRoute());
  return RemoveUplinkFilters(sk.get(), ifindex);
}

}  // namespace nfc::network
