// Test fixture: Debian's docker-registry on loopback with TLS (a CA made per run) and htpasswd basic auth,
// images pushed with skopeo from OCI layouts the test writes. Everything lives in one temp dir and the
// registry process is killed in TearDown, also when a test fails.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "test_layers.h"

namespace nfc::image::testing {

class LocalRegistry {
 public:
  // Starts the registry; user/password protect it with htpasswd.
  static Result<std::unique_ptr<LocalRegistry>> Start(const std::string& dir, const std::string& user,
                                                      const std::string& password);
  // A second registry over plain HTTP without auth, serving the storage of another (for fault injection).
  static Result<std::unique_ptr<LocalRegistry>> StartPlain(const std::string& dir,
                                                           const std::string& storage);
  ~LocalRegistry();

  // Pushes an OCI layout tag to <host>/<repo>:<tag> (all platforms of an index).
  Status Push(const std::string& layout_dir, const std::string& layout_tag, const std::string& repo_tag);
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string ca_file() const { return dir_ + "/certs/ca.crt"; }
  std::string storage() const { return dir_ + "/storage"; }
  std::string log_path() const { return dir_ + "/registry.log"; }
  // Number of successful (200) GETs of a blob path in the registry's access log.
  int CountBlobGets(const std::string& digest) const;

 private:
  Status Launch(const std::string& config);
  std::string dir_;
  std::string user_, password_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// A plain-HTTP proxy that injects faults: the first `fail_count` requests whose path contains fail_path get
// a 500; every response for a path containing truncate_path is cut after half its body.
class FaultProxy {
 public:
  static Result<std::unique_ptr<FaultProxy>> Start(int upstream_port);
  ~FaultProxy();
  void FailFirst(const std::string& path_part, int count);
  void Truncate(const std::string& path_part);
  int port() const { return port_; }
  int faults_injected() const;

 private:
  void Serve();
  void Handle(int fd);
  int port_ = 0, upstream_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::map<std::string, int> fail_;
  std::string truncate_;
  int injected_ = 0;
};
Status RunCommand(const std::vector<std::string>& argv, std::string* output = nullptr);

}  // namespace nfc::image::testing
