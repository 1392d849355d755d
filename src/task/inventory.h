// The tasks a data directory holds, as an operator sees them (`ps`, `logs`): read from the task directories
// (shim/task_dir.h) and, for live tasks, from their shims. Never changes anything.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "base/error.h"
#include "shim/task_dir.h"
#include "task/driver_state.h"

namespace nfc::task {

struct TaskSummary {
  std::string dir;      // the task directory
  std::string task_id;  // empty when the start never got far enough to record it
  std::string state;    // "starting", "running", "stopping", "exited", "lost" (shim gone, no exit record),
                        // "interrupted" (the plugin died during StartTask; removed by the next plugin's Init)
  std::string result;   // for exited tasks: "exit code 3", "signal 9", "error: ..."
  DriverState driver_state;  // zero values while starting
  int vmm_pid = 0;
  std::string guest_boot_id;
};

// Every task directory under <data_dir>/tasks, sorted by start time. A missing data dir is an empty list.
// `timeout` bounds each shim query.
Result<std::vector<TaskSummary>> ListTasks(const std::string& data_dir,
                                           std::chrono::milliseconds timeout = std::chrono::seconds(2));

// The one task whose id, task directory name, or allocation-id prefix (at least 4 characters) or task name
// matches `query`; an error naming the candidates when there is none or several.
Result<TaskSummary> FindTask(const std::vector<TaskSummary>& tasks, const std::string& query);

}  // namespace nfc::task
