// The control channel of the guest role: listeners (unix socket for tests, AF_VSOCK for Firecracker), the
// virtio-serial port (QEMU without vhost-vsock), per-connection framing, and the protocol's message handling.
// Protocol semantics: docs/guest-protocol.md.
#include <dirent.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "base/log.h"
#include "guest/protocol.h"
#include "init/common/signals.h"
#include "init/common/system.h"
#include "init/guest/guest_init.h"

namespace nfc::init::guest {

namespace {

constexpr size_t kLogChunkBytes = size_t{60} * 1024;
constexpr size_t kConnectionHighWater =
    size_t{256} * 1024;  // stop queueing log chunks above this much unsent output
constexpr uint64_t kSerialPollNs = 100000000ULL;
constexpr uint32_t kIn = EPOLLIN;
constexpr uint32_t kOut = EPOLLOUT;

std::string ErrorCodeString(const Error& e) {
  return std::string(ErrorCodeName(e.code()));
}

bool IsSignalNumber(int sig) {
  return sig >= 1 && sig <= 64;
}

Status CheckSignalNumber(int sig) {
  if (IsSignalNumber(sig)) return Ok();
  return Error::InvalidArgument("signal " + std::to_string(sig) + " is not a signal number");
}

Status CheckProtocolVersions(const pb::Hello& h) {
  if (h.min_version() <= nfc::guest::kProtocolVersion && h.max_version() >= nfc::guest::kProtocolVersion)
    return Ok();
  return Error::FailedPrecondition("protocol versions " + std::to_string(h.min_version()) + ".." +
                                   std::to_string(h.max_version()) + " are not supported; this init speaks " +
                                   std::to_string(nfc::guest::kProtocolVersion));
}

// A virtio vsock device (virtio device id 19) is on the VM: Firecracker's vsock, or QEMU's vhost-vsock. Its
// driver may still be loading; the device entry is there once the transport probed.
bool HasVirtioVsockDevice() {
  DIR* d = opendir("/sys/bus/virtio/devices");
  if (!d) return false;
  bool found = false;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    auto id = ReadFile(std::string("/sys/bus/virtio/devices/") + e->d_name + "/device");
    if (id.ok() && id->rfind("0x0013", 0) == 0) found = true;
  }
  closedir(d);
  return found;
}

}  // namespace

void GuestInit::Watch(int fd, uint64_t token, uint32_t events, uint32_t& current) {
  if (fd < 0 || events == current) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  int op = current == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  if (epoll_ctl(epoll_.get(), op, fd, &ev) != 0 && op != EPOLL_CTL_DEL) {
    log::Warn("epoll_ctl failed", {{"fd", fd}, {"error", strerror(errno)}});
    return;
  }
  current = events;
}

void GuestInit::UpdateInterest() {
  for (int s : {1, 2}) {
    if (!out_pipe_[s]) continue;
    Watch(out_pipe_[s].get(), WatchToken(WatchKind::kWorkloadOutput, static_cast<uint64_t>(s)),
          logs_[s]->free_space() > 0 ? kIn : 0u, out_interest_[s]);
  }
  for (auto& [id, c] : conns_) {
    uint32_t want = 0;
    if (!c->serial || c->host_present) want = kIn | (c->pending() > 0 ? kOut : 0u);
    Watch(c->fd.get(), WatchToken(WatchKind::kConnection, id), want, c->interest);
  }
  for (auto& [id, e] : execs_) {
    auto conn = conns_.find(e->conn_id);
    bool room = e->conn_id == 0 || conn == conns_.end() || conn->second->pending() < 4 * kConnectionHighWater;
    if (e->out)
      Watch(e->out.get(), WatchToken(WatchKind::kExecFd, id << 2 | 0), room ? kIn : 0u, e->interest[0]);
    if (e->err)
      Watch(e->err.get(), WatchToken(WatchKind::kExecFd, id << 2 | 1), room ? kIn : 0u, e->interest[1]);
    if (e->in)
      Watch(e->in.get(), WatchToken(WatchKind::kExecFd, id << 2 | 2), e->in_buf.empty() ? 0u : kOut,
            e->interest[2]);
  }
}

