// Unix stream sockets: listening, connecting (also to paths longer than sun_path), and the host side of
// Firecracker's hybrid vsock, where a host process reaches a guest port through the VM's vsock unix socket.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "base/error.h"
#include "base/unique_fd.h"

namespace nfc {

// Binds and listens on `path` (relative paths resolve against the cwd), replacing a stale socket file left by
// a dead process. Refuses to replace anything that is not a socket. The socket file gets mode 0600: only its
// owner (root, for our sockets) may connect.
Result<UniqueFd> ListenUnix(const std::string& path, int backlog = 16);

// Connects to the socket at `path`, once. Paths longer than sun_path (108 bytes; data dirs can be deep) are
// reached through an O_PATH descriptor of the directory and /proc/self/fd. The socket is blocking and
// close-on-exec.
Result<UniqueFd> ConnectUnix(const std::string& path);

// Firecracker hybrid vsock, host-initiated (docs/vsock.md): connects to the VM's vsock socket `uds_path`,
// sends "CONNECT <port>\n" and waits up to `timeout` for "OK <host port>\n". The answer is read byte by byte,
// so nothing after it is consumed: the returned socket carries the guest stream. One attempt: when the guest
// does not listen on the port yet, Firecracker closes the connection and this returns kUnavailable; callers
// retry.
Result<UniqueFd> DialHybridVsock(const std::string& uds_path, uint32_t port,
                                 std::chrono::milliseconds timeout);

}  // namespace nfc
