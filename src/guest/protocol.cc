#include "guest/protocol.h"

namespace nfc::guest {

LogOffsets OffsetsFromProto(const google::protobuf::RepeatedPtrField<v1::StreamOffset>& in) {
  LogOffsets o;
  for (const auto& s : in) {
    if (s.stream() == v1::STREAM_STDOUT) o.stdout_offset = s.offset();
    if (s.stream() == v1::STREAM_STDERR) o.stderr_offset = s.offset();
  }
  return o;
}

void AddOffsets(const LogOffsets& offsets, google::protobuf::RepeatedPtrField<v1::StreamOffset>* out) {
  auto* a = out->Add();
  a->set_stream(v1::STREAM_STDOUT);
  a->set_offset(offsets.stdout_offset);
  auto* b = out->Add();
  b->set_stream(v1::STREAM_STDERR);
  b->set_offset(offsets.stderr_offset);
}

ExitReport FromProto(const v1::ExitResult& e) {
  ExitReport r;
  r.exit_code = e.exit_code();
  r.signal = e.signal();
  r.oom_killed = e.oom_killed();
  r.err = e.error();
  r.log_end = OffsetsFromProto(e.log_end());
  return r;
}

void ToProto(const ExitReport& e, v1::ExitResult* out) {
  out->set_exit_code(e.exit_code);
  out->set_signal(e.signal);
  out->set_oom_killed(e.oom_killed);
  out->set_error(e.err);
  AddOffsets(e.log_end, out->mutable_log_end());
}

void ToProto(const BootTimes& b, v1::BootTimes* out) {
  out->set_init_start_ns(b.init_start_ns);
  out->set_config_loaded_ns(b.config_loaded_ns);
  out->set_root_mounted_ns(b.root_mounted_ns);
  out->set_network_up_ns(b.network_up_ns);
  out->set_workload_execve_ns(b.workload_execve_ns);
  out->set_workload_exit_ns(b.workload_exit_ns);
}

GuestStatus FromProto(const v1::Status& s) {
  GuestStatus g;
  switch (s.phase()) {
    case v1::PHASE_BOOTING:
      g.phase = GuestPhase::kBooting;
      break;
    case v1::PHASE_RUNNING:
      g.phase = GuestPhase::kRunning;
      break;
    case v1::PHASE_STOPPING:
      g.phase = GuestPhase::kStopping;
      break;
    case v1::PHASE_EXITED:
      g.phase = GuestPhase::kExited;
      break;
    case v1::PHASE_FAILED:
      g.phase = GuestPhase::kFailed;
      break;
    case v1::PHASE_SHUTTING_DOWN:
      g.phase = GuestPhase::kShuttingDown;
      break;
    case v1::PHASE_AWAITING_TASK:
      g.phase = GuestPhase::kAwaitingTask;
      break;
    default:
      g.phase = GuestPhase::kUnknown;
      break;
  }
  g.error = s.error();
  const auto& b = s.boot();
  g.boot = {b.init_start_ns(), b.config_loaded_ns(),   b.root_mounted_ns(),
            b.network_up_ns(), b.workload_execve_ns(), b.workload_exit_ns()};
  if (s.has_exit()) g.exit = FromProto(s.exit());
  g.log_acked = OffsetsFromProto(s.log_acked());
  g.log_written = OffsetsFromProto(s.log_written());
  g.workload_pid = s.workload_pid();
  g.task_id = s.task_id();
  g.boot_id = s.boot_id();
  return g;
}

ErrorCode ErrorCodeFromName(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(ErrorCode::kInternal); c++) {
    if (ErrorCodeName(static_cast<ErrorCode>(c)) == name) return static_cast<ErrorCode>(c);
  }
  return ErrorCode::kInternal;
}

}  // namespace nfc::guest
