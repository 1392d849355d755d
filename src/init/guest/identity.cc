#include "init/guest/identity.h"

#include <algorithm>
#include <charconv>
#include <optional>

namespace nfc::init::guest {
namespace {

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t end = s.find(sep, start);
    out.emplace_back(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return out;
}

std::optional<uint32_t> Number(std::string_view s) {
  uint32_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Lines of a colon-separated database, skipping comments and malformed lines.
std::vector<std::vector<std::string>> Records(std::string_view db, size_t min_fields) {
  std::vector<std::vector<std::string>> out;
  for (const auto& line : Split(db, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    auto f = Split(line, ':');
    if (f.size() >= min_fields) out.push_back(std::move(f));
  }
  return out;
}

Result<gid_t> ResolveGroup(std::string_view g, std::string_view group_db, const std::string& what) {
  for (const auto& r : Records(group_db, 3)) {
    if (r[0] == g) {
      if (auto n = Number(r[2])) return static_cast<gid_t>(*n);
    }
  }
  if (auto n = Number(g)) return static_cast<gid_t>(*n);
  return Error::NotFound(what + ": group \"" + std::string(g) + "\" not found in the image's /etc/group");
}

}  // namespace

Result<Identity> ResolveIdentity(std::string_view user, std::string_view passwd, std::string_view group_db,
                                 const std::vector<std::string>& extra_groups) {
  Identity id;
  std::string_view user_part = user;
  std::string_view group_part;
  bool has_group = false;
  if (size_t colon = user.find(':'); colon != std::string_view::npos) {
    user_part = user.substr(0, colon);
    group_part = user.substr(colon + 1);
    has_group = true;
  }
  if (user_part.empty()) user_part = "0";
  const std::string what = "user \"" + std::string(user) + "\"";

  bool found = false;
  for (const auto& r : Records(passwd, 7)) {
    auto uid = Number(r[2]);
    auto gid = Number(r[3]);
    if (!uid || !gid) continue;
    if (r[0] == user_part || (Number(user_part) && *Number(user_part) == *uid)) {
      id.uid = *uid;
      id.gid = *gid;
      id.name = r[0];
      id.home = r[5].empty() ? "/" : r[5];
      found = true;
      break;
    }
  }
  if (!found) {
    auto n = Number(user_part);
    if (!n)
      return Error::NotFound(what + ": no user \"" + std::string(user_part) +
                             "\" in the image's /etc/passwd");
    id.uid = *n;
    id.gid = 0;  // what Docker does for an unknown numeric uid without a group
  }
  if (has_group) {
    if (group_part.empty()) return Error::InvalidArgument(what + ": empty group");
    NFC_ASSIGN_OR_RETURN(id.gid, ResolveGroup(group_part, group_db, what));
  }

  id.groups.push_back(id.gid);
  // Supplementary groups from /etc/group membership only apply when the primary group was not forced (as
  // runc).
  if (!id.name.empty() && !has_group) {
    for (const auto& r : Records(group_db, 4)) {
      auto gid = Number(r[2]);
      if (!gid) continue;
      for (const auto& member : Split(r[3], ',')) {
        if (member == id.name) id.groups.push_back(*gid);
      }
    }
  }
  for (const auto& g : extra_groups) {
    NFC_ASSIGN_OR_RETURN(gid_t gid, ResolveGroup(g, group_db, "process.groups"));
    id.groups.push_back(gid);
  }
  std::sort(id.groups.begin(), id.groups.end());
  id.groups.erase(std::unique(id.groups.begin(), id.groups.end()), id.groups.end());
  return id;
}

}  // namespace nfc::init::guest
