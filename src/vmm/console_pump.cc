#include "vmm/console_pump.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "base/log.h"

namespace nfc::vmm {

ConsolePump::~ConsolePump() {
  Join();
}

Status ConsolePump::Start(UniqueFd read_end, std::string path, uint64_t max_bytes) {
  if (max_bytes == 0) return Error::InvalidArgument("console max_bytes must be > 0");
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0640);
  if (fd < 0) return Error::Errno("open console file " + path);
  out_.Reset(fd);
  in_ = std::move(read_end);
  path_ = std::move(path);
  max_bytes_ = max_bytes;
  thread_ = std::thread([this] { Run(); });
  return Ok();
}

void ConsolePump::Join() {
  if (thread_.joinable()) thread_.join();
}

void ConsolePump::Run() {
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(in_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    size_t off = 0;
    while (off < static_cast<size_t>(n)) {
      if (in_file_ >= max_bytes_) {
        // Rotate: the newest output matters most (a panic message comes last).
        std::string old = path_ + ".1";
        if (::rename(path_.c_str(), old.c_str()) != 0) {
          log::Warn("console rotate failed", {{"path", path_}, {"errno", errno}});
        }
        int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0640);
        if (fd < 0) {
          log::Warn("console reopen failed; dropping console output", {{"path", path_}});
          out_.Reset();
        } else {
          out_.Reset(fd);
        }
        in_file_ = 0;
      }
      size_t chunk = std::min<uint64_t>(static_cast<uint64_t>(n) - off, max_bytes_ - in_file_);
      if (out_) {
        ssize_t w = ::write(out_.get(), buf + off, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
          log::Warn("console write failed; dropping console output", {{"path", path_}});
          out_.Reset();
          w = static_cast<ssize_t>(chunk);
        }
        chunk = static_cast<size_t>(w);
      }
      off += chunk;
      in_file_ += chunk;
      copied_ += chunk;
    }
  }
  in_.Reset();
}

}  // namespace nfc::vmm
