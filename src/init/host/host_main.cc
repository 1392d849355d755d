#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "base/log.h"
#include "base/process.h"
#include "init/common/modules.h"
#include "init/common/netlink.h"
#include "init/common/system.h"
#include "init/host/cloud_apply.h"
#include "init/host/cmdline.h"
#include "init/host/dhcp.h"
#include "init/host/grow.h"
#include "init/host/host.h"
#include "init/host/interfaces.h"
#include "init/host/mounts.h"
#include "init/host/power.h"
#include "init/host/supervisor.h"
#include "init/host/system.h"
#include "init/host/trial.h"

namespace nfc::init::host {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kAgentPath = "/usr/bin/nomad";
constexpr const char* kAgentConfig = "/etc/nomad.d";
// Baked config merged with a config drive's nomad/ files (the system partition is read-only).
constexpr const char* kMergedAgentConfig = "/run/nomados/nomad.d";
constexpr const char* kAgentLog = "/var/log/nomad/agent.log";
constexpr const char* kShellPath = "/bin/sh";
// Modules a Nomad client running microVMs needs whether or not some device asked for them.
const std::vector<std::string> kHostModules = {"br_netfilter", "overlay",      "tun",  "vhost_net",
                                               "vhost_vsock",  "nf_conntrack", "veth", "bridge"};

std::string AddrString(in_addr a) {
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

// /dev/console as stdin/stdout/stderr (the kernel may have started us without them: the initramfs has no
// /dev/console node because the image is built without root).
int OpenConsole() {
  int fd = ::open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return 2;
  for (int i = 0; i < 3; i++) dup2(fd, i);  // dup2 clears O_CLOEXEC on 0..2
  return fd;
}

bool RootIsInitramfs() {
  struct statfs fs;
  return statfs("/", &fs) == 0 && (fs.f_type == RAMFS_MAGIC || fs.f_type == TMPFS_MAGIC);
}

std::string ModulesDir() {
  utsname u;
  uname(&u);
  return std::string("/lib/modules/") + u.release;
}

std::unique_ptr<ModuleLoader> OpenModuleLoader() {
  auto index = ModuleIndex::Load(ModulesDir());
  if (!index.ok()) {
    log::Warn("no kernel module index; only built-in drivers are available",
              {{"error", index.error().message()}});
    return nullptr;
  }
  return std::make_unique<ModuleLoader>(std::move(index).value());
}

// Something went wrong before the machine could run an agent. PID 1 must not exit; wait for a person or the
// platform to act (Ctrl-Alt-Del/SIGTERM reboot, SIGUSR2 powers off), and reboot after a while in case the
// problem is transient (a slow disk).
[[noreturn]] void Emergency(const std::string& why) {
  log::Error("cannot continue booting: " + why + "; rebooting in 300 s (Ctrl-Alt-Del reboots now)");
  reboot(RB_DISABLE_CAD);
  sigset_t set;
  sigfillset(&set);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  timespec timeout{300, 0};
  auto until = Clock::now() + std::chrono::seconds(300);
  while (Clock::now() < until) {
    siginfo_t info;
    int sig = sigtimedwait(&set, &info, &timeout);
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    if (sig > 0 && PowerActionForSignal(sig)) {
      ::sync();
      reboot(*PowerActionForSignal(sig) == PowerAction::kPowerOff ? RB_POWER_OFF : RB_AUTOBOOT);
    }
  }
  ::sync();
  reboot(RB_AUTOBOOT);
  while (true) pause();
}

// ---- stage 1: initramfs ----

[[noreturn]] void RunInitramfs(const HostOptions& opts) {
  log::Info("initramfs: looking for the system partition", {{"partname", opts.system_partition}});
  auto loader = OpenModuleLoader();
  auto deadline = Clock::now() + opts.root_timeout;
  Result<std::string> device = Error::NotFound("not searched yet");
  while (true) {
    if (loader) loader->Coldplug();
    device = FindPartitionByName(opts.system_partition);
    if (device.ok() || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // disks probe asynchronously
  }
  if (!device.ok()) Emergency(device.error().message() + " (nomados.system=)");
  log::Info("initramfs: switching to the system partition", {{"device", *device}});
  auto st = SwitchToSystemRoot(*device);
  if (!st.ok()) Emergency(st.error().message());
  const char* argv[] = {"/sbin/nomad-init", nullptr};
  execv(argv[0], const_cast<char**>(argv));
  Emergency(std::string("exec /sbin/nomad-init on the system partition: ") + strerror(errno));
  while (true) pause();  // not reached: Emergency reboots
}

// ---- stage 2: the running system ----

class HostInit {
 public:
  HostInit(HostOptions opts, int console) : opts_(std::move(opts)), console_(console) {}
  [[noreturn]] void Run();

 private:
  void Boot();
  void SetUpSignals();
  void ApplyConfigDrive();
  void ApplyMetadata();
  void StartNetwork();
  void ApplyLease(const DhcpLease& lease);
  void NetworkReady(const std::string& why);
  void StartServices();
  std::optional<SupervisorClock::time_point> AgentRunningSince() const;
  void Reap();
  void OnSignal();
  void RequestShutdown(PowerAction action, const std::string& why);
  void OnDeadlines();
  Clock::time_point NextDeadline() const;
  void Watch(int fd);

  HostOptions opts_;
  int console_;
  UniqueFd epoll_;
  UniqueFd signal_fd_;
  std::unique_ptr<ModuleLoader> modules_;
  std::vector<UniqueFd> power_buttons_;
  std::optional<NetInterface> nic_;
  std::unique_ptr<DhcpClient> dhcp_;
  std::optional<DhcpLease> lease_;
  bool network_ready_ = false;
  Clock::time_point network_deadline_ = Clock::time_point::max();
  Clock::time_point boot_started_ = Clock::now();
  std::unique_ptr<Supervisor> agent_;
  std::unique_ptr<Supervisor> shell_;
  std::optional<PowerAction> shutdown_;
  Clock::time_point shutdown_deadline_ = Clock::time_point::max();
  std::string hostname_;
  std::string agent_config_ = kAgentConfig;
  bool cloud_config_found_ = false;  // a config drive was read: the metadata service is not asked
  SlotUpdates updates_;              // A/B slots: a pending bundle, or this boot's trial (trial.h)
};

void HostInit::Watch(int fd) {
  if (fd < 0) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0 && errno != EEXIST) {
    log::Error("epoll_ctl add", {{"fd", fd}, {"errno", errno}});
  }
}

void HostInit::SetUpSignals() {
  // Ctrl-Alt-Del becomes SIGINT to us instead of an immediate reboot, so the agent can drain first.
  if (reboot(RB_DISABLE_CAD) != 0) log::Warn("cannot disable Ctrl-Alt-Del", {{"errno", errno}});
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGPWR, SIGQUIT}) sigaddset(&set, sig);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  // A write to a console or pipe whose reader is gone must be an error, not our death.
  signal(SIGPIPE, SIG_IGN);
  signal_fd_.Reset(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  epoll_.Reset(epoll_create1(EPOLL_CLOEXEC));
  if (!signal_fd_ || !epoll_) Emergency("signalfd/epoll: " + std::string(strerror(errno)));
  Watch(signal_fd_.get());
}

void HostInit::Boot() {
  SetUpSignals();
  auto st = MountSystem();
  if (!st.ok()) log::Error("mounts", {{"error", st.error().message()}});

  modules_ = OpenModuleLoader();
  if (modules_) {
    int n = modules_->Coldplug();
    for (const auto& m : kHostModules) {
      auto s = modules_->Load(m);
      if (!s.ok()) log::Debug("host module not loaded", {{"error", s.error().message()}});
    }
    for (const auto& m : opts_.extra_modules) {
      auto s = modules_->Load(m);
      if (!s.ok()) log::Error("nomados.modules", {{"error", s.error().message()}});
    }
    log::Info("kernel modules loaded for the hardware", {{"count", n}});
  }

  MountDataGrown(opts_.data_partition, opts_.grow_data);
  if (auto reboot_why = updates_.OnBoot(opts_, modules_.get()))
    RequestShutdown(PowerAction::kReboot, *reboot_why);
  auto id = EnsureMachineId();
  if (!id.ok()) log::Warn("machine-id", {{"error", id.error().message()}});
  if (RaiseClockToBuildTime()) log::Warn("clock was before the image's build time; set to the build time");
  int applied = ApplySysctls(NomadHostSysctls());
  log::Info("sysctls applied", {{"count", applied}});
  RaiseResourceLimits();
  ApplyConfigDrive();

  for (auto& fd : OpenPowerButtons()) {
    Watch(fd.get());
    power_buttons_.push_back(std::move(fd));
  }
  StartNetwork();
}

// A cidata/config-2 drive (config_drive.h): hostname, network overrides and agent config from the machine.
void HostInit::ApplyConfigDrive() {
  auto drive = LoadConfigDrive(modules_.get(), kAgentConfig, kMergedAgentConfig);
  if (!drive) return;
  cloud_config_found_ = true;
  opts_ = ApplyCloudConfig(*drive, opts_, "config drive", /*network_up=*/false);
  if (!drive->agent_files.empty()) agent_config_ = kMergedAgentConfig;
}

// Without a config drive, the metadata service (metadata.h) once the network is up, before the agent starts.
void HostInit::ApplyMetadata() {
  if (cloud_config_found_) return;
  auto c = LoadMetadata(opts_, kAgentConfig, kMergedAgentConfig);
  if (!c) return;
  opts_ = ApplyCloudConfig(*c, opts_, "metadata service", /*network_up=*/true);
  if (!c->agent_files.empty()) agent_config_ = kMergedAgentConfig;
  if (!opts_.hostname.empty() && opts_.hostname != hostname_) {
    hostname_ = opts_.hostname;
    auto hs = SetHostname(hostname_);
    if (!hs.ok()) log::Warn("hostname", {{"error", hs.error().message()}});
  }
}

void HostInit::StartNetwork() {
  if (hostname_.empty()) {
    // Until an interface (and its MAC, or DHCP) names the machine: /etc/hosts must resolve localhost
    // regardless.
    hostname_ = opts_.hostname.empty() ? "nomados" : opts_.hostname;
    auto hs = SetHostname(hostname_);
    if (!hs.ok()) log::Warn("hostname", {{"error", hs.error().message()}});
  }
  auto rtnl = Netlink::Open();
  auto lo = rtnl.ok() ? rtnl->IndexByName("lo") : Result<int>(rtnl.error());
  if (!rtnl.ok() || !lo.ok() || !rtnl->SetUp(*lo, 0).ok()) log::Error("loopback not brought up");
  network_deadline_ = Clock::now() + opts_.network_timeout;

  std::string want = opts_.interface.empty() && opts_.static_ip ? opts_.static_ip->device : opts_.interface;
  for (const auto& nic : ListEthernetInterfaces()) {
    if (want.empty() || nic.name == want) {
      nic_ = nic;
      break;
    }
  }
  if (!nic_) {
    // Drivers may still be probing; OnDeadlines() tries again until network_timeout.
    log::Info("waiting for a network interface", {{"name", want.empty() ? "any ethernet" : want}});
    return;
  }
  hostname_ = !opts_.hostname.empty()                                   ? opts_.hostname
              : (opts_.static_ip && !opts_.static_ip->hostname.empty()) ? opts_.static_ip->hostname
                                                                        : DefaultHostname(nic_->mac_bytes);
  auto hs = SetHostname(hostname_);
  if (!hs.ok()) log::Warn("hostname", {{"error", hs.error().message()}});
  if (rtnl.ok()) {
    auto up = rtnl->SetUp(nic_->ifindex, 0);
    if (!up.ok()) log::Error("link up", {{"interface", nic_->name}, {"error", up.error().message()}});
  }
  if (opts_.static_ip) {
    DhcpLease lease;
    in_addr a;
    inet_pton(AF_INET, opts_.static_ip->address.c_str(), &a);
    lease.address = a;
    lease.prefix_len = opts_.static_ip->prefix_len;
    if (!opts_.static_ip->gateway.empty()) {
      inet_pton(AF_INET, opts_.static_ip->gateway.c_str(), &a);
      lease.routers.push_back(a);
    }
    for (const auto& d : opts_.static_ip->dns) {
      inet_pton(AF_INET, d.c_str(), &a);
      lease.dns.push_back(a);
    }
    ApplyLease(lease);
    NetworkReady("static address from ip=");
    return;
  }
  dhcp_ = std::make_unique<DhcpClient>(*nic_, hostname_);
  auto st = dhcp_->Start(Clock::now());
  if (!st.ok()) {
    log::Error("dhcp", {{"error", st.error().message()}});
    dhcp_.reset();
    return;
  }
  Watch(dhcp_->fd());
  log::Info("dhcp: discovering", {{"interface", nic_->name}, {"mac", nic_->mac}});
}

void HostInit::ApplyLease(const DhcpLease& lease) {
  auto rtnl = Netlink::Open();
  if (!rtnl.ok()) {
    log::Error("netlink", {{"error", rtnl.error().message()}});
    return;
  }
  if (lease_ && lease_->address.s_addr != lease.address.s_addr) {
    auto d = rtnl->DeleteAddress(nic_->ifindex, Ipv4Cidr(lease_->address, lease_->prefix_len));
    if (!d.ok()) log::Warn("remove old address", {{"error", d.error().message()}});
  }
  if (lease.mtu >= 576) {
    auto m = rtnl->SetUp(nic_->ifindex, static_cast<uint32_t>(lease.mtu));
    if (!m.ok()) log::Warn("mtu", {{"error", m.error().message()}});
  }
  auto a = rtnl->AddAddress(nic_->ifindex, Ipv4Cidr(lease.address, lease.prefix_len), {.broadcast = true});
  if (!a.ok()) log::Error("address", {{"error", a.error().message()}});
  std::vector<DhcpRoute> routes = lease.classless_routes;
  if (routes.empty() && !lease.routers.empty()) routes.push_back({in_addr{}, 0, lease.routers[0]});
  uint32_t mask = lease.prefix_len == 0 ? 0 : htonl(~0u << (32 - lease.prefix_len));
  for (const auto& r : routes) {
    // A gateway outside our subnet (clouds that hand out /32s) must first be reachable on the link.
    if (r.gateway.s_addr && (r.gateway.s_addr & mask) != (lease.address.s_addr & mask)) {
      auto g = rtnl->AddRoute(Ipv4Cidr(r.gateway, 32), Cidr{}, nic_->ifindex, 0, RTPROT_DHCP);
      if (!g.ok()) log::Warn("route to gateway", {{"error", g.error().message()}});
    }
    auto s =
        rtnl->AddRoute(Ipv4Cidr(r.dst, r.prefix_len), r.gateway.s_addr ? Ipv4Cidr(r.gateway, 32) : Cidr{},
                       nic_->ifindex, 0, RTPROT_DHCP);
    if (!s.ok())
      log::Error("route", {{"dst", AddrString(r.dst) + "/" + std::to_string(r.prefix_len)},
                           {"error", s.error().message()}});
  }
  std::vector<std::string> dns;
  for (const auto& d : lease.dns) dns.push_back(AddrString(d));
  auto w = WriteResolvConf(dns, lease.domain);
  if (!w.ok()) log::Warn("resolv.conf", {{"error", w.error().message()}});
  if (opts_.hostname.empty() && !lease.hostname.empty() && lease.hostname != hostname_) {
    hostname_ = lease.hostname;
    auto h = SetHostname(hostname_);
    if (!h.ok()) log::Warn("hostname", {{"error", h.error().message()}});
  }
  lease_ = lease;
  log::Info("network configured",
            {{"interface", nic_->name},
             {"address", AddrString(lease.address) + "/" + std::to_string(lease.prefix_len)},
             {"gateway", routes.empty() ? "none" : AddrString(routes.back().gateway)},
             {"hostname", hostname_}});
}

void HostInit::NetworkReady(const std::string& why) {
  if (network_ready_) return;
  network_ready_ = true;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - boot_started_).count();
  log::Info("network ready (" + why + ")", {{"ms_since_init", static_cast<long long>(ms)}});
  if (why != "timeout") ApplyMetadata();
  StartServices();
}

