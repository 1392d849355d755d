#include "vmm/qemu/qmp_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "vmm/json_fields.h"

namespace nfc::vmm::qemu {

using Clock = std::chrono::steady_clock;

Status QmpClient::Connect(const std::string& path, std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Error::InvalidArgument("QMP socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  auto deadline = Clock::now() + timeout;
  for (;;) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return Error::Errno("socket(AF_UNIX)");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      NFC_RETURN_IF_ERROR_CTX(Handshake(std::move(fd), deadline + std::chrono::seconds(5)), "QMP " + path);
      return Ok();
    }
    if ((errno != ENOENT && errno != ECONNREFUSED) || Clock::now() >= deadline) {
      return Error::Errno("connect QMP " + path);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Status QmpClient::Handshake(UniqueFd fd, Clock::time_point deadline) {
  fd_ = std::move(fd);
  buffer_.clear();
  NFC_ASSIGN_OR_RETURN(auto greeting, ReadMessage(deadline));
  if (!greeting.is_object() || !greeting.contains("QMP")) {
    return Error::DataLoss("no greeting: " + Show(greeting));
  }
  const auto& qemu = Member(Member(Member(greeting, "QMP"), "version"), "qemu");
  version_ = qemu.is_object() ? std::to_string(UnsignedMember(qemu, "major")) + "." +
                                    std::to_string(UnsignedMember(qemu, "minor")) + "." +
                                    std::to_string(UnsignedMember(qemu, "micro"))
                              : "";
  auto caps = Execute("qmp_capabilities");
  if (!caps.ok()) return std::move(caps).error();
  return Ok();
}

Status QmpClient::ParseBuffered(bool* got, nlohmann::json* out) {
  *got = false;
  // QEMU ends every message with "\r\n" and never puts a raw newline inside one.
  for (;;) {
    size_t nl = buffer_.find('\n');
    if (nl == std::string::npos) return Ok();
    std::string line = buffer_.substr(0, nl);
    buffer_.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      return Error::DataLoss("QMP: malformed message '" + line + "': " + e.what());
    }
    if (j.is_object() && j.contains("event")) {
      events_.push_back(std::move(j));
      continue;
    }
    *out = std::move(j);
    *got = true;
    return Ok();
  }
}

Result<nlohmann::json> QmpClient::ReadMessage(Clock::time_point deadline) {
  for (;;) {
    bool got;
    nlohmann::json msg;
    NFC_RETURN_IF_ERROR(ParseBuffered(&got, &msg));
    if (got) return msg;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Error::Timeout("QMP: no answer");
    pollfd p{fd_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Errno("QMP poll");
    if (n == 0) continue;
    char buf[8192];
    ssize_t r = ::read(fd_.get(), buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Error::Errno("QMP read");
    if (r == 0) {
      fd_.Reset();
      return Error::Unavailable("QMP: QEMU closed the connection");
    }
    buffer_.append(buf, static_cast<size_t>(r));
  }
}

Result<nlohmann::json> QmpClient::Execute(const std::string& command, const nlohmann::json& arguments,
                                          std::chrono::milliseconds timeout) {
  return ExecuteWithFd(command, arguments, -1, timeout);
}

Result<nlohmann::json> QmpClient::ExecuteWithFd(const std::string& command, const nlohmann::json& arguments,
                                                int fd, std::chrono::milliseconds timeout) {
  if (!fd_) return Error::Unavailable("QMP: not connected");
  long id = next_id_++;
  nlohmann::json req = {{"execute", command}, {"id", id}};
  if (!arguments.is_null()) req["arguments"] = arguments;
  NFC_RETURN_IF_ERROR(Send(command, req.dump() + "\n", fd));
  return Answer(command, id, timeout);
}

// Writes `line`; `fd` (when >= 0) rides on its first byte, where QEMU's monitor picks it up.
Status QmpClient::Send(const std::string& command, const std::string& line, int fd) {
  size_t off = 0;
  while (off < line.size()) {
    iovec iov{const_cast<char*>(line.data() + off), line.size() - off};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (fd >= 0 && off == 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    ssize_t w = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Error::Errno("QMP send " + command);
    off += static_cast<size_t>(w);
  }
  return Ok();
}

Result<nlohmann::json> QmpClient::Answer(const std::string& command, long id,
                                         std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    NFC_ASSIGN_OR_RETURN(auto msg, ReadMessage(deadline));
    if (!msg.is_object()) {
      return Error::DataLoss("QMP " + command + ": unexpected message " + Show(msg));
    }
    if (msg.contains("id") && msg["id"] != id) continue;  // a late answer to an earlier, timed-out command
    if (msg.contains("error")) {
      const auto& e = msg["error"];
      return Error::Internal("QMP " + command + ": " + StringMember(e, "class", "Error") + ": " +
                             StringMember(e, "desc", ""));
    }
    if (msg.contains("return")) return msg["return"];
    return Error::DataLoss("QMP " + command + ": unexpected message " + Show(msg));
  }
}

void QmpClient::DrainEvents() {
  while (fd_) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) break;
    char buf[8192];
    ssize_t r = ::read(fd_.get(), buf, sizeof buf);
    if (r <= 0) {
      fd_.Reset();
      break;
    }
    buffer_.append(buf, static_cast<size_t>(r));
  }
  bool got;
  nlohmann::json msg;
  while (ParseBuffered(&got, &msg).ok() && got) {
    // Unsolicited non-event messages are dropped: every command we send waits for its own answer.
  }
}

std::vector<nlohmann::json> QmpClient::TakeEvents() {
  return std::exchange(events_, {});
}

}  // namespace nfc::vmm::qemu
