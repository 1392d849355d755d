// The one place that decides which TaskManager the plugin process runs (see driver/task_manager.h).
#pragma once

#include "driver/rpc/services.h"

namespace nfc::cli {

// The factory ServePlugin uses: the task lifecycle of src/task, publishing its events on the hub.
driver::rpc::TaskManagerFactory PluginTaskManagerFactory();

}  // namespace nfc::cli
