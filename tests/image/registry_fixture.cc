#include "registry_fixture.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include "base/process.h"
#include "base/unique_fd.h"
#include "free_port.h"

namespace nfc::image::testing {

Status RunCommand(const std::vector<std::string>& argv, std::string* output) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Error::Errno("pipe");
  UniqueFd r(p[0]), w(p[1]);
  SpawnOptions so;
  so.argv = argv;
  so.stdout_fd = w.get();
  so.stderr_fd = w.get();
  NFC_ASSIGN_OR_RETURN(Child c, Spawn(so));
  w.Reset();
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(r.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  NFC_ASSIGN_OR_RETURN(int status, WaitForExit(c.pid));
  if (output) *output = out;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    return Error::Internal(cmd + "failed: " + DescribeWaitStatus(status) + "\n" + out);
  }
  return Ok();
}

Result<std::unique_ptr<LocalRegistry>> LocalRegistry::Start(const std::string& dir, const std::string& user,
                                                            const std::string& password) {
  auto r = std::make_unique<LocalRegistry>();
  r->dir_ = dir;
  r->user_ = user;
  r->password_ = password;
  r->port_ = nfc::test_support::FreeLoopbackPort();
  std::string certs = dir + "/certs";
  NFC_RETURN_IF_ERROR(RunCommand({"mkdir", "-p", certs, dir + "/storage"}));
  NFC_RETURN_IF_ERROR(
      RunCommand({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                  "/CN=nfc test CA", "-keyout", certs + "/ca.key", "-out", certs + "/ca.crt"}));
  NFC_RETURN_IF_ERROR(RunCommand({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                                  "-keyout", certs + "/server.key", "-out", certs + "/server.csr"}));
  WriteFileOrDie(certs + "/san.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  NFC_RETURN_IF_ERROR(RunCommand({"openssl", "x509", "-req", "-in", certs + "/server.csr", "-CA",
                                  certs + "/ca.crt", "-CAkey", certs + "/ca.key", "-CAcreateserial", "-days",
                                  "2", "-extfile", certs + "/san.ext", "-out", certs + "/server.crt"}));
  std::string htpasswd;
  NFC_RETURN_IF_ERROR(RunCommand({"htpasswd", "-Bbn", user, password}, &htpasswd));
  WriteFileOrDie(dir + "/htpasswd", htpasswd);
  WriteFileOrDie(dir + "/config.yml",
                 "version: 0.1\n"
                 "log:\n  level: info\n  accesslog:\n    disabled: true\n"
                 "storage:\n  filesystem:\n    rootdirectory: " +
                     dir +
                     "/storage\n  delete:\n    enabled: true\n"
                     "  cache:\n    blobdescriptor: inmemory\n"
                     "http:\n  addr: 127.0.0.1:" +
                     std::to_string(r->port_) +
                     "\n"
                     "  tls:\n    certificate: " +
                     certs + "/server.crt\n    key: " + certs +
                     "/server.key\n"
                     "auth:\n  htpasswd:\n    realm: nfc-test\n    path: " +
                     dir + "/htpasswd\n");
  NFC_RETURN_IF_ERROR(r->Launch(dir + "/config.yml"));
  return r;
}

Result<std::unique_ptr<LocalRegistry>> LocalRegistry::StartPlain(const std::string& dir,
                                                                 const std::string& storage) {
  auto r = std::make_unique<LocalRegistry>();
  r->dir_ = dir;
  r->port_ = nfc::test_support::FreeLoopbackPort();
  NFC_RETURN_IF_ERROR(RunCommand({"mkdir", "-p", dir}));
  WriteFileOrDie(dir + "/config.yml",
                 "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n"
                 "storage:\n  filesystem:\n    rootdirectory: " +
                     storage +
                     "\n"
                     "http:\n  addr: 127.0.0.1:" +
                     std::to_string(r->port_) + "\n");
  NFC_RETURN_IF_ERROR(r->Launch(dir + "/config.yml"));
  return r;
}

Status LocalRegistry::Launch(const std::string& config) {
  UniqueFd log(::open(log_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  SpawnOptions so;
  so.argv = {"docker-registry", "serve", config};
  so.stdout_fd = log.get();
  so.stderr_fd = log.get();
  so.parent_death_signal = SIGKILL;
  NFC_ASSIGN_OR_RETURN(Child c, Spawn(so));
  pid_ = c.pid;
  for (int i = 0; i < 100; ++i) {
    UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Error::Unavailable("docker-registry did not start listening; log:\n" + ReadFileOrDie(log_path()));
}

LocalRegistry::~LocalRegistry() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    (void)WaitForExit(pid_);
  }
}

Status LocalRegistry::Push(const std::string& layout_dir, const std::string& layout_tag,
                           const std::string& repo_tag) {
  std::string cert_dir = dir_ + "/skopeo-certs";
  NFC_RETURN_IF_ERROR(RunCommand({"mkdir", "-p", cert_dir}));
  NFC_RETURN_IF_ERROR(RunCommand({"cp", ca_file(), cert_dir + "/ca.crt"}));
  return RunCommand({"skopeo", "--insecure-policy", "copy", "--all", "--preserve-digests", "--dest-cert-dir",
                     cert_dir, "--dest-creds", user_ + ":" + password_,
                     "oci:" + layout_dir + ":" + layout_tag, "docker://" + host() + "/" + repo_tag});
}

int LocalRegistry::CountBlobGets(const std::string& digest) const {
  std::string log = ReadFileOrDie(log_path());
  int count = 0;
  size_t pos = 0;
  while ((pos = log.find('\n', pos)) != std::string::npos) {
    size_t start = log.rfind('\n', pos - 1);
    start = start == std::string::npos ? 0 : start + 1;
    std::string line = log.substr(start, pos - start);
    ++pos;
    if (line.find("response completed") == std::string::npos) continue;
    if (line.find("http.request.method=GET") == std::string::npos) continue;
    if (line.find("/blobs/" + digest) == std::string::npos) continue;
    if (line.find("http.response.status=200") == std::string::npos) continue;
    ++count;
  }
  return count;
}

}  // namespace nfc::image::testing
