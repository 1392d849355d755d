#include "network/sidecar_link.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/pkt_sched.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>

#include <memory>

#include "network/netns.h"

namespace nfc::network {
namespace {

constexpr uint32_t kIngressHandle = TC_HANDLE(0xffffU, 0);

template <typename T, void (*Free)(T*)>
struct NlDeleter {
  void operator()(T* p) const {
    if (p) Free(p);
  }
};
using Socket = std::unique_ptr<nl_sock, NlDeleter<nl_sock, nl_socket_free>>;
using Cache = std::unique_ptr<nl_cache, NlDeleter<nl_cache, nl_cache_free>>;
using Link = std::unique_ptr<rtnl_link, NlDeleter<rtnl_link, rtnl_link_put>>;
using Qdisc = std::unique_ptr<rtnl_qdisc, NlDeleter<rtnl_qdisc, rtnl_qdisc_put>>;
using Classifier = std::unique_ptr<rtnl_cls, NlDeleter<rtnl_cls, rtnl_cls_put>>;
using Addr = std::unique_ptr<rtnl_addr, NlDeleter<rtnl_addr, rtnl_addr_put>>;
using NlAddr = std::unique_ptr<nl_addr, NlDeleter<nl_addr, nl_addr_put>>;

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

// A u32 filter on the TAP's ingress that matches `value` at `offset` of the network header and has no
// action: the frame goes on up the namespace's stack and the filters after it (the redirect) never see it.
Status AddPass(nl_sock* sk, int ifindex, uint16_t prio, uint16_t protocol, int offset,
               const std::string& what) {
  Classifier old(rtnl_cls_alloc());  // idempotent: replace ours
  rtnl_tc_set_ifindex(TC_CAST(old.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(old.get()), kIngressHandle);
  rtnl_tc_set_kind(TC_CAST(old.get()), "u32");
  rtnl_cls_set_prio(old.get(), prio);
  rtnl_cls_set_protocol(old.get(), protocol);
  (void)rtnl_cls_delete(sk, old.get(), 0);

  in_addr peer{};
  ::inet_pton(AF_INET, kSidecarNetnsAddress, &peer);
  Classifier c(rtnl_cls_alloc());
  rtnl_tc_set_ifindex(TC_CAST(c.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(c.get()), kIngressHandle);
  if (int err = rtnl_tc_set_kind(TC_CAST(c.get()), "u32"); err < 0) return NlError(err, "tc kind u32");
  rtnl_cls_set_prio(c.get(), prio);
  rtnl_cls_set_protocol(c.get(), protocol);
  if (int err = rtnl_u32_add_key_in_addr(c.get(), &peer, 32, offset, 0); err < 0)
    return NlError(err, "u32 key for " + what);
  rtnl_u32_set_cls_terminal(c.get());
  if (int err = rtnl_cls_add(sk, c.get(), NLM_F_CREATE); err < 0) return NlError(err, "pass " + what);
  return Ok();
}

Status AttachInNetns(const std::string& tap) {
  Socket sk(nl_socket_alloc());
  if (!sk) return Error::Internal("netlink: cannot allocate a socket");
  if (int err = nl_connect(sk.get(), NETLINK_ROUTE); err < 0) return NlError(err, "netlink connect");
  nl_cache* lc = nullptr;
  if (int err = rtnl_link_alloc_cache(sk.get(), AF_UNSPEC, &lc); err < 0) return NlError(err, "list links");
  Cache links(lc);
  Link link(rtnl_link_get_by_name(links.get(), tap.c_str()));
  if (!link) return Error::NotFound("sidecar link: TAP " + tap + " not found");
  int ifindex = rtnl_link_get_ifindex(link.get());
  NFC_RETURN_IF_ERROR(AddAddress(sk.get(), ifindex));
  Qdisc q(rtnl_qdisc_alloc());
  rtnl_tc_set_ifindex(TC_CAST(q.get()), ifindex);
  rtnl_tc_set_parent(TC_CAST(q.get()), TC_H_INGRESS);
  rtnl_tc_set_handle(TC_CAST(q.get()), kIngressHandle);
  rtnl_tc_set_kind(TC_CAST(q.get()), "ingress");
  if (int err = rtnl_qdisc_add(sk.get(), q.get(), NLM_F_CREATE); err < 0 && err != -NLE_EXIST)
    return NlError(err, "add ingress qdisc on " + tap);
  // IPv4 destination at offset 16; an ARP packet's target protocol address at 24 (requests for the
  // namespace's end, and the guest's replies to the namespace's own requests).
  NFC_RETURN_IF_ERROR(
      AddPass(sk.get(), ifindex, kSidecarPassPriority, ETH_P_IP, 16, "IPv4 to the namespace"));
  return AddPass(sk.get(), ifindex, kSidecarArpPassPriority, ETH_P_ARP, 24, "ARP for the namespace");
}

}  // namespace

Status AttachSidecarLink(const std::string& netns_path, const std::string& tap) {
  Status s = RunInNetns(netns_path, [&] { return AttachInNetns(tap); });
  if (!s.ok()) return std::move(s).error().Context("attach the sidecar link on " + tap + " in " + netns_path);
  return Ok();
}

}  // namespace nfc::network