void HostInit::StartServices() {
  if (shutdown_) return;
  std::vector<std::string> env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                  "HOME=/root", "LANG=C.UTF-8", "TERM=linux"};
  struct stat st;
  if (stat(kAgentPath, &st) != 0) {
    log::Error(std::string("no agent at ") + kAgentPath + "; the image was built without one");
  } else {
    ServiceSpec spec;
    spec.name = "nomad";
    spec.argv = {kAgentPath, "agent", "-config", agent_config_};
    spec.env = env;
    spec.log_path = kAgentLog;
    agent_ = std::make_unique<Supervisor>(std::move(spec), console_);
    agent_->Start(Clock::now());
    Watch(agent_->output_fd());
  }
  if (opts_.debug_shell) {
    if (stat(kShellPath, &st) != 0) {
      log::Warn("nomados.debug=shell asked for a shell, but the image has none (build with --debug-shell)");
    } else {
      log::Warn("DEBUG: root shell on the console (nomados.debug=shell)");
      ServiceSpec spec;
      spec.name = "debug shell";
      spec.argv = {kShellPath};
      spec.env = env;
      spec.on_console = true;
      shell_ = std::make_unique<Supervisor>(std::move(spec), console_);
      shell_->Start(Clock::now());
    }
  }
}

std::optional<SupervisorClock::time_point> HostInit::AgentRunningSince() const {
  if (!agent_ || !agent_->running()) return std::nullopt;
  return agent_->started_at();
}

