// The transition table and the operation checks, pair by pair.
#include "shim/lifecycle.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace nfc::shim {
namespace {

constexpr Phase kAllPhases[] = {Phase::kCreated,  Phase::kBooting, Phase::kRunning,
                                Phase::kStopping, Phase::kExited,  Phase::kShutDown};
constexpr Event kAllEvents[] = {Event::kVmmStarted,    Event::kStartFailed,  Event::kWorkloadStarted,
                                Event::kStopRequested, Event::kExitRecorded, Event::kShutdownAnswered};
constexpr Op kAllOps[] = {Op::kWait,  Op::kStop,    Op::kSignal,  Op::kExec,
                          Op::kStats, Op::kInspect, Op::kShutdown};

TEST(LifecycleTest, EveryPhaseEventPairOfTheTable) {
  // Written out by hand, independently of lifecycle.cc: every legal move; every other pair is illegal.
  const std::map<std::pair<Phase, Event>, Phase> legal = {
      {{Phase::kCreated, Event::kVmmStarted}, Phase::kBooting},
      {{Phase::kCreated, Event::kStartFailed}, Phase::kExited},
      {{Phase::kCreated, Event::kStopRequested}, Phase::kStopping},
      {{Phase::kStopping, Event::kStartFailed}, Phase::kExited},
      {{Phase::kBooting, Event::kWorkloadStarted}, Phase::kRunning},
      {{Phase::kBooting, Event::kStopRequested}, Phase::kStopping},
      {{Phase::kBooting, Event::kExitRecorded}, Phase::kExited},
      {{Phase::kRunning, Event::kStopRequested}, Phase::kStopping},
      {{Phase::kRunning, Event::kExitRecorded}, Phase::kExited},
      {{Phase::kStopping, Event::kWorkloadStarted}, Phase::kStopping},
      {{Phase::kStopping, Event::kStopRequested}, Phase::kStopping},
      {{Phase::kStopping, Event::kExitRecorded}, Phase::kExited},
      {{Phase::kExited, Event::kStopRequested}, Phase::kExited},
      {{Phase::kExited, Event::kShutdownAnswered}, Phase::kShutDown},
      {{Phase::kShutDown, Event::kStopRequested}, Phase::kShutDown},
      {{Phase::kShutDown, Event::kShutdownAnswered}, Phase::kShutDown},
  };
  int pairs = 0;
  for (Phase from : kAllPhases) {
    for (Event event : kAllEvents) {
      pairs++;
      SCOPED_TRACE(std::string(PhaseName(from)) + " + " + EventName(event));
      auto it = legal.find({from, event});
      std::optional<Phase> next = NextPhase(from, event);
      if (it == legal.end()) {
        EXPECT_FALSE(next.has_value()) << "got " << PhaseName(*next);
      } else {
        ASSERT_TRUE(next.has_value());
        EXPECT_EQ(*next, it->second) << "got " << PhaseName(*next);
      }
    }
  }
  EXPECT_EQ(pairs, kPhaseCount * kEventCount);
}

TEST(LifecycleTest, ApplyMovesOnlyAlongTheTable) {
  Lifecycle l;
  EXPECT_EQ(l.phase(), Phase::kCreated);
  EXPECT_FALSE(l.Apply(Event::kExitRecorded));  // nothing ran yet
  EXPECT_EQ(l.phase(), Phase::kCreated);
  EXPECT_TRUE(l.Apply(Event::kVmmStarted));
  EXPECT_TRUE(l.Apply(Event::kWorkloadStarted));
  EXPECT_EQ(l.phase(), Phase::kRunning);
  EXPECT_FALSE(l.Apply(Event::kVmmStarted));
  EXPECT_EQ(l.phase(), Phase::kRunning);
  EXPECT_TRUE(l.Apply(Event::kStopRequested));
  EXPECT_TRUE(l.Apply(Event::kExitRecorded));
  EXPECT_FALSE(l.Apply(Event::kExitRecorded));  // recorded once
  EXPECT_EQ(l.phase(), Phase::kExited);
  EXPECT_TRUE(l.Apply(Event::kShutdownAnswered));
  EXPECT_EQ(l.phase(), Phase::kShutDown);
}

TEST(LifecycleTest, EveryOpPhasePairOfAllowed) {
  // Written out by hand: the phases in which each operation is allowed.
  const std::map<Op, std::vector<Phase>> allowed = {
      {Op::kWait,
       {Phase::kCreated, Phase::kBooting, Phase::kRunning, Phase::kStopping, Phase::kExited,
        Phase::kShutDown}},
      {Op::kStop, {Phase::kBooting, Phase::kRunning, Phase::kStopping, Phase::kExited, Phase::kShutDown}},
      {Op::kSignal, {Phase::kRunning, Phase::kStopping}},
      {Op::kExec, {Phase::kRunning}},
      {Op::kStats, {Phase::kBooting, Phase::kRunning, Phase::kStopping, Phase::kExited, Phase::kShutDown}},
      {Op::kInspect,
       {Phase::kCreated, Phase::kBooting, Phase::kRunning, Phase::kStopping, Phase::kExited,
        Phase::kShutDown}},
      {Op::kShutdown,
       {Phase::kCreated, Phase::kBooting, Phase::kRunning, Phase::kStopping, Phase::kExited,
        Phase::kShutDown}},
  };
  int pairs = 0;
  for (Op op : kAllOps) {
    for (Phase phase : kAllPhases) {
      pairs++;
      SCOPED_TRACE(std::string(OpName(op)) + " in " + PhaseName(phase));
      const auto& ok_in = allowed.at(op);
      bool expect_ok = std::find(ok_in.begin(), ok_in.end(), phase) != ok_in.end();
      Status s = Allowed(op, phase);
      EXPECT_EQ(s.ok(), expect_ok);
      if (!s.ok()) {
        EXPECT_EQ(s.error().code(), ErrorCode::kFailedPrecondition);
        EXPECT_EQ(s.error().message(), std::string(OpName(op)) + ": task is " + PhaseName(phase));
      }
    }
  }
  EXPECT_EQ(pairs, kOpCount * kPhaseCount);
}

TEST(LifecycleTest, MessagesNameTheOpAndThePhase) {
  EXPECT_EQ(Allowed(Op::kSignal, Phase::kExited).error().message(), "signal: task is exited");
  EXPECT_EQ(Allowed(Op::kExec, Phase::kBooting).error().message(), "exec: task is booting");
  EXPECT_EQ(Allowed(Op::kExec, Phase::kStopping).error().message(), "exec: task is stopping");
  EXPECT_EQ(Allowed(Op::kStop, Phase::kCreated).error().message(), "stop: task is created");
  EXPECT_EQ(Allowed(Op::kSignal, Phase::kShutDown).error().message(), "signal: task is shut down");
}

TEST(LifecycleTest, NamesAreDistinct) {
  std::map<std::string, int> seen;
  for (Phase p : kAllPhases) seen[PhaseName(p)]++;
  for (Event e : kAllEvents) seen[std::string("event ") + EventName(e)]++;
  for (Op o : kAllOps) seen[std::string("op ") + OpName(o)]++;
  for (const auto& [name, count] : seen) EXPECT_EQ(count, 1) << name;
  EXPECT_EQ(seen.size(), static_cast<size_t>(kPhaseCount + kEventCount + kOpCount));
  EXPECT_EQ(seen.count("unknown"), 0u);
}

}  // namespace
}  // namespace nfc::shim
