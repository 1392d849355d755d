// fake-qemu: just enough of qemu-system-x86_64 for the QEMU backend's failure paths that a real TCG guest
// cannot be made to take: it serves QMP on the `-qmp unix:PATH,...` socket, reports "running" after `cont`,
// and after --internal-error-after MS reports "internal-error" forever without exiting, the way QEMU does
// after a KVM internal error or emulation failure (reference/vmm.md 6.5).
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

int main(int argc, char** argv) {
  std::string qmp;
  long error_after_ms = -1;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-qmp" && i + 1 < argc) {
      std::string v = argv[++i];
      if (v.rfind("unix:", 0) == 0) qmp = v.substr(5, v.find(',') - 5);
    } else if (a == "--internal-error-after" && i + 1 < argc) {
      error_after_ms = std::stol(argv[++i]);
    }
  }
  if (qmp.empty()) {
    std::cerr << "fake-qemu: no -qmp unix: socket\n";
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, qmp.c_str(), sizeof addr.sun_path - 1);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(lfd, 1) != 0) {
    std::cerr << "fake-qemu: bind " << qmp << ": " << strerror(errno) << "\n";
    return 1;
  }
  std::string state = "prelaunch";
  std::chrono::steady_clock::time_point running_since;
  for (;;) {
    int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    auto send = [fd](const nlohmann::json& j) {
      std::string s = j.dump() + "\r\n";
      (void)!write(fd, s.data(), s.size());
    };
    send(
        {{"QMP",
          {{"version", {{"qemu", {{"major", 7}, {"minor", 2}, {"micro", 0}}}}}, {"capabilities", {"oob"}}}}});
    std::string buf;
    char tmp[4096];
    ssize_t n;
    while ((n = read(fd, tmp, sizeof tmp)) > 0) {
      buf.append(tmp, static_cast<size_t>(n));
      size_t nl;
      while ((nl = buf.find('\n')) != std::string::npos) {
        auto req = nlohmann::json::parse(buf.substr(0, nl), nullptr, false);
        buf.erase(0, nl + 1);
        if (req.is_discarded()) continue;
        std::string cmd = req.value("execute", "");
        nlohmann::json ret = nlohmann::json::object();
        if (cmd == "cont") {
          state = "running";
          running_since = std::chrono::steady_clock::now();
        } else if (cmd == "query-status") {
          if (state == "running" && error_after_ms >= 0 &&
              std::chrono::steady_clock::now() - running_since > std::chrono::milliseconds(error_after_ms)) {
            state = "internal-error";
          }
          ret = {{"status", state}, {"running", state == "running"}};
        }
        nlohmann::json answer = {{"return", ret}};
        if (req.contains("id")) answer["id"] = req["id"];
        send(answer);
      }
    }
    close(fd);
  }
}