void GuestInit::Listen() {
  const auto& c = spec_.control;
  if (!c.unix_socket.empty()) {
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, c.unix_socket.c_str(),
                std::min(c.unix_socket.size(), sizeof addr.sun_path - 1));
    unlink(c.unix_socket.c_str());
    if (!fd || bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(fd.get(), 8) != 0) {
      log::Error("control socket not available", {{"path", c.unix_socket}, {"error", strerror(errno)}});
    } else {
      chmod(c.unix_socket.c_str(), 0600);
      listeners_.push_back(std::move(fd));
    }
  }
  // vsock and virtio-serial exist only inside a VM; a test namespace shares the host's vsock and devices.
  if (env_.from_initramfs && c.vsock_port != 0) {
    UniqueFd fd(socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_vm addr{};
    addr.svm_family = AF_VSOCK;
    addr.svm_cid = VMADDR_CID_ANY;
    addr.svm_port = c.vsock_port;
    if (!fd || bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(fd.get(), 8) != 0) {
      log::Debug("no vsock listener (no vsock device?)",
                 {{"port", c.vsock_port}, {"error", strerror(errno)}});
    } else {
      listeners_.push_back(std::move(fd));
    }
  }
  listener_interest_.assign(listeners_.size(), 0);
  for (size_t i = 0; i < listeners_.size(); i++)
    Watch(listeners_[i].get(), WatchToken(WatchKind::kListener, i), EPOLLIN, listener_interest_[i]);
  // The channel is vsock when the VM has a vsock device, and the virtio-serial port otherwise (QEMU without
  // vhost-vsock, the Firecracker stand-in): one guest image serves all three.
  bool vsock_device = env_.from_initramfs && c.vsock_port != 0 && HasVirtioVsockDevice();
  log::Info("control channel", {{"transport", vsock_device ? "vsock" : "virtio-serial"},
                                {"vsock_port", c.vsock_port},
                                {"serial_port", c.serial_port}});
  if (env_.from_initramfs && !c.serial_port.empty() && !vsock_device) {
    // The port appears once virtio_console has probed; give it a few seconds.
    serial_give_up_at_ns_ = MonotonicNs() + 5000000000ULL;
    OpenSerialPort();
  }
}

void GuestInit::OpenSerialPort() {
  serial_retry_at_ns_ = 0;
  DIR* d = opendir("/sys/class/virtio-ports");
  std::string device;
  if (d) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      auto name = ReadFile(std::string("/sys/class/virtio-ports/") + e->d_name + "/name");
      if (!name.ok()) continue;
      std::string n = *name;
      while (!n.empty() && (n.back() == '\n' || n.back() == '\0')) n.pop_back();
      if (n == spec_.control.serial_port) device = std::string("/dev/") + e->d_name;
    }
    closedir(d);
  }
  int fd = device.empty() ? -1 : open(device.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (MonotonicNs() < serial_give_up_at_ns_) {
      serial_retry_at_ns_ = MonotonicNs() + kSerialPollNs;
    } else {
      log::Debug("no virtio-serial control port", {{"name", spec_.control.serial_port}});
    }
    return;
  }
  log::Debug("virtio-serial control port", {{"device", device}});
  AddConnection(UniqueFd(fd), true);
}

void GuestInit::PollSerial(uint64_t now) {
  bool have_serial = false;
  for (auto& [id, c] : conns_) {
    if (!c->serial) continue;
    have_serial = true;
    if (c->host_present || now < serial_retry_at_ns_) continue;
    pollfd p{c->fd.get(), POLLIN, 0};
    if (poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP)) {
      // A host opened its end. It will say hello; whatever we had queued belongs to the previous session.
      c->host_present = true;
      c->decoder.Reset();
      c->greeted = false;
      serial_retry_at_ns_ = 0;
      log::Debug("host connected to the serial port");
    } else {
      serial_retry_at_ns_ = now + kSerialPollNs;
    }
  }
  if (!have_serial && serial_retry_at_ns_ && now >= serial_retry_at_ns_) OpenSerialPort();
}

