#include "temp_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace nfc::test_support {
namespace {

[[noreturn]] void Abort(const char* what, const std::string& path) {
  std::fprintf(stderr, "TempDir: %s %s: %s; no test can run without its directory\n", what, path.c_str(),
               std::strerror(errno));
  std::abort();
}

}  // namespace

TempDir::TempDir(std::string_view prefix) {
  const std::string wanted = "/tmp/nfc-" + std::string(prefix) + "-XXXXXX";
  std::string tmpl = wanted;  // mkdtemp overwrites the Xs even when it fails
  if (::mkdtemp(tmpl.data()) == nullptr) Abort("mkdtemp", wanted);
  // mkdtemp asks for 0700 but the umask applies; the mode is part of the contract.
  if (::chmod(tmpl.c_str(), 0700) != 0) Abort("chmod 0700", tmpl);
  path_ = std::move(tmpl);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);  // never follows symlinks
  if (ec) ADD_FAILURE() << "cannot remove the test directory " << path_ << ": " << ec.message();
}

std::vector<std::string> TempDir::Entries(std::string_view name) const {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(name.empty() ? path_ : Path(name), ec))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace nfc::test_support
