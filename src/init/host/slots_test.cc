#include "init/host/slots.h"

#include <gtest/gtest.h>

#include "init/host/cmdline.h"
#include "init/host/sha256.h"

namespace nfc::init::host {
namespace {

using namespace std::chrono_literals;
using Clock = TrialWatch::Clock;

constexpr std::string_view kSyslinux =
    "DEFAULT a\nPROMPT 0\nTIMEOUT 0\nLABEL a\n  LINUX /a/vmlinuz\nLABEL b-trial\n  APPEND nomados.slot=b\n";

TEST(Slots, NamesAndOther) {
  EXPECT_EQ(SystemPartitionName(Slot::kA), "nomados-system-a");
  EXPECT_EQ(BootEntryName(Slot::kB, true), "b-trial");
  EXPECT_EQ(OtherSlot(Slot::kA), Slot::kB);
  EXPECT_EQ(ParseSlot("b"), Slot::kB);
  EXPECT_FALSE(ParseSlot("c").has_value());
}

TEST(Slots, SyslinuxDefaultIsReplacedAndNothingElse) {
  auto entry = DefaultBootEntry(kSyslinux, BootConfigKind::kSyslinux);
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(*entry, "a");
  auto out = WithDefaultBootEntry(kSyslinux, BootConfigKind::kSyslinux, "b-trial");
  ASSERT_TRUE(out.ok()) << out.error().message();
  std::string want(kSyslinux);
  want.replace(0, 9, "DEFAULT b-trial");
  EXPECT_EQ(*out, want);
  EXPECT_EQ(*DefaultBootEntry(*out, BootConfigKind::kSyslinux), "b-trial");
}

TEST(Slots, SystemdBootAndGrubDefaults) {
  std::string loader = "timeout 0\ndefault a.conf\neditor no\n";
  auto l = WithDefaultBootEntry(loader, BootConfigKind::kSystemdBoot, "b");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*l, "timeout 0\ndefault b.conf\neditor no\n");
  EXPECT_EQ(*DefaultBootEntry(*l, BootConfigKind::kSystemdBoot), "b");
  std::string grub = "set timeout=0\nset default=a\nmenuentry \"NomadOS a\" --id a {\n}\n";
  auto g = WithDefaultBootEntry(grub, BootConfigKind::kGrub, "a-trial");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*DefaultBootEntry(*g, BootConfigKind::kGrub), "a-trial");
  EXPECT_NE(g->find("menuentry \"NomadOS a\" --id a {"), std::string::npos);
}

TEST(Slots, MissingDefaultLineAndBadEntryAreErrors) {
  auto none = WithDefaultBootEntry("PROMPT 0\n", BootConfigKind::kSyslinux, "a");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("syslinux.cfg"), std::string::npos);
  auto bad = WithDefaultBootEntry(kSyslinux, BootConfigKind::kSyslinux, "a\nLABEL x");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("boot entry"), std::string::npos);
}

TEST(Slots, PlanBoot) {
  // No slots on the command line: an image from before A/B; nothing to do.
  auto none = PlanBoot(std::nullopt, false, true);
  EXPECT_FALSE(none.revert_default_to || none.watch_trial || none.apply_bundle);
  // The trial boot of b first makes a the default again, then watches; it never applies a bundle.
  auto trial = PlanBoot(Slot::kB, true, true);
  EXPECT_EQ(trial.revert_default_to, "a");
  EXPECT_TRUE(trial.watch_trial);
  EXPECT_FALSE(trial.apply_bundle);
  // A committed slot with a bundle waiting writes it into the other slot.
  auto apply = PlanBoot(Slot::kA, false, true);
  EXPECT_EQ(apply.apply_bundle, Slot::kB);
  EXPECT_FALSE(apply.revert_default_to);
  EXPECT_EQ(apply.trial_outcome, TrialOutcome::kNone);
  auto idle = PlanBoot(Slot::kB, false, false);
  EXPECT_FALSE(idle.apply_bundle || idle.watch_trial || idle.revert_default_to || idle.clear_boot_once);
  // The trial boot drops a boot-once request its loader left behind.
  EXPECT_TRUE(trial.clear_boot_once);
}

TEST(Slots, PlanBootJudgesAnEarlierTrialByItsMarker) {
  // Back on a after a trial of b (the kernel panicked, the agent failed, or a reset): the trial failed.
  auto failed = PlanBoot(Slot::kA, false, false, Slot::kB);
  EXPECT_EQ(failed.trial_outcome, TrialOutcome::kFailed);
  EXPECT_FALSE(failed.watch_trial || failed.revert_default_to || failed.apply_bundle);
  // On b, committed (a power cut after the commit, before the marker was removed): nothing failed.
  EXPECT_EQ(PlanBoot(Slot::kB, false, false, Slot::kB).trial_outcome, TrialOutcome::kCommitted);
  // The trial boot itself leaves the marker to its verdict.
  auto trial = PlanBoot(Slot::kB, true, false, Slot::kB);
  EXPECT_EQ(trial.trial_outcome, TrialOutcome::kNone);
  EXPECT_TRUE(trial.watch_trial);
  // A failed trial does not block the next bundle.
  EXPECT_EQ(PlanBoot(Slot::kA, false, true, Slot::kB).apply_bundle, Slot::kB);
}