void GuestInit::OnListener(size_t index) {
  for (;;) {
    int fd = accept4(listeners_[index].get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR) log::Warn("accept failed", {{"error", strerror(errno)}});
      if (errno == EINTR) continue;
      return;
    }
    AddConnection(UniqueFd(fd), false);
  }
}

void GuestInit::AddConnection(UniqueFd fd, bool serial) {
  auto c = std::make_unique<Connection>();
  c->id = next_conn_id_++;
  c->fd = std::move(fd);
  c->serial = serial;
  if (serial) {
    pollfd p{c->fd.get(), POLLIN, 0};
    c->host_present = poll(&p, 1, 0) >= 0 && !(p.revents & POLLHUP);
    if (!c->host_present) serial_retry_at_ns_ = MonotonicNs() + kSerialPollNs;
  }
  conns_[c->id] = std::move(c);
}

void GuestInit::CloseConnection(uint64_t id, const char* why) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  log::Debug("control connection closed", {{"id", id}, {"reason", why}});
  KillExecsOf(id);
  uint32_t none = it->second->interest;
  Watch(it->second->fd.get(), 0, 0, none);
  conns_.erase(it);
}

void GuestInit::OnConnection(uint64_t id, uint32_t events) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Connection& c = *it->second;
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    char buf[65536];
    for (int round = 0; round < 16; round++) {
      ssize_t n = read(c.fd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n <= 0) {
        if (!c.serial) return CloseConnection(id, n == 0 ? "closed by host" : strerror(errno));
        // virtio-serial: read returns 0 (and poll POLLHUP) while no host is connected to the chardev. Data we
        // write meanwhile is dropped by QEMU, so stop writing until a host is back and says hello.
        c.host_present = false;
        c.greeted = false;
        c.decoder.Reset();
        c.out.clear();
        c.out_pos = 0;
        KillExecsOf(id);
        serial_retry_at_ns_ = MonotonicNs() + kSerialPollNs;
        log::Debug("host disconnected from the serial port");
        uint32_t none = c.interest;
        Watch(c.fd.get(), 0, 0, none);
        c.interest = 0;
        return;
      }
      c.decoder.Feed(buf, static_cast<size_t>(n));
      while (auto payload = c.decoder.Next()) {
        pb::HostMessage m;
        if (!m.ParseFromString(*payload)) {
          log::Warn("malformed control message", {{"bytes", payload->size()}});
          SendReply(c, 0,
                    Error::InvalidArgument("malformed message: " + std::to_string(payload->size()) +
                                           " bytes do not parse as nfc.guest.v1.HostMessage"));
          continue;
        }
        HandleMessage(c, m);
        if (conns_.find(id) == conns_.end()) return;  // the message closed it
      }
      if (static_cast<size_t>(n) < sizeof buf) break;
    }
    c.partial_since_ns =
        c.decoder.HasPartial() ? (c.partial_since_ns ? c.partial_since_ns : MonotonicNs()) : 0;
  }
  if (events & EPOLLOUT) {
    if (!FlushConnection(c)) CloseConnection(id, "write failed");
  }
}

void GuestInit::Send(Connection& c, const pb::GuestMessage& m) {
  if (c.serial && !c.host_present) return;
  std::string payload = m.SerializeAsString();
  nfc::guest::AppendFrame(c.out, payload);
}

void GuestInit::SendReply(Connection& c, uint64_t request_id, const Status& s) {
  pb::GuestMessage m;
  m.set_request_id(request_id);
  auto* r = m.mutable_reply();
  if (!s.ok()) {
    r->set_error_code(ErrorCodeString(s.error()));
    r->set_error(s.error().ToString());
  }
  Send(c, m);
}

