#include "cli/task_manager_factory.h"

#include "task/manager.h"

namespace nfc::cli {

driver::rpc::TaskManagerFactory PluginTaskManagerFactory() {
  return [](driver::TaskEventHub& events) -> std::unique_ptr<driver::TaskManager> {
    auto m = std::make_unique<task::Manager>();
    m->SetEventSink([&events](driver::TaskEvent e) { events.Publish(std::move(e)); });
    return m;
  };
}

}  // namespace nfc::cli
