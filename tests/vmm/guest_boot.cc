#include "guest_boot.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "base/process.h"
#include "base/unique_fd.h"
#include "guest/initramfs_cpio.h"
#include "guest/task_spec.h"

namespace nfc::vmm::testing {
namespace {

using Clock = std::chrono::steady_clock;

bool IsFile(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Status Run(const std::vector<std::string>& argv) {
  SpawnOptions o;
  o.argv = argv;
  NFC_ASSIGN_OR_RETURN(Child c, Spawn(o));
  NFC_ASSIGN_OR_RETURN(int status, WaitForExit(c.pid));
  if (status != 0) return Error::Internal(argv[0] + ": " + DescribeWaitStatus(status));
  return Ok();
}

}  // namespace

GuestArtifacts GuestArtifacts::Find() {
  const char* env = std::getenv("NFC_GUEST_DIR");
  std::string dir = env ? env : NFC_GUEST_DIR;
  return {dir + "/vmlinux", dir + "/initramfs.cpio.gz"};
}

bool GuestArtifacts::ok() const {
  return IsFile(vmlinux) && IsFile(initramfs);
}

Result<std::unique_ptr<GuestWorkdir>> GuestWorkdir::Create() {
  char tmpl[] = "/tmp/nfc-vm-XXXXXX";
  if (!mkdtemp(tmpl)) return Error::Errno("mkdtemp");
  auto w = std::unique_ptr<GuestWorkdir>(new GuestWorkdir());
  w->dir_ = tmpl;
  // The workload's root: Debian's static busybox and the applet links the tests use.
  std::string tree = w->dir_ + "/tree";
  for (const char* d : {"", "/bin", "/etc", "/tmp"}) {
    if (::mkdir((tree + d).c_str(), 0755) != 0) return Error::Errno("mkdir " + tree + d);
  }
  if (!IsFile("/bin/busybox"))
    return Error::NotFound("/bin/busybox missing (apt-get install busybox-static)");
  NFC_RETURN_IF_ERROR(Run({"cp", "/bin/busybox", tree + "/bin/busybox"}));
  for (const char* applet : {"sh", "echo", "sleep", "cat", "true"}) {
    if (::symlink("busybox", (tree + "/bin/" + applet).c_str()) != 0) return Error::Errno("symlink");
  }
  NFC_RETURN_IF_ERROR(Run({"mkfs.ext4", "-q", "-F", "-L", "root", "-d", tree, w->root_image(), "16M"}));
  NFC_RETURN_IF_ERROR(Run({"mkfs.ext4", "-q", "-F", "-L", "scratch", w->scratch_image(), "32M"}));
  return w;
}

GuestWorkdir::~GuestWorkdir() {
  if (!dir_.empty()) (void)Run({"rm", "-rf", dir_});
}

guest::TaskSpec GuestTaskSpec(const std::string& name, const std::vector<std::string>& argv) {
  guest::TaskSpec spec;
  spec.task_id = "vmm-test/" + name;
  spec.process.entrypoint = argv;
  spec.hostname = name;
  spec.root.device = "/dev/vda";
  spec.scratch.device = "/dev/vdb";
  return spec;
}

Result<BootedGuest> BootGuest(const GuestArtifacts& artifacts, const GuestWorkdir& work,
                              const std::string& name, const std::vector<std::string>& argv,
                              std::chrono::milliseconds connect_timeout, const BootOptions& options) {
  guest::TaskSpec spec = GuestTaskSpec(name, argv);
  spec.await_task = options.await_task;
  std::string initrd = work.dir() + "/" + name + ".initrd";
  NFC_RETURN_IF_ERROR(guest::WriteTaskInitramfs(artifacts.initramfs, spec, initrd));

  VmConfig c;
  c.id = name;
  c.state_dir = work.dir();
  c.kernel_path = artifacts.vmlinux;
  c.initrd_path = initrd;
  if (options.quiet) c.kernel_args = {"quiet"};
  c.vmm_binary = options.vmm_binary;
  c.vmm_log_path = options.vmm_log_path;
  c.metrics_path = options.metrics_path;
  c.sandbox = options.sandbox;
  c.jailer = options.jailer;
  c.restore_from = options.restore_from;
  c.memory_mib = 256;
  c.kill_with_owner = true;  // a test killed by its ctest timeout must not leave QEMU running
  c.drives = {{"root", work.root_image(), true}, {"scratch", work.scratch_image(), false}};
  c.guest_channel = GuestChannelConfig{work.dir() + "/" + name + ".agent.sock", 3, guest::kDefaultVsockPort,
                                       std::string(guest::kDefaultSerialPortName)};
  if (options.console)
    c.console = {ConsoleConfig::Mode::kFile, work.dir() + "/" + name + ".console.log", 1 << 20};
  BootedGuest b;
  NFC_ASSIGN_OR_RETURN(b.vmm, CreateVmm(options.backend, c));
  b.t_start = Clock::now();
  NFC_RETURN_IF_ERROR(b.vmm->Start());
  b.t_started = Clock::now();
  NFC_ASSIGN_OR_RETURN(UniqueFd fd, b.vmm->ConnectGuest(guest::kDefaultVsockPort, connect_timeout));
  guest::AgentClient::Options opts;
  opts.client_name = "vmm-test";
  opts.handshake_timeout = connect_timeout;
  NFC_ASSIGN_OR_RETURN(b.agent, guest::AgentClient::Connect(std::move(fd), opts));
  b.t_connected = Clock::now();
  return b;
}

Status AwaitOutput(guest::AgentClient& agent, const std::string& want, std::chrono::milliseconds timeout) {
  std::string out;
  auto deadline = Clock::now() + timeout;
  while (out.find(want) == std::string::npos) {
    if (Clock::now() >= deadline) return Error::Timeout("no '" + want + "' in the output: '" + out + "'");
    NFC_ASSIGN_OR_RETURN(auto chunk, agent.NextLog(std::chrono::milliseconds(500)));
    if (chunk && chunk->stream == guest::LogStream::kStdout) out += chunk->data;
  }
  return Ok();
}

Result<std::string> WriteFirecrackerStandIn(const std::string& dir, const std::string& fake_firecracker,
                                            const std::string& spec_dir, const std::string& version,
                                            const std::string& record) {
  std::string path = dir + "/firecracker-" + version;
  std::ofstream f(path);
  f << "#!/bin/sh\nexec '" << fake_firecracker << "' --spec '" << spec_dir << "/firecracker-api-v" << version
    << ".yaml' --boot-qemu /usr/bin/qemu-system-x86_64 --vsock-relay " << guest::kDefaultVsockPort << ":"
    << guest::kDefaultSerialPortName << " --record '" << record << "' \"$@\"\n";
  f.close();
  if (!f) return Error::Internal("cannot write " + path);
  if (::chmod(path.c_str(), 0755) != 0) return Error::Errno("chmod " + path);
  return path;
}

Result<std::string> WriteJailerStandIn(const std::string& dir, const std::string& fake_jailer,
                                       const std::string& fake_firecracker, const std::string& spec_dir,
                                       const std::string& record) {
  UniqueFd rec(::open(record.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666));
  if (!rec || ::fchmod(rec.get(), 0666) != 0) return Error::Errno("create " + record);
  std::string path = dir + "/jailer";
  std::ofstream f(path);
  f << "#!/bin/sh\nexec '" << fake_jailer << "' --stand-in-proc";
  std::string stand_in_dir = fake_firecracker.substr(0, fake_firecracker.rfind('/'));
  for (const std::string& bound :
       {std::string("/usr"), std::string("/bin"), std::string("/lib"), std::string("/lib64"),
        std::string("/etc"), std::string("/dev/null"), stand_in_dir, spec_dir}) {
    f << " --stand-in-bind '" << bound << "'";
  }
  f << " --stand-in-bind-rw '" << record << "' \"$@\"\n";
  f.close();
  if (!f) return Error::Internal("cannot write " + path);
  if (::chmod(path.c_str(), 0755) != 0) return Error::Errno("chmod " + path);
  return path;
}

Result<WorkloadResult> CollectWorkload(guest::AgentClient& agent, std::chrono::milliseconds timeout) {
  WorkloadResult r;
  auto deadline = Clock::now() + timeout;
  std::optional<guest::ExitReport> exit;
  for (;;) {
    if (Clock::now() > deadline) return Error::Timeout("workload did not finish in time");
    auto chunk = agent.NextLog(std::chrono::milliseconds(200));
    if (!chunk.ok()) return std::move(chunk).error();
    if (chunk->has_value()) {
      auto& c = **chunk;
      (c.stream == guest::LogStream::kStdout ? r.out : r.err) += c.data;
      NFC_RETURN_IF_ERROR(agent.AckLog(c.stream, c.offset + c.data.size()));
      continue;
    }
    if (!exit) {
      auto e = agent.WaitExit(std::chrono::milliseconds(1));
      if (e.ok()) {
        exit = *e;
        r.t_exit_received = Clock::now();
      } else if (e.error().code() != ErrorCode::kTimeout) {
        return std::move(e).error();
      }
    }
    if (exit && r.out.size() >= exit->log_end.stdout_offset && r.err.size() >= exit->log_end.stderr_offset)
      break;
  }
  r.exit = *exit;
  auto status = agent.QueryStatus();
  if (status.ok()) r.boot = status->boot;
  NFC_RETURN_IF_ERROR(agent.AckExit());
  return r;
}

}  // namespace nfc::vmm::testing
