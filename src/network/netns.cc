#include "network/netns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>

#include <thread>

namespace nfc::network {

Result<UniqueFd> OpenNetns(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Error::Errno("network namespace '" + path + "'");
  int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
  if (type < 0) {
    return Error::InvalidArgument("network namespace '" + path + "' is not a namespace file");
  }
  if (type != CLONE_NEWNET) {
    return Error::InvalidArgument("'" + path + "' is a namespace, but not a network namespace");
  }
  return fd;
}

Status RunInNetns(const std::string& path, const std::function<Status()>& work) {
  NFC_ASSIGN_OR_RETURN(UniqueFd ns, OpenNetns(path));
  Status result = Ok();
  std::thread worker([&] {
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      result = Error::Errno("join network namespace '" + path + "'");
      return;
    }
    result = work();
  });
  worker.join();
  return result;
}

Status RunInNewNetns(const std::function<Status()>& work) {
  Status result = Ok();
  std::thread worker([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      result = Error::Errno("unshare(CLONE_NEWNET)");
      return;
    }
    result = work();
  });
  worker.join();
  return result;
}

}  // namespace nfc::network
