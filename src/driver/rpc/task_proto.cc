#include "driver/rpc/task_proto.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

namespace nfc::driver::rpc {
namespace {

using google::protobuf::Timestamp;

void TimeToProto(std::chrono::system_clock::time_point t, Timestamp* out) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  out->set_seconds(ns / 1000000000);
  out->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

template <typename Map>
std::map<std::string, std::string> ToStdMap(const Map& m) {
  return std::map<std::string, std::string>(m.begin(), m.end());
}

pb::NetworkIsolationSpec::NetworkIsolationMode ModeToProto(NetworkIsolation::Mode mode) {
  switch (mode) {
    case NetworkIsolation::Mode::kHost:
      return pb::NetworkIsolationSpec::HOST;
    case NetworkIsolation::Mode::kGroup:
      return pb::NetworkIsolationSpec::GROUP;
    case NetworkIsolation::Mode::kTask:
      return pb::NetworkIsolationSpec::TASK;
    case NetworkIsolation::Mode::kNone:
      return pb::NetworkIsolationSpec::NONE;
  }
  return pb::NetworkIsolationSpec::HOST;
}

NetworkIsolation::Mode ModeFromProto(pb::NetworkIsolationSpec::NetworkIsolationMode mode) {
  switch (mode) {
    case pb::NetworkIsolationSpec::GROUP:
      return NetworkIsolation::Mode::kGroup;
    case pb::NetworkIsolationSpec::TASK:
      return NetworkIsolation::Mode::kTask;
    case pb::NetworkIsolationSpec::NONE:
      return NetworkIsolation::Mode::kNone;
    default:
      return NetworkIsolation::Mode::kHost;
  }
}

pb::TaskState StateToProto(TaskState s) {
  switch (s) {
    case TaskState::kRunning:
      return pb::RUNNING;
    case TaskState::kExited:
      return pb::EXITED;
    default:
      return pb::UNKNOWN;
  }
}

bool Measured(const std::vector<std::string>& list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

}  // namespace

NomadTask TaskFromProto(const pb::TaskConfig& in) {
  NomadTask t;
  t.id = in.id();
  t.name = in.name();
  t.alloc_id = in.alloc_id();
  t.job_name = in.job_name();
  t.job_id = in.job_id();
  t.task_group_name = in.task_group_name();
  t.namespace_name = in.namespace_();
  t.node_name = in.node_name();
  t.node_id = in.node_id();
  t.user = in.user();
  t.alloc_dir = in.alloc_dir();
  t.stdout_path = in.stdout_path();
  t.stderr_path = in.stderr_path();
  t.env = ToStdMap(in.env());
  t.device_env = ToStdMap(in.device_env());
  if (in.has_resources()) {
    const auto& r = in.resources();
    t.resources.cpu_shares = r.allocated_resources().cpu().cpu_shares();
    t.resources.memory_mb = r.allocated_resources().memory().memory_mb();
    t.resources.memory_max_mb = r.allocated_resources().memory().memory_max_mb();
    t.resources.memory_limit_bytes = r.linux_resources().memory_limit_bytes();
    t.resources.cpuset_cpus = r.linux_resources().cpuset_cpus();
    t.resources.cpu_quota = r.linux_resources().cpu_quota();
    t.resources.cpu_period = r.linux_resources().cpu_period();
    t.resources.percent_ticks = r.linux_resources().percentticks();
    for (const auto& p : r.ports()) t.resources.ports.push_back({p.label(), p.value(), p.to(), p.host_ip()});
  }
  for (const auto& m : in.mounts()) {
    t.mounts.push_back({m.task_path(), m.host_path(), m.readonly(), m.propagation_mode(), m.selinux_label(),
                        m.request_name()});
  }
  for (const auto& d : in.devices())
    t.devices.push_back({d.task_path(), d.host_path(), d.cgroup_permissions()});
  if (in.has_network_isolation_spec()) {
    const auto& n = in.network_isolation_spec();
    NetworkIsolation net;
    net.mode = ModeFromProto(n.mode());
    net.netns_path = n.path();
    net.labels = ToStdMap(n.labels());
    net.hostname = n.hostsconfig().hostname();
    net.address = n.hostsconfig().address();
    t.network = std::move(net);
  }
  if (in.has_dns()) {
    DnsSettings dns;
    dns.servers.assign(in.dns().servers().begin(), in.dns().servers().end());
    dns.searches.assign(in.dns().searches().begin(), in.dns().searches().end());
    dns.options.assign(in.dns().options().begin(), in.dns().options().end());
    t.dns = std::move(dns);
  }
  return t;
}

void TaskToProto(const NomadTask& t, pb::TaskConfig* out) {
  out->set_id(t.id);
  out->set_name(t.name);
  out->set_alloc_id(t.alloc_id);
  out->set_job_name(t.job_name);
  out->set_job_id(t.job_id);
  out->set_task_group_name(t.task_group_name);
  out->set_namespace_(t.namespace_name);
  out->set_node_name(t.node_name);
  out->set_node_id(t.node_id);
  out->set_user(t.user);
  out->set_alloc_dir(t.alloc_dir);
  out->set_stdout_path(t.stdout_path);
  out->set_stderr_path(t.stderr_path);
  out->mutable_env()->insert(t.env.begin(), t.env.end());
  out->mutable_device_env()->insert(t.device_env.begin(), t.device_env.end());
  auto* r = out->mutable_resources();
  r->mutable_allocated_resources()->mutable_cpu()->set_cpu_shares(t.resources.cpu_shares);
  r->mutable_allocated_resources()->mutable_memory()->set_memory_mb(t.resources.memory_mb);
  r->mutable_allocated_resources()->mutable_memory()->set_memory_max_mb(t.resources.memory_max_mb);
  r->mutable_linux_resources()->set_memory_limit_bytes(t.resources.memory_limit_bytes);
  r->mutable_linux_resources()->set_cpu_shares(t.resources.cpu_shares);
  r->mutable_linux_resources()->set_cpuset_cpus(t.resources.cpuset_cpus);
  r->mutable_linux_resources()->set_cpu_quota(t.resources.cpu_quota);
  r->mutable_linux_resources()->set_cpu_period(t.resources.cpu_period);
  r->mutable_linux_resources()->set_percentticks(t.resources.percent_ticks);
  for (const PortMapping& p : t.resources.ports) {
    auto* pm = r->add_ports();
    pm->set_label(p.label);
    pm->set_value(p.host_port);
    pm->set_to(p.task_port);
    pm->set_host_ip(p.host_ip);
  }
  for (const MountSpec& m : t.mounts) {
    auto* pm = out->add_mounts();
    pm->set_task_path(m.task_path);
    pm->set_host_path(m.host_path);
    pm->set_readonly(m.readonly);
    pm->set_propagation_mode(m.propagation_mode);
    pm->set_selinux_label(m.selinux_label);
    pm->set_request_name(m.request_name);
  }
  for (const DeviceSpec& d : t.devices) {
    auto* pd = out->add_devices();
    pd->set_task_path(d.task_path);
    pd->set_host_path(d.host_path);
    pd->set_cgroup_permissions(d.cgroup_permissions);
  }
  if (t.network) {
    auto* n = out->mutable_network_isolation_spec();
    n->set_mode(ModeToProto(t.network->mode));
    n->set_path(t.network->netns_path);
    n->mutable_labels()->insert(t.network->labels.begin(), t.network->labels.end());
    if (!t.network->hostname.empty() || !t.network->address.empty()) {
      n->mutable_hostsconfig()->set_hostname(t.network->hostname);
      n->mutable_hostsconfig()->set_address(t.network->address);
    }
  }
  if (t.dns) {
    auto* d = out->mutable_dns();
    for (const auto& s : t.dns->servers) d->add_servers(s);
    for (const auto& s : t.dns->searches) d->add_searches(s);
    for (const auto& s : t.dns->options) d->add_options(s);
  }
}

TaskHandle HandleFromProto(const pb::TaskHandle& in) {
  TaskHandle h;
  h.version = in.version();
  h.config = TaskFromProto(in.config());
  h.state = in.state() == pb::RUNNING  ? TaskState::kRunning
            : in.state() == pb::EXITED ? TaskState::kExited
                                       : TaskState::kUnknown;
  h.driver_state = in.driver_state();
  return h;
}

void HandleToProto(const TaskHandle& in, pb::TaskHandle* out) {
  out->set_version(in.version);
  TaskToProto(in.config, out->mutable_config());
  out->set_state(StateToProto(in.state));
  out->set_driver_state(in.driver_state);
}

void ExitResultToProto(const ExitResult& in, pb::ExitResult* out) {
  out->set_exit_code(in.exit_code);
  out->set_signal(in.signal);
  out->set_oom_killed(in.oom_killed);
}

void NetworkOverrideToProto(const NetworkOverride& in, pb::NetworkOverride* out) {
  out->mutable_port_map()->insert(in.port_map.begin(), in.port_map.end());
  out->set_addr(in.address);
  out->set_auto_advertise(in.auto_advertise);
}

void InspectionToProto(const TaskInspection& in, pb::InspectTaskResponse* out) {
  auto* task = out->mutable_task();
  task->set_id(in.id);
  task->set_name(in.name);
  task->set_state(StateToProto(in.state));
  // Both timestamps must be present (the client errors on nil ones); zero time when not applicable.
  TimeToProto(in.started_at, task->mutable_started_at());
  TimeToProto(in.completed_at, task->mutable_completed_at());
  ExitResultToProto(in.result, task->mutable_result());
  out->mutable_driver()->mutable_attributes()->insert(in.driver_attributes.begin(),
                                                      in.driver_attributes.end());
  if (in.network) NetworkOverrideToProto(*in.network, out->mutable_network_override());
}

void StatsToProto(const std::string& task_id, const TaskStatsSample& in, pb::TaskStats* out) {
  out->set_id(task_id);
  TimeToProto(in.timestamp, out->mutable_timestamp());
  auto* cpu = out->mutable_agg_resource_usage()->mutable_cpu();
  cpu->set_system_mode(in.cpu_system_percent);
  cpu->set_user_mode(in.cpu_user_percent);
  cpu->set_total_ticks(in.cpu_total_ticks);
  cpu->set_throttled_periods(in.cpu_throttled_periods);
  cpu->set_throttled_time(in.cpu_throttled_time);
  cpu->set_percent(in.cpu_percent);
  if (Measured(in.cpu_measured, "System Mode")) cpu->add_measured_fields(pb::CPUUsage::SYSTEM_MODE);
  if (Measured(in.cpu_measured, "User Mode")) cpu->add_measured_fields(pb::CPUUsage::USER_MODE);
  if (Measured(in.cpu_measured, "Total Ticks")) cpu->add_measured_fields(pb::CPUUsage::TOTAL_TICKS);
  if (Measured(in.cpu_measured, "Throttled Periods"))
    cpu->add_measured_fields(pb::CPUUsage::THROTTLED_PERIODS);
  if (Measured(in.cpu_measured, "Throttled Time")) cpu->add_measured_fields(pb::CPUUsage::THROTTLED_TIME);
  if (Measured(in.cpu_measured, "Percent")) cpu->add_measured_fields(pb::CPUUsage::PERCENT);
  auto* mem = out->mutable_agg_resource_usage()->mutable_memory();
  mem->set_rss(in.memory_rss);
  mem->set_cache(in.memory_cache);
  mem->set_swap(in.memory_swap);
  mem->set_usage(in.memory_usage);
  mem->set_max_usage(in.memory_max_usage);
  if (Measured(in.memory_measured, "RSS")) mem->add_measured_fields(pb::MemoryUsage::RSS);
  if (Measured(in.memory_measured, "Cache")) mem->add_measured_fields(pb::MemoryUsage::CACHE);
  if (Measured(in.memory_measured, "Swap")) mem->add_measured_fields(pb::MemoryUsage::SWAP);
  if (Measured(in.memory_measured, "Usage")) mem->add_measured_fields(pb::MemoryUsage::USAGE);
  if (Measured(in.memory_measured, "Max Usage")) mem->add_measured_fields(pb::MemoryUsage::MAX_USAGE);
}

void EventToProto(const TaskEvent& in, pb::DriverTaskEvent* out) {
  out->set_task_id(in.task_id);
  out->set_alloc_id(in.alloc_id);
  out->set_task_name(in.task_name);
  TimeToProto(in.timestamp, out->mutable_timestamp());
  out->set_message(in.message);
  out->mutable_annotations()->insert(in.annotations.begin(), in.annotations.end());
}

}  // namespace nfc::driver::rpc
