#include "shim/exit_record.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "base/unique_fd.h"

namespace nfc::shim {
namespace {

std::string DirName(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::Errno("write " + path);
    }
    done += static_cast<size_t>(n);
  }
  return Ok();
}

}  // namespace

Status WriteFileDurably(const std::string& path, const std::string& contents, unsigned mode) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) return Error::Errno("create " + tmp);
  Status written = WriteAll(fd.get(), contents, tmp);
  if (written.ok() && ::fsync(fd.get()) != 0) written = Error::Errno("fsync " + tmp);
  if (written.ok() && ::close(fd.Release()) != 0) written = Error::Errno("close " + tmp);
  if (written.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    written = Error::Errno("rename " + tmp + " to " + path);
  if (!written.ok()) {
    ::unlink(tmp.c_str());
    return written;
  }
  std::string dir = DirName(path);
  UniqueFd dirfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dirfd) return Error::Errno("open directory " + dir);
  if (::fsync(dirfd.get()) != 0) return Error::Errno("fsync directory " + dir);
  return Ok();
}

Status WriteExitRecord(const std::string& path, const ExitResult& result) {
  nlohmann::json j = {
      {"version", kExitRecordVersion},
      {"exit_code", result.exit_code},
      {"signal", result.signal},
      {"oom_killed", result.oom_killed},
      {"err", result.err},
      {"completed_at_unix_nanos", result.completed_at_unix_nanos},
  };
  // error_handler::replace: an err message carrying invalid UTF-8 (e.g. a console excerpt) must not throw.
  std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  NFC_RETURN_IF_ERROR_CTX(WriteFileDurably(path, text, 0600), "write exit record");
  return Ok();
}

Result<std::optional<ExitResult>> ReadExitRecord(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT) return std::optional<ExitResult>();
    return Error::Errno("open exit record " + path);
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::Errno("read exit record " + path);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (1 << 20)) return Error::DataLoss("exit record " + path + " is larger than 1 MiB");
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Error::DataLoss("exit record " + path + " is not a JSON object");
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer() || version->get<int>() != kExitRecordVersion) {
    return Error::DataLoss("exit record " + path + ": unsupported version (want " +
                           std::to_string(kExitRecordVersion) + ")");
  }
  ExitResult r;
  try {
    r.exit_code = j.at("exit_code").get<int>();
    r.signal = j.at("signal").get<int>();
    r.oom_killed = j.at("oom_killed").get<bool>();
    r.err = j.at("err").get<std::string>();
    r.completed_at_unix_nanos = j.at("completed_at_unix_nanos").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    return Error::DataLoss("exit record " + path + ": " + e.what());
  }
  return std::optional<ExitResult>(std::move(r));
}

}  // namespace nfc::shim