void GuestInit::FillStatus(pb::Status* s) const {
  switch (phase_) {
    case Phase::kBooting:
      s->set_phase(pb::PHASE_BOOTING);
      break;
    case Phase::kRunning:
      s->set_phase(pb::PHASE_RUNNING);
      break;
    case Phase::kStopping:
      s->set_phase(pb::PHASE_STOPPING);
      break;
    case Phase::kExited:
      s->set_phase(pb::PHASE_EXITED);
      break;
    case Phase::kFailed:
      s->set_phase(pb::PHASE_FAILED);
      break;
    case Phase::kShuttingDown:
      s->set_phase(pb::PHASE_SHUTTING_DOWN);
      break;
    case Phase::kAwaitingTask:
      s->set_phase(pb::PHASE_AWAITING_TASK);
      break;
  }
  s->set_boot_id(boot_id_);
  s->set_error(error_);
  nfc::guest::ToProto(times_, s->mutable_boot());
  if (exit_) nfc::guest::ToProto(*exit_, s->mutable_exit());
  nfc::guest::AddOffsets({logs_[1]->start(), logs_[2]->start()}, s->mutable_log_acked());
  nfc::guest::AddOffsets({logs_[1]->end(), logs_[2]->end()}, s->mutable_log_written());
  s->set_workload_pid(workload_pid_ > 0 ? workload_pid_ : 0);
  s->set_task_id(spec_.task_id);
}

// Decodes a host message into one typed operation; a connection must say hello before anything else.
void GuestInit::HandleMessage(Connection& c, const pb::HostMessage& m) {
  uint64_t rid = m.request_id();
  if (m.has_hello()) return OnHello(c, rid, m.hello());
  if (!c.greeted) {
    return SendReply(c, rid, Error::FailedPrecondition("no hello on this connection yet: send Hello first"));
  }
  switch (m.body_case()) {
    case pb::HostMessage::kLogAck:
      for (const auto& a : m.log_ack().acked()) {
        if (a.stream() == pb::STREAM_STDOUT || a.stream() == pb::STREAM_STDERR)
          logs_[a.stream()]->Ack(a.offset());
      }
      return;
    case pb::HostMessage::kSignal:
      return SendReply(c, rid, SignalWorkload(m.signal()));
    case pb::HostMessage::kExitAck:
      if (!exit_) return SendReply(c, rid, Error::FailedPrecondition("the workload has not exited yet"));
      return AcknowledgeExit(c, rid);  // does not return: replies, then shuts the VM down
    case pb::HostMessage::kStatus: {
      pb::GuestMessage r;
      r.set_request_id(rid);
      FillStatus(r.mutable_status());
      return Send(c, r);
    }
    case pb::HostMessage::kStats: {
      pb::GuestMessage r;
      r.set_request_id(rid);
      FillStats(r.mutable_stats());
      return Send(c, r);
    }
    case pb::HostMessage::kExecStart: {
      auto s = StartExec(c, rid, m.exec_start());
      if (!s.ok()) SendReply(c, rid, s);
      return;
    }
    case pb::HostMessage::kExecInput: {
      auto s = WriteExecInput(c, m.exec_input());
      if (!s.ok() || rid != 0) SendReply(c, rid, s);  // input needs no answer unless it asked for one
      return;
    }
    case pb::HostMessage::kExecResize:
      return SendReply(c, rid, ResizeExecTerminal(c, m.exec_resize()));
    case pb::HostMessage::kExecSignal:
      return SendReply(c, rid, SignalExec(c, m.exec_signal()));
    case pb::HostMessage::kShutdown: {
      SendReply(c, rid, Ok());
      const auto& req = m.shutdown();
      int sig = req.signal() ? req.signal() : spec_.process.stop_signal;
      uint64_t timeout = req.kill_timeout_ms() ? req.kill_timeout_ms() : spec_.process.kill_timeout_ms;
      return RequestStop(IsSignalNumber(sig) ? sig : SIGTERM, timeout);
    }
    case pb::HostMessage::kFiles:
      return OnFileBatch(c, rid, m.files());
    case pb::HostMessage::kFilesReady:
      return OnFilesReady(c, rid, m.files_ready());
    case pb::HostMessage::kTask:
      return OnTaskDelivery(c, rid, m.task());
    case pb::HostMessage::kHello:
    case pb::HostMessage::BODY_NOT_SET:
      break;
  }
  SendReply(c, rid,
            Error::InvalidArgument("message without a known body (field numbers from a newer protocol?)"));
}

