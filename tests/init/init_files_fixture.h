// The fixture of the task-files tests and benchmark: nomad-init in namespaces (init_ns_fixture.h) with host
// directories laid out the way Nomad's allocdir makes them, and the shim's TaskFiles as the host end.
#pragma once

#include <sys/stat.h>

#include <functional>

#include "base/fs.h"
#include "init_ns_fixture.h"
#include "shim/task_files.h"

namespace nfc::guest {

class InitFilesTest : public InitNamespaceTest {
 protected:
  void SetUp() override {
    InitNamespaceTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    for (const char* d : {"alloc/data", "alloc/logs", "alloc/tmp", "web/local", "web/secrets"}) {
      ASSERT_TRUE(fs::MakeDirs(dir_.Path("allocdir/") + d, 0777).ok());
    }
  }

  std::string HostPath(const std::string& rel) const { return dir_.Path("allocdir/" + rel); }

  std::vector<shim::HostFileRoot> HostRoots() const {
    return {{"local", HostPath("web/local"), false, {}},
            {"secrets", HostPath("web/secrets"), false, {}},
            {"alloc", HostPath("alloc"), true, {"logs"}}};
  }

  TaskSpec FilesSpec(const std::string& script) {
    TaskSpec s = BaseSpec(script);
    s.files.roots = {{"local", "/local", false, "", 0777, {}},
                     {"secrets", "/secrets", false, "1m", 0777, {}},
                     {"alloc", "/alloc", true, "", 0777, {"logs"}}};
    s.files.initial_timeout_ms = 20000;
    return s;
  }

  // Reads stdout (acknowledging it) into out_ until done(out_) or the timeout.
  bool ReadUntil(AgentClient& c, const std::function<bool(const std::string&)>& done,
                 std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done(out_)) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      auto chunk = c.NextLog(20ms);
      if (!chunk.ok()) return false;
      if (!*chunk) continue;
      if ((*chunk)->stream == LogStream::kStdout) out_ += (*chunk)->data;
      EXPECT_TRUE(c.AckLog((*chunk)->stream, (*chunk)->offset + (*chunk)->data.size()).ok());
    }
    return true;
  }

  static bool EndsWith(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  }

  // Replaces a file the way Nomad's template renderer does.
  void Render(const std::string& path, const std::string& text) {
    WriteText(path + ".tmp", text);
    ASSERT_EQ(rename((path + ".tmp").c_str(), path.c_str()), 0);
  }

  std::string out_;
};

}  // namespace nfc::guest
