#include "init/guest/bringup.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "base/log.h"
#include "init/common/mounts.h"
#include "init/common/netlink.h"
#include "init/common/system.h"
#include "network/relay.h"

namespace nfc::init::guest {
namespace {

// Where the image, scratch and merged root are assembled before switch_root. On an initramfs that is /mnt of
// the ramfs; elsewhere (tests in a private mount namespace) a tmpfs over a directory that does not contain
// the image directory, so nothing is ever created on the host's filesystems.
Result<std::string> Staging(const TaskSpec& spec, const BootEnvironment& env) {
  if (env.from_initramfs) {
    NFC_RETURN_IF_ERROR(MakeDirs("/mnt/nomad"));
    return std::string("/mnt/nomad");
  }
  for (const char* candidate : {"/mnt", "/media", "/srv", "/opt"}) {
    std::string c = candidate;
    struct stat st;
    if (::stat(candidate, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (spec.root.directory == c || spec.root.directory.rfind(c + "/", 0) == 0) continue;
    NFC_RETURN_IF_ERROR(Mount("nomad-staging", c, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700"));
    return c;
  }
  return Error::FailedPrecondition("no directory to assemble the root in (tried /mnt, /media, /srv, /opt)");
}

std::string MountFlagsAndData(const std::vector<std::string>& options, unsigned long& flags) {
  std::string data;
  for (const auto& o : options) {
    if (o == "ro")
      flags |= MS_RDONLY;
    else if (o == "rw")
      flags &= ~static_cast<unsigned long>(MS_RDONLY);
    else if (o == "nosuid")
      flags |= MS_NOSUID;
    else if (o == "nodev")
      flags |= MS_NODEV;
    else if (o == "noexec")
      flags |= MS_NOEXEC;
    else if (o == "noatime")
      flags |= MS_NOATIME;
    else if (o == "relatime")
      flags |= MS_RELATIME;
    else if (o == "sync")
      flags |= MS_SYNCHRONOUS;
    else if (o == "bind")
      flags |= MS_BIND;
    else
      data += (data.empty() ? "" : ",") + o;
  }
  return data;
}

Status WriteEtc(const TaskSpec& spec, const std::string& root) {
  std::string etc = root + "/etc";
  bool need = !spec.hostname.empty() || !spec.hosts.empty() || spec.dns.has_value();
  if (!need) return Ok();
  NFC_RETURN_IF_ERROR(MakeDirs(etc));
  if (!spec.hostname.empty()) NFC_RETURN_IF_ERROR(WriteFile(etc + "/hostname", spec.hostname + "\n"));
  if (!spec.hostname.empty() || !spec.hosts.empty()) {
    std::string hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
    bool named = spec.hostname.empty();
    for (const auto& h : spec.hosts) {
      hosts += h.address;
      for (const auto& n : h.names) {
        hosts += "\t" + n;
        if (n == spec.hostname) named = true;
      }
      hosts += "\n";
    }
    if (!named) hosts += "127.0.1.1\t" + spec.hostname + "\n";
    NFC_RETURN_IF_ERROR(WriteFile(etc + "/hosts", hosts));
  }
  if (spec.dns) {
    std::string r;
    for (const auto& s : spec.dns->servers) r += "nameserver " + s + "\n";
    if (!spec.dns->searches.empty()) {
      r += "search";
      for (const auto& s : spec.dns->searches) r += " " + s;
      r += "\n";
    }
    if (!spec.dns->options.empty()) {
      r += "options";
      for (const auto& s : spec.dns->options) r += " " + s;
      r += "\n";
    }
    // Images often ship resolv.conf as a symlink into /run (systemd-resolved); replace it with a file.
    std::string path = etc + "/resolv.conf";
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) ::unlink(path.c_str());
    NFC_RETURN_IF_ERROR(WriteFile(path, r));
  }
  return Ok();
}

// The task's labels as one JSON object at kLabelsPath, on the root's /run tmpfs (mounted just before).
Status WriteLabels(const TaskSpec& spec, const std::string& root) {
  if (spec.labels.empty()) return Ok();
  std::string path = root + nfc::guest::kLabelsPath;
  NFC_RETURN_IF_ERROR(MakeDirs(path.substr(0, path.rfind('/'))));
  return WriteFile(path, nlohmann::json(spec.labels).dump(2) + "\n");
}

}  // namespace

Status WaitForDevice(const std::string& path, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      if (S_ISBLK(st.st_mode)) return Ok();
      return Error::FailedPrecondition(path + " is not a block device");
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return Error::NotFound(path + " did not appear within " + std::to_string(timeout_ms) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Status MountOne(const ::nfc::guest::MountConfig& m, const std::string& target) {
  unsigned long flags = MS_NODEV;
  std::string data = MountFlagsAndData(m.options, flags);
  std::string fstype = m.fstype;
  if (fstype == "auto") {
    NFC_ASSIGN_OR_RETURN(fstype, DetectFilesystem(m.source));
  }
  Status mounted = Mount(m.source, target, fstype, flags, data);
  if (!mounted.ok() && mounted.error().sys_errno() == ENODEV)
    return std::move(mounted).error().Context("the guest kernel has no " + fstype + " driver");
  return mounted;
}

// The task's volumes, in the order given (a volume inside another comes after it).
Status MountVolumes(const TaskSpec& spec, const std::string& root) {
  for (size_t i = 0; i < spec.mounts.size(); i++) {
    const auto& m = spec.mounts[i];
    std::string at = "mounts[" + std::to_string(i) + "] (" + m.target + ")";
    std::string target = root + m.target;
    NFC_RETURN_IF_ERROR_CTX(MakeDirs(target), at);
    if (m.source.rfind("/dev/", 0) == 0) NFC_RETURN_IF_ERROR_CTX(WaitForDevice(m.source, 10000), at);
    NFC_RETURN_IF_ERROR_CTX(MountOne(m, target), at);
  }
  return Ok();
}

// Device plugins' block devices under the names the job asked for: nodes with the same device number.
Status MakeDeviceNodes(const TaskSpec& spec, const std::string& root) {
  for (size_t i = 0; i < spec.devices.size(); i++) {
    const auto& d = spec.devices[i];
    std::string at = "devices[" + std::to_string(i) + "] (" + d.target + ")";
    NFC_RETURN_IF_ERROR_CTX(WaitForDevice(d.source, 10000), at);
    struct stat st {};
    if (::stat(d.source.c_str(), &st) != 0) return Error::Errno("stat " + d.source).Context(at);
    std::string target = root + d.target;
    NFC_RETURN_IF_ERROR_CTX(MakeDirs(target.substr(0, target.rfind('/'))), at);
    if (::mknod(target.c_str(), S_IFBLK | 0660, st.st_rdev) != 0 && errno != EEXIST)
      return Error::Errno("mknod " + target).Context(at);
  }
  return Ok();
}

Status SetUpRoot(const TaskSpec& spec, const BootEnvironment& env) {
  NFC_ASSIGN_OR_RETURN(std::string staging, Staging(spec, env));
  std::string lower = spec.root.directory;
  if (!spec.root.device.empty()) {
    lower = staging + "/image";
    NFC_RETURN_IF_ERROR(MakeDirs(lower));
    NFC_RETURN_IF_ERROR_CTX(WaitForDevice(spec.root.device, 10000), "root.device");
    NFC_RETURN_IF_ERROR_CTX(Mount(spec.root.device, lower, spec.root.fstype, MS_RDONLY | MS_NODEV),
                            "root.device");
  }
  std::string scratch = staging + "/scratch";
  NFC_RETURN_IF_ERROR(MakeDirs(scratch));
  if (!spec.scratch.device.empty()) {
    NFC_RETURN_IF_ERROR_CTX(WaitForDevice(spec.scratch.device, 10000), "scratch.device");
    NFC_RETURN_IF_ERROR_CTX(Mount(spec.scratch.device, scratch, spec.scratch.fstype, MS_NODEV),
                            "scratch.device");
  } else {
    NFC_RETURN_IF_ERROR_CTX(
        Mount("scratch", scratch, "tmpfs", MS_NODEV, "mode=0755,size=" + spec.scratch.tmpfs_size),
        "scratch tmpfs");
  }
  NFC_RETURN_IF_ERROR(MakeDirs(scratch + "/upper"));
  NFC_RETURN_IF_ERROR(MakeDirs(scratch + "/work"));
  std::string root = staging + "/root";
  NFC_RETURN_IF_ERROR(MakeDirs(root));
  // xino/index off: the lower layer is a plain read-only filesystem shared by no other overlay in this
  // kernel.
  NFC_RETURN_IF_ERROR_CTX(
      Mount("overlay", root, "overlay", 0,
            "lowerdir=" + lower + ",upperdir=" + scratch + "/upper,workdir=" + scratch + "/work"),
      "root overlay");
  NFC_RETURN_IF_ERROR_CTX(MountSystemFilesystems(root, env.dev_mode), "system filesystems");
  NFC_RETURN_IF_ERROR_CTX(WriteEtc(spec, root), "identity files");
  NFC_RETURN_IF_ERROR_CTX(WriteLabels(spec, root), "labels");
  NFC_RETURN_IF_ERROR(MountVolumes(spec, root));
  NFC_RETURN_IF_ERROR(MakeDeviceNodes(spec, root));
  NFC_RETURN_IF_ERROR_CTX(SwitchRoot(root, env.from_initramfs), "switch_root");
  return Ok();
}

Status SetUpNetwork(const TaskSpec& spec) {
  if (!spec.hostname.empty() && sethostname(spec.hostname.data(), spec.hostname.size()) != 0) {
    return Error::Errno("sethostname " + spec.hostname);
  }
  NFC_ASSIGN_OR_RETURN(Netlink nl, Netlink::Open());
  NFC_ASSIGN_OR_RETURN(int lo, nl.IndexByName("lo"));
  NFC_RETURN_IF_ERROR(nl.SetUp(lo, 0));
  for (size_t i = 0; i < spec.network.interfaces.size(); i++) {
    const auto& itf = spec.network.interfaces[i];
    std::string at = "network.interfaces[" + std::to_string(i) + "]";
    int index = 0;
    if (!itf.current_mac.empty() && itf.mac.empty())
      return Error::InvalidArgument(at + ".current_mac: " + itf.current_mac + " given without mac");
    if (!itf.mac.empty()) {
      // Restored from a warm-start template: the interface still has the template's MAC.
      const std::string& now = itf.current_mac.empty() ? itf.mac : itf.current_mac;
      auto found = nl.FindByMac(now);
      if (!found.ok()) return std::move(found).error().Context(at);
      index = found->first;
      if (now != itf.mac) NFC_RETURN_IF_ERROR_CTX(nl.SetMac(index, itf.mac), at);
      if (!itf.name.empty() && found->second != itf.name)
        NFC_RETURN_IF_ERROR_CTX(nl.Rename(index, itf.name), at);
    } else {
      auto idx = nl.IndexByName(itf.name);
      if (!idx.ok()) return std::move(idx).error().Context(at);
      index = *idx;
    }
    NFC_RETURN_IF_ERROR_CTX(nl.SetUp(index, itf.mtu), at);
    for (const auto& a : itf.addresses) {
      auto cidr = ParseCidr(a);
      if (!cidr.ok()) return std::move(cidr).error().Context(at + ".addresses");
      NFC_RETURN_IF_ERROR_CTX(nl.AddAddress(index, *cidr), at);
    }
  }
  for (size_t i = 0; i < spec.network.routes.size(); i++) {
    const auto& r = spec.network.routes[i];
    std::string at = "network.routes[" + std::to_string(i) + "]";
    auto dst = ParseCidr(r.destination);
    if (!dst.ok()) return std::move(dst).error().Context(at + ".destination");
    Cidr gw;
    if (!r.gateway.empty()) {
      auto g = ParseAddress(r.gateway);
      if (!g.ok()) return std::move(g).error().Context(at + ".gateway");
      gw = *g;
      if (r.destination == "default" && gw.family == AF_INET6) dst->family = AF_INET6;
    }
    int index = 0;
    if (!r.device.empty()) {
      auto idx = nl.IndexByName(r.device);
      if (!idx.ok()) return std::move(idx).error().Context(at + ".device");
      index = *idx;
    }
    NFC_RETURN_IF_ERROR_CTX(nl.AddRoute(*dst, gw, index, r.metric), at);
  }
  return Ok();
}

Status StartForwards(const TaskSpec& spec) {
  if (spec.network.forwards.empty()) return Ok();
  std::vector<network::Forward> forwards;
  for (size_t i = 0; i < spec.network.forwards.size(); i++) {
    const auto& f = spec.network.forwards[i];
    std::string at = "network.forwards[" + std::to_string(i) + "]";
    auto listen = network::ParseEndpoint(f.listen);
    if (!listen.ok()) return std::move(listen).error().Context(at + ".listen");
    auto target = network::ParseEndpoint(f.target);
    if (!target.ok()) return std::move(target).error().Context(at + ".target");
    forwards.push_back({*listen, *target, true, true});
  }
  NFC_ASSIGN_OR_RETURN(auto relay, network::Relay::Listen(forwards));
  // A child, not a thread: PID 1 stays single-threaded, and the relay's own work never delays init's.
  NFC_ASSIGN_OR_RETURN(pid_t pid, network::RunRelayInChild(std::move(relay)));
  log::Info("port relay started", {{"pid", pid}, {"forwards", forwards.size()}});
  return Ok();
}

Status ApplyRlimits(const TaskSpec& spec) {
  // Defaults for every workload (what systemd gives services): many open files allowed, 1024 by default so
  // programs that loop over all fds stay fast.
  rlimit current{};
  getrlimit(RLIMIT_NOFILE, &current);
  uint64_t hard = std::max<uint64_t>(std::min<uint64_t>(524288, current.rlim_max), 1024);
  auto nofile = SetRlimit("nofile", std::min<uint64_t>(1024, hard), hard);
  if (!nofile.ok()) log::Debug("default nofile rlimit not applied", {{"error", nofile.error().ToString()}});
  for (size_t i = 0; i < spec.rlimits.size(); i++) {
    const auto& l = spec.rlimits[i];
    NFC_RETURN_IF_ERROR_CTX(SetRlimit(l.name, l.soft, l.hard), "rlimits[" + std::to_string(i) + "]");
  }
  return Ok();
}

Result<int> CreateWorkloadCgroup() {
  // The root cgroup is exempt from the no-internal-processes rule, so init may stay there while its child
  // group gets the controllers.
  auto controllers = WriteFile("/sys/fs/cgroup/cgroup.subtree_control", "+cpu +memory +pids");
  if (!controllers.ok())
    log::Debug("cgroup controllers not enabled", {{"error", controllers.error().ToString()}});
  if (::mkdir(kWorkloadCgroup, 0755) != 0 && errno != EEXIST)
    return Error::Errno(std::string("mkdir ") + kWorkloadCgroup);
  std::string procs = std::string(kWorkloadCgroup) + "/cgroup.procs";
  int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Error::Errno("open " + procs);
  return fd;
}

}  // namespace nfc::init::guest
