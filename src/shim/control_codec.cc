#include "shim/control_codec.h"

namespace nfc::shim {

void ToProto(const ExitResult& in, control::ExitResult* out) {
  out->set_exit_code(in.exit_code);
  out->set_signal(in.signal);
  out->set_oom_killed(in.oom_killed);
  out->set_err(in.err);
  out->set_completed_at_unix_nanos(in.completed_at_unix_nanos);
}

ExitResult FromProto(const control::ExitResult& in) {
  return {in.exit_code(), in.signal(), in.oom_killed(), in.err(), in.completed_at_unix_nanos()};
}

void ToProto(const StatsSample& in, control::StatsResponse* out) {
  out->set_sampled_at_unix_nanos(in.sampled_at_unix_nanos);
  out->set_guest_available(in.guest_available);
  out->set_guest_cpu_user_nanos(in.guest_cpu_user_nanos);
  out->set_guest_cpu_system_nanos(in.guest_cpu_system_nanos);
  out->set_guest_memory_rss_bytes(in.guest_memory_rss_bytes);
  out->set_guest_memory_cache_bytes(in.guest_memory_cache_bytes);
  out->set_guest_memory_usage_bytes(in.guest_memory_usage_bytes);
  out->set_guest_memory_swap_bytes(in.guest_memory_swap_bytes);
  out->set_vmm_cpu_user_nanos(in.vmm_cpu_user_nanos);
  out->set_vmm_cpu_system_nanos(in.vmm_cpu_system_nanos);
  out->set_vmm_rss_bytes(in.vmm_rss_bytes);
  out->set_vmm_pid(in.vmm_pid);
  out->set_vcpus(in.vcpus);
}

StatsSample FromProto(const control::StatsResponse& in) {
  StatsSample s;
  s.sampled_at_unix_nanos = in.sampled_at_unix_nanos();
  s.guest_available = in.guest_available();
  s.guest_cpu_user_nanos = in.guest_cpu_user_nanos();
  s.guest_cpu_system_nanos = in.guest_cpu_system_nanos();
  s.guest_memory_rss_bytes = in.guest_memory_rss_bytes();
  s.guest_memory_cache_bytes = in.guest_memory_cache_bytes();
  s.guest_memory_usage_bytes = in.guest_memory_usage_bytes();
  s.guest_memory_swap_bytes = in.guest_memory_swap_bytes();
  s.vmm_cpu_user_nanos = in.vmm_cpu_user_nanos();
  s.vmm_cpu_system_nanos = in.vmm_cpu_system_nanos();
  s.vmm_rss_bytes = in.vmm_rss_bytes();
  s.vmm_pid = in.vmm_pid();
  s.vcpus = in.vcpus();
  return s;
}

namespace {
control::TaskState PhaseToProto(Phase phase) {
  switch (phase) {
    case Phase::kCreated:
      return control::TASK_STATE_CREATED;
    case Phase::kBooting:
      return control::TASK_STATE_BOOTING;
    case Phase::kRunning:
      return control::TASK_STATE_RUNNING;
    case Phase::kStopping:
      return control::TASK_STATE_STOPPING;
    case Phase::kExited:
    case Phase::kShutDown:
      return control::TASK_STATE_EXITED;
  }
  return control::TASK_STATE_UNSPECIFIED;
}
Phase PhaseFromProto(control::TaskState state) {
  switch (state) {
    case control::TASK_STATE_CREATED:
      return Phase::kCreated;
    case control::TASK_STATE_RUNNING:
      return Phase::kRunning;
    case control::TASK_STATE_STOPPING:
      return Phase::kStopping;
    case control::TASK_STATE_EXITED:
      return Phase::kExited;
    default:
      return Phase::kBooting;
  }
}
}  // namespace

void ToProto(const InspectInfo& in, control::InspectResponse* out) {
  out->set_state(PhaseToProto(in.state));
  out->set_started_at_unix_nanos(in.started_at_unix_nanos);
  if (in.exited) ToProto(in.result, out->mutable_result());
  out->set_guest_boot_id(in.guest_boot_id);
  out->set_shim_pid(in.shim_pid);
  out->set_vmm_pid(in.vmm_pid);
  out->set_backend(in.backend);
  out->set_stdout_offset(in.stdout_offset);
  out->set_stderr_offset(in.stderr_offset);
  out->set_vmm_started_millis(in.timings.vmm_started_millis);
  out->set_guest_connected_millis(in.timings.guest_connected_millis);
  out->set_workload_started_millis(in.timings.workload_started_millis);
  out->set_guest_init_started_millis(in.timings.guest_init_started_millis);
  out->set_guest_workload_exec_millis(in.timings.guest_workload_exec_millis);
  out->set_last_error(in.last_error);
}

InspectInfo FromProto(const control::InspectResponse& in) {
  InspectInfo i;
  i.state = PhaseFromProto(in.state());
  i.started_at_unix_nanos = in.started_at_unix_nanos();
  i.exited = in.has_result();
  if (i.exited) i.result = FromProto(in.result());
  i.guest_boot_id = in.guest_boot_id();
  i.shim_pid = in.shim_pid();
  i.vmm_pid = in.vmm_pid();
  i.backend = in.backend();
  i.stdout_offset = in.stdout_offset();
  i.stderr_offset = in.stderr_offset();
  i.timings.vmm_started_millis = in.vmm_started_millis();
  i.timings.guest_connected_millis = in.guest_connected_millis();
  i.timings.workload_started_millis = in.workload_started_millis();
  i.timings.guest_init_started_millis = in.guest_init_started_millis();
  i.timings.guest_workload_exec_millis = in.guest_workload_exec_millis();
  i.last_error = in.last_error();
  return i;
}

void ToProto(const ExecRequest& in, control::ExecRequest* out) {
  for (const auto& a : in.argv) out->add_argv(a);
  out->set_tty(in.tty);
  out->set_rows(in.rows);
  out->set_cols(in.cols);
  out->set_timeout_millis(in.timeout_millis);
}

ExecRequest FromProto(const control::ExecRequest& in) {
  ExecRequest r;
  r.argv.assign(in.argv().begin(), in.argv().end());
  r.tty = in.tty();
  r.rows = in.rows();
  r.cols = in.cols();
  r.timeout_millis = in.timeout_millis();
  return r;
}

void ToProto(const Error& in, control::Response* out) {
  out->set_error(in.message().empty() ? std::string(ErrorCodeName(in.code())) : in.message());
  out->set_error_code(static_cast<int32_t>(in.code()));
}

Error ErrorFromProto(const control::Response& in) {
  int code = in.error_code();
  if (code < 0 || code > static_cast<int>(ErrorCode::kInternal))
    code = static_cast<int>(ErrorCode::kInternal);
  return Error(static_cast<ErrorCode>(code), in.error());
}

}  // namespace nfc::shim