void HostInit::Reap() {
  while (true) {
    int status;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) break;
    if (agent_ && pid == agent_->pid()) {
      agent_->OnExit(status, Clock::now());
    } else if (shell_ && pid == shell_->pid()) {
      shell_->OnExit(status, Clock::now());
    }
    // Anything else is an orphan re-parented to us: reaped, nothing more.
  }
}

void HostInit::RequestShutdown(PowerAction action, const std::string& why) {
  if (shutdown_) {
    log::Info("shutdown already in progress", {{"request", why}});
    return;
  }
  shutdown_ = action;
  log::Info("shutting down: " + why,
            {{"action", std::string(PowerActionName(action))},
             {"agent_stop_timeout_s", static_cast<long long>(opts_.stop_timeout.count())}});
  if (shell_) shell_->Signal(SIGKILL, true);
  if (agent_ && agent_->running()) {
    agent_->Signal(SIGTERM, true);  // Nomad drains (leave_on_terminate / drain_on_shutdown) on SIGTERM
    shutdown_deadline_ = Clock::now() + opts_.stop_timeout;
  } else {
    if (agent_) agent_->Signal(SIGTERM, true);
    shutdown_deadline_ = Clock::now();
  }
}

void HostInit::OnSignal() {
  signalfd_siginfo si;
  while (read(signal_fd_.get(), &si, sizeof si) == sizeof si) {
    int sig = static_cast<int>(si.ssi_signo);
    if (sig == SIGCHLD) {
      Reap();
    } else if (sig == SIGHUP) {
      log::Info("SIGHUP: asking the agent to reload its configuration");
      if (agent_) agent_->Signal(SIGHUP, false);
    } else if (auto action = PowerActionForSignal(sig)) {
      RequestShutdown(*action, std::string(sig == SIGINT ? "Ctrl-Alt-Del" : "signal ") +
                                   (sig == SIGINT ? "" : strsignal(sig)) + " from pid " +
                                   std::to_string(si.ssi_pid));
    }
  }
  Reap();  // signals coalesce: never trust one SIGCHLD per child
}

