#include "cli/task_manager_factory.h"

#include "task/manager.h"

namespace nfc::cli {

// The task lifecycle (src/task) plugs in here: return a factory that builds it and hands it the event hub,
// e.g.
//   return [](driver::TaskEventHub& events) { auto m = std::make_unique<task::Manager>(); ...; return m; };
driver::rpc::TaskManagerFactory PluginTaskManagerFactory() {
  return [](driver::TaskEventHub& events) -> std::unique_ptr<driver::TaskManager> {
    auto m = std::make_unique<task::Manager>();
    m->SetEventSink([&events](driver::TaskEvent e) { events.Publish(std::move(e)); });
    return m;
  };
}

}  // namespace nfc::cli