std::string Manifest(std::string_view extra = "") {
  std::string h(64, 'a');
  return "nomados-bundle 1\nversion v2 test\nfile system.ext4 4096 " + h + "\nfile vmlinuz 10 " + h +
         "\nfile initrd.img 20 " + h + "\n" + std::string(extra);
}

TEST(Slots, BundleManifest) {
  auto m = ParseBundleManifest(Manifest());
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(m->version, "v2 test");
  ASSERT_NE(m->Find("system.ext4"), nullptr);
  EXPECT_EQ(m->Find("system.ext4")->size, 4096u);
  for (auto [text, want] : {std::pair{Manifest("file vmlinuz 1 " + std::string(64, 'b') + "\n"), "twice"},
                            std::pair{Manifest("file x 1 ABC\n"), "sha256 'ABC'"},
                            std::pair{Manifest("file x 1e3 " + std::string(64, 'b') + "\n"), "size '1e3'"},
                            std::pair{Manifest("bogus 1\n"), "unknown key 'bogus'"},
                            std::pair{Manifest().substr(17), "no 'nomados-bundle 1'"},
                            std::pair{std::string("nomados-bundle 1\n"), "no file 'system.ext4'"}}) {
    auto bad = ParseBundleManifest(text);
    ASSERT_FALSE(bad.ok()) << want;
    EXPECT_NE(bad.error().message().find(want), std::string::npos) << bad.error().message();
  }
}

TEST(Slots, TrialWatchHealthyAfterAStableRun) {
  auto t0 = Clock::time_point{} + 1000s;
  TrialWatch w(t0, 20s, 120s);
  EXPECT_EQ(w.Observe(t0, std::nullopt, 0), TrialWatch::Verdict::kWaiting);
  EXPECT_EQ(w.Observe(t0 + 15s, t0 + 5s, 0), TrialWatch::Verdict::kWaiting);
  EXPECT_EQ(w.NextCheck(t0 + 15s, t0 + 5s), t0 + 25s);
  EXPECT_EQ(w.Observe(t0 + 25s, t0 + 5s, 0), TrialWatch::Verdict::kHealthy);
  // A restart resets the clock: the run that counts is the current one.
  EXPECT_EQ(w.Observe(t0 + 40s, t0 + 30s, 1), TrialWatch::Verdict::kWaiting);
}

TEST(Slots, TrialWatchFailsOnTimeoutOrRepeatedExits) {
  auto t0 = Clock::time_point{} + 1000s;
  TrialWatch w(t0, 20s, 60s);
  EXPECT_EQ(w.Observe(t0 + 59s, std::nullopt, 1), TrialWatch::Verdict::kWaiting);
  EXPECT_EQ(w.Observe(t0 + 60s, std::nullopt, 1), TrialWatch::Verdict::kFailed);
  EXPECT_EQ(w.Observe(t0 + 61s, t0 + 50s, 2), TrialWatch::Verdict::kFailed);
  EXPECT_EQ(w.NextCheck(t0 + 10s, std::nullopt), t0 + 60s);
  EXPECT_EQ(w.Observe(t0 + 5s, t0 + 4s, 3), TrialWatch::Verdict::kFailed);
}

TEST(Slots, CommandLine) {
  auto p = ParseHostOptions({"nomados.slot=b", "nomados.trial=1", "nomados.trial_timeout=90",
                             "nomados.trial_healthy=10", "nomados.grow_data=0"});
  EXPECT_TRUE(p.problems.empty());
  EXPECT_EQ(p.options.slot, Slot::kB);
  EXPECT_EQ(p.options.system_partition, "nomados-system-b");
  EXPECT_TRUE(p.options.trial);
  EXPECT_EQ(p.options.trial_timeout, std::chrono::seconds(90));
  EXPECT_EQ(p.options.trial_healthy, std::chrono::seconds(10));
  EXPECT_FALSE(p.options.grow_data);
  // An explicit nomados.system= wins over the slot's partition name; a bad slot is reported.
  p = ParseHostOptions({"nomados.system=mine", "nomados.slot=a"});
  EXPECT_EQ(p.options.system_partition, "mine");
  p = ParseHostOptions({"nomados.slot=c", "nomados.trial=yes"});
  ASSERT_EQ(p.problems.size(), 2u);
  EXPECT_NE(p.problems[0].message().find("nomados.slot='c'"), std::string::npos);
  EXPECT_NE(p.problems[1].message().find("nomados.trial='yes'"), std::string::npos);
  EXPECT_FALSE(p.options.slot.has_value());
  EXPECT_EQ(p.options.system_partition, "nomados-system");
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Sha256::HexOf(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256::HexOf("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256::HexOf("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 h;  // a million 'a's in uneven pieces crosses block boundaries
  std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left > 0) {
    size_t n = std::min(left, chunk.size());
    h.Update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(h.HexDigest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

}  // namespace
}  // namespace nfc::init::host
