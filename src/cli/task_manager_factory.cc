#include "cli/task_manager_factory.h"

namespace nfc::cli {

// The task lifecycle (src/task) plugs in here: return a factory that builds it and hands it the event hub,
// e.g.
//   return [](driver::TaskEventHub& events) { auto m = std::make_unique<task::Manager>(); ...; return m; };
driver::rpc::TaskManagerFactory PluginTaskManagerFactory() {
  return nullptr;
}

}  // namespace nfc::cli
