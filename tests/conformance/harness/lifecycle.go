package main

// What the Nomad client does around a task, for the Guest scenarios (reference 5.1, 5.4, 5.16): the runtime plugin
// instance (SetConfig with nomad_config, Init, Fingerprint and TaskEvents streams), the allocation directory, a
// logmon-like reader that owns the stdout/stderr FIFOs and appends to log files (it lives in this process, so it
// survives plugin kills like Nomad's logmon does), and TaskConfig protos filled the way the client fills them.
// The registry, guest artifacts and shim come from nfc-harness-env (tests/lifecycle/harness_env.cc).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	drvpb "nfcproto/drivers"
	"nfcproto/hclspec"
)

// guestEnv is what nfc-harness-env provides.
type guestEnv struct {
	Dir, Image, Registry, CAFile, Username, Password, Kernel, Initrd string
}

var guest *guestEnv

func loadGuestEnv() (*guestEnv, error) {
	g := &guestEnv{}
	for key, dst := range map[string]*string{
		"NFC_LC_DIR": &g.Dir, "NFC_LC_IMAGE": &g.Image, "NFC_LC_REGISTRY": &g.Registry, "NFC_LC_CA_FILE": &g.CAFile,
		"NFC_LC_USERNAME": &g.Username, "NFC_LC_PASSWORD": &g.Password, "NFC_LC_KERNEL": &g.Kernel,
		"NFC_LC_INITRD": &g.Initrd,
	} {
		*dst = os.Getenv(key)
		if *dst == "" {
			return nil, fmt.Errorf("%s is not set: run under nfc-harness-env (ctest -R conformance_lifecycle)", key)
		}
	}
	if os.Getenv("NFC_SHIM_PATH") == "" {
		return nil, fmt.Errorf("NFC_SHIM_PATH is not set: run under nfc-harness-env")
	}
	return g, nil
}

// dataDir is the plugin's data_dir for one scenario: short (unix socket paths below it must fit in 108 bytes)
// and below the environment's directory, so nfc-harness-env can sweep anything a failed scenario left.
func (h *H) dataDir() string {
	return filepath.Join(guest.Dir, "d-"+filepath.Base(h.Dir)[len("nfc-conformance-"):])
}

// Runtime is the runtime plugin instance of a Nomad client: configured, fingerprinting, streaming task events.
type Runtime struct {
	*Instance
	events *eventLog
	cancel context.CancelFunc
}

type eventLog struct {
	mu     sync.Mutex
	events []*drvpb.DriverTaskEvent
}

func (e *eventLog) forTask(taskID string) []*drvpb.DriverTaskEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*drvpb.DriverTaskEvent
	for _, ev := range e.events {
		if ev.GetTaskId() == taskID {
			out = append(out, ev)
		}
	}
	return out
}

// pluginConfigHCL is the agent's `plugin "nomad-driver-firecracker" { config { ... } }` block for this run.
func (h *H) pluginConfigHCL() string {
	return fmt.Sprintf("%scgroup_parent = %q\nkernel_path = %q\ninitrd_path = %q\ndata_dir = %q\nca_file = %q\n%s",
		h.backendHCL(), h.cgroupParent(), guest.Kernel, guest.Initrd, h.dataDir(), guest.CAFile, h.PluginExtra)
}

// launchRuntime starts a plugin process and brings it up as Nomad's runtime instance (reference 5.1).
func (h *H) launchRuntime() (*Runtime, error) {
	inst, err := h.Launch(LaunchOptions{Env: h.PluginEnv})
	if err != nil {
		return nil, err
	}
	schema, err := pluginSchema(inst)
	if err != nil {
		return nil, err
	}
	packed, _, err := EncodeConfig(h.pluginConfigHCL(), schema)
	if err != nil {
		return nil, fmt.Errorf("encoding the plugin block: %v", err)
	}
	if err := setConfig(inst, packed, true); err != nil {
		return nil, fmt.Errorf("SetConfig: %v", err)
	}
	return h.attachRuntime(inst, true)
}

