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
#include "snapshot.h"

namespace nfc::fakefc {
namespace {

struct Conn {
  int fd = -1;
  std::string in;
  enum class Kind { kApi, kVsockHandshake, kVsockStream } kind = Kind::kApi;
};

int Listen(const std::string& path, std::string* err) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    *err = "path too long";
    return -1;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
    *err = std::strerror(errno) + std::string(" (os error ") + std::to_string(errno) + ")";
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

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
      Reply r = Logger({{"log_path", o_.log_path}, {"level", o_.level}, {"show_level", o_.show_level}});
      if (r.status != 204) return Fail("Failed to initialize logger: " + r.body, 1);
    }
    if (!o_.metrics_path.empty()) {
      Reply r = Metrics({{"metrics_path", o_.metrics_path}});
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
    if (exit_code_ >= 0) return exit_code_;
    if (machine_) {
      if (auto code = machine_->Ended()) return *code;
    }
    if (crash_at_ && std::chrono::steady_clock::now() >= *crash_at_) {
      if (o_.crash_signal) {
        signal(o_.crash_signal, SIG_DFL);
        raise(o_.crash_signal);
      }
      return o_.crash_code;
    }
    sinks_.MaybeFlushMetrics();
    std::vector<pollfd> fds;
    if (api_fd_ >= 0) fds.push_back({api_fd_, POLLIN, 0});
    if (vsock_fd_ >= 0) fds.push_back({vsock_fd_, POLLIN, 0});
    for (auto& c : conns_) fds.push_back({c.fd, POLLIN, 0});
    int n = ::poll(fds.data(), fds.size(), 50);
    if (n < 0 && errno != EINTR) return 2;
    if (n <= 0) return -1;
    for (const auto& p : fds) {
      if (!(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (p.fd == api_fd_) {
        Accept(api_fd_, Conn::Kind::kApi);
      } else if (p.fd == vsock_fd_) {
        Accept(vsock_fd_, Conn::Kind::kVsockHandshake);
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
    if (parsed && machine_ && machine_->Relays(port)) {
      machine_->Connect(port, c.fd, rest, next_host_port_++);  // the relay owns the socket now
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
    if (after_response_) {
      after_response_();
      after_response_ = nullptr;
    }
    return true;
  }

  // One answer: its status, its JSON body (empty for 204) and what the fake noted for the record.
  struct Reply {
    int status = 204;
    std::string body;
    nlohmann::json note = nlohmann::json::object();
  };

  static std::string Fault(const std::string& message) {
    return nlohmann::json{{"fault_message", message}}.dump();
  }
  static Reply Refuse(const std::string& message) { return {400, Fault(message)}; }
  static Reply Json(const nlohmann::json& j) { return {200, j.dump()}; }

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
    return Apply(method, op->path_template, j);
  }

  // Firecracker's state rules, enforced after the body is known to be well-formed.
  Reply Apply(const std::string& method, const std::string& tmpl, const nlohmann::json& j) {
    static const std::set<std::string> kPreBootOnly = {"PUT /boot-source",
                                                       "PUT /machine-config",
                                                       "PATCH /machine-config",
                                                       "PUT /drives/{drive_id}",
                                                       "PUT /network-interfaces/{iface_id}",
                                                       "PUT /vsock",
                                                       "PUT /mmds/config",
                                                       "PUT /balloon",
                                                       "PUT /entropy",
                                                       "PUT /cpu-config",
                                                       "PUT /serial",
                                                       "PUT /pmem/{id}",
                                                       "PUT /hotplug/memory",
                                                       "PUT /snapshot/load"};
    static const std::set<std::string> kPostBootOnly = {"PATCH /drives/{drive_id}",
                                                        "PATCH /network-interfaces/{iface_id}", "PATCH /vm",
                                                        "PUT /snapshot/create", "PATCH /pmem/{id}"};
    std::string key = method + " " + tmpl;
    if (started_ && kPreBootOnly.count(key)) {
      return Refuse("The requested operation is not supported after starting the microVM.");
    }
    if (!started_ && kPostBootOnly.count(key)) {
      return Refuse("The requested operation is not supported before starting the microVM.");
    }
    if (method == "GET") return Get(tmpl);
    if (key == "PUT /actions") return Action(j["action_type"].get<std::string>());
    if (key == "PUT /logger") return Logger(j);
    if (key == "PUT /metrics") return Metrics(j);
    if (key == "PUT /boot-source") return BootSource(j);
    if (key == "PUT /machine-config") return MachineConfig(j);
    if (key == "PATCH /machine-config") return PatchMachineConfig(j);
    if (key == "PUT /drives/{drive_id}") return Drive(j);
    if (key == "PUT /network-interfaces/{iface_id}") {
      Upsert("network-interfaces", "iface_id", j);
      return {};
    }
    if (key == "PUT /vsock") return Vsock(j);
    if (key == "PATCH /vm") return PatchVm(j["state"].get<std::string>());
    if (key == "PUT /snapshot/create") return CreateSnapshot(j);
    if (key == "PUT /snapshot/load") return LoadSnapshot(j);
    if (key == "PATCH /drives/{drive_id}") return PatchDrive(j);
    return {};
  }

  Reply PatchVm(const std::string& state) {
    if (state == "Paused") {
      if (machine_) machine_->Pause();
      paused_ = true;
      return {};
    }
    if (restore_) {
      Reply booted = BootRestored();
      if (booted.status != 204) return booted;
    } else if (machine_) {
      machine_->Resume();
    }
    paused_ = false;
    return {};
  }

  // Firecracker writes the paused VM's state and memory (snapshot.h says what the stand-in writes).
  Reply CreateSnapshot(const nlohmann::json& j) {
    if (!paused_) return Refuse("Create snapshot error: the microVM must be paused first (PATCH /vm)");
    std::string state = j["snapshot_path"].get<std::string>(), memory = j["mem_file_path"].get<std::string>();
    SavedVm saved{spec_.version(), VmConfigNow(),
                  machine_ ? machine_->OpenPorts() : std::map<std::string, bool>{}};
    Status wrote = WriteSnapshotFile(state, saved);
    if (wrote.ok() && machine_) wrote = machine_->SaveMemory(memory);
    if (wrote.ok() && !machine_)
      wrote = WriteSparse(memory, MachineConfigNow()["mem_size_mib"].get<uint64_t>() << 20);
    if (!wrote.ok()) return Refuse("Create snapshot error: " + wrote.error().message());
    Log("Snapshot created");
    return {};
  }

  static Status WriteSparse(const std::string& path, uint64_t size) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Error::Errno("open " + path);
    int rc = ::ftruncate(fd, static_cast<off_t>(size));
    ::close(fd);
    return rc == 0 ? Ok() : Error::Errno("ftruncate " + path);
  }

  // Only the logger and metrics may be configured before a load (vmm.md 1.4). A load that fails ends
  // Firecracker once the answer is out.
  Reply LoadSnapshot(const nlohmann::json& j) {
    for (const char* configured :
         {"boot-source", "machine-config", "drives", "network-interfaces", "vsock"}) {
      if (config_.contains(configured))
        return Refuse("Loading a microVM snapshot not allowed after configuring boot-specific resources.");
    }
    const nlohmann::json& backend = j.value("mem_backend", nlohmann::json::object());
    if (backend.value("backend_type", "File") != "File") return Refuse("Not implemented by the fake: Uffd");
    std::string memory = j.contains("mem_file_path") ? j["mem_file_path"].get<std::string>()
                                                     : backend.value("backend_path", "");
    auto fail = [this](const std::string& why) {
      after_response_ = [this] { exit_code_ = 1; };
      return Refuse("Load snapshot error: " + why);
    };
    if (!Exists(memory)) return fail("cannot open the memory file " + memory);
    auto saved = ReadSnapshotFile(j["snapshot_path"].get<std::string>());
    if (!saved.ok()) return fail(saved.error().message());
    auto vm = ApplyLoadOverrides(saved->vm, j);
    if (!vm.ok()) return fail(vm.error().message());
    for (const char* sink : {"logger", "metrics"}) {
      if (config_.contains(sink)) (*vm)[sink] = config_[sink];
    }
    config_ = std::move(vm).value();
    if (config_.contains("vsock")) {
      std::string err;
      vsock_fd_ = Listen(config_["vsock"]["uds_path"].get<std::string>(), &err);
      if (vsock_fd_ < 0) return fail("vsock socket: " + err);
    }
    started_ = true;
    paused_ = true;
    restore_ = Restore{memory, saved->open_ports};
    Log("Snapshot loaded");
    if (j.value("resume_vm", false)) return PatchVm("Resumed");
    return {};
  }

  // Before the resume of a loaded snapshot: the drive's backing file changes. The stand-in does not swap the
  // file under a running QEMU.
  Reply PatchDrive(const nlohmann::json& j) {
    std::string id = j["drive_id"].get<std::string>();
    for (auto& d : config_["drives"]) {
      if (d.value("drive_id", "") != id) continue;
      if (j.contains("path_on_host")) {
        if (!Exists(j["path_on_host"]))
          return Refuse("Unable to patch the block device: no file " + j["path_on_host"].dump());
        if (machine_ && !restore_)
          return Refuse("Not implemented by the fake: PATCH /drives on a running VM");
        d["path_on_host"] = j["path_on_host"];
      }
      return {};
    }
    return Refuse("Invalid block device ID!");
  }

  Reply BootRestored() {
    Restore r = std::move(*restore_);
    restore_.reset();
    if (o_.boot_qemu.empty()) return {};
    auto booted = GuestMachine::Restore(MachineOptionsNow(), VmConfigNow(), r.memory_path, r.open_ports);
    if (!booted.ok()) return Refuse("Failed to resume the microVM: " + booted.error().message());
    machine_ = std::move(booted).value();
    return {};
  }

  // Before 1.14 Firecracker opens log and metrics sinks without creating them; 1.14 creates missing files.
  std::string OpenSink(const std::string& path) {
    int flags = O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC | (spec_.AtLeast(1, 14) ? O_CREAT : 0);
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) {
      return "Failed to open target file: " + std::string(std::strerror(errno)) + " (os error " +
             std::to_string(errno) + ")";
    }
    ::close(fd);
    return "";
  }

  Reply Logger(const nlohmann::json& j) {
    if (logger_configured_) return Refuse("Reinitialization of logger not allowed.");
    if (j.contains("log_path") && j["log_path"].is_string()) {
      std::string err = OpenSink(j["log_path"].get<std::string>());
      if (!err.empty()) return Refuse(err);
    }
    logger_configured_ = true;
    sinks_.ConfigureLogger(j);
    Log("Running Firecracker v" + spec_.version());
    config_["logger"] = j;
    return {};
  }

  Reply Metrics(const nlohmann::json& j) {
    if (metrics_configured_) return Refuse("Reinitialization of metrics not allowed.");
    std::string err = OpenSink(j["metrics_path"].get<std::string>());
    if (!err.empty()) return Refuse(err);
    metrics_configured_ = true;
    sinks_.ConfigureMetrics(j["metrics_path"].get<std::string>());
    config_["metrics"] = j;
    return {};
  }

  // Firecracker opens the kernel and initrd here; it reads the kernel only at InstanceStart.
  Reply BootSource(const nlohmann::json& j) {
    if (!Exists(j["kernel_image_path"])) {
      return Refuse("The kernel file cannot be opened: No such file or directory (os error 2)");
    }
    if (j.contains("initrd_path") && j["initrd_path"].is_string() && !Exists(j["initrd_path"])) {
      return Refuse(
          "The initrd file cannot be opened due to invalid path or invalid permissions. No such file or "
          "directory (os error 2)");
    }
    config_["boot-source"] = j;
    return {};
  }

  Reply MachineConfig(const nlohmann::json& j) {
    uint64_t vcpus = j["vcpu_count"].get<uint64_t>();
    bool smt = j.contains("smt") && j["smt"].is_boolean() && j["smt"].get<bool>();
    if (smt && vcpus > 1 && vcpus % 2 != 0) {
      return Refuse(
          "The vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled.");
    }
    config_["machine-config"] = j;
    return {};
  }

  // The spec's PATCH body is the full MachineConfiguration (required fields included), so what reaches here
  // names at least vcpu_count and mem_size_mib; the rest keeps its current value.
  Reply PatchMachineConfig(const nlohmann::json& j) {
    nlohmann::json merged = MachineConfigNow();
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (!it.value().is_null()) merged[it.key()] = it.value();
    }
    return MachineConfig(merged);
  }

  Reply Drive(const nlohmann::json& j) {
    if (j.contains("path_on_host") && j["path_on_host"].is_string() && !Exists(j["path_on_host"])) {
      return Refuse(
          "Unable to create the block device: BackingFile(Os { code: 2, kind: NotFound, message: \"No such "
          "file or directory\" }, \"" +
          j["path_on_host"].get<std::string>() + "\")");
    }
    Upsert("drives", "drive_id", j);
    return {};
  }

  Reply Vsock(const nlohmann::json& j) {
    if (vsock_fd_ >= 0) ::close(vsock_fd_);
    std::string err;
    vsock_fd_ = Listen(j["uds_path"].get<std::string>(), &err);
    if (vsock_fd_ < 0)
      return Refuse("Cannot create backend for vsock device: UnixBind(Os { message: \"" + err + "\" })");
    config_["vsock"] = j;
    return {};
  }

  // Devices keep their order and are replaced by id, as in GET /vm/config.
  void Upsert(const std::string& list, const std::string& id_field, const nlohmann::json& j) {
    nlohmann::json& items = config_[list];
    if (!items.is_array()) items = nlohmann::json::array();
    for (auto& item : items) {
      if (item[id_field] == j[id_field]) {
        item = j;
        return;
      }
    }
    items.push_back(j);
  }

  static bool Exists(const nlohmann::json& path) {
    struct stat st;
    return path.is_string() && ::stat(path.get<std::string>().c_str(), &st) == 0;
  }

  // What GET /machine-config shows: Firecracker's defaults under what was set.
  nlohmann::json MachineConfigNow() const {
    nlohmann::json mc = {
        {"vcpu_count", 1}, {"mem_size_mib", 128}, {"smt", false}, {"track_dirty_pages", false}};
    if (config_.contains("machine-config")) {
      for (const auto& [k, v] : config_["machine-config"].items()) {
        if (!v.is_null()) mc[k] = v;
      }
    }
    return mc;
  }

  Reply Get(const std::string& tmpl) {
    if (tmpl == "/") {
      nlohmann::json info = {{"app_name", "Firecracker"},
                             {"id", o_.id},
                             {"state", started_ ? "Running" : "Not started"},
                             {"vmm_version", spec_.version()}};
      if (o_.answer_outside_spec) info["bogus"] = true;
      return Json(info);
    }
    if (tmpl == "/version") return Json({{"firecracker_version", spec_.version()}});
    if (tmpl == "/machine-config") return Json(MachineConfigNow());
    if (tmpl == "/vm/config") return Json(VmConfigNow());
    return Refuse("Not implemented by the fake: GET " + tmpl);
  }

  Reply Action(const std::string& action) {
    if (action == "InstanceStart") return InstanceStart();
    if (action == "SendCtrlAltDel") {
      if (!started_) return Refuse("The requested operation is not supported before starting the microVM.");
      if (machine_) {
        Status sent = machine_->SendCtrlAltDel();
        if (!sent.ok()) return Refuse("Failed to send CTRL+ALT+DEL: " + sent.error().message());
        return {};
      }
      // The "guest" reboots: FC exits with the code of a guest reset once the answer is out.
      if (o_.cad_exit >= 0) after_response_ = [this] { exit_code_ = o_.cad_exit; };
      return {};
    }
    if (action == "FlushMetrics") {
      if (!metrics_configured_) return Refuse("The metrics system is not initialized.");
      sinks_.FlushMetrics();
      return {};
    }
    return Refuse("unknown action");
  }

  // Firecracker builds the VM here: the kernel is loaded into guest memory, so a file that is not a vmlinux
  // for x86-64 fails the start (kernel_image.h). The record notes how the fake would boot it.
  Reply InstanceStart() {
    if (started_) return Refuse("The requested operation is not supported after starting the microVM.");
    if (!config_.contains("boot-source"))
      return Refuse("Cannot start microvm that was not configured: MissingKernelConfig");
    uint64_t memory = MachineConfigNow()["mem_size_mib"].get<uint64_t>() << 20;
    auto kernel = InspectElfKernel(config_["boot-source"]["kernel_image_path"].get<std::string>(), memory);
    if (!kernel.ok()) {
      return Refuse("Cannot load kernel due to invalid memory configuration or invalid kernel image: " +
                    kernel.error().message());
    }
    Reply reply;
    reply.note["kernel"] = {
        {"format", "elf64-x86_64"},
        {"entry", kernel->entry},
        {"pvh_entry", kernel->pvh_entry ? nlohmann::json(*kernel->pvh_entry) : nlohmann::json()},
        // PVH boot exists from 1.12 on; older versions ignore the note.
        {"boot_protocol", kernel->pvh_entry && spec_.AtLeast(1, 12) ? "pvh" : "linux-64bit"}};
    if (!o_.boot_qemu.empty()) {
      MachineOptions mo = MachineOptionsNow();
      auto booted = GuestMachine::Boot(mo, VmConfigNow());
      if (!booted.ok()) return Refuse("Failed to start the microVM: " + booted.error().message());
      machine_ = std::move(booted).value();
      reply.note["booted"] = {{"acpi", mo.acpi}};
    }
    Log("Successfully started microvm");
    started_ = true;
    if (o_.crash_after_ms >= 0) {
      crash_at_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(o_.crash_after_ms);
    }
    return reply;
  }

  nlohmann::json VmConfigNow() const {
    nlohmann::json full = config_;
    full["machine-config"] = MachineConfigNow();
    return full;
  }

  MachineOptions MachineOptionsNow() const {
    MachineOptions mo;
    mo.qemu = o_.boot_qemu;
    mo.work_dir = WorkDir();
    mo.id = o_.id;
    mo.acpi = spec_.AtLeast(1, 8);  // no ACPI before 1.8 (vmm.md 1.7, 5.1)
    mo.vsock_relays = o_.vsock_relays;
    return mo;
  }

  // Where the booted VM's QEMU keeps its sockets: beside the API socket (the VM's state directory), or the
  // working directory without one (--no-api).
  std::string WorkDir() const {
    if (o_.no_api) return ".";
    auto slash = o_.api_sock.rfind('/');
    return slash == std::string::npos ? "." : slash == 0 ? "/" : o_.api_sock.substr(0, slash);
  }

  Options o_;
  ApiSpec spec_;
  std::unique_ptr<GuestMachine> machine_;
  Sinks sinks_{o_.id};
  int api_fd_ = -1;
  int vsock_fd_ = -1;
  std::vector<Conn> conns_;
  std::ofstream record_;
  bool started_ = false;
  bool paused_ = false;
  // A loaded snapshot waiting for PATCH /vm Resumed: its memory file and the guest's open ports.
  struct Restore {
    std::string memory_path;
    std::map<std::string, bool> open_ports;
  };
  std::optional<Restore> restore_;
  bool logger_configured_ = false;
  bool metrics_configured_ = false;
  nlohmann::json config_ = nlohmann::json::object();
  uint32_t next_host_port_ = 1u << 30;  // Firecracker counts host-side ports up from 2^30
  int exit_code_ = -1;
  std::function<void()> after_response_;
  std::optional<std::chrono::steady_clock::time_point> crash_at_;
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
