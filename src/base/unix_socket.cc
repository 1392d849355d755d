#include "base/unix_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace nfc {
namespace {

using Clock = std::chrono::steady_clock;

Result<sockaddr_un> Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return Error::InvalidArgument("unix socket path '" + path + "' is empty or longer than " +
                                  std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

// Reads one '\n'-terminated line byte by byte (nothing after the newline may be consumed: it is the stream).
Result<std::string> ReadLine(int fd, Clock::time_point deadline, size_t max) {
  std::string line;
  while (line.size() < max) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Error::Timeout("no answer to CONNECT");
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Errno("poll");
    if (n == 0) continue;
    char c;
    ssize_t r = ::read(fd, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Error::Errno("read");
    if (r == 0)
      return Error::Unavailable("connection closed before OK (nobody listens on that guest port yet)");
    if (c == '\n') return line;
    line.push_back(c);
  }
  return Error::DataLoss("answer line longer than " + std::to_string(max) + " bytes: " + line);
}

}  // namespace

Result<UniqueFd> ListenUnix(const std::string& path, int backlog) {
  NFC_ASSIGN_OR_RETURN(sockaddr_un addr, Address(path));
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return Error::FailedPrecondition(path + " exists and is not a socket; not replacing it");
    if (::unlink(path.c_str()) != 0) return Error::Errno("remove stale socket " + path);
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::Errno("socket");
  // umask-independent: nobody but root talks to our sockets.
  if (::fchmod(fd.get(), 0600) != 0 && errno != EINVAL) return Error::Errno("fchmod socket " + path);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Error::Errno("bind " + path);
  if (::chmod(path.c_str(), 0600) != 0) return Error::Errno("chmod " + path);
  if (::listen(fd.get(), backlog) != 0) return Error::Errno("listen " + path);
  return fd;
}

Result<UniqueFd> ConnectUnix(const std::string& path) {
  std::string target = path;
  UniqueFd dirfd;
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return Error::InvalidArgument("unix socket name too long: " + path);
    std::string dir = slash == 0 ? "/" : path.substr(0, slash);
    dirfd.Reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dirfd) return Error::Errno("open " + dir);
    target = "/proc/self/fd/" + std::to_string(dirfd.get()) + "/" + path.substr(slash + 1);
  }
  NFC_ASSIGN_OR_RETURN(sockaddr_un addr, Address(target));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::Errno("socket");
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) break;
    if (errno == EINTR) continue;
    return Error::Errno("connect " + path);
  }
  return fd;
}

Result<UniqueFd> DialHybridVsock(const std::string& uds_path, uint32_t port,
                                 std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  NFC_ASSIGN_OR_RETURN(UniqueFd fd, ConnectUnix(uds_path));
  std::string request = "CONNECT " + std::to_string(port) + "\n";
  // A fresh unix socket's send buffer takes a dozen bytes without blocking: one send is all or an error.
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
    return Error::Errno("send CONNECT to " + uds_path);
  NFC_ASSIGN_OR_RETURN(std::string line, ReadLine(fd.get(), deadline, 64));
  if (line.rfind("OK ", 0) != 0) {
    return Error::Unavailable("vsock " + uds_path + " port " + std::to_string(port) +
                              ": unexpected answer '" + line + "'");
  }
  return fd;
}

}  // namespace nfc
