// fake-firecracker: the Firecracker stand-in for tests (Firecracker is not packaged for Debian, and needs a
// KVM these machines do not have).
//
// It takes Firecracker's command line (options.h), serves the HTTP/1.1 API on the unix socket, and checks
// every request against the swagger spec of the version it plays (api_spec.h), Firecracker's
// pre-boot/post-boot rules, its one-shot rules (logger, metrics, InstanceStart), its file rules (log and
// metrics sinks must exist before 1.14) and, at InstanceStart, the kernel image the way the x86_64 loader
// reads it (kernel_image.h). Its own answers are checked against the spec's response schemas before they are
// sent; an answer outside the spec becomes a 500 marked "fake_bug". Every request is appended as one JSON
// line to the --record file. A
// --config-file configures and starts the VM at startup through the same checks; the logger and metrics
// sinks get lines as Firecracker's do (the log: "<time> [<id>:<thread>] <message>"; metrics: one JSON object
// per flush, at FlushMetrics and every 60 s).
//
// With --boot-qemu the VM really boots (guest_machine.h): the configured kernel, initrd, drives, NIC, vCPUs
// and memory in QEMU microvm under TCG, hybrid vsock relayed to virtio-serial ports (--vsock-relay), the
// serial console on stdout, SendCtrlAltDel as a real Ctrl+Alt+Del, exit 0 when the guest resets.
// Without it nothing boots and the host side of hybrid vsock is played alone: "CONNECT <port>\n" is answered
// "OK <host port>\n" for the ports given with --guest-listen, then bytes are echoed (a stand-in guest
// service); other ports get the connection closed, as Firecracker does when the guest refuses. Guest
// behaviour is then simulated with flags: --cad-exit CODE (SendCtrlAltDel makes the "guest" reboot, so the
// process exits CODE after answering), --crash-after-start MS:CODE|MS:sigNAME (the VMM dies after boot).
// --answer-outside-spec breaks the fake's GET / on purpose, for the self-test of the response check.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "api_spec.h"
#include "guest_machine.h"
#include "kernel_image.h"
#include "options.h"
#include "sinks.h"
#include "vm_state.h"

namespace nfc::fakefc {
namespace {

struct Conn {
  int fd = -1;
  std::string in;
  enum class Kind { kApi, kVsockHandshake, kVsockStream } kind = Kind::kApi;
};

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 1000);
      continue;
    }
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

bool ValidId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

class FakeFirecracker {
 public:
  FakeFirecracker(Options o, ApiSpec spec) : o_(std::move(o)), spec_(std::move(spec)) {}

  int Run() {
    if (!o_.record.empty()) record_.open(o_.record, std::ios::app);
    if (!o_.log_path.empty()) {
      // --log-path configures the logger at startup, as PUT /logger would.
      Reply r = vm_.Logger({{"log_path", o_.log_path}, {"level", o_.level}, {"show_level", o_.show_level}});
      if (r.status != 204) return Fail("Failed to initialize logger: " + r.body, 1);
    }
    if (!o_.metrics_path.empty()) {
      Reply r = vm_.Metrics({{"metrics_path", o_.metrics_path}});
      if (r.status != 204) return Fail("Failed to initialize metrics: " + r.body, 1);
    }
    if (!o_.no_api) {
      std::string err;
      api_fd_ = Listen(o_.api_sock, &err);
      if (api_fd_ < 0) {
        // Firecracker's wording (vmm.md 1.1), exit code 1.
        return Fail("Failed to open the API socket at: " + o_.api_sock +
                        ". Check that it is not already used: " + err,
                    1);
      }
    }
    if (!o_.config_file.empty()) {
      std::string err = ConfigureFromFile(o_.config_file);
      if (!err.empty()) return Fail("Building VMM configured from cmdline json failed: " + err, 1);
    }
    for (;;) {
      if (int code = Step(); code >= 0) {
        Log("Vmm is stopping.");
        sinks_.FlushMetrics();
        return code;
      }
    }
  }

 private:
  int Fail(const std::string& message, int code) {
    Log(message, "Error");
    std::cerr << message << "\n";
    return code;
  }

  // One turn of the event loop; the exit code once the process is to end, else -1.
  int Step() {
    if (vm_.exit_code >= 0) return vm_.exit_code;
    if (vm_.machine()) {
      if (auto code = vm_.machine()->Ended()) return *code;
    }
    if (vm_.crash_at && std::chrono::steady_clock::now() >= *vm_.crash_at) {
      if (o_.crash_signal) {
        signal(o_.crash_signal, SIG_DFL);
        raise(o_.crash_signal);
      }
      return o_.crash_code;
    }
    sinks_.MaybeFlushMetrics();
    std::vector<pollfd> fds;
    if (api_fd_ >= 0) fds.push_back({api_fd_, POLLIN, 0});
    if (vm_.vsock_fd() >= 0) fds.push_back({vm_.vsock_fd(), POLLIN, 0});
    for (auto& c : conns_) fds.push_back({c.fd, POLLIN, 0});
    int n = ::poll(fds.data(), fds.size(), 50);
    if (n < 0 && errno != EINTR) return 2;
    if (n <= 0) return -1;
    for (const auto& p : fds) {
      if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (p.fd == api_fd_) {
        Accept(api_fd_, Conn::Kind::kApi);
      } else if (p.fd == vm_.vsock_fd()) {
        Accept(vm_.vsock_fd(), Conn::Kind::kVsockHandshake);
      } else {
        Serve(p.fd);
      }
    }
    std::erase_if(conns_, [](const Conn& c) { return c.fd < 0; });
    return -1;
  }

