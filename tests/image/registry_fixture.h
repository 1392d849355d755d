// Test fixture: Debian's docker-registry on loopback with TLS (a CA made per run) and htpasswd basic auth,
// images pushed with skopeo from OCI layouts the test writes. Everything lives in one temp dir and the
// registry process is killed in TearDown, also when a test fails.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "fault_proxy.h"
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

Status RunCommand(const std::vector<std::string>& argv, std::string* output = nullptr);

}  // namespace nfc::image::testing
