// Conversions between the control protocol's wire messages and the value types in types.h. Internal to
// src/shim (the client and the server); nothing outside src/shim includes protobuf types.
#pragma once

#include "base/error.h"
#include "shim/control.pb.h"
#include "shim/types.h"

namespace nfc::shim {

void ToProto(const ExitResult& in, control::ExitResult* out);
ExitResult FromProto(const control::ExitResult& in);
void ToProto(const StatsSample& in, control::StatsResponse* out);
StatsSample FromProto(const control::StatsResponse& in);
void ToProto(const InspectInfo& in, control::InspectResponse* out);
InspectInfo FromProto(const control::InspectResponse& in);
void ToProto(const ExecRequest& in, control::ExecRequest* out);
ExecRequest FromProto(const control::ExecRequest& in);

// An error carried in a Response.
void ToProto(const Error& in, control::Response* out);
Error ErrorFromProto(const control::Response& in);

}  // namespace nfc::shim