void GuestInit::OnHello(Connection& c, uint64_t request_id, const pb::Hello& hello) {
  if (auto s = CheckProtocolVersions(hello); !s.ok()) return SendReply(c, request_id, s);
  // A resent hello of the current session (the host retries every second while the guest boots, and a
  // byte-stream port delivers the queued copies at once) is answered without restarting the session.
  bool resend = c.greeted && c.session == hello.session();
  SupersedeOtherSessions(c.id);
  if (!resend) StartSession(c, hello);
  c.greeted = true;
  c.session = hello.session();
  log::Debug("host said hello",
             {{"client", hello.client()}, {"stdout_from", c.sent[1]}, {"stderr_from", c.sent[2]}});
  pb::GuestMessage reply;
  reply.set_request_id(request_id);
  auto* r = reply.mutable_hello_reply();
  r->set_version(nfc::guest::kProtocolVersion);
  r->set_session(hello.session());
  r->set_init_version(NFC_VERSION_STRING);
  r->set_boot_id(boot_id_);
  FillStatus(r->mutable_status());
  nfc::guest::AddOffsets({logs_[1]->start(), logs_[2]->start()}, r->mutable_log_start());
  Send(c, reply);
}

// One host at a time: a new hello supersedes every other session (the old host is gone or restarting).
void GuestInit::SupersedeOtherSessions(uint64_t conn_id) {
  std::vector<uint64_t> others;
  for (auto& [id, other] : conns_) {
    if (id != conn_id && other->greeted) others.push_back(id);
  }
  for (uint64_t id : others) {
    if (conns_[id]->serial) {
      conns_[id]->greeted = false;
      KillExecsOf(id);
    } else {
      CloseConnection(id, "superseded by a new host connection");
    }
  }
}

void GuestInit::StartSession(Connection& c, const pb::Hello& hello) {
  if (c.serial) {
    // Frames queued for the previous session must not reach the new one.
    c.out.clear();
    c.out_pos = 0;
    KillExecsOf(c.id);
  }
  auto resume = nfc::guest::OffsetsFromProto(hello.resume());
  for (int s : {1, 2}) {
    uint64_t want = s == 1 ? resume.stdout_offset : resume.stderr_offset;
    logs_[s]->Ack(want);  // everything below the resume point was delivered
    c.sent[s] = std::max(std::min(want, logs_[s]->end()), logs_[s]->start());
  }
  c.exit_sent = false;
  ResendTwoWayRoots();  // after the hello reply: the scan runs when this event is handled
}

Status GuestInit::SignalWorkload(const pb::SignalRequest& request) {
  int sig = request.signal();
  NFC_RETURN_IF_ERROR(CheckSignalNumber(sig));
  if (workload_pid_ <= 0 || workload_status_) return Error::FailedPrecondition("no workload is running");
  if (kill(request.process_only() ? workload_pid_ : -workload_pid_, sig) != 0) {
    return Error::Errno("kill " + SignalName(sig));
  }
  return Ok();
}

void GuestInit::AcknowledgeExit(Connection& c, uint64_t request_id) {
  exit_acked_ = true;
  if (logs_[1]->start() < exit_->log_end.stdout_offset || logs_[2]->start() < exit_->log_end.stderr_offset) {
    log::Warn("exit acknowledged before all logs were",
              {{"stdout_unacked", exit_->log_end.stdout_offset - logs_[1]->start()},
               {"stderr_unacked", exit_->log_end.stderr_offset - logs_[2]->start()}});
  }
  SendReply(c, request_id, Ok());
  Shutdown("exit result acknowledged");
}

// Exec sessions are private to the connection that started them.
Result<GuestExec*> GuestInit::ExecOf(const Connection& c, uint64_t exec_id) {
  auto* e = FindExec(exec_id);
  if (!e || e->conn_id != c.id) return Error::NotFound("no exec session " + std::to_string(exec_id));
  return e;
}

Status GuestInit::WriteExecInput(const Connection& c, const pb::ExecInput& input) {
  NFC_ASSIGN_OR_RETURN(auto* e, ExecOf(c, input.exec_id()));
  e->in_buf += input.data();
  if (input.close()) e->close_in = true;
  FlushExecInput(*e);
  return Ok();
}

