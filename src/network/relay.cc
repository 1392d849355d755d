#include "network/relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <unordered_map>

#include "base/unique_fd.h"

namespace nfc::network {

Result<Endpoint> ParseEndpoint(const std::string& text) {
  auto colon = text.rfind(':');
  std::string port = colon == std::string::npos ? "" : text.substr(colon + 1);
  bool digits =
      !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
  in_addr a{};
  if (!digits || std::stoul(port) > 65535 || ::inet_pton(AF_INET, text.substr(0, colon).c_str(), &a) != 1) {
    return Error::InvalidArgument("'" + text +
                                  "' is not an IPv4 address and port such as \"127.0.0.1:8080\"");
  }
  return Endpoint{text.substr(0, colon), static_cast<uint16_t>(std::stoul(port))};
}

namespace {

using Clock = std::chrono::steady_clock;

sockaddr_in ToSockaddr(const Endpoint& e) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(e.port);
  ::inet_pton(AF_INET, e.address.c_str(), &a.sin_addr);
  return a;
}

const sockaddr* Sa(const sockaddr_in& a) {
  return reinterpret_cast<const sockaddr*>(&a);
}

// Closes with a reset instead of a FIN: the other side learns the relayed connection failed.
void Abort(UniqueFd& fd) {
  if (!fd) return;
  linger l{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  fd.Reset();
}

// One relayed TCP connection: side 0 is the accepted client, side 1 the connection to the target. buf[i]
// holds what was read from side i and is not yet written to the other side; a side is read only when its
// buffer is empty, so a slow reader slows its writer (no unbounded memory).
struct TcpPair {
  UniqueFd side[2];
  std::vector<char> buf[2];
  size_t off[2] = {0, 0}, len[2] = {0, 0};
  bool eof[2] = {false, false};   // read returned 0 on side i
  bool shut[2] = {false, false};  // we shut down writing on side i
  bool connecting = true;
  uint32_t registered[2] = {0, 0};  // events side i is registered for in epoll; 0: not registered
};

struct UdpSession {
  UniqueFd fd;  // connected to the target
  size_t listener;
  sockaddr_in client{};
  Clock::time_point last;
};

struct Listener {
  UniqueFd fd;
  Forward forward;
  bool udp;
};

enum class Kind { kStop, kListener, kTcp, kUdp };
struct Handle {
  Kind kind;
  size_t index;  // listener index, or the key of the pair / session
  int side = 0;
};

}  // namespace

struct Relay::Impl {
  RelayOptions options;
  std::vector<Listener> listeners;
  UniqueFd epoll;
  std::unordered_map<int, Handle> handles;  // by fd
  std::map<size_t, TcpPair> pairs;
  std::map<size_t, UdpSession> sessions;
  std::map<std::pair<size_t, uint64_t>, size_t> session_by_client;  // (listener, ip:port) → key
  size_t next_key = 1;
  // Read by Stats() from other threads (tests) while Run relays.
  std::atomic<uint64_t> tcp_accepted{0}, udp_sessions{0}, tcp_open{0}, udp_open{0};

  void Count() {
    tcp_open = pairs.size();
    udp_open = sessions.size();
  }

  Status Add(int fd, uint32_t events, Handle h) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return Error::Errno("epoll_ctl add");
    handles[fd] = h;
    return Ok();
  }

