#include "init/host/slots.h"

#include <algorithm>
#include <charconv>

namespace nfc::init::host {
namespace {

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    lines.push_back(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
  }
  return lines;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string_view KindName(BootConfigKind kind) {
  switch (kind) {
    case BootConfigKind::kSyslinux:
      return "syslinux.cfg";
    case BootConfigKind::kSystemdBoot:
      return "loader.conf";
    case BootConfigKind::kGrub:
      return "grub.cfg";
  }
  return "?";
}

// The default line's keyword (case-insensitive for syslinux), and how the entry is spelled after it.
std::string_view Keyword(BootConfigKind kind) {
  switch (kind) {
    case BootConfigKind::kSyslinux:
      return "default ";
    case BootConfigKind::kSystemdBoot:
      return "default ";
    case BootConfigKind::kGrub:
      return "set default=";
  }
  return "";
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  return std::equal(prefix.begin(), prefix.end(), s.begin(),
                    [](char a, char b) { return std::tolower(a) == std::tolower(b); });
}

// Index of the default line, or nullopt.
std::optional<size_t> FindDefaultLine(const std::vector<std::string_view>& lines, BootConfigKind kind) {
  for (size_t i = 0; i < lines.size(); i++) {
    if (StartsWithNoCase(Trim(lines[i]), Keyword(kind))) return i;
  }
  return std::nullopt;
}

bool SafeEntryName(std::string_view e) {
  return !e.empty() && e.size() <= 32 && std::all_of(e.begin(), e.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
}

bool IsHex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::vector<std::string_view> Words(std::string_view line) {
  std::vector<std::string_view> words;
  while (!(line = Trim(line)).empty()) {
    size_t sp = line.find_first_of(" \t");
    words.push_back(line.substr(0, sp));
    line = sp == std::string_view::npos ? std::string_view{} : line.substr(sp);
  }
  return words;
}

}  // namespace

std::string_view SlotName(Slot slot) {
  return slot == Slot::kA ? "a" : "b";
}

std::optional<Slot> ParseSlot(std::string_view name) {
  if (name == "a" || name == "A") return Slot::kA;
  if (name == "b" || name == "B") return Slot::kB;
  return std::nullopt;
}

Slot OtherSlot(Slot slot) {
  return slot == Slot::kA ? Slot::kB : Slot::kA;
}

std::string SystemPartitionName(Slot slot) {
  return "nomados-system-" + std::string(SlotName(slot));
}

std::string BootEntryName(Slot slot, bool trial) {
  return std::string(SlotName(slot)) + (trial ? "-trial" : "");
}

Result<std::string> DefaultBootEntry(std::string_view config, BootConfigKind kind) {
  auto lines = Lines(config);
  auto i = FindDefaultLine(lines, kind);
  if (!i) return Error::NotFound(std::string(KindName(kind)) + ": no default line");
  std::string_view value = Trim(Trim(lines[*i]).substr(Keyword(kind).size()));
  if (kind == BootConfigKind::kSystemdBoot && value.size() > 5 && value.substr(value.size() - 5) == ".conf")
    value.remove_suffix(5);
  if (kind == BootConfigKind::kGrub && value.size() >= 2 && value.front() == '"' && value.back() == '"')
    value = value.substr(1, value.size() - 2);
  return std::string(value);
}

Result<std::string> WithDefaultBootEntry(std::string_view config, BootConfigKind kind,
                                         std::string_view entry) {
  if (!SafeEntryName(entry))
    return Error::InvalidArgument("boot entry '" + std::string(entry) + "': want letters, digits, - and _");
  auto lines = Lines(config);
  auto i = FindDefaultLine(lines, kind);
  if (!i) return Error::NotFound(std::string(KindName(kind)) + ": no default line");
  std::string replacement;
  switch (kind) {
    case BootConfigKind::kSyslinux:
      replacement = "DEFAULT " + std::string(entry);
      break;
    case BootConfigKind::kSystemdBoot:
      replacement = "default " + std::string(entry) + ".conf";
      break;
    case BootConfigKind::kGrub:
      replacement = "set default=" + std::string(entry);
      break;
  }
  std::string out;
  for (size_t k = 0; k < lines.size(); k++) {
    out += k == *i ? std::string_view(replacement) : lines[k];
    out += '\n';
  }
  if (!config.empty() && config.back() != '\n') out.pop_back();
  return out;
}

BootPlan PlanBoot(std::optional<Slot> booted, bool trial, bool bundle_pending,
                  std::optional<Slot> trial_marker) {
  BootPlan plan;
  if (!booted) return plan;
  if (trial) {
    plan.revert_default_to = BootEntryName(OtherSlot(*booted), false);
    plan.clear_boot_once = true;
    plan.watch_trial = true;
    return plan;
  }
  if (trial_marker)
    plan.trial_outcome = *trial_marker == *booted ? TrialOutcome::kCommitted : TrialOutcome::kFailed;
  if (bundle_pending) plan.apply_bundle = OtherSlot(*booted);
  return plan;
}

const BundleFile* BundleManifest::Find(std::string_view name) const {
  for (const auto& f : files) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

Result<BundleManifest> ParseBundleManifest(std::string_view text) {
  BundleManifest m;
  bool header = false;
  int line_no = 0;
  for (auto line : Lines(text)) {
    line_no++;
    auto w = Words(line);
    auto where = "bundle manifest line " + std::to_string(line_no) + ": ";
    if (w.empty() || w[0].front() == '#') continue;
    if (w[0] == "nomados-bundle") {
      if (w.size() != 2 || w[1] != "1") return Error::InvalidArgument(where + "want 'nomados-bundle 1'");
      header = true;
    } else if (w[0] == "version") {
      m.version = std::string(Trim(line).substr(7));
      m.version = std::string(Trim(m.version));
    } else if (w[0] == "file") {
      if (w.size() != 4) return Error::InvalidArgument(where + "want 'file NAME SIZE SHA256'");
      BundleFile f{.name = std::string(w[1]), .size = 0, .sha256 = std::string(w[3])};
      auto [p, ec] = std::from_chars(w[2].data(), w[2].data() + w[2].size(), f.size);
      if (ec != std::errc() || p != w[2].data() + w[2].size())
        return Error::InvalidArgument(where + "size '" + std::string(w[2]) + "' is not a number");
      if (!IsHex64(f.sha256))
        return Error::InvalidArgument(where + "sha256 '" + f.sha256 + "': want 64 lower-case hex digits");
      if (m.Find(f.name)) return Error::InvalidArgument(where + "file '" + f.name + "' listed twice");
      m.files.push_back(std::move(f));
    } else {
      return Error::InvalidArgument(where + "unknown key '" + std::string(w[0]) + "'");
    }
  }
  if (!header) return Error::InvalidArgument("bundle manifest: no 'nomados-bundle 1' line");
  for (const char* need : {"system.ext4", "vmlinuz", "initrd.img"}) {
    if (!m.Find(need)) return Error::InvalidArgument(std::string("bundle manifest: no file '") + need + "'");
  }
  return m;
}

TrialWatch::Verdict TrialWatch::Observe(Clock::time_point now, std::optional<Clock::time_point> running_since,
                                        int exits) const {
  if (exits >= max_exits_) return Verdict::kFailed;
  if (running_since && now - *running_since >= healthy_after_) return Verdict::kHealthy;
  if (now - start_ >= timeout_) return Verdict::kFailed;
  return Verdict::kWaiting;
}

TrialWatch::Clock::time_point TrialWatch::NextCheck(Clock::time_point now,
                                                    std::optional<Clock::time_point> running_since) const {
  auto next = start_ + timeout_;
  if (running_since) next = std::min(next, *running_since + healthy_after_);
  return std::max(next, now);
}

}  // namespace nfc::init::host