// attachRuntime does what the client does after dispensing (or reattaching): Init, Fingerprint, TaskEvents.
func (h *H) attachRuntime(inst *Instance, init bool) (*Runtime, error) {
	if init {
		ctx, cancel := ctxTimeout(10 * time.Second)
		_, err := inst.Driver.Init(ctx, &drvpb.InitRequest{})
		cancel()
		if err != nil && status.Code(err) != codes.Unimplemented {
			return nil, fmt.Errorf("Init: %v", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	rt := &Runtime{Instance: inst, events: &eventLog{}, cancel: cancel}
	h.OnCleanup(cancel)
	fp, err := inst.Driver.Fingerprint(ctx, &drvpb.FingerprintRequest{})
	if err != nil {
		return nil, fmt.Errorf("Fingerprint: %v", err)
	}
	first, err := fp.Recv()
	if err != nil {
		return nil, fmt.Errorf("first fingerprint: %v", err)
	}
	if first.GetHealth() != drvpb.FingerprintResponse_HEALTHY {
		return nil, fmt.Errorf("driver %v: %s", first.GetHealth(), first.GetHealthDescription())
	}
	go func() {
		for {
			if _, err := fp.Recv(); err != nil {
				return
			}
		}
	}()
	events, err := inst.Driver.TaskEvents(ctx, &drvpb.TaskEventsRequest{})
	if err != nil {
		return nil, fmt.Errorf("TaskEvents: %v", err)
	}
	go func() {
		for {
			ev, err := events.Recv()
			if err != nil {
				return
			}
			rt.events.mu.Lock()
			rt.events.events = append(rt.events.events, ev)
			rt.events.mu.Unlock()
		}
	}()
	return rt, nil
}

// logmon owns one FIFO like Nomad's logmon: it creates it (0600), keeps the read end open for the task's whole
// life (writers may come and go) and appends whatever arrives to a log file.
type logmon struct {
	file string
	stop chan struct{}
	done chan struct{}
}

func startLogmon(fifo, file string) (*logmon, error) {
	if err := syscall.Mkfifo(fifo, 0600); err != nil {
		return nil, fmt.Errorf("mkfifo %s: %v", fifo, err)
	}
	fd, err := syscall.Open(fifo, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %v", fifo, err)
	}
	out, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0600)
	if err != nil {
		syscall.Close(fd)
		return nil, err
	}
	l := &logmon{file: file, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		defer syscall.Close(fd)
		defer out.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := syscall.Read(fd, buf)
			if n > 0 {
				out.Write(buf[:n])
				continue
			}
			if err != nil && err != syscall.EAGAIN && err != syscall.EINTR {
				return
			}
			// Nothing to read, or no writer at the moment (n == 0): keep the read end open and look again.
			select {
			case <-l.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return l, nil
}

func (l *logmon) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

func (l *logmon) Contents() string {
	b, _ := ioutil.ReadFile(l.file)
	return string(b)
}

// nomadTask is one task as the client prepared it: alloc dir, logmon, TaskConfig.
type nomadTask struct {
	Config         *drvpb.TaskConfig
	Stdout, Stderr *logmon
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

func newUUID() string {
	s := randomHex(32)
	return s[0:8] + "-" + s[8:12] + "-4" + s[13:16] + "-a" + s[17:20] + "-" + s[20:32]
}

// hclList renders a list of strings as HCL.
func hclList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// taskHCL is a job's `config { ... }` block running argv from the demo image with the registry's credentials.
func taskHCL(argv []string, extra string) string {
	return fmt.Sprintf("image = %q\nargs = %s\nauth {\n  username = %q\n  password = %q\n}\n%s", guest.Image,
		hclList(argv), guest.Username, guest.Password, extra)
}

const (
	taskCPUShares = 500 // MHz, the job's resources { cpu }
	taskMemoryMB  = 128 // resources { memory }
)

// newTask prepares a task like the client's task runner: alloc dir layout (5.16), logmon FIFOs (5.4), the task
// config encoded from HCL with the plugin's TaskConfigSchema (4.1), and the environment with NOMAD_* variables.
func (h *H) newTask(inst *Instance, name, configHCL string) (*nomadTask, error) {
	schema, err := taskSchema(inst)
	if err != nil {
		return nil, err
	}
	return h.newTaskWithSchema(schema, name, configHCL)
}

func (h *H) newTaskWithSchema(schema *hclspec.Spec, name, configHCL string) (*nomadTask, error) {
	packed, _, err := EncodeConfig(configHCL, schema)
	if err != nil {
		return nil, fmt.Errorf("encoding the task config: %v", err)
	}
	return h.newTaskEncoded(name, packed)
}

// newTaskEncoded is newTask for a task config already encoded (msgpack).
func (h *H) newTaskEncoded(name string, packed []byte) (*nomadTask, error) {
	var err error
	allocID := newUUID()
	allocDir := filepath.Join(h.Dir, "alloc", allocID)
	for _, d := range []string{"alloc/data", "alloc/logs", "alloc/tmp", name + "/local", name + "/secrets", name + "/tmp", name + "/private"} {
		if err := os.MkdirAll(filepath.Join(allocDir, d), 0755); err != nil {
			return nil, err
		}
	}
	// Nomad's client mounts each task's secrets dir as a private 1 MiB tmpfs (noexec), so no secret is ever
	// written to the host's disk; the driver must cope with a mount point there.
	secrets := filepath.Join(allocDir, name, "secrets")
	if err := syscall.Mount("tmpfs", secrets, "tmpfs", syscall.MS_NOEXEC, "size=1m"); err != nil {
		return nil, fmt.Errorf("tmpfs on %s (the harness runs as root, like Nomad's client): %v", secrets, err)
	}
	h.OnCleanup(func() { syscall.Unmount(secrets, syscall.MNT_DETACH) })
	logs := filepath.Join(allocDir, "alloc", "logs")
	t := &nomadTask{}
	stdoutFifo, stderrFifo := filepath.Join(logs, "."+name+".stdout.fifo"), filepath.Join(logs, "."+name+".stderr.fifo")
	if t.Stdout, err = startLogmon(stdoutFifo, filepath.Join(logs, name+".stdout.0")); err != nil {
		return nil, err
	}
	h.OnCleanup(t.Stdout.Stop)
	if t.Stderr, err = startLogmon(stderrFifo, filepath.Join(logs, name+".stderr.0")); err != nil {
		return nil, err
	}
	h.OnCleanup(t.Stderr.Stop)
	hostname, _ := os.Hostname()
	const job, group = "lifecycle", "g"
	env := map[string]string{
		"NOMAD_ALLOC_ID": allocID, "NOMAD_ALLOC_NAME": job + "." + group + "[0]", "NOMAD_ALLOC_INDEX": "0",
		"NOMAD_SHORT_ALLOC_ID": allocID[:8], "NOMAD_TASK_NAME": name, "NOMAD_GROUP_NAME": group,
		"NOMAD_JOB_NAME": job, "NOMAD_JOB_ID": job, "NOMAD_NAMESPACE": "default", "NOMAD_REGION": "global",
		"NOMAD_DC": "dc1", "NOMAD_CPU_LIMIT": strconv.Itoa(taskCPUShares), "NOMAD_MEMORY_LIMIT": strconv.Itoa(taskMemoryMB),
		// fs_isolation = IMAGE: the task sees its directories at fixed paths inside its root.
		"NOMAD_ALLOC_DIR": "/alloc", "NOMAD_TASK_DIR": "/local", "NOMAD_SECRETS_DIR": "/secrets",
		"GREETING": "from-the-job-env-block",
	}
	t.Config = &drvpb.TaskConfig{
		Id: allocID + "/" + name + "/" + randomHex(8), Name: name, MsgpackDriverConfig: packed, Env: env,
		Resources: &drvpb.Resources{
			AllocatedResources: &drvpb.AllocatedTaskResources{
				Cpu:    &drvpb.AllocatedCpuResources{CpuShares: taskCPUShares},
				Memory: &drvpb.AllocatedMemoryResources{MemoryMb: taskMemoryMB},
			},
			LinuxResources: &drvpb.LinuxResources{CpuShares: taskCPUShares, MemoryLimitBytes: taskMemoryMB << 20},
		},
		AllocDir: allocDir, StdoutPath: stdoutFifo, StderrPath: stderrFifo, TaskGroupName: group, JobName: job,
		AllocId: allocID, JobId: job, Namespace: "default", NodeName: hostname, NodeId: newUUID(),
	}
	return t, nil
}

// startShell prepares a task running `/bin/sh -c script` from the demo image and starts it on rt.
func (h *H) startShell(rt *Runtime, name, script string) (*nomadTask, *drvpb.TaskHandle, error) {
	t, err := h.newTask(rt.Instance, name, taskHCL([]string{"/bin/sh", "-c", script}, ""))
	if err != nil {
		return nil, nil, err
	}
	handle, _, err := rt.startTask(t)
	if err != nil {
		return nil, nil, err
	}
	return t, handle, nil
}

// startTask calls StartTask and checks the handle the client will persist (reference 5.3).
func (rt *Runtime) startTask(t *nomadTask) (*drvpb.TaskHandle, time.Duration, error) {
	ctx, cancel := ctxTimeout(3 * time.Minute)
	defer cancel()
	start := time.Now()
	resp, err := rt.Driver.StartTask(ctx, &drvpb.StartTaskRequest{Task: t.Config})
	took := time.Since(start)
	if err != nil {
		return nil, took, fmt.Errorf("StartTask %s: %w", t.Config.Name, err)
	}
	handle := resp.GetHandle()
	if handle == nil || handle.GetVersion() < 1 || len(handle.GetDriverState()) == 0 {
		return nil, took, fmt.Errorf("StartTask: unusable handle %v", handle)
	}
	if handle.GetConfig().GetId() != t.Config.Id || handle.GetConfig().GetAllocId() != t.Config.AllocId {
		return nil, took, fmt.Errorf("StartTask: the handle's config is not the TaskConfig sent (id %q)", handle.GetConfig().GetId())
	}
	return handle, took, nil
}

// persisted is the handle as the client stores it: after an agent restart the raw task config is gone (5.9).
func persisted(handle *drvpb.TaskHandle) *drvpb.TaskHandle {
	c := *handle.GetConfig()
	c.MsgpackDriverConfig = nil
	return &drvpb.TaskHandle{Version: handle.GetVersion(), Config: &c, State: handle.GetState(), DriverState: handle.GetDriverState()}
}

func (rt *Runtime) waitTask(taskID string, limit time.Duration) (*drvpb.WaitTaskResponse, error) {
	ctx, cancel := ctxTimeout(limit)
	defer cancel()
	resp, err := rt.Driver.WaitTask(ctx, &drvpb.WaitTaskRequest{TaskId: taskID})
	if err != nil {
		return nil, fmt.Errorf("WaitTask: %w", err)
	}
	return resp, nil
}

func (rt *Runtime) stopTask(taskID string, timeout time.Duration, signal string) error {
	ctx, cancel := ctxTimeout(timeout + 60*time.Second)
	defer cancel()
	_, err := rt.Driver.StopTask(ctx, &drvpb.StopTaskRequest{TaskId: taskID, Timeout: durationpb.New(timeout), Signal: signal})
	if err != nil {
		return fmt.Errorf("StopTask(%v, %q): %v", timeout, signal, err)
	}
	return nil
}

func (rt *Runtime) destroyTask(taskID string) error {
	ctx, cancel := ctxTimeout(60 * time.Second)
	defer cancel()
	_, err := rt.Driver.DestroyTask(ctx, &drvpb.DestroyTaskRequest{TaskId: taskID, Force: true})
	if err != nil {
		return fmt.Errorf("DestroyTask: %v", err)
	}
	return nil
}

func (rt *Runtime) inspectTask(taskID string) (*drvpb.InspectTaskResponse, error) {
	ctx, cancel := ctxTimeout(30 * time.Second)
	defer cancel()
	resp, err := rt.Driver.InspectTask(ctx, &drvpb.InspectTaskRequest{TaskId: taskID})
	if err != nil {
		return nil, fmt.Errorf("InspectTask: %v", err)
	}
	return resp, nil
}

// driverState is the part of our DriverState the harness looks at to check for leftovers (Nomad treats it as
// opaque bytes).
type driverState struct {
	TaskDir string `json:"task_dir"`
	Shim    struct {
		Pid int `json:"pid"`
	} `json:"shim"`
	Sandbox struct {
		Jail string `json:"jail"` // Firecracker's chroot through the jailer
	} `json:"sandbox"`
}

func decodeDriverState(b []byte) (*driverState, error) {
	var s driverState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("DriverState is not the JSON documented in docs/lifecycle.md: %v", err)
	}
	if s.TaskDir == "" || s.Shim.Pid <= 0 {
		return nil, fmt.Errorf("DriverState lacks task_dir or shim pid: %s", b)
	}
	return &s, nil
}

// leftProcesses lists the processes of a data dir once its template builds are done. With warm_start on (the
// plugin's default) a task's first start of a shape boots a template VM in the background: a process of the
// plugin's own that names <data dir>/templates and ends by itself within seconds (docs/warm-start.md). One
// still there after a minute is reported like any other leftover.
func leftProcesses(dataDir string) []string {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) && len(processesMentioning(filepath.Join(dataDir, "templates"))) > 0 {
		time.Sleep(200 * time.Millisecond)
	}
	return processesMentioning(dataDir)
}

// processesMentioning lists processes whose command line contains needle (shims and VMMs name their task dir).
func processesMentioning(needle string) []string {
	var out []string
	entries, _ := ioutil.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmd, err := ioutil.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		if strings.Contains(string(cmd), needle) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " "))
		}
	}
	return out
}

