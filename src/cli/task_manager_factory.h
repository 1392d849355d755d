// The one place that decides which TaskManager the plugin process runs (see driver/task_manager.h).
#pragma once

#include "driver/rpc/services.h"

namespace nfc::cli {

// The factory ServePlugin uses. Returns null to use driver::UnimplementedTaskManager.
driver::rpc::TaskManagerFactory PluginTaskManagerFactory();

}  // namespace nfc::cli
