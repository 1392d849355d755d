// fake-jailer: a stand-in for Firecracker's jailer, for tests (Firecracker is not installable here). It does
// for real what the jailer documents (docs/jailer.md; /work/shared/reference/vmm.md §4), in the same order:
// validate, close fds above 2, clear the environment; create <chroot_base>/<exec_name>/<id>/root; copy the
// exec file in; join --netns; set rlimits; set up cgroups (v1 or v2); build the jail (new mount namespace,
// bind the chroot dir onto itself, pivot_root, chroot); mknod /dev/net/tun, /dev/kvm, /dev/urandom and
// /dev/userfaultfd; --daemonize; --new-pid-ns; drop to --uid/--gid; exec /<exec_name>. It must run as root.
//
// Command line (the real jailer's; each "--flag value" may also be written "--flag=value"):
//   --id ID                 required; 1-64 characters of [A-Za-z0-9-]
//   --exec-file PATH        required; an existing regular file (symlinks resolved; its name is the real name)
//   --uid N --gid N         required; decimal
//   --chroot-base-dir DIR   absolute; default /srv/jailer
//   --netns PATH            join that network namespace (setns CLONE_NEWNET)
//   --cgroup FILE=VALUE     repeatable; the controller is FILE up to its first '.'
//   --cgroup-version 1|2    default 1
//   --parent-cgroup REL     relative, no "." or ".." components; default: the exec file's name
//   --resource-limit fsize=N | no-file=N   repeatable; no-file defaults to 2048
//   --daemonize  --new-pid-ns
//   -- ARGS...              passed to the exec file after the jailer's own arguments
// Test-only flags, NOT the real jailer's (the Firecracker stand-in boots its guest with a dynamically linked
// QEMU and runs under ASan, which needs /proc; the real jailer expects a static Firecracker):
//   --stand-in-bind PATH     repeatable; bind-mount host PATH (dir or file) read-only at PATH inside the jail
//   --stand-in-bind-rw PATH  repeatable; the same, writable (both are also nosuid, and nodev unless PATH is
//                            a device node such as /dev/null)
//   --stand-in-proc          mount a fresh procfs at /proc in the jail (in the new pid namespace if any)
//   --stand-in-exec-arg ARG  repeatable; goes into the exec file's argv before the arguments after --
//   --stand-in-cgroup-root DIR   the cgroup root instead of /sys/fs/cgroup; files are then created as needed
//                                (O_CREAT), so a tree of plain directories and files can stand in for
//                                cgroupfs
//
// Exit codes: 1 for an argument error (the message names the flag and the value); 2 for a failed step (the
// message names the step, the path and strerror). After --daemonize or --new-pid-ns forks, the parents exit
// 0. The exec'd program gets: /<exec_name> --id=<id> --start-time-us=<CLOCK_MONOTONIC µs at start>
// --start-time-cpu-us=<this process's CPU µs at start> --parent-cpu-time-us=<CPU µs of the jailer processes
// that forked it> [stand-in exec args] [args after --].
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr int kArgumentError = 1;
constexpr int kStepFailed = 2;

struct CgroupValue {
  std::string controller, file, value;
};

struct Options {
  std::string id, exec_file, netns, parent_cgroup;
  std::string chroot_base = "/srv/jailer";
  std::string cgroup_root = "/sys/fs/cgroup";
  bool stand_in_cgroup_root = false;
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  int cgroup_version = 1;
  std::vector<CgroupValue> cgroups;
  std::optional<rlim_t> fsize;
  rlim_t no_file = 2048;  // the real jailer's default (resource_limits.rs)
  bool daemonize = false, new_pid_ns = false, stand_in_proc = false;
  std::vector<std::string> binds_ro, binds_rw, stand_in_exec_args, exec_args;
};

// What the steps learn and hand on.
struct Jail {
  std::string exec_path;   // canonical
  std::string exec_name;   // its base name
  std::string chroot_dir;  // <chroot_base>/<exec_name>/<id>/root
  int dev_null = -1;       // opened before the chroot, which has no /dev/null
  std::optional<dev_t> userfaultfd;
};

