#include "driver/task_events.h"

#include <gtest/gtest.h>

#include <thread>

namespace nfc::driver {
namespace {

TEST(TaskEventHubTest, FansOutToEverySubscriber) {
  TaskEventHub hub;
  auto a = hub.Subscribe();
  auto b = hub.Subscribe();
  EXPECT_EQ(hub.subscribers(), 2u);
  hub.Publish({.task_id = "t1", .alloc_id = "a", .task_name = "web", .message = "Downloading image"});
  auto ea = a->Next(std::chrono::milliseconds(100));
  auto eb = b->Next(std::chrono::milliseconds(100));
  ASSERT_TRUE(ea && eb);
  EXPECT_EQ(ea->message, "Downloading image");
  EXPECT_NE(ea->timestamp, std::chrono::system_clock::time_point{});  // stamped on publish
  EXPECT_FALSE(a->Next(std::chrono::milliseconds(10)).has_value());
  b.reset();
  EXPECT_EQ(hub.subscribers(), 1u);
}

TEST(TaskEventHubTest, SlowSubscriberLosesOldestNotNewest) {
  TaskEventHub hub;
  auto sub = hub.Subscribe();
  for (size_t i = 0; i < TaskEventHub::kQueueLimit + 5; i++) hub.Publish({.message = std::to_string(i)});
  EXPECT_EQ(sub->dropped(), 5u);
  EXPECT_EQ(sub->Next(std::chrono::milliseconds(10))->message, "5");
}

TEST(TaskEventHubTest, WakesWaitingSubscriber) {
  TaskEventHub hub;
  auto sub = hub.Subscribe();
  std::thread publisher([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    hub.Publish({.message = "Booting VM"});
  });
  auto e = sub->Next(std::chrono::seconds(5));
  publisher.join();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->message, "Booting VM");
}

}  // namespace
}  // namespace nfc::driver
