#include "vmm/firecracker/jail.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include "base/fs.h"
#include "base/log.h"
#include "base/process.h"
#include "base/unique_fd.h"

namespace nfc::vmm {
namespace {

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A byte-for-byte copy, for a read-only file that cannot be hard-linked (another filesystem).
Status CopyFile(const std::string& from, const std::string& to) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return Error::Errno("open " + from);
  struct stat st;
  if (::fstat(in.get(), &st) != 0) return Error::Errno("stat " + from);
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0444));
  if (!out) return Error::Errno("create " + to);
  for (off_t left = st.st_size; left > 0;) {
    ssize_t n = ::copy_file_range(in.get(), nullptr, out.get(), nullptr, static_cast<size_t>(left), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::Errno("copy " + from + " to " + to);
    if (n == 0) return Error::Internal(from + " shrank while it was copied to " + to);
    left -= n;
  }
  return Ok();
}

// The jailer's pid file: the number alone, maybe with a newline. kNotFound when there is none yet, kDataLoss
// when it holds something else.
Result<pid_t> ReadPidFile(const std::string& path) {
  NFC_ASSIGN_OR_RETURN(std::string text, fs::ReadFile(path, 64));
  char* end = nullptr;
  long pid = std::strtol(text.c_str(), &end, 10);
  if (end == text.c_str() || pid <= 1 || (*end != '\0' && *end != '\n')) {
    return Error(ErrorCode::kDataLoss, "the jailer's pid file " + path + " holds '" + text + "', not a pid");
  }
  return static_cast<pid_t>(pid);
}

}  // namespace

std::string JailerDir(const std::string& chroot_base, const std::string& exec_file, const std::string& id) {
  return chroot_base + "/" + BaseName(exec_file) + "/" + id;
}

Status KillJailedVmm(const std::string& jail_dir) {
  std::string root = jail_dir + "/root";
  std::string parent = jail_dir.substr(0, jail_dir.rfind('/'));
  std::string pid_file = root + "/" + BaseName(parent) + ".pid";
  auto read = ReadPidFile(pid_file);
  if (!read.ok()) {
    ErrorCode code = read.error().code();
    return code == ErrorCode::kNotFound || code == ErrorCode::kDataLoss ? Ok()
                                                                        : Status(std::move(read).error());
  }
  pid_t pid = *read;
  auto fd = PidfdOpen(pid);
  if (!fd.ok()) return Ok();  // gone
  // Pinned by the pidfd: is it the jail's process (same root directory), or a later one with the pid?
  struct stat jail, its;
  if (::stat(root.c_str(), &jail) != 0 ||
      ::stat(("/proc/" + std::to_string(pid) + "/root/").c_str(), &its) != 0 || jail.st_dev != its.st_dev ||
      jail.st_ino != its.st_ino) {
    return Ok();
  }
  if (::syscall(SYS_pidfd_send_signal, fd->get(), SIGKILL, nullptr, 0) != 0 && errno != ESRCH) {
    return Error::Errno("kill the jailed VMM " + std::to_string(pid));
  }
  pollfd p{fd->get(), POLLIN, 0};
  if (::poll(&p, 1, 5000) <= 0)
    return Error::Timeout("the jailed VMM " + std::to_string(pid) + " survived SIGKILL");
  log::Warn("killed a jailed VMM nobody had recorded", {{"pid", pid}, {"jail", jail_dir}});
  return Ok();
}

