#include "lifecycle_fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>

#include "demo_image.h"
#include "guest_boot.h"
#include "warm/template.h"

namespace nfc::lifecycle_test {

FifoToFile::FifoToFile(std::string fifo, std::string file) : fifo_(std::move(fifo)), file_(std::move(file)) {
  ::mkfifo(fifo_.c_str(), 0600);
  fd_ = ::open(fifo_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  thread_ = std::thread([this] {
    int out = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    char buf[65536];
    while (!stop_.load()) {
      struct pollfd p = {fd_, POLLIN, 0};
      int r = ::poll(&p, 1, 100);
      if (r < 0) continue;  // interrupted: proves nothing about the FIFO
      if (r == 0) {
        empty_passes_++;
        continue;
      }
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n > 0) {
        ssize_t w = ::write(out, buf, static_cast<size_t>(n));
        (void)w;
      } else {
        empty_passes_++;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // no writer at the moment
      }
    }
    ::close(out);
  });
}

FifoToFile::~FifoToFile() {
  Stop();
}

void FifoToFile::Stop() {
  if (stop_.exchange(true)) return;
  thread_.join();
  ::close(fd_);
}

bool FifoToFile::WaitDrained(std::chrono::milliseconds limit) const {
  // The first empty pass counted after this point may have looked at the FIFO before it; the second began
  // after it, so by then all that was written before the call has been read and appended to the file.
  const uint64_t target = empty_passes_.load() + 2;
  const auto until = std::chrono::steady_clock::now() + limit;
  while (empty_passes_.load() < target) {
    if (stop_.load() || std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::string FifoToFile::Contents() const {
  std::ifstream in(file_);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

namespace {

std::string Hex(int n) {
  static std::mt19937_64 rng{std::random_device{}()};
  std::string s;
  for (int i = 0; i < n; i++) s += "0123456789abcdef"[rng() & 15];
  return s;
}

void Configure(Env* env) {
  std::string guest = NFC_GUEST_DIR;
  env->config.data_dir = env->dir + "/data";
  env->config.kernel_path = guest + "/vmlinux";
  env->config.initrd_path = guest + "/initramfs.cpio.gz";
  env->config.backend = driver::Backend::kQemu;
  // The sandboxed VMMs' cgroups go below one of the test's own, removed at exit.
  env->config.cgroup_parent = "/" + env->dir.substr(env->dir.rfind('/') + 1);
  env->config.warm_start = WarmStartMode();
  if (FirecrackerMode()) {
    env->config.backend = driver::Backend::kFirecracker;
    env->config.firecracker_path = env->dir + "/firecracker-1.16.1";  // WriteFirecrackerStandIn's name
    env->config.jailer_path = env->dir + "/jailer";
  }
  ::setenv("NFC_SHIM_PATH", NFC_SHIM_BINARY, 1);
}

Status WriteStandIns(const Env* env) {
  auto firecracker = vmm::testing::WriteFirecrackerStandIn(env->dir, NFC_FAKE_FIRECRACKER, NFC_FC_SPEC_DIR,
                                                           "1.16.1", FirecrackerRequests(env));
  if (!firecracker.ok()) return std::move(firecracker).error();
  auto jailer = vmm::testing::WriteJailerStandIn(env->dir, NFC_FAKE_JAILER, NFC_FAKE_FIRECRACKER,
                                                 NFC_FC_SPEC_DIR, FirecrackerRequests(env));
  if (!jailer.ok()) return std::move(jailer).error();
  return Ok();
}

// One cold start of the tasks' shape (MakeTask's resources), then its template's build: every later start of
// that shape in this run can be warm. "" when the template is there.
std::string PrimeWarmStart(Env* env) {
  auto m = NewManager(env);
  auto t = MakeTask(env, "prime", {"/bin/true"});
  auto started = m->StartTask(t->task, t->config);
  if (!started.ok()) return "the priming start failed: " + started.error().message();
  auto result = m->WaitTask(t->task.id, [] { return false; });
  Status destroyed = m->DestroyTask(t->task.id, true);
  if (!result.ok() || result->exit_code != 0 || !destroyed.ok())
    return "the priming task did not run cleanly";
  m->WaitForTemplateBuilds();
  auto templates = warm::TemplateStore(env->config.data_dir).List();
  if (templates.empty()) return "no warm-start template was built (see the log above)";
  std::cerr << "lifecycle fixture: warm-start template " << templates[0].key << " built in "
            << templates[0].build_millis << " ms, " << templates[0].disk_bytes / 1024 << " KiB on disk\n";
  return "";
}

// The test's cgroup parent in each tree it may exist in (v2's, v1's memory, cpu and pids); must be empty by
// now.
void RemoveCgroupParent(const std::string& parent) {
  for (const char* tree : {"", "/memory", "/cpu", "/pids"}) {
    std::string dir = std::string("/sys/fs/cgroup") + tree + parent;
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
      std::cerr << "lifecycle fixture: cgroup " << dir << " left: " << std::strerror(errno) << "\n";
  }
}

void RemoveTree(const std::string& dir) {
  std::string cmd = "rm -rf '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) std::cerr << "lifecycle fixture: could not remove " << dir << "\n";
}

// The guest artifacts and the registry tools; "" when all are there.
std::string MissingPrerequisite() {
  std::string guest = NFC_GUEST_DIR;
  if (::access((guest + "/vmlinux").c_str(), R_OK) != 0 ||
      ::access((guest + "/initramfs.cpio.gz").c_str(), R_OK) != 0) {
    return "guest artifacts missing in " + guest + " (build the guest-artifacts target)";
  }
  for (const char* tool : {"/usr/bin/docker-registry", "/usr/bin/skopeo"}) {
    if (::access(tool, X_OK) != 0) return std::string(tool) + " is not installed (scripts/packages.txt)";
  }
  return "";
}

SharedEnvResult Build() {
  SharedEnvResult result;
  auto env = std::make_unique<Env>();
  // A helper process ("plugin") of a running test: reuse the parent's registry and directories.
  if (const char* shared = std::getenv("NFC_LIFECYCLE_ENV"); shared && *shared) {
    std::string v = shared;
    auto a = v.find('|'), b = v.find('|', a + 1);
    env->dir = v.substr(0, a);
    env->image = v.substr(a + 1, b - a - 1);
    Configure(env.get());
    env->config.ca_file = v.substr(b + 1);
    result.env = env.release();
    return result;
  }
  result.missing = MissingPrerequisite();
  if (!result.missing.empty()) return result;
  char tmpl[] = "/tmp/nfc-lifecycle-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    result.failed = std::string("mkdtemp ") + tmpl + ": " + std::strerror(errno);
    return result;
  }
  env->dir = tmpl;
  if (FirecrackerMode()) {
    if (Status written = WriteStandIns(env.get()); !written.ok()) {
      result.failed = "Firecracker stand-ins: " + written.error().message();
      RemoveTree(env->dir);
      return result;
    }
  }
  auto registry = image::testing::LocalRegistry::Start(env->dir + "/registry", "nomad", "s3cret");
  if (!registry.ok()) {
    result.failed = "local registry: " + registry.error().message();
    RemoveTree(env->dir);
    return result;
  }
  env->registry = std::move(*registry);
  auto image = PushDemoImage(env->registry.get(), env->dir);
  if (!image.ok()) {
    result.failed = "demo image: " + image.error().message();
    env->registry.reset();
    RemoveTree(env->dir);
    return result;
  }
  env->image = *image;
  Configure(env.get());
  env->config.ca_file = env->registry->ca_file();
  ::setenv("NFC_LIFECYCLE_ENV", (env->dir + "|" + env->image + "|" + env->config.ca_file).c_str(), 1);
  result.env = env.release();
  if (WarmStartMode()) result.failed = PrimeWarmStart(result.env);
  return result;
}

}  // namespace

const SharedEnvResult& SharedEnv() {
  static std::once_flag once;
  static SharedEnvResult result;
  std::call_once(once, [] {
    result = Build();
    if (result.env) {
      // Clean up the registry and files at exit, also after failures.
      std::atexit([] {
        Env* env = result.env;
        if (!env->registry) return;  // helpers never clean up the parent's files
        env->registry.reset();
        RemoveCgroupParent(env->config.cgroup_parent);
        RemoveTree(env->dir);
      });
    }
  });
  return result;
}

bool WarmStartMode() {
  const char* v = std::getenv("NFC_LIFECYCLE_WARM_START");
  return v && std::string(v) == "1";
}

bool FirecrackerMode() {
  const char* v = std::getenv("NFC_LIFECYCLE_BACKEND");
  return v && std::string(v) == "firecracker";
}

std::string FirecrackerRequests(const Env* env) {
  return env->dir + "/firecracker-requests.jsonl";
}

StartCounts& Starts() {
  static StartCounts counts;
  return counts;
}

std::unique_ptr<task::Manager> NewManager(Env* env) {
  auto m = std::make_unique<task::Manager>();
  m->SetEventSink([](const driver::TaskEvent& e) {
    if (e.message == "Restoring VM from its warm-start template") Starts().warm++;
    if (e.message == "Booting VM") Starts().cold++;
    if (e.message == "Warm start failed; booted cold") {
      Starts().fallback++;
      auto reason = e.annotations.find("reason");
      std::cerr << "lifecycle fixture: warm start fell back: "
                << (reason == e.annotations.end() ? "(no reason)" : reason->second) << "\n";
    }
  });
  (void)m->Configure(env->config);
  (void)m->Init();
  return m;
}

std::unique_ptr<NomadTaskFixture> MakeTask(Env* env, const std::string& name,
                                           const std::vector<std::string>& argv) {
  auto f = std::make_unique<NomadTaskFixture>();
  std::string alloc = Hex(8) + "-" + Hex(4) + "-" + Hex(4) + "-" + Hex(4) + "-" + Hex(12);
  std::string logs = env->dir + "/alloc-" + alloc;
  ::mkdir(logs.c_str(), 0700);
  f->task.id = alloc + "/" + name + "/" + Hex(8);
  f->task.name = name;
  f->task.alloc_id = alloc;
  f->task.job_name = "lifecycle";
  f->task.env = {{"NOMAD_ALLOC_ID", alloc}, {"NOMAD_TASK_NAME", name}};
  f->task.resources.cpu_shares = 500;
  f->task.resources.memory_mb = 128;
  f->task.stdout_path = logs + "/." + name + ".stdout.fifo";
  f->task.stderr_path = logs + "/." + name + ".stderr.fifo";
  f->stdout_reader = std::make_unique<FifoToFile>(f->task.stdout_path, logs + "/" + name + ".stdout.0");
  f->stderr_reader = std::make_unique<FifoToFile>(f->task.stderr_path, logs + "/" + name + ".stderr.0");
  f->config.image = env->image;
  f->config.args = argv;
  f->config.auth = driver::RegistryAuth{"nomad", "s3cret", ""};
  return f;
}

bool ProcessAlive(int pid) {
  return pid > 0 && ::kill(pid, 0) == 0;
}

std::vector<int> ProcessesMentioning(const std::string& needle) {
  std::vector<int> out;
  DIR* d = ::opendir("/proc");
  while (auto* e = ::readdir(d)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmd.find(needle) != std::string::npos) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

}  // namespace nfc::lifecycle_test
