// Pieces shared by the VM network tests (vm_network_test, vm_host_mode_test, vm_sidecar_test) and
// bench-network: a busybox guest image, the plugin configuration that boots it under QEMU, the task's stdout
// read like logmon would, and sockets made inside a test's namespace. Header-only: both binaries compile it
// with their own flags.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "driver/plugin_config.h"
#include "netns_fixture.h"
#include "network/netns.h"
#include "test_layers.h"

namespace nfc::network::testing {

// The task's stdout, read like Nomad's logmon would.
class FifoCapture {
 public:
  explicit FifoCapture(const std::string& path) {
    if (::mkfifo(path.c_str(), 0600) != 0) return;
    fd_ = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    thread_ = std::thread([this] {
      char buf[4096];
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        ssize_t n = ::read(fd_, buf, sizeof(buf));
        if (n <= 0) continue;
        std::lock_guard<std::mutex> lock(mu_);
        text_.append(buf, static_cast<size_t>(n));
      }
    });
  }
  ~FifoCapture() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  FifoCapture(const FifoCapture&) = delete;
  FifoCapture& operator=(const FifoCapture&) = delete;
  std::string Text() {
    std::lock_guard<std::mutex> lock(mu_);
    return text_;
  }

 private:
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::string text_;
  std::thread thread_;
};

inline bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds budget) {
  auto deadline = std::chrono::steady_clock::now() + budget;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

inline sockaddr_in Address(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

// A socket of `type` made inside `ns` (it stays there), bound to ip:port unless port is 0; 5 s timeouts.
inline Result<UniqueFd> SocketIn(const NetnsHolder& ns, int type, const std::string& ip, uint16_t port) {
  UniqueFd fd;
  NFC_RETURN_IF_ERROR(RunInNetns(ns.path(), [&]() -> Status {
    fd.Reset(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
    if (!fd) return Error::Errno("socket");
    timeval tv{5, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = Address(ip, port);
    if (port != 0 && ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      return Error::Errno("bind " + ip + ":" + std::to_string(port));
    if (port != 0 && type == SOCK_STREAM && ::listen(fd.get(), 16) != 0) return Error::Errno("listen");
    return Ok();
  }));
  return fd;
}

inline std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// The standard output of a shell command run on the host (`ps`/`logs` of the plugin binary); "" if it cannot
// run.
inline std::string Capture(const std::string& command) {
  std::string out;
  if (FILE* f = ::popen(command.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    ::pclose(f);
  }
  return out;
}

// Reads from `fd` until a newline (or 20 reads, EOF, an error); what came.
inline std::string ReadLine(int fd) {
  std::string got;
  char buf[256];
  for (int i = 0; i < 20 && got.find('\n') == std::string::npos; i++) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// Connects from `ns` to ip:port and reads the answer to EOF; "" when the connection failed or was reset.
inline std::string Ask(const NetnsHolder& ns, const std::string& ip, uint16_t port) {
  auto fd = SocketIn(ns, SOCK_STREAM, "", 0);
  if (!fd.ok()) return "";
  sockaddr_in a = Address(ip, port);
  if (::connect(fd->get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "";
  return ReadAll(fd->get());
}

// An OCI layout at `dir` (tag "net"): busybox with `applets` linked in /bin, /etc, /tmp; Cmd /bin/sh.
inline Status WriteBusyboxImage(const std::string& dir, std::initializer_list<const char*> applets) {
  using image::testing::E;
  std::vector<E> entries = {{'d', "bin", 0755},
                            {'f', "bin/busybox", 0755, image::testing::ReadFileOrDie("/bin/busybox")},
                            {'d', "etc", 0755},
                            {'d', "tmp", 01777}};
  for (const char* applet : applets) entries.push_back({'l', std::string("bin/") + applet, 0777, "busybox"});
  image::testing::TestImage img;
  img.layers = {{entries, "gzip"}};
  img.config_json =
      R"({"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"],"Env":["PATH=/bin"]}})";
  auto written = image::testing::WriteOciLayout(dir, "net", {img});
  if (!written.ok()) return written.error();
  return Ok();
}

// The plugin configuration that boots the test guest (kernel and initramfs in `guest_dir`) under QEMU.
inline driver::PluginConfig QemuGuestConfig(const std::string& guest_dir, const std::string& data_dir) {
  driver::PluginConfig config;
  config.data_dir = data_dir;
  config.kernel_path = guest_dir + "/vmlinux";
  config.initrd_path = guest_dir + "/initramfs.cpio.gz";
  config.backend = driver::Backend::kQemu;
  return config;
}

}  // namespace nfc::network::testing
