// The task config as Nomad sends it (cty msgpack in TaskConfig.msgpack_driver_config; a job author writes the
// values): DecodeCtyMsgpack within its limits, then DecodeTaskConfig on whatever decoded.
#include <cstdint>

#include "driver/cty_value.h"
#include "driver/task_config.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto value = nfc::driver::DecodeCtyMsgpack(nfc::fuzz::AsText(data, size));
  if (!value.ok()) return 0;
  auto config = nfc::driver::DecodeTaskConfig(*value);
  if (!config.ok()) NFC_FUZZ_CHECK(!config.error().message().empty());  // errors say what was wrong
  return 0;
}
