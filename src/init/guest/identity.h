// Who the workload runs as: "user", "uid", "user:group", "uid:gid" resolved against the image's own
// /etc/passwd and /etc/group (no NSS: the image's libc and its configuration are not ours to load), plus
// supplementary groups, the way OCI runtimes do it.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace nfc::init::guest {

struct Identity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary, including gid
  std::string name;           // empty when the uid is not in /etc/passwd
  std::string home = "/";
};

// passwd/group are the file contents (empty when the file does not exist). extra_groups are names or numbers.
Result<Identity> ResolveIdentity(std::string_view user, std::string_view passwd, std::string_view group,
                                 const std::vector<std::string>& extra_groups);

}  // namespace nfc::init::guest