namespace firecracker {

Jail::Jail(JailerConfig config, std::string vm_id, std::string exec_file)
    : config_(std::move(config)),
      id_(std::move(vm_id)),
      exec_file_(std::move(exec_file)),
      exec_name_(BaseName(exec_file_)),
      dir_(JailerDir(config_.chroot_base, exec_file_, id_)),
      root_(dir_ + "/root") {}

std::string Jail::PidFile() const {
  return root_ + "/" + exec_name_ + ".pid";
}

Status Jail::Create() const {
  // sun_path holds 107 bytes and a NUL; the API socket's path is the longest we connect to.
  std::string api = HostPath(kApiSocket);
  if (api.size() > 107) {
    return Error::InvalidArgument("the jail's API socket " + api +
                                  " is longer than a unix socket path (107 " +
                                  "bytes): choose a shorter data_dir");
  }
  NFC_RETURN_IF_ERROR(fs::RemoveTree(dir_));
  // Not writable by anyone but root (the jailer's inputs must not be, vmm.md 4.5); the jailer then hands
  // the root to the VM's uid with mode 0700.
  return fs::MakeDirs(root_, 0711);
}

Result<std::string> Jail::Place(const std::string& host_path, const std::string& name, bool writable) const {
  std::string jailed = "/" + name;
  std::string target = HostPath(jailed);
  if (::link(host_path.c_str(), target.c_str()) != 0) {
    if (errno != EXDEV) return Error::Errno("hard-link " + host_path + " into the jail as " + target);
    if (writable) {
      return Error::FailedPrecondition(host_path + " is on another filesystem than the jail " + root_ +
                                       ": Firecracker writes it, so it cannot be copied there; keep it in " +
                                       "the plugin's data_dir filesystem");
    }
    log::Warn("copying a file into the Firecracker jail: it is on another filesystem",
              {{"path", host_path}, {"jail", root_}});
    NFC_RETURN_IF_ERROR(CopyFile(host_path, target));
  }
  NFC_RETURN_IF_ERROR(GrantAccess(target, host_path, writable));
  return jailed;
}

// Firecracker opens its files after the jailer dropped it to uid:gid. A file it writes becomes the VM's
// (the task's scratch disk, a volume it may write). A file it only reads stays root's, so the VM's user can
// never make it writable: when others may not read it (the task's initramfs holds its environment), its group
// becomes the VM's, with read access for the group.
Status Jail::GrantAccess(const std::string& target, const std::string& host_path, bool writable) const {
  struct stat st;
  if (::stat(target.c_str(), &st) != 0) return Error::Errno("stat " + target);
  if (writable) {
    if (::chown(target.c_str(), config_.uid, config_.gid) != 0) {
      return Error::Errno("chown " + host_path + " to the VM's uid " + std::to_string(config_.uid));
    }
    return Ok();
  }
  if ((st.st_mode & S_IROTH) != 0) return Ok();
  if (::chown(target.c_str(), static_cast<uid_t>(-1), config_.gid) != 0 ||
      ::chmod(target.c_str(), (st.st_mode & 07777 & ~S_IWGRP) | S_IRGRP) != 0) {
    return Error::Errno("let the VM's gid " + std::to_string(config_.gid) + " read " + host_path);
  }
  return Ok();
}

Status Jail::GrantTap(const std::string& tap) const {
  UniqueFd tun(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
  if (!tun) return Error::Errno("open /dev/net/tun");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, tap.c_str(), IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (::ioctl(tun.get(), TUNSETIFF, &ifr) != 0) return Error::Errno("attach to TAP " + tap);
  if (::ioctl(tun.get(), TUNSETOWNER, static_cast<unsigned long>(config_.uid)) != 0 ||
      ::ioctl(tun.get(), TUNSETGROUP, static_cast<unsigned long>(config_.gid)) != 0) {
    return Error::Errno("give TAP " + tap + " to uid " + std::to_string(config_.uid));
  }
  return Ok();
}

Result<std::vector<std::string>> Jail::Argv(const std::vector<std::string>& firecracker_args) const {
  std::vector<std::string> argv = {config_.binary,
                                   "--id",
                                   id_,
                                   "--exec-file",
                                   exec_file_,
                                   "--uid",
                                   std::to_string(config_.uid),
                                   "--gid",
                                   std::to_string(config_.gid),
                                   "--chroot-base-dir",
                                   config_.chroot_base};
  if (!config_.netns_path.empty()) argv.insert(argv.end(), {"--netns", config_.netns_path});
  if (!config_.parent_cgroup.empty()) {
    NFC_ASSIGN_OR_RETURN(sandbox::CgroupHost host, sandbox::CgroupHost::Detect());
    bool v2 = host.version == sandbox::CgroupVersion::kV2;
    argv.insert(argv.end(), {"--cgroup-version", v2 ? "2" : "1", "--parent-cgroup", config_.parent_cgroup});
    for (const auto& [file, value] : sandbox::LimitFiles(host.version, config_.limits)) {
      argv.insert(argv.end(), {"--cgroup", file + "=" + value});
    }
  }
  argv.insert(argv.end(), {"--resource-limit", "no-file=" + std::to_string(config_.open_files)});
  // Firecracker becomes PID 1 of its own pid namespace, and the jailer exits at once: the backend follows
  // Firecracker by the pid file (its starter is a child subreaper, so it can still reap it).
  argv.push_back("--new-pid-ns");
  argv.push_back("--");
  argv.insert(argv.end(), firecracker_args.begin(), firecracker_args.end());
  return argv;
}

Result<pid_t> Jail::ReadPid() const {
  return ReadPidFile(PidFile());
}

Status Jail::Remove() const {
  return fs::RemoveTree(dir_);
}

}  // namespace firecracker
}  // namespace nfc::vmm