  void Forget(int fd) {
    if (fd < 0) return;
    ::epoll_ctl(epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
    handles.erase(fd);
  }

  size_t Open() const { return pairs.size() + sessions.size(); }

  // --- TCP ---

  void Accept(size_t li) {
    for (int i = 0; i < 64; i++) {
      UniqueFd client(::accept4(listeners[li].fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!client) return;  // EAGAIN, or an aborted connection
      if (Open() >= options.max_connections) {
        Abort(client);
        continue;
      }
      UniqueFd target(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      sockaddr_in to = ToSockaddr(listeners[li].forward.target);
      if (!target || (::connect(target.get(), Sa(to), sizeof to) != 0 && errno != EINPROGRESS)) {
        Abort(client);
        continue;
      }
      size_t key = next_key++;
      TcpPair& p = pairs[key];
      p.side[0] = std::move(client);
      p.side[1] = std::move(target);
      for (auto& b : p.buf) b.resize(options.buffer_bytes);
      for (int s = 0; s < 2; s++) handles[p.side[s].get()] = {Kind::kTcp, key, s};
      tcp_accepted++;
      Count();
      Update(key, p);
    }
  }

  void ClosePair(size_t key, bool reset) {
    auto it = pairs.find(key);
    if (it == pairs.end()) return;
    for (auto& s : it->second.side) {
      Forget(s.get());
      if (reset) Abort(s);
    }
    pairs.erase(it);
    Count();
  }

  // Moves what can be moved without blocking; false when the pair failed (then it must be reset).
  bool Pump(TcpPair& p) {
    for (int round = 0; round < 16; round++) {
      bool progress = false;
      for (int i = 0; i < 2; i++) {
        int o = 1 - i;
        if (p.len[i] > 0 && !p.connecting) {
          ssize_t n = ::send(p.side[o].get(), p.buf[i].data() + p.off[i], p.len[i], MSG_NOSIGNAL);
          if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
          if (n > 0) {
            p.off[i] += static_cast<size_t>(n);
            p.len[i] -= static_cast<size_t>(n);
            progress = true;
          }
        }
        if (p.len[i] == 0 && !p.eof[i] && !(p.connecting && i == 1)) {
          ssize_t n = ::recv(p.side[i].get(), p.buf[i].data(), p.buf[i].size(), 0);
          if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
          if (n >= 0) progress = true;
          if (n == 0) p.eof[i] = true;
          p.off[i] = 0;
          p.len[i] = n > 0 ? static_cast<size_t>(n) : 0;
        }
        if (p.eof[i] && p.len[i] == 0 && !p.shut[o] && !p.connecting) {
          ::shutdown(p.side[o].get(), SHUT_WR);  // the half-close travels on
          p.shut[o] = true;
          progress = true;
        }
      }
      if (!progress) break;
    }
    return true;
  }

  // Registers each side for what it waits for; a side waiting for nothing leaves epoll, so its hang-up is
  // not reported again and again while the other side is slow.
  void Update(size_t key, TcpPair& p) {
    if (p.shut[0] && p.shut[1]) return ClosePair(key, false);
    for (int i = 0; i < 2; i++) {
      int o = 1 - i;
      uint32_t want = 0;
      if (p.len[i] == 0 && !p.eof[i]) want |= EPOLLIN;
      if (p.len[o] > 0 || (i == 1 && p.connecting)) want |= EPOLLOUT;
      if (want == p.registered[i]) continue;
      epoll_event ev{};
      ev.events = want;
      ev.data.fd = p.side[i].get();
      int op = p.registered[i] == 0 ? EPOLL_CTL_ADD : want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
      ::epoll_ctl(epoll.get(), op, p.side[i].get(), &ev);
      p.registered[i] = want;
    }
  }

  void OnTcp(const Handle& h, uint32_t events) {
    auto it = pairs.find(h.index);
    if (it == pairs.end()) return;
    TcpPair& p = it->second;
    if (p.connecting && h.side == 1) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(p.side[1].get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return ClosePair(h.index, true);
      if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) p.connecting = false;
    }
    if (!Pump(p)) return ClosePair(h.index, true);
    Update(h.index, p);
  }

  // --- UDP ---

  void OnUdpListener(size_t li) {
    char buf[65536];
    for (int i = 0; i < 64; i++) {
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ssize_t n =
          ::recvfrom(listeners[li].fd.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0) return;
      uint64_t client = (uint64_t{from.sin_addr.s_addr} << 16) | from.sin_port;
      auto found = session_by_client.find({li, client});
      size_t key = found == session_by_client.end() ? NewSession(li, from) : found->second;
      if (key == 0) continue;
      UdpSession& s = sessions[key];
      s.last = Clock::now();
      (void)::send(s.fd.get(), buf, static_cast<size_t>(n), MSG_NOSIGNAL);  // datagrams may be lost
    }
  }

  size_t NewSession(size_t li, const sockaddr_in& from) {
    if (Open() >= options.max_connections) return 0;
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in to = ToSockaddr(listeners[li].forward.target);
    if (!fd || ::connect(fd.get(), Sa(to), sizeof to) != 0) return 0;
    size_t key = next_key++;
    if (!Add(fd.get(), EPOLLIN, {Kind::kUdp, key}).ok()) return 0;
    UdpSession& s = sessions[key];
    s.fd = std::move(fd);
    s.listener = li;
    s.client = from;
    session_by_client[{li, (uint64_t{from.sin_addr.s_addr} << 16) | from.sin_port}] = key;
    udp_sessions++;
    Count();
    return key;
  }

  void OnUdpSession(size_t key) {
    auto it = sessions.find(key);
    if (it == sessions.end()) return;
    UdpSession& s = it->second;
    char buf[65536];
    for (int i = 0; i < 64; i++) {
      ssize_t n = ::recv(s.fd.get(), buf, sizeof buf, 0);
      if (n < 0 && errno == ECONNREFUSED) continue;  // an ICMP error from the target: the datagram is lost
      if (n < 0) return;
      s.last = Clock::now();
      (void)::sendto(listeners[s.listener].fd.get(), buf, static_cast<size_t>(n), MSG_NOSIGNAL, Sa(s.client),
                     sizeof s.client);
    }
  }

  void CloseSession(size_t key) {
    auto it = sessions.find(key);
    if (it == sessions.end()) return;
    const UdpSession& s = it->second;
    session_by_client.erase({s.listener, (uint64_t{s.client.sin_addr.s_addr} << 16) | s.client.sin_port});
    Forget(s.fd.get());
    sessions.erase(it);
    Count();
  }

  void ExpireSessions() {
    auto now = Clock::now();
    std::vector<size_t> idle;
    for (const auto& [key, s] : sessions)
      if (now - s.last >= options.udp_idle) idle.push_back(key);
    for (size_t key : idle) CloseSession(key);
  }

  void CloseAll() {
    while (!pairs.empty()) ClosePair(pairs.begin()->first, false);
    while (!sessions.empty()) CloseSession(sessions.begin()->first);
    for (auto& l : listeners) {
      Forget(l.fd.get());
      l.fd.Reset();
    }
  }
};

namespace {

Result<UniqueFd> Bind(const Forward& f, bool udp) {
  std::string what = std::string(udp ? "udp " : "tcp ") + f.listen.ToString() + " → " + f.target.ToString();
  UniqueFd fd(::socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Error::Errno("relay " + what + ": socket");
  int one = 1;
  if (!udp) ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = ToSockaddr(f.listen);
  if (::bind(fd.get(), Sa(a), sizeof a) != 0) return Error::Errno("relay " + what + ": bind");
  if (!udp && ::listen(fd.get(), 128) != 0) return Error::Errno("relay " + what + ": listen");
  return fd;
}

}  // namespace

Relay::Relay(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Relay::~Relay() = default;

Result<std::unique_ptr<Relay>> Relay::Listen(const std::vector<Forward>& forwards, RelayOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->epoll.Reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!impl->epoll) return Error::Errno("relay: epoll_create1");
  for (const Forward& f : forwards) {
    for (bool udp : {false, true}) {
      if (udp ? !f.udp : !f.tcp) continue;
      NFC_ASSIGN_OR_RETURN(UniqueFd fd, Bind(f, udp));
      size_t index = impl->listeners.size();
      NFC_RETURN_IF_ERROR(impl->Add(fd.get(), EPOLLIN, {Kind::kListener, index}));
      impl->listeners.push_back({std::move(fd), f, udp});
    }
  }
  return std::unique_ptr<Relay>(new Relay(std::move(impl)));
}

Status Relay::Run(int stop_fd) {
  Impl& m = *impl_;
  if (stop_fd >= 0) NFC_RETURN_IF_ERROR(m.Add(stop_fd, EPOLLIN, {Kind::kStop, 0}));
  auto tick = std::min<std::chrono::milliseconds>(m.options.udp_idle, std::chrono::milliseconds(1000));
  epoll_event events[64];
  for (;;) {
    int n = ::epoll_wait(m.epoll.get(), events, 64, static_cast<int>(tick.count()));
    if (n < 0 && errno != EINTR) return Error::Errno("relay: epoll_wait");
    for (int i = 0; i < n; i++) {
      auto it = m.handles.find(events[i].data.fd);
      if (it == m.handles.end()) continue;  // closed by an earlier event of this batch
      Handle h = it->second;
      if (h.kind == Kind::kStop) {
        m.Forget(stop_fd);
        m.CloseAll();
        return Ok();
      }
      if (h.kind == Kind::kListener) {
        if (m.listeners[h.index].udp) {
          m.OnUdpListener(h.index);
        } else {
          m.Accept(h.index);
        }
      } else if (h.kind == Kind::kTcp) {
        m.OnTcp(h, events[i].events);
      } else {
        m.OnUdpSession(h.index);
      }
    }
    m.ExpireSessions();
  }
}

RelayStats Relay::Stats() const {
  return {impl_->tcp_accepted, impl_->tcp_open, impl_->udp_sessions, impl_->udp_open};
}

std::vector<uint16_t> Relay::ListenPorts() const {
  std::vector<uint16_t> ports;
  for (const auto& l : impl_->listeners) {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getsockname(l.fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    ports.push_back(ntohs(a.sin_port));
  }
  return ports;
}

void Relay::CloseOtherFds() const {
  // The parent's descriptors (PID 1's control channel: a virtio-serial port opens once at a time) must not
  // stay open in the relay.
  std::vector<int> keep = {impl_->epoll.get()};
  for (const auto& l : impl_->listeners) keep.push_back(l.fd.get());
  std::sort(keep.begin(), keep.end());
  unsigned from = 3;
  for (int fd : keep) {
    if (fd > static_cast<int>(from)) ::close_range(from, static_cast<unsigned>(fd) - 1, 0);
    from = std::max(from, static_cast<unsigned>(fd) + 1);
  }
  ::close_range(from, ~0U, 0);
}

Result<std::unique_ptr<RelayThread>> RelayThread::Start(const std::vector<Forward>& forwards,
                                                        RelayOptions options) {
  std::unique_ptr<RelayThread> t(new RelayThread());
  NFC_ASSIGN_OR_RETURN(t->relay_, Relay::Listen(forwards, options));
  t->stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (t->stop_fd_ < 0) return Error::Errno("relay: eventfd");
  Relay* relay = t->relay_.get();
  int stop = t->stop_fd_;
  t->thread_ = std::thread([relay, stop] { (void)relay->Run(stop); });
  return t;
}

RelayThread::~RelayThread() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)::write(stop_fd_, &one, sizeof one);
    thread_.join();
  }
  if (stop_fd_ >= 0) ::close(stop_fd_);
}

Result<pid_t> RunRelayInChild(std::unique_ptr<Relay> relay) {
  pid_t pid = ::fork();
  if (pid < 0) return Error::Errno("relay: fork");
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::signal(sig, SIG_DFL);
    ::prctl(PR_SET_NAME, "nfc-relay", 0, 0, 0);
    relay->CloseOtherFds();
    (void)relay->Run(-1);
    ::_exit(0);
  }
  return pid;  // relay goes out of scope here: the parent's copies of the sockets close
}

}  // namespace nfc::network
