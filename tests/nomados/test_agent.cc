// TEST DOUBLE of `nomad agent` for the NomadOS boot tests. NOT Nomad.
//
// Nomad is not packaged by Debian, so the boot tests bake this program into the image as /usr/bin/nomad. It
// does only what lets a test observe what nomad-init (host role) and the image builder did:
//   - accepts `agent -config <path>` like Nomad and refuses anything else (init must pass the baked config);
//   - serves HTTP on Nomad's port 4646:
//       GET /v1/agent/self  JSON: test_double, pid, start count, hostname, IPv4 addresses, config files seen,
//                           the event log (starts and signals of this and earlier boots)
//       GET /test/write?v=X stores X under the data_dir (/var/lib/nomad, on the data partition), fsynced
//       GET /test/read      returns it
//       GET /test/crash     answers, then aborts (SIGABRT): init must restart it
//       GET /test/df        runs `df -kP /var/lib/nomad` (Nomad's storage fingerprint needs df in the image)
//       GET /test/file?p=P  returns a small file (resolv.conf, hosts, machine-id...)
//   - exits 1 at once when its config directory holds broken-agent.hcl (a bad update, update_test.cc);
//   - logs every signal it receives to stdout and to the event log (fsynced), and on SIGTERM/SIGINT "drains"
//     for 200 ms and exits 0, as Nomad does.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

const char* kDataDir = "/var/lib/nomad/test-double";

std::string ReadFile(const std::string& path, size_t max = 65536) {
  std::string out;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  ssize_t n;
  while (out.size() < max && (n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

void AppendDurably(const std::string& path, const std::string& line) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (write(fd, line.data(), line.size()) < 0) perror("write");
  fsync(fd);
  close(fd);
}

void WriteDurably(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  if (write(fd, content.data(), content.size()) < 0) perror("write");
  fsync(fd);
  close(fd);
  rename(tmp.c_str(), path.c_str());
}

void Event(const std::string& what) {
  std::printf("TEST DOUBLE nomad agent: %s\n", what.c_str());
  std::fflush(stdout);
  AppendDurably(std::string(kDataDir) + "/events.log", what + "\n");
}

std::string JsonEscape(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
    } else if (c == '\n') {
      o += "\\n";
    } else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else {
      o += static_cast<char>(c);
    }
  }
  return o;
}

std::string Addresses() {
  std::string out;
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) return out;
  for (ifaddrs* i = ifa; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
    if (!out.empty()) out += ",";
    // Appended piece by piece: `"\"" + std::string(...)` trips GCC 12's -Wrestrict false positive at -O3.
    out.append("\"").append(i->ifa_name).append("=").append(buf).append("\"");
  }
  freeifaddrs(ifa);
  return out;
}

std::string RunDf() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    dup2(p[1], 2);
    execl("/usr/bin/df", "df", "-kP", "/var/lib/nomad", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(p[1]);
  std::string out;
  char buf[1024];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return out + "exit=" + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) +
         "\n";
}

std::string QueryValue(const std::string& target, const std::string& key) {
  size_t q = target.find('?');
  if (q == std::string::npos) return "";
  std::string query = target.substr(q + 1);
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    if (kv.rfind(key + "=", 0) == 0) return kv.substr(key.size() + 1);
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return "";
}

void Reply(int fd, int code, const std::string& type, const std::string& body) {
  std::string head = "HTTP/1.1 " + std::to_string(code) + (code == 200 ? " OK" : " Error") +
                     "\r\nContent-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\nConnection: close\r\n\r\n";
  std::string all = head + body;
  size_t off = 0;
  while (off < all.size()) {
    ssize_t n = write(fd, all.data() + off, all.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
}

std::string ConfigFiles(const std::string& config) {
  std::string out;
  DIR* d = opendir(config.c_str());
  if (!d) return "\"" + JsonEscape(config) + "\"";
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (!out.empty()) out += ",";
    out.append("\"").append(JsonEscape(e->d_name)).append("\"");
  }
  closedir(d);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 || std::string(argv[1]) != "agent" || std::string(argv[2]) != "-config") {
    std::fprintf(stderr, "TEST DOUBLE nomad: want `agent -config <path>`\n");
    return 2;
  }
  std::string config = argv[3];
  // A broken build for the update tests (update_test.cc): an agent that never comes up.
  if (access((config + "/broken-agent.hcl").c_str(), F_OK) == 0) {
    std::fprintf(stderr, "TEST DOUBLE nomad: broken-agent.hcl present: exiting 1 as a broken build\n");
    return 1;
  }
  mkdir("/var/lib/nomad", 0711);
  mkdir(kDataDir, 0755);
  int starts = std::atoi(ReadFile(std::string(kDataDir) + "/starts").c_str()) + 1;
  WriteDurably(std::string(kDataDir) + "/starts", std::to_string(starts));
  Event("start " + std::to_string(starts) + " pid " + std::to_string(getpid()));

  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT}) sigaddset(&set, s);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC);

  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(4646);
  if (bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(ls, 16) != 0) {
    perror("TEST DOUBLE nomad: listen :4646");
    return 1;
  }
  Event("listening on :4646");
  char hostname[256] = {};
  while (true) {
    pollfd fds[2] = {{sfd, POLLIN, 0}, {ls, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == sizeof si) {
        int sig = static_cast<int>(si.ssi_signo);
        Event(std::string("signal SIG") + sigabbrev_np(sig) + " from pid " + std::to_string(si.ssi_pid));
        if (sig == SIGTERM || sig == SIGINT) {
          usleep(200000);  // "draining"
          Event("drained; exiting 0");
          return 0;
        }
      }
    }
    if (!(fds[1].revents & POLLIN)) continue;
    int c = accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    timeval tv{5, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req;
    char buf[2048];
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
      ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
    }
    size_t sp1 = req.find(' '), sp2 = req.find(' ', sp1 + 1);
    std::string target =
        sp1 == std::string::npos || sp2 == std::string::npos ? "" : req.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string path = target.substr(0, target.find('?'));
    gethostname(hostname, sizeof hostname - 1);
    if (path == "/v1/agent/self") {
      std::string body = "{\"test_double\":true,\"pid\":" + std::to_string(getpid()) +
                         ",\"starts\":" + std::to_string(starts) + ",\"hostname\":\"" + JsonEscape(hostname) +
                         "\",\"addresses\":[" + Addresses() + "],\"config_files\":[" + ConfigFiles(config) +
                         "],\"events\":\"" + JsonEscape(ReadFile(std::string(kDataDir) + "/events.log")) +
                         "\"}";
      Reply(c, 200, "application/json", body);
    } else if (path == "/test/write") {
      WriteDurably(std::string(kDataDir) + "/value", QueryValue(target, "v"));
      Reply(c, 200, "text/plain", "ok\n");
    } else if (path == "/test/read") {
      Reply(c, 200, "text/plain", ReadFile(std::string(kDataDir) + "/value"));
    } else if (path == "/test/df") {
      Reply(c, 200, "text/plain", RunDf());
    } else if (path == "/test/file") {
      Reply(c, 200, "text/plain", ReadFile(QueryValue(target, "p"), 8192));
    } else if (path == "/test/crash") {
      Reply(c, 200, "text/plain", "crashing\n");
      close(c);
      Event("crashing on request");
      abort();
    } else {
      Reply(c, 404, "text/plain", "not found\n");
    }
    close(c);
  }
}
