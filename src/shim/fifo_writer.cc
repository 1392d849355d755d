#include "shim/fifo_writer.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

namespace nfc::shim {

Status FifoWriter::OpenOnce(bool* no_reader) {
  *no_reader = false;
  UniqueFd fd(::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    if (errno == ENXIO) {  // a FIFO nobody has open for reading (yet, or any more)
      *no_reader = true;
      return Ok();
    }
    if (errno == ELOOP)
      return Error::InvalidArgument("log path " + path_ + " is a symlink; refusing to follow it");
    return Error::Errno("open log FIFO " + path_);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Error::Errno("stat log FIFO " + path_);
  if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
    return Error::InvalidArgument("log path " + path_ + " is neither a FIFO nor a character device");
  }
  fd_ = std::move(fd);
  open_count_++;
  return Ok();
}

Status FifoWriter::Write(std::string_view data, const std::atomic<bool>& cancel, size_t* written) {
  size_t done = 0;
  auto report = [&] {
    if (written) *written = done;
  };
  int poll_ms = static_cast<int>(poll_interval.count());
  while (done < data.size()) {
    if (cancel.load()) {
      report();
      return Error(ErrorCode::kCancelled, "writing to " + path_ + " cancelled with " +
                                              std::to_string(data.size() - done) + " bytes unwritten");
    }
    if (!fd_) {
      bool no_reader = false;
      Status opened = OpenOnce(&no_reader);
      if (!opened.ok()) {
        report();
        return opened;
      }
      if (no_reader) {
        std::this_thread::sleep_for(poll_interval);
        continue;
      }
    }
    ssize_t n = ::write(fd_.get(), data.data() + done, data.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The pipe is full: the reader is slow or stuck. Wait for room, but keep checking for cancellation.
      struct pollfd pfd = {fd_.get(), POLLOUT, 0};
      int r = ::poll(&pfd, 1, poll_ms);
      if (r < 0 && errno != EINTR) {
        report();
        return Error::Errno("poll log FIFO " + path_);
      }
      if (r > 0 && (pfd.revents & POLLERR)) fd_.Reset();  // reader gone; the next write would say EPIPE
      continue;
    }
    if (n < 0 && errno == EPIPE) {
      // The reader went away (logmon restarted). Reopen; the rest of the data goes to the next reader.
      fd_.Reset();
      continue;
    }
    report();
    return Error::Errno("write log FIFO " + path_);
  }
  report();
  return Ok();
}

}  // namespace nfc::shim