// destroyAndCheck is the client's DestroyTask(force) after the task ended, twice (the second must be harmless),
// then checks that nothing of the task remains: no process naming its task dir, no task dir.
func (rt *Runtime) destroyAndCheck(taskID string, handle *drvpb.TaskHandle) error {
	state, err := decodeDriverState(handle.GetDriverState())
	if err != nil {
		return err
	}
	if err := rt.destroyTask(taskID); err != nil {
		return err
	}
	if err := rt.destroyTask(taskID); err != nil {
		return fmt.Errorf("second DestroyTask: %v", err)
	}
	if left := processesMentioning(state.TaskDir); len(left) > 0 {
		return fmt.Errorf("after DestroyTask these processes of the task remain: %v", left)
	}
	if procAlive(state.Shim.Pid, state.TaskDir) {
		return fmt.Errorf("the shim (pid %d) still runs after DestroyTask", state.Shim.Pid)
	}
	if _, err := os.Stat(state.TaskDir); err == nil {
		return fmt.Errorf("task dir %s left behind after DestroyTask", state.TaskDir)
	}
	if jail := state.Sandbox.Jail; jail != "" {
		// A jailed Firecracker's command line names its id (the jail's name), not the task dir.
		if left := processesMentioning("--id=" + filepath.Base(jail)); len(left) > 0 {
			return fmt.Errorf("after DestroyTask the jailed VMM remains: %v", left)
		}
		if _, err := os.Stat(jail); err == nil {
			return fmt.Errorf("Firecracker's jail %s left behind after DestroyTask", jail)
		}
	}
	return nil
}

