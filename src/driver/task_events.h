// TaskEventHub: fan-out of driver task events ("Downloading image", "Booting VM") to every open TaskEvents
// stream. Each subscriber has a bounded queue; a slow or vanished subscriber loses its oldest events, never
// blocks the publisher. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace nfc::driver {

struct TaskEvent {
  std::string task_id, alloc_id, task_name;  // alloc_id + task_name route the event to the task in Nomad
  std::chrono::system_clock::time_point timestamp{};
  std::string message;
  std::map<std::string, std::string> annotations;
};

class TaskEventHub {
 public:
  static constexpr size_t kQueueLimit = 256;

  class Subscription {
   public:
    ~Subscription();
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    // Waits up to `timeout` for the next event.
    std::optional<TaskEvent> Next(std::chrono::milliseconds timeout);
    size_t dropped() const;

   private:
    friend class TaskEventHub;
    explicit Subscription(TaskEventHub* hub) : hub_(hub) {}
    TaskEventHub* hub_;
    std::deque<TaskEvent> queue_;  // guarded by hub_->mu_
    size_t dropped_ = 0;           // guarded by hub_->mu_
  };

  std::unique_ptr<Subscription> Subscribe();
  void Publish(TaskEvent event);
  size_t subscribers() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::list<Subscription*> subscribers_;  // guarded by mu_
};

}  // namespace nfc::driver