  // --config-file: each section goes through the API path it names (same checks, same state rules), then
  // InstanceStart. Firecracker's sections: vmm.md 1.5.
  std::string ConfigureFromFile(const std::string& path) {
    auto calls = ConfigFileRequests(path);
    if (!calls.ok()) return calls.error().message();
    for (const auto& [target, body] : *calls) {
      std::string text = body.dump();
      auto op = spec_.Match("PUT", target);
      Reply r = Dispatch("PUT", target, text, op);
      Record("PUT", target, text, r);
      if (r.status >= 400)
        return target + ": " + nlohmann::json::parse(r.body).value("fault_message", r.body);
    }
    return "";
  }

  void Log(const std::string& message, const std::string& level = "Info") { sinks_.Log(message, level); }

  void Accept(int listen_fd, Conn::Kind kind) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) conns_.push_back(Conn{fd, "", kind});
  }

  void Serve(int fd) {
    auto it = std::find_if(conns_.begin(), conns_.end(), [fd](const Conn& c) { return c.fd == fd; });
    if (it == conns_.end()) return;
    char buf[65536];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      ::close(fd);
      it->fd = -1;
      return;
    }
    it->in.append(buf, static_cast<size_t>(n));
    if (it->kind == Conn::Kind::kApi) {
      while (HandleHttp(*it)) {
      }
    } else if (it->kind == Conn::Kind::kVsockHandshake) {
      HandleVsockHandshake(*it);
    } else {
      WriteAll(fd, it->in);  // the stand-in guest service echoes
      it->in.clear();
    }
  }

  // Host-initiated hybrid vsock: "CONNECT <port>\n" (keyword case-insensitive) -> "OK <host port>\n".
  void HandleVsockHandshake(Conn& c) {
    size_t nl = c.in.find('\n');
    if (nl == std::string::npos) {
      if (c.in.size() > 64) Close(c);
      return;
    }
    std::string line = c.in.substr(0, nl);
    std::string rest = c.in.substr(nl + 1);
    unsigned port = 0;
    char kw[16] = {};
    bool parsed = std::sscanf(line.c_str(), "%15s %u", kw, &port) == 2 && strcasecmp(kw, "CONNECT") == 0;
    if (parsed && vm_.machine() && vm_.machine()->Relays(port)) {
      vm_.machine()->Connect(port, c.fd, rest, next_host_port_++);  // the relay owns the socket now
      c.fd = -1;
      return;
    }
    if (!parsed || !o_.guest_listen.count(port)) {
      Close(c);  // the guest answered RST, or the request was malformed
      return;
    }
    WriteAll(c.fd, "OK " + std::to_string(next_host_port_++) + "\n");
    c.kind = Conn::Kind::kVsockStream;
    c.in = rest;
    if (!c.in.empty()) {
      WriteAll(c.fd, c.in);
      c.in.clear();
    }
  }

  void Close(Conn& c) {
    ::close(c.fd);
    c.fd = -1;
  }

  // Parses one complete request from c.in, answers it; false when more bytes are needed.
  bool HandleHttp(Conn& c) {
    size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    std::string head = c.in.substr(0, end);
    std::istringstream hs(head);
    std::string method, target, proto;
    hs >> method >> target >> proto;
    size_t content_length = 0;
    std::string line;
    std::getline(hs, line);
    while (std::getline(hs, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (name == "content-length") content_length = std::stoul(value);
      if (name == "transfer-encoding") {
        c.in.erase(0, end + 4);
        Answer(c, method, target, "", std::nullopt, Refuse("Chunked transfer encoding is not supported."));
        return true;
      }
    }
    if (c.in.size() < end + 4 + content_length) return false;
    std::string body = c.in.substr(end + 4, content_length);
    c.in.erase(0, end + 4 + content_length);
    if (proto != "HTTP/1.1") {
      Answer(c, method, target, body, std::nullopt, Refuse("Unsupported HTTP version."));
      return true;
    }
    auto op = spec_.Match(method, target);
    Answer(c, method, target, body, op, Dispatch(method, target, body, op));
    if (vm_.after_response) {
      vm_.after_response();
      vm_.after_response = nullptr;
    }
    return true;
  }

  void Answer(Conn& c, const std::string& method, const std::string& target, const std::string& body,
              const std::optional<ApiOperation>& op, Reply reply) {
    CheckAgainstSpec(op, &reply);
    Record(method, target, body, reply);
    Log("The API server received a " + method + " request on \"" + target + "\".");
    sinks_.CountRequest(method + " " + (op ? op->path_template : std::string("unknown")),
                        reply.status >= 400);
    WriteAll(c.fd, Wire(reply));
  }

  // A fake that answers outside its own spec would teach the backend something Firecracker never says: such
  // an answer is replaced by a 500, logged, and marked "fake_bug" in the record for the tests to find.
  void CheckAgainstSpec(const std::optional<ApiOperation>& op, Reply* reply) {
    std::string err =
        op ? spec_.ValidateResponse(*op, reply->status, reply->body) : spec_.ValidateFault(reply->body);
    if (err.empty()) return;
    std::cerr << "fake-firecracker: BUG: answer outside the " << spec_.version() << " spec: " << err << "\n";
    reply->note["fake_bug"] = err;
    reply->status = 500;
    reply->body = Fault("fake-firecracker answered outside its spec: " + err);
  }

  static std::string Wire(const Reply& r) {
    std::string reason = r.status == 200   ? "OK"
                         : r.status == 204 ? "No Content"
                         : r.status == 500 ? "Internal Server Error"
                                           : "Bad Request";
    std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason +
                      "\r\nServer: Firecracker API\r\nConnection: keep-alive\r\n";
    if (r.status == 204) return out + "\r\n";
    return out + "Content-Type: application/json\r\nContent-Length: " + std::to_string(r.body.size()) +
           "\r\n\r\n" + r.body;
  }

  // Recorded before answering: a client that kills us right after the answer must still find it.
  void Record(const std::string& method, const std::string& target, const std::string& body,
              const Reply& reply) {
    if (!record_) return;
    nlohmann::json rec = reply.note;
    rec["method"] = method;
    rec["path"] = target;
    rec["status"] = reply.status;
    try {
      rec["body"] = body.empty() ? nlohmann::json() : nlohmann::json::parse(body);
    } catch (const nlohmann::json::exception&) {
      rec["body_raw"] = body;
    }
    if (reply.status >= 400)
      rec["fault_message"] = nlohmann::json::parse(reply.body).value("fault_message", "");
    record_ << rec.dump() << "\n";
    record_.flush();
  }

  Reply Dispatch(const std::string& method, const std::string& path, const std::string& body,
                 const std::optional<ApiOperation>& op) {
    if (!op) return Refuse("Invalid request method and/or path: " + method + " " + path + ".");
    if (method == "GET" && !body.empty()) return Refuse("GET request cannot have a body.");
    if ((method == "PUT" || method == "PATCH") && body.empty() && op->body_required) {
      return Refuse("Empty " + method + " request.");
    }
    nlohmann::json j;
    if (!body.empty()) {
      try {
        j = nlohmann::json::parse(body);
      } catch (const nlohmann::json::exception& e) {
        return Refuse("An error occurred when deserializing the json body of a request: " +
                      std::string(e.what()) + ".");
      }
      std::string err = spec_.ValidateBody(*op, j);
      if (!err.empty())
        return Refuse("An error occurred when deserializing the json body of a request: " + err + ".");
    }
    for (const auto& [name, value] : op->path_params) {
      if (!ValidId(value)) {
        return Refuse(
            "Invalid ID. The ID must contain only alphanumeric characters and underscores: " + value + ".");
      }
      if (j.is_object() && j.contains(name) && j[name] != value) {
        return Refuse("The id from the path does not match the id from the body!");
      }
    }
    return vm_.Apply(method, op->path_template, j);
  }

  Options o_;
  ApiSpec spec_;
  Sinks sinks_{o_.id};
  VmState vm_{o_, spec_, sinks_};
  int api_fd_ = -1;
  std::vector<Conn> conns_;
  std::ofstream record_;
  uint32_t next_host_port_ = 1u << 30;  // Firecracker counts host-side ports up from 2^30
};

}  // namespace
}  // namespace nfc::fakefc

int main(int argc, char** argv) {
  nfc::fakefc::Options o;
  if (auto code = nfc::fakefc::ParseOptions(argc, argv, &o)) return *code;
  // Firecracker sets no_new_privs before it installs its seccomp filters. The stand-in installs none (it must
  // exec QEMU), but keeps no_new_privs so the process envelope is Firecracker's.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    std::cerr << "fake-firecracker: prctl(PR_SET_NO_NEW_PRIVS): " << std::strerror(errno) << "\n";
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  auto spec = nfc::fakefc::ApiSpec::Load(o.spec);
  if (!spec.ok()) {
    std::cerr << "fake-firecracker: " << spec.error().message() << "\n";
    return 1;
  }
  if (o.print_version) {
    std::cout << "Firecracker v" << spec->version() << "\n";
    return 0;
  }
  for (const auto& e : spec->errata()) std::cerr << "fake-firecracker: spec erratum applied: " << e << "\n";
  nfc::fakefc::FakeFirecracker fc(std::move(o), std::move(spec).value());
  return fc.Run();
}