// The times passed to the exec'd program. A forked child's CPU clock starts at 0, so what its ancestors
// spent is carried in parent_cpu_us.
struct Times {
  uint64_t start_us = 0, cpu_start_us = 0, parent_cpu_us = 0;
} g_times;

uint64_t ClockUs(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
}

// _exit, not exit: past the chroot there is no /proc for LeakSanitizer's exit-time check.
[[noreturn]] void FailMessage(const std::string& message) {
  std::fprintf(stderr, "fake-jailer: %s\n", message.c_str());
  _exit(kStepFailed);
}

[[noreturn]] void Fail(const std::string& step, const std::string& path, int err) {
  FailMessage(step + ": " + path + ": " + std::strerror(err));
}

// Before anything was changed, so a plain exit.
[[noreturn]] void ArgumentError(const std::string& message) {
  std::fprintf(stderr, "fake-jailer: %s\n", message.c_str());
  std::exit(kArgumentError);
}

[[noreturn]] void BadArgument(const std::string& flag, const std::string& value, const std::string& why) {
  ArgumentError(flag + " '" + value + "': " + why);
}

// ---- Arguments ----

uint64_t Decimal(const std::string& flag, const std::string& s, uint64_t max) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v > max)
    BadArgument(flag, s, "not a decimal number up to " + std::to_string(max));
  return v;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  for (std::string p; std::getline(in, p, sep);) parts.push_back(p);
  return parts;
}

std::string CheckedId(const std::string& flag, const std::string& id) {
  if (id.empty() || id.size() > 64) BadArgument(flag, id, "must be 1 to 64 characters");
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) BadArgument(flag, id, "only letters, digits and '-' are allowed");
  }
  return id;
}

std::string CheckedAbsolute(const std::string& flag, const std::string& path) {
  if (path.empty() || path[0] != '/') BadArgument(flag, path, "must be an absolute path");
  return path;
}

// No "." or ".." components: a bind's <chroot_dir> + path stays inside the jail, a parent cgroup inside R.
std::string CheckedComponents(const std::string& flag, const std::string& path) {
  for (const auto& part : Split(path, '/'))
    if (part == "." || part == "..") BadArgument(flag, path, "must not contain . or .. components");
  return path;
}

CgroupValue CheckedCgroup(const std::string& flag, const std::string& v) {
  auto eq = v.find('=');
  std::string file = v.substr(0, eq);
  auto dot = file.find('.');
  if (eq == std::string::npos || dot == 0 || dot == std::string::npos || file.find('/') != std::string::npos)
    BadArgument(flag, v, "expected <controller>.<file>=<value>");
  return {file.substr(0, dot), file, v.substr(eq + 1)};
}

void AddResourceLimit(Options& o, const std::string& flag, const std::string& v) {
  auto eq = v.find('=');
  std::string name = v.substr(0, eq);
  if (eq == std::string::npos || (name != "fsize" && name != "no-file"))
    BadArgument(flag, v, "expected fsize=<n> or no-file=<n>");
  uint64_t n = Decimal(flag, v.substr(eq + 1), UINT64_MAX);
  if (name == "fsize") o.fsize = n;
  if (name == "no-file") o.no_file = n;
}

// Flags taking a value, flags without one, and those that may be repeated (the others may be given once).
// clang-format off
const std::set<std::string> kValued = {
    "--id", "--exec-file", "--uid", "--gid", "--chroot-base-dir", "--netns", "--cgroup", "--cgroup-version",
    "--parent-cgroup", "--resource-limit", "--stand-in-bind", "--stand-in-bind-rw", "--stand-in-exec-arg",
    "--stand-in-cgroup-root"};
// clang-format on
const std::set<std::string> kSwitches = {"--daemonize", "--new-pid-ns", "--stand-in-proc"};
const std::set<std::string> kRepeatable = {"--cgroup", "--resource-limit", "--stand-in-bind",
                                           "--stand-in-bind-rw", "--stand-in-exec-arg"};

