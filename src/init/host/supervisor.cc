#include "init/host/supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "base/log.h"
#include "base/process.h"

namespace nfc::init::host {

Status BoundedLogFile::Open() {
  fd_.Reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
  if (!fd_) return Error::Errno("open log file " + path_);
  struct stat st;
  size_ = fstat(fd_.get(), &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
  return Ok();
}

Status BoundedLogFile::Write(const char* data, size_t len) {
  if (path_.empty()) return Ok();
  if (!fd_) NFC_RETURN_IF_ERROR(Open());
  if (size_ > 0 && size_ + len > max_bytes_) {
    std::string old = path_ + ".1";
    if (::rename(path_.c_str(), old.c_str()) != 0) return Error::Errno("rotate " + path_);
    fd_.Reset();
    NFC_RETURN_IF_ERROR(Open());
  }
  while (len > 0) {
    ssize_t n = ::write(fd_.get(), data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::Errno("write " + path_);
    }
    data += n;
    len -= static_cast<size_t>(n);
    size_ += static_cast<size_t>(n);
  }
  return Ok();
}

void Supervisor::Start(SupervisorClock::time_point now) {
  stopping_ = false;
  Launch(now);
}

void Supervisor::Launch(SupervisorClock::time_point now) {
  restart_at_ = SupervisorClock::time_point::max();
  SpawnOptions o;
  o.argv = spec_.argv;
  o.env = spec_.env;
  o.new_session =
      true;  // its own process group: Signal() reaches helpers it started, Ctrl-C on the console does not
  UniqueFd write_end;
  if (spec_.on_console) {
    o.stdin_fd = o.stdout_fd = o.stderr_fd = console_fd_;
  } else {
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
      log::Error("cannot create output pipe; retrying", {{"service", spec_.name}, {"errno", errno}});
      restart_at_ = now + backoff_;
      return;
    }
    // Only our end is non-blocking: a blocking write end keeps the program from spinning on EAGAIN.
    fcntl(p[1], F_SETFL, 0);
    out_.Reset(p[0]);
    write_end.Reset(p[1]);
    o.stdout_fd = o.stderr_fd = write_end.get();
  }
  auto child = Spawn(o);
  if (!child.ok()) {
    log::Error(
        "cannot start " + spec_.name + "; will retry",
        {{"error", child.error().message()}, {"retry_in_s", static_cast<long long>(backoff_.count())}});
    out_.Reset();
    restart_at_ = now + backoff_;
    backoff_ = std::min(backoff_ * 2, spec_.max_backoff);
    return;
  }
  pid_ = child->pid;
  starts_++;
  started_at_ = now;
  log::Info("started " + spec_.name, {{"pid", pid_}, {"start", starts_}});
}

void Supervisor::OnExit(int status, SupervisorClock::time_point now) {
  PumpOutput();  // whatever it wrote last is the most useful part
  log::Warn(spec_.name + " exited", {{"pid", pid_}, {"status", DescribeWaitStatus(status)}});
  pid_ = -1;
  out_.Reset();
  if (stopping_) return;
  if (now - started_at_ >= spec_.stable_after) backoff_ = spec_.min_backoff;
  restart_at_ = now + backoff_;
  log::Info("restarting " + spec_.name, {{"in_s", static_cast<long long>(backoff_.count())}});
  backoff_ = std::min(backoff_ * 2, spec_.max_backoff);
}

void Supervisor::OnDeadline(SupervisorClock::time_point now) {
  if (stopping_ || pid_ > 0 || now < restart_at_) return;
  Launch(now);
}

void Supervisor::Emit(const char* data, size_t len) {
  if (console_fd_ >= 0) {
    size_t off = 0;
    while (off < len) {
      ssize_t n = ::write(console_fd_, data + off, len - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // a console that fails is not worth stalling PID 1 for
      off += static_cast<size_t>(n);
    }
  }
  auto st = log_.Write(data, len);
  if (!st.ok()) log::Warn("agent log file", {{"error", st.error().message()}});
}

void Supervisor::PumpOutput() {
  if (!out_) return;
  char buf[8192];
  // Bounded per call so a chatty agent cannot starve signal handling.
  for (int i = 0; i < 16; i++) {
    ssize_t n = ::read(out_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) out_.Reset();  // writer gone (the program exited and so did its children)
      return;
    }
    Emit(buf, static_cast<size_t>(n));
  }
}

void Supervisor::Signal(int sig, bool final) {
  if (final) {
    stopping_ = true;
    restart_at_ = SupervisorClock::time_point::max();
  }
  if (pid_ > 0) {
    // The agent first: it is the one that must drain. Its group next, for helpers it did not stop itself.
    ::kill(pid_, sig);
    if (sig == SIGKILL) ::kill(-pid_, sig);
  }
}

}  // namespace nfc::init::host
