#include "task/inventory.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>

#include "base/fs.h"
#include "shim/control_client.h"
#include "shim/exit_record.h"

namespace nfc::task {
namespace {

// The task dir's records are small JSON objects; a missing or unreadable one reads as empty (a start still in
// progress, or a record the shim has not written yet), which the decoders then refuse.
std::string ReadOrEmpty(const std::string& path) {
  auto text = fs::ReadFile(path, 1 << 20);
  return text.ok() ? *text : "";
}

std::string DescribeExit(const shim::ExitResult& r) {
  if (!r.err.empty()) return "error: " + r.err;
  if (r.signal != 0) return "signal " + std::to_string(r.signal) + (r.oom_killed ? " (OOM)" : "");
  return "exit code " + std::to_string(r.exit_code) + (r.oom_killed ? " (OOM)" : "");
}

TaskSummary Summarize(const shim::TaskDir& dir, std::chrono::milliseconds timeout) {
  TaskSummary s;
  s.dir = dir.root;
  s.state = "starting";
  auto state = DriverState::Decode(ReadOrEmpty(dir.DriverState()));
  if (state.ok()) {
    s.driver_state = *state;
    s.task_id = state->task_id;
  }
  auto record = shim::ReadExitRecord(dir.ExitRecord());
  if (record.ok() && record->has_value()) {
    s.state = "exited";
    s.result = DescribeExit(**record);
  }
  shim::ControlClient client(dir.ControlSocket());
  client.quick_timeout_ms = static_cast<int>(timeout.count());
  bool shim_alive = state.ok() && state->shim.IsAlive();
  if (shim_alive || !state.ok()) {
    auto info = client.Inspect();
    if (info.ok()) {
      s.state = info->exited ? "exited" : shim::TaskStateName(info->state);
      if (info->exited) s.result = DescribeExit(info->result);
      s.vmm_pid = info->vmm_pid;
      s.guest_boot_id = info->guest_boot_id;
      return s;
    }
  }
  if (state.ok() && !shim_alive && s.state != "exited") s.state = "lost";
  if (!state.ok()) {
    // A start whose plugin died: the next runtime instance's Init removes it (Manager::Init).
    auto start = StartRecord::Decode(ReadOrEmpty(dir.root + "/" + std::string(kStartRecordFile)));
    if (start.ok()) {
      s.task_id = start->task_id;
      if (!start->starter.IsAlive()) s.state = "interrupted";
    }
  }
  return s;
}

}  // namespace

Result<std::vector<TaskSummary>> ListTasks(const std::string& data_dir, std::chrono::milliseconds timeout) {
  std::string root = data_dir + "/tasks";
  std::vector<TaskSummary> out;
  DIR* d = ::opendir(root.c_str());
  if (!d) {
    if (errno == ENOENT) return out;
    return Error::Errno("list " + root);
  }
  std::vector<std::string> names;
  while (auto* e = ::readdir(d)) {
    if (e->d_name[0] != '.') names.push_back(e->d_name);
  }
  ::closedir(d);
  for (const auto& name : names) out.push_back(Summarize(shim::TaskDir{root + "/" + name}, timeout));
  std::sort(out.begin(), out.end(), [](const TaskSummary& a, const TaskSummary& b) {
    return a.driver_state.started_at_unix_nanos < b.driver_state.started_at_unix_nanos;
  });
  return out;
}

Result<TaskSummary> FindTask(const std::vector<TaskSummary>& tasks, const std::string& query) {
  if (query.empty()) return Error::InvalidArgument("no task given");
  std::vector<const TaskSummary*> hits;
  for (const auto& t : tasks) {
    const auto& ds = t.driver_state;
    std::string dir_name = t.dir.substr(t.dir.rfind('/') + 1);
    bool match = t.task_id == query || dir_name == query || ds.task_name == query ||
                 (query.size() >= 4 && ds.alloc_id.rfind(query, 0) == 0);
    if (match) hits.push_back(&t);
  }
  if (hits.size() == 1) return *hits[0];
  std::string names;
  for (const auto* t : hits) names += "\n  " + (t->task_id.empty() ? t->dir : t->task_id);
  if (hits.empty()) return Error::NotFound("no task matches \"" + query + "\" (see `ps`)");
  return Error::InvalidArgument("\"" + query + "\" matches " + std::to_string(hits.size()) +
                                " tasks; give the task id:" + names);
}

}  // namespace nfc::task
