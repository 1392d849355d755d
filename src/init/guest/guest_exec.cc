// Exec sessions (commands the host runs next to the workload, with or without a terminal) and stats.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

#include "base/log.h"
#include "init/common/signals.h"
#include "init/common/system.h"
#include "init/guest/guest_init.h"
#include "init/guest/launcher.h"

namespace nfc::init::guest {

namespace {

uint64_t KeyValue(const std::string& text, const std::string& key) {
  size_t at = 0;
  while ((at = text.find(key, at)) != std::string::npos) {
    if ((at == 0 || text[at - 1] == '\n') && at + key.size() < text.size() && text[at + key.size()] == ' ') {
      return std::strtoull(text.c_str() + at + key.size() + 1, nullptr, 10);
    }
    at += key.size();
  }
  return 0;
}

uint64_t MeminfoKb(const std::string& meminfo, const std::string& key) {
  size_t at = meminfo.find(key + ":");
  if (at == std::string::npos) return 0;
  return std::strtoull(meminfo.c_str() + at + key.size() + 1, nullptr, 10) * 1024;
}

}  // namespace

GuestExec* GuestInit::FindExec(uint64_t id) {
  auto it = execs_.find(id);
  return it == execs_.end() ? nullptr : it->second.get();
}

Status GuestInit::StartExec(Connection& c, uint64_t request_id, const pb::ExecStart& e) {
  if (phase_ != Phase::kRunning && phase_ != Phase::kStopping) {
    return Error::FailedPrecondition("exec needs a running task");
  }
  if (e.argv_size() == 0 || e.argv(0).empty()) return Error::InvalidArgument("exec: argv is empty");
  Identity id = identity_;
  if (!e.user().empty()) {
    auto passwd = ReadFile("/etc/passwd");
    auto group = ReadFile("/etc/group");
    NFC_ASSIGN_OR_RETURN(id,
                         ResolveIdentity(e.user(), passwd.ok() ? *passwd : "", group.ok() ? *group : "", {}));
  }
  std::vector<std::string> env = workload_env_;
  for (const auto& kv : e.env()) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return Error::InvalidArgument("exec: env entry \"" + kv + "\" is not KEY=value");
    std::string prefix = kv.substr(0, eq + 1);
    std::erase_if(env, [&](const std::string& x) { return x.compare(0, prefix.size(), prefix) == 0; });
    env.push_back(kv);
  }
  env = FinalizeEnv(std::move(env), id, spec_.hostname, e.tty());
  std::vector<std::string> argv(e.argv().begin(), e.argv().end());
  NFC_ASSIGN_OR_RETURN(std::string exe, LookPath(argv[0], env));

  auto s = std::make_unique<GuestExec>();
  s->id = next_exec_id_++;
  s->conn_id = c.id;
  s->tty = e.tty();
  LaunchOptions o;
  o.argv = argv;
  o.executable = exe;
  o.env = env;
  o.working_dir = e.working_dir().empty() ? workload_cwd_ : e.working_dir();
  o.identity = id;
  o.cgroup_procs_fd = cgroup_procs_fd_;
  UniqueFd child_in, child_out, child_err;
  if (e.tty()) {
    int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return Error::Errno("exec: open pseudo-terminal");
    s->out.Reset(master);
    char name[128];
    if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, sizeof name) != 0) {
      return Error::Errno("exec: set up pseudo-terminal");
    }
    winsize ws{};
    ws.ws_row = static_cast<unsigned short>(e.rows() ? e.rows() : 24);
    ws.ws_col = static_cast<unsigned short>(e.cols() ? e.cols() : 80);
    ioctl(master, TIOCSWINSZ, &ws);
    o.tty_path = name;
    s->in.Reset(fcntl(master, F_DUPFD_CLOEXEC, 3));
  } else {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0) return Error::Errno("exec: pipe");
    child_in.Reset(in[0]);
    s->in.Reset(in[1]);
    if (pipe2(out, O_CLOEXEC) != 0) return Error::Errno("exec: pipe");
    s->out.Reset(out[0]);
    child_out.Reset(out[1]);
    if (pipe2(err, O_CLOEXEC) != 0) return Error::Errno("exec: pipe");
    s->err.Reset(err[0]);
    child_err.Reset(err[1]);
    o.stdin_fd = child_in.get();
    o.stdout_fd = child_out.get();
    o.stderr_fd = child_err.get();
  }
  for (UniqueFd* fd : {&s->out, &s->err, &s->in}) {
    if (*fd) fcntl(fd->get(), F_SETFL, fcntl(fd->get(), F_GETFL) | O_NONBLOCK);
  }
  NFC_ASSIGN_OR_RETURN(Launched launched, Launch(o));
  s->pid = launched.pid;
  log::Debug("exec started",
             {{"id", s->id}, {"pid", s->pid}, {"argv0", exe}, {"tty", e.tty() ? "yes" : "no"}});
  pb::GuestMessage m;
  m.set_request_id(request_id);
  m.mutable_exec_started()->set_exec_id(s->id);
  m.mutable_exec_started()->set_pid(s->pid);
  Send(c, m);
  execs_[s->id] = std::move(s);
  return Ok();
}