Clock::time_point HostInit::NextDeadline() const {
  auto next = Clock::time_point::max();
  if (dhcp_) next = std::min(next, dhcp_->deadline());
  if (agent_) next = std::min(next, agent_->deadline());
  if (shell_) next = std::min(next, shell_->deadline());
  if (!network_ready_) next = std::min(next, network_deadline_);
  if (!nic_ && !network_ready_) next = std::min(next, Clock::now() + std::chrono::milliseconds(250));
  if (shutdown_) next = std::min(next, shutdown_deadline_);
  if (updates_.trial_running() && !shutdown_)
    next = std::min(next, updates_.Deadline(Clock::now(), AgentRunningSince()));
  return next;
}

void HostInit::OnDeadlines() {
  auto now = Clock::now();
  if (!nic_ && !network_ready_ && !shutdown_) {
    if (!ListEthernetInterfaces().empty()) StartNetwork();
  }
  if (dhcp_) {
    if (auto ev = dhcp_->OnDeadline(now)) {
      if (ev->kind == DhcpClient::EventKind::kLost) {
        log::Warn("dhcp lease lost; keeping the address until a new lease arrives");
      }
    }
  }
  if (!network_ready_ && now >= network_deadline_ && !shutdown_) {
    log::Warn("no network configuration yet; starting the agent anyway (DHCP keeps trying)");
    NetworkReady("timeout");
  }
  if (agent_) agent_->OnDeadline(now);
  if (shell_) shell_->OnDeadline(now);
  if (updates_.trial_running() && !shutdown_) {
    int exits = agent_ ? agent_->starts() - (agent_->running() ? 1 : 0) : 0;
    if (auto why = updates_.Check(now, AgentRunningSince(), exits))
      RequestShutdown(PowerAction::kReboot, *why);
  }
  if (shutdown_ && now >= shutdown_deadline_ && agent_ && agent_->running()) {
    log::Warn("agent did not stop in time; killing it",
              {{"timeout_s", static_cast<long long>(opts_.stop_timeout.count())}});
    agent_->Signal(SIGKILL, true);
  }
}

