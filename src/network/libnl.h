// Internal to src/network: owning holders for libnl-route-3's objects (reference-counted C structs; a holder
// owns one reference and drops it) and the NETLINK_ROUTE socket the TAP redirect and the sidecar link open.
#pragma once

#include <netlink/netlink.h>
#include <netlink/route/action.h>
#include <netlink/route/addr.h>
#include <netlink/route/classifier.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>

#include <memory>
#include <string>

#include "base/error.h"

namespace nfc::network::nl {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const {
    if (p) Free(p);
  }
};
using Socket = std::unique_ptr<nl_sock, Deleter<nl_sock, nl_socket_free>>;
using Cache = std::unique_ptr<nl_cache, Deleter<nl_cache, nl_cache_free>>;
using Link = std::unique_ptr<rtnl_link, Deleter<rtnl_link, rtnl_link_put>>;
using Qdisc = std::unique_ptr<rtnl_qdisc, Deleter<rtnl_qdisc, rtnl_qdisc_put>>;
using Classifier = std::unique_ptr<rtnl_cls, Deleter<rtnl_cls, rtnl_cls_put>>;
using Addr = std::unique_ptr<rtnl_addr, Deleter<rtnl_addr, rtnl_addr_put>>;
using NlAddr = std::unique_ptr<nl_addr, Deleter<nl_addr, nl_addr_put>>;
using Action = std::unique_ptr<rtnl_act, Deleter<rtnl_act, rtnl_act_put>>;

// A connected NETLINK_ROUTE socket of the calling thread's network namespace.
inline Result<Socket> ConnectRoute() {
  Socket sk(nl_socket_alloc());
  if (!sk) return Error::Internal("netlink: cannot allocate a socket");
  if (int err = nl_connect(sk.get(), NETLINK_ROUTE); err < 0) {
    return Error::Internal(std::string("netlink: connect: ") + nl_geterror(err));
  }
  return sk;
}

}  // namespace nfc::network::nl
