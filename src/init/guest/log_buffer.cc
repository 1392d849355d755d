#include "init/guest/log_buffer.h"

#include <algorithm>

namespace nfc::init::guest {

size_t LogBuffer::Append(std::string_view bytes) {
  size_t n = static_cast<size_t>(std::min<uint64_t>(bytes.size(), free_space()));
  data_.append(bytes.data(), n);
  return n;
}

void LogBuffer::Ack(uint64_t offset) {
  if (offset <= start_) return;
  offset = std::min(offset, end());
  head_ += static_cast<size_t>(offset - start_);
  start_ = offset;
  // Compact once the dead prefix dominates, so memory stays within ~2x capacity and copies stay amortised.
  if (head_ >= data_.size() / 2 || head_ > (1u << 20)) {
    data_.erase(0, head_);
    head_ = 0;
  }
}

std::string_view LogBuffer::Read(uint64_t offset, size_t max) const {
  offset = std::max(offset, start_);
  if (offset >= end()) return {};
  size_t at = head_ + static_cast<size_t>(offset - start_);
  return std::string_view(data_).substr(at, std::min(max, data_.size() - at));
}

}  // namespace nfc::init::guest
