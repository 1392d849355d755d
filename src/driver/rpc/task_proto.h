// Conversions between the Driver service's protobuf messages and the plain structs of task_manager.h.
#pragma once

#include "driver/task_events.h"
#include "driver/task_manager.h"
#include "plugins/drivers/proto/driver.pb.h"

namespace nfc::driver::rpc {

namespace pb = hashicorp::nomad::plugins::drivers::proto;

NomadTask TaskFromProto(const pb::TaskConfig& in);
void TaskToProto(const NomadTask& in, pb::TaskConfig* out);
TaskHandle HandleFromProto(const pb::TaskHandle& in);
void HandleToProto(const TaskHandle& in, pb::TaskHandle* out);
void ExitResultToProto(const ExitResult& in, pb::ExitResult* out);
void NetworkOverrideToProto(const NetworkOverride& in, pb::NetworkOverride* out);
void InspectionToProto(const TaskInspection& in, pb::InspectTaskResponse* out);
void StatsToProto(const std::string& task_id, const TaskStatsSample& in, pb::TaskStats* out);
void EventToProto(const TaskEvent& in, pb::DriverTaskEvent* out);

}  // namespace nfc::driver::rpc