void Apply(Options& o, const std::string& f, const std::string& v) {
  if (f == "--id") {
    o.id = CheckedId(f, v);
  } else if (f == "--exec-file") {
    o.exec_file = v;
  } else if (f == "--uid" || f == "--gid") {
    (f == "--uid" ? o.uid : o.gid) = Decimal(f, v, 0xfffffffe);  // (uid_t)-1 means "unchanged" to the kernel
  } else if (f == "--chroot-base-dir") {
    o.chroot_base = CheckedAbsolute(f, v);
  } else if (f == "--netns") {
    o.netns = v;
  } else if (f == "--cgroup") {
    o.cgroups.push_back(CheckedCgroup(f, v));
  } else if (f == "--cgroup-version") {
    if (v != "1" && v != "2") BadArgument(f, v, "must be 1 or 2");
    o.cgroup_version = v == "1" ? 1 : 2;
  } else if (f == "--parent-cgroup") {
    if (v.empty() || v[0] == '/' || v.find("//") != std::string::npos)
      BadArgument(f, v, "must be a relative path");
    o.parent_cgroup = CheckedComponents(f, v);
  } else if (f == "--resource-limit") {
    AddResourceLimit(o, f, v);
  } else if (f == "--daemonize" || f == "--new-pid-ns" || f == "--stand-in-proc") {
    (f == "--daemonize" ? o.daemonize : f == "--new-pid-ns" ? o.new_pid_ns : o.stand_in_proc) = true;
  } else if (f == "--stand-in-bind" || f == "--stand-in-bind-rw") {
    (f == "--stand-in-bind" ? o.binds_ro : o.binds_rw).push_back(CheckedComponents(f, CheckedAbsolute(f, v)));
  } else if (f == "--stand-in-exec-arg") {
    o.stand_in_exec_args.push_back(v);
  } else if (f == "--stand-in-cgroup-root") {
    o.cgroup_root = v;
    o.stand_in_cgroup_root = true;
  }
}

Options Parse(int argc, char** argv) {
  Options o;
  std::set<std::string> seen;
  for (int i = 1; i < argc; i++) {
    std::string word = argv[i];
    if (word == "--") {
      o.exec_args.assign(argv + i + 1, argv + argc);
      break;
    }
    if (word.rfind("--", 0) != 0) ArgumentError("unexpected argument '" + word + "'");
    auto eq = word.find('=');
    std::string name = word.substr(0, eq), value;
    if (!kValued.count(name) && !kSwitches.count(name)) ArgumentError("unknown argument '" + name + "'");
    if (!seen.insert(name).second && !kRepeatable.count(name)) ArgumentError(name + " given more than once");
    if (eq != std::string::npos) {
      value = word.substr(eq + 1);
      if (kSwitches.count(name)) BadArgument(name, value, "takes no value");
    } else if (!kSwitches.count(name)) {
      if (i + 1 >= argc) ArgumentError(name + " needs a value");
      value = argv[++i];
    }
    Apply(o, name, value);
  }
  for (const char* required : {"--id", "--exec-file", "--uid", "--gid"})
    if (!seen.count(required)) ArgumentError(std::string("missing required argument ") + required);
  return o;
}