// procAlive: pid runs and its command line names needle (a reused pid does not count).
func procAlive(pid int, needle string) bool {
	cmd, err := ioutil.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(cmd), needle)
}

// taskDirs lists what is under <data_dir>/tasks.
func (h *H) taskDirs() []string {
	entries, _ := ioutil.ReadDir(filepath.Join(h.dataDir(), "tasks"))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// waitForOutput polls a log file until it contains needle.
func waitForOutput(l *logmon, needle string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if strings.Contains(l.Contents(), needle) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%q did not appear in %s within %v (it has %q)", needle, filepath.Base(l.file), limit, tail(l.Contents(), 300))
}

// waitForExactOutput polls until the file holds exactly want (the shim flushes before the exit is recorded, so
// this should be immediate after WaitTask; the poll only absorbs the reader's own latency).
func waitForExactOutput(l *logmon, want string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		got := l.Contents()
		if got == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is %q, want %q", filepath.Base(l.file), got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func describeExit(r *drvpb.WaitTaskResponse) string {
	return fmt.Sprintf("exit_code=%d signal=%d oom=%v err=%q", r.GetResult().GetExitCode(), r.GetResult().GetSignal(),
		r.GetResult().GetOomKilled(), r.GetErr())
}

// restarted is the same task restarted by the client in the same allocation (reference 5.1 "restart"): a new
// task id, the same alloc dir and FIFOs (logmon keeps reading them), possibly another config.
func (t *nomadTask) restarted(schema *hclspec.Spec, configHCL string) (*nomadTask, error) {
	packed, _, err := EncodeConfig(configHCL, schema)
	if err != nil {
		return nil, fmt.Errorf("encoding the task config: %v", err)
	}
	c := *t.Config
	c.Id = c.AllocId + "/" + c.Name + "/" + randomHex(8)
	c.MsgpackDriverConfig = packed
	return &nomadTask{Config: &c, Stdout: t.Stdout, Stderr: t.Stderr}, nil
}
