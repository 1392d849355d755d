// nfc::sandbox: who a confined VMM runs as (docs/security.md).
//
// UidPool hands each VM a uid of its own (and the gid of the same number) from a configured range, unique on
// the host across plugin processes and restarts. A lease is the file <pool_dir>/<uid> naming its owner, the
// task directory; every change happens under an exclusive flock of <pool_dir>/.lock. A lease whose owner
// directory is gone (a plugin that crashed between a start and its cleanup, a host that rebooted without the
// cleanup) is free again: the next Acquire takes it back, so nothing leaks for good.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace nfc::sandbox {

struct UidRange {
  uint32_t first = 0;
  uint32_t last = 0;
  // "200000-265535": both ends included, first >= 1, last < 2^32-1 (the "no id" value), first <= last.
  static Result<UidRange> Parse(std::string_view text);
  std::string ToString() const;
  bool operator==(const UidRange&) const = default;
};

class UidPool {
 public:
  UidPool(std::string pool_dir, UidRange range) : dir_(std::move(pool_dir)), range_(range) {}

  // The lowest free uid of the range, leased to `owner` (an existing directory). kResourceExhausted when all
  // are taken by live owners.
  Result<uint32_t> Acquire(const std::string& owner);
  // Ends `owner`'s lease of `uid`; a lease held by someone else (or none) is left alone.
  Status Release(uint32_t uid, const std::string& owner);
  // Removes every lease whose owner directory is gone (whatever the range); returns how many.
  Result<int> ReclaimOrphans();

 private:
  std::string dir_;
  UidRange range_;
};

}  // namespace nfc::sandbox
