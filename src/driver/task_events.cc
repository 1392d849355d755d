#include "driver/task_events.h"

#include <algorithm>

namespace nfc::driver {

std::unique_ptr<TaskEventHub::Subscription> TaskEventHub::Subscribe() {
  std::unique_ptr<Subscription> sub(new Subscription(this));
  std::lock_guard lock(mu_);
  subscribers_.push_back(sub.get());
  return sub;
}

TaskEventHub::Subscription::~Subscription() {
  std::lock_guard lock(hub_->mu_);
  hub_->subscribers_.remove(this);
}

void TaskEventHub::Publish(TaskEvent event) {
  if (event.timestamp == std::chrono::system_clock::time_point{})
    event.timestamp = std::chrono::system_clock::now();
  {
    std::lock_guard lock(mu_);
    for (Subscription* sub : subscribers_) {
      if (sub->queue_.size() >= kQueueLimit) {
        sub->queue_.pop_front();
        sub->dropped_++;
      }
      sub->queue_.push_back(event);
    }
  }
  cv_.notify_all();
}

size_t TaskEventHub::subscribers() const {
  std::lock_guard lock(mu_);
  return subscribers_.size();
}

std::optional<TaskEvent> TaskEventHub::Subscription::Next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(hub_->mu_);
  if (!hub_->cv_.wait_for(lock, timeout, [&] { return !queue_.empty(); })) return std::nullopt;
  TaskEvent event = std::move(queue_.front());
  queue_.pop_front();
  return event;
}

size_t TaskEventHub::Subscription::dropped() const {
  std::lock_guard lock(hub_->mu_);
  return dropped_;
}

}  // namespace nfc::driver
