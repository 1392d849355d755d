// jail-probe: run by fake-jailer as the jailed program in tests; prints what it sees of itself and its jail,
// one key=value per line, and exits 0. Static, so it needs nothing inside the jail.
//   --sleep         after printing (and a final "sleeping=1"), sleep until killed
//   --stat=PATH     also print PATH's type, owner and mode (PATH.type=..., or PATH.error=...)
//   --write=PATH    try to create PATH and print write.PATH=ok or the error
// Keys: uid euid gid egid groups pid argc argv<N> root.entries; <path>.type .major .minor .uid .gid .mode
// for /dev/net/tun, /dev/kvm, /dev/urandom, /dev/userfaultfd (or <path>.error); <path>.type .uid .gid .mode
// for /, /dev, /run; rlimit.nofile, rlimit.fsize (soft); proc.mounted; with /proc: status.CapEff,
// status.NoNewPrivs, status.NSpid, cgroup.<N> (lines of /proc/self/cgroup), proc.pids (numeric entries of
// /proc), netns (the inode of /proc/self/ns/net).
#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

std::vector<std::string> Entries(const char* dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir);
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

const char* TypeName(mode_t mode) {
  if (S_ISCHR(mode)) return "char";
  if (S_ISBLK(mode)) return "block";
  if (S_ISDIR(mode)) return "dir";
  if (S_ISREG(mode)) return "file";
  if (S_ISLNK(mode)) return "symlink";
  return "other";
}

void PrintStat(const std::string& path, bool device) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    std::printf("%s.error=%s\n", path.c_str(), std::strerror(errno));
    return;
  }
  std::printf("%s.type=%s\n", path.c_str(), TypeName(st.st_mode));
  if (device)
    std::printf("%s.major=%u\n%s.minor=%u\n", path.c_str(), major(st.st_rdev), path.c_str(),
                minor(st.st_rdev));
  std::printf("%s.uid=%u\n%s.gid=%u\n%s.mode=%04o\n", path.c_str(), st.st_uid, path.c_str(), st.st_gid,
              path.c_str(), st.st_mode & 07777);
}

void PrintIdentity(int argc, char** argv) {
  std::printf("uid=%u\neuid=%u\ngid=%u\negid=%u\n", getuid(), geteuid(), getgid(), getegid());
  gid_t groups[64];
  int n = getgroups(64, groups);
  std::string list;
  for (int i = 0; i < n; i++) list += (i ? "," : "") + std::to_string(groups[i]);
  std::printf("groups=%s\npid=%d\nargc=%d\n", list.c_str(), getpid(), argc);
  for (int i = 0; i < argc; i++) std::printf("argv%d=%s\n", i, argv[i]);
}

void PrintLimit(const char* name, int resource) {
  rlimit r{};
  getrlimit(resource, &r);
  if (r.rlim_cur == RLIM_INFINITY) {
    std::printf("rlimit.%s=unlimited\n", name);
  } else {
    std::printf("rlimit.%s=%llu\n", name, static_cast<unsigned long long>(r.rlim_cur));
  }
}

void PrintProc() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    for (const char* key : {"CapEff:", "NoNewPrivs:", "NSpid:"}) {
      if (line.rfind(key, 0) != 0) continue;
      std::string value = line.substr(std::strlen(key));
      value.erase(0, value.find_first_not_of(" \t"));
      std::printf("status.%.*s=%s\n", static_cast<int>(std::strlen(key) - 1), key, value.c_str());
    }
  }
  std::ifstream cgroup("/proc/self/cgroup");
  int n = 0;
  for (std::string line; std::getline(cgroup, line);) std::printf("cgroup.%d=%s\n", n++, line.c_str());
  int pids = 0;
  for (const auto& e : Entries("/proc")) pids += e.find_first_not_of("0123456789") == std::string::npos;
  std::printf("proc.pids=%d\n", pids);
  struct stat st {};
  if (stat("/proc/self/ns/net", &st) == 0)
    std::printf("netns=%llu\n", static_cast<unsigned long long>(st.st_ino));
}

void TryWrite(const std::string& path) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  std::printf("write.%s=%s\n", path.c_str(), fd < 0 ? std::strerror(errno) : "ok");
  if (fd >= 0) close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  PrintIdentity(argc, argv);
  std::string root;
  for (const auto& e : Entries("/")) root += (root.empty() ? "" : ",") + e;
  std::printf("root.entries=%s\n", root.c_str());
  for (const char* dev : {"/dev/net/tun", "/dev/kvm", "/dev/urandom", "/dev/userfaultfd"})
    PrintStat(dev, true);
  for (const char* dir : {"/", "/dev", "/run"}) PrintStat(dir, false);
  PrintLimit("nofile", RLIMIT_NOFILE);
  PrintLimit("fsize", RLIMIT_FSIZE);
  struct stat self {};
  bool proc = stat("/proc/self/status", &self) == 0;
  std::printf("proc.mounted=%d\n", proc ? 1 : 0);
  if (proc) PrintProc();
  bool sleep = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--sleep") sleep = true;
    if (a.rfind("--stat=", 0) == 0) PrintStat(a.substr(7), false);
    if (a.rfind("--write=", 0) == 0) TryWrite(a.substr(8));
  }
  if (!sleep) return 0;
  std::printf("sleeping=1\n");
  std::fflush(stdout);
  for (;;) pause();
}