Status GuestInit::ResizeExecTerminal(const Connection& c, const pb::ExecResize& resize) {
  NFC_ASSIGN_OR_RETURN(auto* e, ExecOf(c, resize.exec_id()));
  if (!e->tty) return Error::FailedPrecondition("exec session has no terminal");
  winsize ws{};
  ws.ws_row = static_cast<unsigned short>(resize.rows());
  ws.ws_col = static_cast<unsigned short>(resize.cols());
  if (ioctl(e->out.get(), TIOCSWINSZ, &ws) != 0) return Error::Errno("resize terminal");
  return Ok();
}

Status GuestInit::SignalExec(const Connection& c, const pb::ExecSignal& request) {
  NFC_ASSIGN_OR_RETURN(auto* e, ExecOf(c, request.exec_id()));
  int sig = request.signal();
  NFC_RETURN_IF_ERROR(CheckSignalNumber(sig));
  if (!e->status && kill(-e->pid, sig) != 0) return Error::Errno("kill exec " + SignalName(sig));
  return Ok();
}

void GuestInit::Pump(Connection& c) {
  if (!c.greeted || (c.serial && !c.host_present)) return;
  while (c.pending() < kConnectionHighWater) {
    bool progress = false;
    for (int s : {1, 2}) {
      uint64_t from = std::max(c.sent[s], logs_[s]->start());
      std::string_view data = logs_[s]->Read(from, kLogChunkBytes);
      if (data.empty()) continue;
      pb::GuestMessage m;
      auto* chunk = m.mutable_log();
      chunk->set_stream(static_cast<pb::Stream>(s));
      chunk->set_offset(from);
      chunk->set_data(data.data(), data.size());
      Send(c, m);
      c.sent[s] = from + data.size();
      progress = true;
    }
    if (!progress) break;
  }
  // The exit result follows the last log byte, so a host that sees it has (been sent) all output.
  if (exit_ && !c.exit_sent && c.sent[1] >= exit_->log_end.stdout_offset &&
      c.sent[2] >= exit_->log_end.stderr_offset) {
    pb::GuestMessage m;
    nfc::guest::ToProto(*exit_, m.mutable_exit());
    Send(c, m);
    c.exit_sent = true;
  }
}

void GuestInit::PumpAll() {
  std::vector<uint64_t> dead;
  for (auto& [id, c] : conns_) {
    Pump(*c);
    if (c->pending() > 0 && !FlushConnection(*c)) dead.push_back(id);
  }
  for (uint64_t id : dead) CloseConnection(id, "write failed");
}

bool GuestInit::FlushConnection(Connection& c) {
  if (c.serial && !c.host_present) return true;
  while (c.pending() > 0) {
    ssize_t n = send(c.fd.get(), c.out.data() + c.out_pos, c.pending(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK) n = write(c.fd.get(), c.out.data() + c.out_pos, c.pending());
    if (n > 0) {
      c.out_pos += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (c.serial) {
      c.host_present = false;  // the port said the host is gone; PollSerial notices its return
      serial_retry_at_ns_ = MonotonicNs() + kSerialPollNs;
      return true;
    }
    return false;
  }
  if (c.out_pos == c.out.size()) {
    c.out.clear();
    c.out_pos = 0;
  } else if (c.out_pos > (1u << 20)) {
    c.out.erase(0, c.out_pos);
    c.out_pos = 0;
  }
  return true;
}

void GuestInit::FlushAllBlocking(int timeout_ms) {
  uint64_t deadline = MonotonicNs() + uint64_t(timeout_ms) * 1000000;
  for (auto& [id, c] : conns_) {
    while (c->pending() > 0 && MonotonicNs() < deadline) {
      if (!FlushConnection(*c)) break;
      if (c->pending() == 0 || (c->serial && !c->host_present)) break;
      pollfd p{c->fd.get(), POLLOUT, 0};
      poll(&p, 1, static_cast<int>(std::max<uint64_t>((deadline - MonotonicNs()) / 1000000, 1)));
    }
  }
}

}  // namespace nfc::init::guest