// The exec file must exist and be a regular file; its canonical name is the one the jail uses, as in the real
// jailer (which canonicalizes the path).
void ResolveExecFile(const Options& o, Jail& jail) {
  char* real = realpath(o.exec_file.c_str(), nullptr);
  if (real == nullptr) BadArgument("--exec-file", o.exec_file, std::strerror(errno));
  jail.exec_path = real;
  std::free(real);
  struct stat st {};
  if (stat(jail.exec_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    BadArgument("--exec-file", o.exec_file, "not a regular file");
  jail.exec_name = jail.exec_path.substr(jail.exec_path.rfind('/') + 1);
}

// ---- Files ----

// mkdir -p. The directories it creates get `mode` exactly (not reduced by the umask).
void MakeDirs(const std::string& path, mode_t mode) {
  std::string at;
  for (const auto& part : Split(path, '/')) {
    if (part.empty()) continue;
    at += "/" + part;
    if (mkdir(at.c_str(), mode) == 0) {
      if (chmod(at.c_str(), mode) != 0) Fail("chmod a created directory", at, errno);
      continue;
    }
    struct stat st {};
    if (errno != EEXIST) Fail("create directory", at, errno);
    if (stat(at.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) Fail("create directory", at, ENOTDIR);
  }
}

void WriteAll(int fd, const std::string& data, const std::string& step, const std::string& path) {
  for (size_t done = 0; done < data.size();) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Fail(step, path, errno);
    done += static_cast<size_t>(n);
  }
}

void WriteFile(const std::string& path, const std::string& data, int flags, const std::string& step) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC | flags, 0644);
  if (fd < 0) Fail(step, path, errno);
  WriteAll(fd, data, step, path);
  if (close(fd) != 0) Fail(step, path, errno);
}

// The file's content; "" for a missing file when `missing_ok`.
std::string ReadFile(const std::string& path, bool missing_ok, const std::string& step) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && missing_ok) return "";
  if (fd < 0) Fail(step, path, errno);
  std::string data;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Fail(step, path, errno);
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return data;
}

std::string Trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\n");
  return b == std::string::npos ? "" : s.substr(b, s.find_last_not_of(" \t\n") - b + 1);
}

