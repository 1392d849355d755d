// Internal to the guest channel (agent client and nomad-init): protocol constants and conversions between the
// wire messages (agent.proto) and the public value types of agent_client.h. Not for use outside src/guest and
// src/init/guest: protobuf types stay behind this line.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/error.h"
#include "guest/agent.pb.h"
#include "guest/agent_client.h"

namespace nfc::guest {

inline constexpr uint32_t kProtocolVersion = 1;

GuestStatus FromProto(const v1::Status& status);
ExitReport FromProto(const v1::ExitResult& exit);
void ToProto(const ExitReport& exit, v1::ExitResult* out);
void ToProto(const BootTimes& boot, v1::BootTimes* out);
void AddOffsets(const LogOffsets& offsets, google::protobuf::RepeatedPtrField<v1::StreamOffset>* out);
LogOffsets OffsetsFromProto(const google::protobuf::RepeatedPtrField<v1::StreamOffset>& in);

// Reply.error_code carries ErrorCodeName(); unknown names map to kInternal.
ErrorCode ErrorCodeFromName(std::string_view name);

}  // namespace nfc::guest