void HostInit::Run() {
  Boot();
  while (true) {
    if (shutdown_ && (!agent_ || !agent_->running()) && (!shell_ || !shell_->running())) {
      if (agent_) agent_->PumpOutput();
      // Our own open files (the agent log under /var) would keep the data partition busy.
      agent_.reset();
      shell_.reset();
      FinishShutdown(*shutdown_, std::chrono::seconds(5));
    }
    auto next = NextDeadline();
    int timeout_ms = -1;
    if (next != Clock::time_point::max()) {
      auto d = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count();
      timeout_ms = static_cast<int>(std::clamp<long long>(d + 1, 0, 60000));
    }
    epoll_event events[16];
    int n = epoll_wait(epoll_.get(), events, 16, timeout_ms);
    if (n < 0 && errno != EINTR) {
      log::Error("epoll_wait", {{"errno", errno}});
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == signal_fd_.get()) {
        OnSignal();
      } else if (dhcp_ && fd == dhcp_->fd()) {
        if (auto ev = dhcp_->OnReadable(Clock::now())) {
          if (ev->kind != DhcpClient::EventKind::kLost) {
            if (ev->kind == DhcpClient::EventKind::kBound) ApplyLease(ev->lease);
            NetworkReady("dhcp");
          }
        }
      } else if (agent_ && fd == agent_->output_fd()) {
        agent_->PumpOutput();
      } else if (std::any_of(power_buttons_.begin(), power_buttons_.end(),
                             [&](auto& b) { return b.get() == fd; })) {
        if (ReadPowerButton(fd)) RequestShutdown(PowerAction::kPowerOff, "power button");
      } else {
        // A closed agent pipe lingering in the set: drop it.
        epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
      }
    }
    // Restarted agents get a new pipe.
    if (agent_ && agent_->output_fd() >= 0) Watch(agent_->output_fd());
    OnDeadlines();
  }
}

}  // namespace

int Main(int argc, char** argv) {
  (void)argc;
  (void)argv;
  if (getpid() != 1) {
    std::fprintf(stderr, "nomad-init: the host role runs only as PID 1 (of a NomadOS machine)\n");
    return 2;
  }
  umask(022);
  auto early = MountEarly();
  int console = OpenConsole();
  auto cmdline = ReadFile("/proc/cmdline");  // before /proc is mounted this fails; the defaults apply
  auto parsed = ParseHostOptions(SplitCmdline(cmdline.ok() ? *cmdline : ""));
  log::Configure(console, log::Format::kText, log::ParseLevel(parsed.options.log_level, log::Level::kInfo),
                 "nomad-init");
  if (!early.ok()) log::Error("early mounts", {{"error", early.error().message()}});
  for (const auto& p : parsed.problems) log::Error("kernel command line: " + p.message());
  if (RootIsInitramfs()) RunInitramfs(parsed.options);
  log::Info("NomadOS host init starting", {{"pid", getpid()}});
  HostInit(std::move(parsed.options), console).Run();
}

}  // namespace nfc::init::host
