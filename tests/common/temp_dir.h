// TempDir: the scratch directory of one test. Tests used to repeat mkdtemp into a char template and an
// `rm -rf` whose result nobody looked at; this is the one copy.
// - Made as /tmp/nfc-<prefix>-XXXXXX, mode 0700. If that fails, the binary aborts with a message: a test
//   must never go on with an empty path (its files would land in the working directory, or in "/").
// - The destructor removes the whole tree without following symlinks (a link to something outside is
//   removed, not what it points to). A failed removal is a test failure (ADD_FAILURE), not a silent leak.
// As a fixture member it is removed after TearDown, so whatever TearDown stops (servers, VMs, namespaces)
// is gone before its files are.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nfc::test_support {

class TempDir {
 public:
  explicit TempDir(std::string_view prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name; `name` may itself contain slashes ("a/b").
  std::string Path(std::string_view name) const { return path_ + "/" + std::string(name); }
  // The names in path()/name (path() itself when empty), sorted; empty if it cannot be read.
  std::vector<std::string> Entries(std::string_view name = "") const;

 private:
  std::string path_;
};

}  // namespace nfc::test_support
