// nomad-init: the one static PID 1 of the project. Two roles share this binary:
//   guest  - inside a task's microVM: runs the task (src/init/guest, docs/guest-init.md)
//   host   - PID 1 of NomadOS: runs the Nomad agent (src/init/host, docs/nomados.md)
// The role comes from, in order: --role=ROLE; nomad.role=ROLE on the kernel command line; a nomados.* key on
// the kernel command line (host); a task spec at /nomad/task.json (guest); otherwise host.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include "guest/task_spec.h"
#include "init/common/system.h"
#include "init/guest/guest_init.h"
#ifdef NFC_INIT_HAVE_HOST_ROLE
#include "init/host/host.h"
#endif

namespace {

void Usage() {
  std::fprintf(stderr,
               "usage: nomad-init [--role=guest|host] [--config=PATH] [--control-socket=PATH] [--debug]\n"
               "       nomad-init --check-config=PATH   (validate a task spec and exit)\n"
               "       nomad-init --version\n"
               "nomad-init is a PID 1; run it as the init of a VM or of a new PID namespace.\n");
}

// The kernel command line before /proc exists: mount it briefly when we are PID 1 and it is not there yet,
// and leave no trace for the role, which sets up its own mounts.
std::map<std::string, std::string> PeekKernelCmdline() {
  auto params = nfc::init::ReadKernelCmdline();
  if (!params.empty() || getpid() != 1) return params;
  struct stat st;
  if (stat("/proc", &st) != 0 ||
      mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return params;
  }
  params = nfc::init::ReadKernelCmdline();
  umount2("/proc", MNT_DETACH);
  return params;
}

int CheckConfig(const char* path) {
  auto text = nfc::init::ReadFile(path);
  if (!text.ok()) {
    std::fprintf(stderr, "nomad-init: %s\n", text.error().ToString().c_str());
    return 1;
  }
  auto spec = nfc::guest::ParseTaskSpec(*text);
  if (!spec.ok()) {
    std::fprintf(stderr, "nomad-init: %s: %s\n", path, spec.error().ToString().c_str());
    return 1;
  }
  return 0;
}

// Returns the exit code when the arguments ask for one (--version, --help, --check-config, a usage error).
std::optional<int> ParseArgs(int argc, char** argv, nfc::init::guest::GuestArgs& guest, std::string& role) {
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      size_t n = std::strlen(flag);
      if (a.compare(0, n, flag) == 0 && a.size() > n && a[n] == '=') return argv[i] + n + 1;
      return nullptr;
    };
    if (const char* v = value("--role")) {
      role = v;
    } else if (const char* v = value("--config")) {
      guest.config_path = v;
    } else if (const char* v = value("--control-socket")) {
      guest.control_socket = v;
    } else if (a == "--debug") {
      guest.debug = true;
    } else if (a == "--version") {
      std::printf("nomad-init %s\n", NFC_VERSION_STRING);
      return 0;
    } else if (const char* v = value("--check-config")) {
      return CheckConfig(v);
    } else if (a == "-h" || a == "--help") {
      Usage();
      return getpid() == 1 ? 0 : 2;
    } else if (getpid() != 1) {
      std::fprintf(stderr, "nomad-init: unknown argument \"%s\"\n", a.c_str());
      Usage();
      return 2;
    }
    // As PID 1, unknown words are kernel command-line leftovers the kernel passed to init; ignore them.
  }
  return std::nullopt;
}

// Without --role: nomad.role on the kernel command line; else host for NomadOS (nomados.* parameters); else
// guest if a task spec is there, host if not.
std::string DetectRole(const nfc::init::guest::GuestArgs& guest) {
  auto cmdline = PeekKernelCmdline();
  if (auto it = cmdline.find("nomad.role"); it != cmdline.end()) return it->second;
  bool nomados = false;
  for (const auto& [k, v] : cmdline) nomados |= k.rfind("nomados.", 0) == 0;
  struct stat st;
  std::string spec =
      guest.config_path.empty() ? "/" + std::string(nfc::guest::kTaskSpecPathInInitramfs) : guest.config_path;
  return nomados ? "host" : stat(spec.c_str(), &st) == 0 ? "guest" : "host";
}

}  // namespace

int main(int argc, char** argv) {
  nfc::init::guest::GuestArgs guest;
  guest.start_ns = nfc::init::MonotonicNs();
  std::string role;
  if (auto exit_code = ParseArgs(argc, argv, guest, role)) return *exit_code;
  if (role.empty()) role = DetectRole(guest);
  if (role == "guest") {
    if (getpid() != 1) {
      // The guest role signals every process it can see at shutdown (kill(-1)); outside its own PID namespace
      // that would be the whole machine.
      std::fprintf(stderr,
                   "nomad-init: the guest role must run as PID 1 (of a VM, or of `unshare --pid --fork`)\n");
      return 2;
    }
    nfc::init::guest::RunGuest(guest);
  }
  if (role == "host") {
#ifdef NFC_INIT_HAVE_HOST_ROLE
    return nfc::init::host::Main(argc, argv);
#else
    std::fprintf(stderr, "nomad-init: this build has no host role\n");
    return 2;
#endif
  }
  std::fprintf(stderr, "nomad-init: unknown role \"%s\" (guest or host)\n", role.c_str());
  if (getpid() == 1) {
    // PID 1 must not exit: fall back to the guest role, which reports the missing task spec to the host.
    nfc::init::guest::RunGuest(guest);
  }
  return 2;
}