void GuestInit::FlushExecInput(GuestExec& s) {
  if (!s.in) return;
  while (!s.in_buf.empty()) {
    ssize_t n = write(s.in.get(), s.in_buf.data(), s.in_buf.size());
    if (n > 0) {
      s.in_buf.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    // The reader is gone: nothing will read the rest.
    s.in_buf.clear();
    Watch(s.in.get(), 0, 0, s.interest[2]);
    s.in.Reset();
    return;
  }
  if (s.close_in) {
    if (s.tty) {
      // A terminal has no half-close; end-of-file is the EOF character at the start of a line.
      ssize_t ignored = write(s.in.get(), "\x04", 1);
      (void)ignored;
    }
    Watch(s.in.get(), 0, 0, s.interest[2]);
    s.in.Reset();
  }
}

void GuestInit::OnExecFd(uint64_t id, int which, uint32_t events) {
  GuestExec* s = FindExec(id);
  if (!s) return;
  if (which == 2) {
    if (events & (EPOLLERR | EPOLLHUP)) s->in_buf.clear();
    FlushExecInput(*s);
    return;
  }
  UniqueFd& fd = which == 0 ? s->out : s->err;
  auto conn = conns_.find(s->conn_id);
  char buf[65536];
  for (int round = 0; round < 4 && fd; round++) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {  // EOF, or EIO from a pty master whose slave side is closed
      Watch(fd.get(), 0, 0, s->interest[which]);
      fd.Reset();
      if (s->tty) s->in.Reset();
      break;
    }
    if (conn != conns_.end()) {
      pb::GuestMessage m;
      auto* o = m.mutable_exec_output();
      o->set_exec_id(id);
      o->set_stream(which == 0 ? pb::STREAM_STDOUT : pb::STREAM_STDERR);
      o->set_data(buf, static_cast<size_t>(n));
      Send(*conn->second, m);
    }
  }
  FinishExecIfDone(id);
}

void GuestInit::FinishExecIfDone(uint64_t id) {
  GuestExec* s = FindExec(id);
  if (!s || !s->status || s->out || s->err) return;
  auto conn = conns_.find(s->conn_id);
  if (conn != conns_.end()) {
    pb::GuestMessage m;
    auto* x = m.mutable_exec_exited();
    x->set_exec_id(id);
    x->set_exit_code(ExitCodeFromWaitStatus(*s->status));
    x->set_signal(SignalFromWaitStatus(*s->status));
    Send(*conn->second, m);
  }
  if (s->in) Watch(s->in.get(), 0, 0, s->interest[2]);
  execs_.erase(id);
}

void GuestInit::KillExecsOf(uint64_t conn_id) {
  // Exec sessions belong to the connection that started them: without it nobody reads their output or sends
  // input, so they are killed rather than left to block on a full pipe.
  for (auto& [id, s] : execs_) {
    if (s->conn_id != conn_id) continue;
    if (!s->status) kill(-s->pid, SIGKILL);
    s->conn_id = 0;
  }
}

void GuestInit::FillStats(pb::Stats* s) const {
  s->set_timestamp_ns(MonotonicNs());
  auto meminfo = ReadFile("/proc/meminfo");
  if (meminfo.ok()) {
    s->set_memory_total_bytes(MeminfoKb(*meminfo, "MemTotal"));
    s->set_memory_available_bytes(MeminfoKb(*meminfo, "MemAvailable"));
  }
  if (cgroup_procs_fd_ >= 0) {
    std::string cg = kWorkloadCgroup;
    auto cpu = ReadFile(cg + "/cpu.stat");
    auto mem = ReadFile(cg + "/memory.current");
    auto memstat = ReadFile(cg + "/memory.stat");
    auto pids = ReadFile(cg + "/pids.current");
    if (cpu.ok()) {
      s->set_cpu_total_usec(KeyValue(*cpu, "usage_usec"));
      s->set_cpu_user_usec(KeyValue(*cpu, "user_usec"));
      s->set_cpu_system_usec(KeyValue(*cpu, "system_usec"));
      s->set_from_cgroup(true);
    }
    if (mem.ok()) s->set_memory_usage_bytes(std::strtoull(mem->c_str(), nullptr, 10));
    if (memstat.ok()) {
      s->set_memory_rss_bytes(KeyValue(*memstat, "anon") + KeyValue(*memstat, "file_mapped"));
      s->set_memory_cache_bytes(KeyValue(*memstat, "file"));
    }
    if (pids.ok()) s->set_pids(static_cast<uint32_t>(std::strtoul(pids->c_str(), nullptr, 10)));
    if (cpu.ok()) return;
  }
  // No cgroup: sum every process but init itself from /proc.
  long ticks = sysconf(_SC_CLK_TCK);
  long page = sysconf(_SC_PAGESIZE);
  uint64_t utime = 0, stime = 0, rss = 0;
  uint32_t count = 0;
  DIR* d = opendir("/proc");
  if (!d) return;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 1) continue;
    auto stat = ReadFile(std::string("/proc/") + e->d_name + "/stat");
    if (!stat.ok()) continue;
    size_t paren = stat->rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream f(stat->substr(paren + 2));
    std::string field;
    // Fields after the command: state(3) ... utime(14) stime(15) ... rss(24); we are at field 3.
    for (int i = 3; i <= 24 && f >> field; i++) {
      if (i == 14) utime += std::strtoull(field.c_str(), nullptr, 10);
      if (i == 15) stime += std::strtoull(field.c_str(), nullptr, 10);
      if (i == 24) rss += std::strtoull(field.c_str(), nullptr, 10) * static_cast<uint64_t>(page);
    }
    count++;
  }
  closedir(d);
  uint64_t per_tick = ticks > 0 ? 1000000 / static_cast<uint64_t>(ticks) : 10000;
  s->set_cpu_user_usec(utime * per_tick);
  s->set_cpu_system_usec(stime * per_tick);
  s->set_cpu_total_usec((utime + stime) * per_tick);
  s->set_memory_rss_bytes(rss);
  s->set_memory_usage_bytes(rss);
  s->set_pids(count);
}

}  // namespace nfc::init::guest