// Copies the exec file so no two jails share its pages. Opened without O_TRUNC and checked first, so that a
// symlink (O_NOFOLLOW) or a hard link (st_nlink > 1) at the destination is refused before anything changes.
void CopyExecFile(const Options& o, const Jail& jail) {
  const std::string step = "copy the exec file";
  std::string dest = jail.chroot_dir + "/" + jail.exec_name;
  int in = open(jail.exec_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) Fail(step, jail.exec_path, errno);
  int out = open(dest.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0755);
  if (out < 0) Fail(step, dest, errno);
  struct stat st {};
  struct stat src {};
  if (fstat(out, &st) != 0 || fstat(in, &src) != 0) Fail(step, dest, errno);
  if (!S_ISREG(st.st_mode) || st.st_nlink > 1 || (st.st_dev == src.st_dev && st.st_ino == src.st_ino))
    FailMessage(step + ": " + dest + ": refusing to overwrite a hard link (or the exec file itself)");
  if (ftruncate(out, 0) != 0) Fail(step, dest, errno);
  char buf[65536];
  for (ssize_t n; (n = read(in, buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Fail(step, jail.exec_path, errno);
    WriteAll(out, std::string(buf, static_cast<size_t>(n)), step, dest);
  }
  if (fchmod(out, 0755) != 0 || fchown(out, *o.uid, *o.gid) != 0) Fail(step + ": chmod/chown", dest, errno);
  if (close(out) != 0) Fail(step, dest, errno);
  close(in);
}

// ---- Process set-up before the jail ----

void SanitizeProcess() {
  if (close_range(3, ~0U, 0) != 0) Fail("close inherited file descriptors", "3..", errno);
  if (clearenv() != 0) FailMessage("clear the environment");
}

void JoinNetns(const Options& o) {
  if (o.netns.empty()) return;
  int fd = open(o.netns.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Fail("open the network namespace", o.netns, errno);
  if (setns(fd, CLONE_NEWNET) != 0) Fail("join the network namespace (setns)", o.netns, errno);
  close(fd);
}

void SetLimits(const Options& o) {
  rlimit files{o.no_file, o.no_file};
  if (setrlimit(RLIMIT_NOFILE, &files) != 0) Fail("setrlimit", "no-file=" + std::to_string(o.no_file), errno);
  if (!o.fsize) return;
  rlimit size{*o.fsize, *o.fsize};
  if (setrlimit(RLIMIT_FSIZE, &size) != 0) Fail("setrlimit", "fsize=" + std::to_string(*o.fsize), errno);
}

// ---- Cgroups ----

// Against the real cgroupfs every file exists once its directory does (mkdir creates them), and a missing one
// is an error worth its own message (a typo in --cgroup). A stand-in tree of plain files has to get them
// created, so O_CREAT only with --stand-in-cgroup-root.
void WriteCgroupFile(const Options& o, const std::string& path, const std::string& value, bool append) {
  int flags = o.stand_in_cgroup_root ? O_CREAT | (append ? O_APPEND : O_TRUNC) : 0;
  WriteFile(path, value + "\n", flags, "cgroup: write '" + value + "'");
}

std::vector<std::string> Controllers(const Options& o) {
  std::vector<std::string> names;
  for (const auto& c : o.cgroups)
    if (std::find(names.begin(), names.end(), c.controller) == names.end()) names.push_back(c.controller);
  return names;
}

// The directory where a v1 controller's hierarchy is mounted: R/<ctrl>, or for cpu and cpuacct also the
// joint mount R/cpu,cpuacct. Symlinks (R/cpu -> cpu,cpuacct on many distributions) are resolved.
std::string V1Mount(const Options& o, const std::string& controller) {
  std::vector<std::string> names = {controller};
  if (controller == "cpu" || controller == "cpuacct")
    names.insert(names.end(), {"cpu,cpuacct", "cpuacct,cpu"});
  for (const auto& name : names) {
    char* real = realpath((o.cgroup_root + "/" + name).c_str(), nullptr);
    if (real == nullptr) continue;
    std::string mount = real;
    std::free(real);
    return mount;
  }
  Fail("cgroup v1: find the hierarchy of controller " + controller, o.cgroup_root + "/" + controller, ENOENT);
}

// A new cpuset cgroup starts with empty cpus and mems, and no task may join it then: copy them down from the
// nearest ancestor, level by level, as the real jailer does.
void InheritCpuset(const Options& o, const std::string& mount, const std::string& rel) {
  std::string parent = mount;
  for (const auto& part : Split(rel, '/')) {
    std::string dir = parent + "/" + part;
    for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
      const std::string step = "cgroup v1: inherit cpuset";
      if (!Trim(ReadFile(dir + "/" + file, o.stand_in_cgroup_root, step)).empty()) continue;
      WriteCgroupFile(o, dir + "/" + file, Trim(ReadFile(parent + "/" + file, o.stand_in_cgroup_root, step)),
                      false);
    }
    parent = dir;
  }
}

void SetupCgroupsV1(const Options& o) {
  std::set<std::string> done;  // cpu and cpuacct may share one hierarchy
  std::string pid = std::to_string(getpid());
  for (const auto& controller : Controllers(o)) {
    std::string mount = V1Mount(o, controller);
    if (!done.insert(mount).second) continue;
    std::string rel = o.parent_cgroup + "/" + o.id;
    MakeDirs(mount + "/" + rel, 0755);
    if (controller == "cpuset") InheritCpuset(o, mount, rel);
    for (const auto& c : o.cgroups)
      if (V1Mount(o, c.controller) == mount)
        WriteCgroupFile(o, mount + "/" + rel + "/" + c.file, c.value, false);
    // This process's pid, before any fork: the children it makes are born in the cgroup.
    WriteCgroupFile(o, mount + "/" + rel + "/tasks", pid, false);
  }
}

// One write per controller, as the kernel's subtree_control takes one "+ctrl" per write just as well; in a
// stand-in tree of plain files they append, one "+ctrl" line each.
void EnableControllers(const Options& o, const std::string& dir) {
  for (const auto& controller : Controllers(o))
    WriteCgroupFile(o, dir + "/cgroup.subtree_control", "+" + controller, true);
}

void SetupCgroupsV2(const Options& o) {
  const std::string& root = o.cgroup_root;
  std::string pid = std::to_string(getpid());
  std::string available =
      " " + ReadFile(root + "/cgroup.controllers", false, "cgroup v2: read controllers") + " ";
  for (char& c : available)
    if (c == '\n' || c == '\t') c = ' ';
  for (const auto& controller : Controllers(o))
    if (available.find(" " + controller + " ") == std::string::npos)
      FailMessage("cgroup v2: controller " + controller + " is not available in " + root +
                  "/cgroup.controllers");
  if (o.cgroups.empty()) {
    // The real jailer (1.6+) only moves into an existing parent cgroup then.
    struct stat st {};
    std::string parent = root + "/" + o.parent_cgroup;
    if (stat(parent.c_str(), &st) != 0) Fail("cgroup v2: the parent cgroup must exist", parent, errno);
    WriteCgroupFile(o, parent + "/cgroup.procs", pid, false);
    return;
  }
  // Top down: a controller can be enabled for a subtree only once its parent enabled it.
  std::string dir = root;
  EnableControllers(o, dir);
  for (const auto& part : Split(o.parent_cgroup, '/')) {
    dir += "/" + part;
    MakeDirs(dir, 0755);
    EnableControllers(o, dir);
  }
  dir += "/" + o.id;
  MakeDirs(dir, 0755);
  for (const auto& c : o.cgroups) WriteCgroupFile(o, dir + "/" + c.file, c.value, false);
  WriteCgroupFile(o, dir + "/cgroup.procs", pid, false);
}

void SetupCgroups(const Options& o) {
  if (o.cgroup_version == 2) return SetupCgroupsV2(o);
  if (!o.cgroups.empty()) SetupCgroupsV1(o);
}

// ---- The jail ----

// Facts from the host that the jail cannot see later.
void RememberHostFacts(const Options& o, Jail& jail) {
  if (o.daemonize) {
    jail.dev_null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (jail.dev_null < 0) Fail("open", "/dev/null", errno);
  }
  struct stat st {};
  if (stat("/dev/userfaultfd", &st) == 0 && S_ISCHR(st.st_mode)) jail.userfaultfd = st.st_rdev;
}

// The mount point of a stand-in bind, created below the chroot dir. Every component is checked not to be a
// symlink: the jail is still on the host's root here, and a symlink would carry the mount outside.
void MakeMountPoint(const std::string& chroot_dir, const std::string& host_path, bool is_dir) {
  std::string at = chroot_dir;
  auto parts = Split(host_path, '/');
  for (size_t i = 0; i < parts.size(); i++) {
    if (parts[i].empty()) continue;
    at += "/" + parts[i];
    bool last = i + 1 == parts.size();
    int rc = (last && !is_dir) ? open(at.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644)
                               : mkdir(at.c_str(), 0755);
    if (rc >= 0 && last && !is_dir) close(rc);
    if (rc < 0 && errno != EEXIST) Fail("create a mount point", at, errno);
    // The starter's umask (the shim's is 077) must not hide the bound paths from the dropped uid.
    if (rc >= 0 && chmod(at.c_str(), last && !is_dir ? 0644 : 0755) != 0)
      Fail("chmod a mount point", at, errno);
    struct stat st {};
    if (lstat(at.c_str(), &st) != 0) Fail("create a mount point", at, errno);
    if (S_ISLNK(st.st_mode)) Fail("create a mount point (a symlink is in the way)", at, ELOOP);
  }
}

void StandInBind(const std::string& chroot_dir, const std::string& host_path, bool writable) {
  struct stat st {};
  if (stat(host_path.c_str(), &st) != 0) Fail("stand-in bind", host_path, errno);
  MakeMountPoint(chroot_dir, host_path, S_ISDIR(st.st_mode));
  std::string target = chroot_dir + host_path;
  if (mount(host_path.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    Fail("stand-in bind " + host_path, target, errno);
  // A bind remount may not drop what the source mount has (noexec, atime flags): keep those.
  struct statvfs vfs {};
  if (statvfs(target.c_str(), &vfs) != 0) Fail("statvfs", target, errno);
  // nodev, except for a device node itself (/dev/null): on a nodev mount it could not be opened.
  unsigned long flags =
      MS_BIND | MS_REMOUNT | MS_NOSUID | (S_ISCHR(st.st_mode) ? 0 : MS_NODEV) | (writable ? 0 : MS_RDONLY);
  if (vfs.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (vfs.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (vfs.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (vfs.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  if (mount(nullptr, target.c_str(), nullptr, flags, nullptr) != 0)
    Fail("stand-in bind remount", target, errno);
}

// New mount namespace whose mounts do not propagate back to the host (MS_SLAVE, as the real jailer), then
// pivot_root into the chroot dir, which must be a mount point: hence the bind onto itself.
void EnterJail(const Options& o, const Jail& jail) {
  const std::string& dir = jail.chroot_dir;
  if (unshare(CLONE_NEWNS) != 0) Fail("unshare(CLONE_NEWNS)", "-", errno);
  if (mount(nullptr, "/", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) Fail("make mounts slave", "/", errno);
  for (const auto& p : o.binds_ro) StandInBind(dir, p, false);
  for (const auto& p : o.binds_rw) StandInBind(dir, p, true);
  if (mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
    Fail("bind the jail onto itself", dir, errno);
  if (chdir(dir.c_str()) != 0) Fail("chdir", dir, errno);
  if (mkdir("old_root", 0700) != 0 && errno != EEXIST) Fail("mkdir", dir + "/old_root", errno);
  if (syscall(SYS_pivot_root, ".", "old_root") != 0) Fail("pivot_root", dir, errno);
  if (chdir("/") != 0) Fail("chdir", "/", errno);
  if (umount2("/old_root", MNT_DETACH) != 0) Fail("unmount the old root", "/old_root", errno);
  if (rmdir("/old_root") != 0) Fail("rmdir", "/old_root", errno);
  if (chroot(".") != 0) Fail("chroot", dir, errno);
}

void MakeDir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) Fail("mkdir in the jail", path, errno);
}

void MakeDevice(const Options& o, const std::string& path, dev_t dev) {
  // A node left by an earlier run in the same jail dir is replaced: it may have other numbers or owners.
  if (unlink(path.c_str()) != 0 && errno != ENOENT) Fail("remove an old device node", path, errno);
  if (mknod(path.c_str(), S_IFCHR | 0600, dev) != 0) Fail("mknod", path, errno);
  if (chmod(path.c_str(), 0600) != 0 || chown(path.c_str(), *o.uid, *o.gid) != 0)
    Fail("chmod/chown", path, errno);
}

void MakeDevices(const Options& o, const Jail& jail) {
  for (const char* dir : {"/dev", "/dev/net", "/run"}) MakeDir(dir, 0700);
  MakeDevice(o, "/dev/net/tun", makedev(10, 200));
  MakeDevice(o, "/dev/kvm", makedev(10, 232));
  MakeDevice(o, "/dev/urandom", makedev(1, 9));
  if (jail.userfaultfd) MakeDevice(o, "/dev/userfaultfd", *jail.userfaultfd);
  for (const char* dir : {"/", "/dev", "/dev/net", "/run"})
    if (chown(dir, *o.uid, *o.gid) != 0 || chmod(dir, 0700) != 0) Fail("chown/chmod in the jail", dir, errno);
}

// ---- Processes ----

pid_t ForkAccounted(const std::string& step) {
  uint64_t spent = ClockUs(CLOCK_PROCESS_CPUTIME_ID) - g_times.cpu_start_us;
  pid_t pid = fork();
  if (pid < 0) Fail(step, "fork", errno);
  if (pid == 0) g_times = {g_times.start_us, 0, g_times.parent_cpu_us + spent};
  return pid;
}

// The 1.7+ behaviour: a double fork, so the daemon is never a process-group leader and setsid() works.
void Daemonize(const Jail& jail) {
  if (ForkAccounted("daemonize") > 0) _exit(0);
  if (setsid() < 0) Fail("daemonize: setsid", "-", errno);
  if (ForkAccounted("daemonize") > 0) _exit(0);
  for (int fd = 0; fd <= 2; fd++)
    if (dup2(jail.dev_null, fd) < 0) Fail("daemonize: dup2", "/dev/null", errno);
  close(jail.dev_null);
}

// The pid file, /<exec_name>.pid in the jail: just the number. On failure `pid` is killed when it is a child
// of ours, which nobody could otherwise find.
void WritePidFile(const Jail& jail, pid_t pid, bool kill_on_failure) {
  std::string path = "/" + jail.exec_name + ".pid";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  int err = errno;
  if (fd < 0 && kill_on_failure) kill(pid, SIGKILL);
  if (fd < 0) Fail("write the pid file", path, err);
  WriteAll(fd, std::to_string(pid), "write the pid file", path);
  close(fd);
}

// With --new-pid-ns the child is pid 1 of a new namespace; the parent records its (host) pid and exits 0 at
// once, as the real jailer does. unshare(CLONE_NEWPID) applies to the next child, so fork() is enough.
void EnterPidNamespace(const Options& o, const Jail& jail) {
  if (!o.new_pid_ns) return WritePidFile(jail, getpid(), false);
  if (unshare(CLONE_NEWPID) != 0) Fail("unshare(CLONE_NEWPID)", "-", errno);
  pid_t child = ForkAccounted("new pid namespace");
  if (child == 0) return;
  WritePidFile(jail, child, true);
  _exit(0);
}

void MountStandInProc(const Options& o) {
  if (!o.stand_in_proc) return;
  MakeDir("/proc", 0555);
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    Fail("mount procfs", "/proc", errno);
}

void DropPrivileges(const Options& o) {
  gid_t gid = *o.gid;
  uid_t uid = *o.uid;
  if (setgroups(1, &gid) != 0) Fail("setgroups", std::to_string(gid), errno);
  if (setresgid(gid, gid, gid) != 0) Fail("setresgid", std::to_string(gid), errno);
  if (setresuid(uid, uid, uid) != 0) Fail("setresuid", std::to_string(uid), errno);
  uid_t r = 0, e = 0, s = 0;
  gid_t rg = 0, eg = 0, sg = 0;
  if (getresuid(&r, &e, &s) != 0 || getresgid(&rg, &eg, &sg) != 0) Fail("getresuid", "-", errno);
  if (r != uid || e != uid || s != uid || rg != gid || eg != gid || sg != gid)
    FailMessage("drop privileges: the uid/gid did not take");
}

[[noreturn]] void Exec(const Options& o, const Jail& jail) {
  std::vector<std::string> args = {"/" + jail.exec_name, "--id=" + o.id,
                                   "--start-time-us=" + std::to_string(g_times.start_us),
                                   "--start-time-cpu-us=" + std::to_string(g_times.cpu_start_us),
                                   "--parent-cpu-time-us=" + std::to_string(g_times.parent_cpu_us)};
  args.insert(args.end(), o.stand_in_exec_args.begin(), o.stand_in_exec_args.end());
  args.insert(args.end(), o.exec_args.begin(), o.exec_args.end());
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  execve(argv[0], argv.data(), envp);
  Fail("exec", argv[0], errno);
}

}  // namespace

int main(int argc, char** argv) {
  g_times.start_us = ClockUs(CLOCK_MONOTONIC);
  g_times.cpu_start_us = ClockUs(CLOCK_PROCESS_CPUTIME_ID);
  Options o = Parse(argc, argv);
  Jail jail;
  ResolveExecFile(o, jail);
  if (o.parent_cgroup.empty()) o.parent_cgroup = jail.exec_name;
  jail.chroot_dir = o.chroot_base + "/" + jail.exec_name + "/" + o.id + "/root";
  SanitizeProcess();
  MakeDirs(jail.chroot_dir, 0755);
  CopyExecFile(o, jail);
  JoinNetns(o);
  SetLimits(o);
  SetupCgroups(o);
  RememberHostFacts(o, jail);
  EnterJail(o, jail);
  MakeDevices(o, jail);
  if (o.daemonize) Daemonize(jail);
  EnterPidNamespace(o, jail);
  MountStandInProc(o);
  DropPrivileges(o);
  Exec(o, jail);
}
