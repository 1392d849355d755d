package main

// The fault matrix (docs/reliability.md, "Guests and VMMs"): with a real guest, each case makes one thing fail and
// checks what Nomad would see (WaitTask's result and message, the task's log) and that nothing is left afterwards
// (processes, task dirs, mounts below the data dir, the plugin's open descriptors).

import (
	"encoding/json"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	drvpb "nfcproto/drivers"
)

func init() {
	register(
		Scenario{Name: "fault-guest-oom", Guest: true, Timeout: 3 * time.Minute, Run: testFaultOOM},
		Scenario{Name: "fault-guest-kernel-panic", Guest: true, Timeout: 3 * time.Minute, Run: testFaultPanic},
		Scenario{Name: "fault-vmm-killed", Guest: true, Timeout: 3 * time.Minute, Run: testFaultVmmKilled},
		Scenario{Name: "fault-vmm-stopped", Guest: true, Timeout: 3 * time.Minute, Run: testFaultVmmStopped},
		Scenario{Name: "fault-shim-killed", Guest: true, Timeout: 3 * time.Minute, Run: testFaultShimKilled},
		Scenario{Name: "fault-scratch-disk-full", Guest: true, Timeout: 3 * time.Minute, Run: testFaultScratchFull},
		Scenario{Name: "fault-boot-timeout-with-stop-and-signal", Guest: true, Timeout: 3 * time.Minute, Run: testFaultBootTimeout},
		Scenario{Name: "fault-host-reboot", Guest: true, Timeout: 3 * time.Minute, Run: testFaultHostReboot},
		Scenario{Name: "fault-console-flood", Guest: true, Timeout: 3 * time.Minute, Run: testFaultConsoleFlood},
	)
}

func fdCount(pid int) int {
	entries, _ := ioutil.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(entries)
}

// mountsBelow lists the mount points under dir (a tmpfs or loop mount a start left behind).
func mountsBelow(dir string) []string {
	b, _ := ioutil.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir) {
			out = append(out, f[4])
		}
	}
	return out
}

// faultTask starts `script` on a fresh runtime and waits for its first line; it returns what the checks need.
type faultRun struct {
	rt     *Runtime
	t      *nomadTask
	handle *drvpb.TaskHandle
	fds    int // the plugin's descriptors while the task runs
}

func (h *H) startFaultTask(script, extra, firstLine string) (*faultRun, error) {
	rt, err := h.launchRuntime()
	if err != nil {
		return nil, err
	}
	t, err := h.newTask(rt.Instance, "app", taskHCL([]string{"/bin/sh", "-c", script}, extra))
	if err != nil {
		return nil, err
	}
	handle, _, err := rt.startTask(t)
	if err != nil {
		return nil, err
	}
	if err := waitForOutput(t.Stdout, firstLine, 90*time.Second); err != nil {
		return nil, err
	}
	return &faultRun{rt: rt, t: t, handle: handle, fds: fdCount(rt.client.ReattachConfig().Pid)}, nil
}

// startIdle starts a workload that only sleeps, once it printed "up".
func (h *H) startIdle() (*faultRun, error) {
	h.guestScenario()
	return h.startFaultTask("echo up; while true; do sleep 1; done", "", "up\n")
}

// signalVmm sends sig to the task's VMM (its pid as InspectTask reports it) and returns that pid.
func (f *faultRun) signalVmm(sig syscall.Signal) (int, error) {
	info, err := f.rt.inspectTask(f.t.Config.Id)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(info.GetDriver().GetAttributes()["vmm_pid"])
	if err != nil {
		return 0, fmt.Errorf("InspectTask's vmm_pid: %v", err)
	}
	return pid, syscall.Kill(pid, sig)
}

// finish waits for the task's end, checks its result with `check`, destroys it and checks for leftovers.
func (f *faultRun) finish(h *H, limit time.Duration, check func(*drvpb.WaitTaskResponse) error) error {
	res, err := f.rt.waitTask(f.t.Config.Id, limit)
	if err != nil {
		return err
	}
	if err := check(res); err != nil {
		// Destroy anyway, so a failed check is reported as itself and not also as the leak it would leave.
		f.rt.destroyTask(f.t.Config.Id)
		return fmt.Errorf("%v (WaitTask: %s; stderr %q)", err, describeExit(res), tail(f.t.Stderr.Contents(), 600))
	}
	if err := f.rt.destroyAndCheck(f.t.Config.Id, f.handle); err != nil {
		return err
	}
	if left := leftProcesses(h.dataDir()); len(left) > 0 {
		return fmt.Errorf("processes left: %v", left)
	}
	if left := mountsBelow(h.dataDir()); len(left) > 0 {
		return fmt.Errorf("mounts left: %v", left)
	}
	if n := fdCount(f.rt.client.ReattachConfig().Pid); n > f.fds {
		return fmt.Errorf("the plugin holds %d descriptors after the task, %d while it ran", n, f.fds)
	}
	_, err = f.rt.Kill(h)
	return err
}

func errContains(res *drvpb.WaitTaskResponse, parts ...string) error {
	for _, p := range parts {
		if !strings.Contains(res.GetErr(), p) {
			return fmt.Errorf("the result's message lacks %q", p)
		}
	}
	return nil
}

func testFaultOOM(h *H) error {
	h.guestScenario()
	// A string that doubles until the guest's memory is gone: the OOM killer ends the workload.
	f, err := h.startFaultTask("echo start; a=0123456789abcdef; while true; do a=$a$a; done", "", "start\n")
	if err != nil {
		return err
	}
	return f.finish(h, 2*time.Minute, func(r *drvpb.WaitTaskResponse) error {
		if !r.GetResult().GetOomKilled() || r.GetResult().GetExitCode() != 137 || r.GetResult().GetSignal() != 9 {
			return fmt.Errorf("want oom_killed, exit 137, signal 9")
		}
		return nil
	})
}

func testFaultPanic(h *H) error {
	f, err := h.startIdle()
	if err != nil {
		return err
	}
	// The exec never answers: the guest dies under it.
	ctx, cancel := ctxTimeout(30 * time.Second)
	f.rt.Driver.ExecTask(ctx, &drvpb.ExecTaskRequest{TaskId: f.t.Config.Id,
		Command: []string{"/bin/sh", "-c", "echo c > /proc/sysrq-trigger"}, Timeout: durationpb.New(20 * time.Second)})
	cancel()
	return f.finish(h, time.Minute, func(r *drvpb.WaitTaskResponse) error {
		if err := errContains(r, "the guest kernel panicked", "Kernel panic"); err != nil {
			return err
		}
		if r.GetResult().GetExitCode() == 0 {
			return fmt.Errorf("exit code 0 for a panic")
		}
		if err := waitForOutput(f.t.Stderr, "the guest console's last lines:\n", 10*time.Second); err != nil {
			return fmt.Errorf("the console's last lines are not in the task's stderr: %v", err)
		}
		if !strings.Contains(f.t.Stderr.Contents(), "sysrq") {
			return fmt.Errorf("the task's stderr lacks the panic's console lines")
		}
		return nil
	})
}

func testFaultVmmKilled(h *H) error {
	f, err := h.startIdle()
	if err != nil {
		return err
	}
	if _, err := f.signalVmm(syscall.SIGKILL); err != nil {
		return err
	}
	return f.finish(h, time.Minute, func(r *drvpb.WaitTaskResponse) error {
		if r.GetResult().GetExitCode() == 0 {
			return fmt.Errorf("exit code 0")
		}
		return errContains(r, "the VMM ("+vmBackend+") crashed: killed by signal 9 (SIGKILL)")
	})
}

func testFaultVmmStopped(h *H) error {
	f, err := h.startIdle()
	if err != nil {
		return err
	}
	start := time.Now()
	pid, err := f.signalVmm(syscall.SIGSTOP)
	if err != nil {
		return err
	}
	h.OnCleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	err = f.finish(h, 2*time.Minute, func(r *drvpb.WaitTaskResponse) error {
		if r.GetResult().GetExitCode() == 0 {
			return fmt.Errorf("exit code 0")
		}
		return errContains(r, "the VMM ("+vmBackend+") stopped responding", "stopped (SIGSTOP")
	})
	h.Metric("vmm_stopped_detected_s", int(time.Since(start).Seconds()))
	return err
}

func testFaultShimKilled(h *H) error {
	f, err := h.startIdle()
	if err != nil {
		return err
	}
	state, err := decodeDriverState(f.handle.GetDriverState())
	if err != nil {
		return err
	}
	if err := syscall.Kill(state.Shim.Pid, syscall.SIGKILL); err != nil {
		return err
	}
	res, err := f.rt.waitTask(f.t.Config.Id, time.Minute)
	if err != nil {
		return err
	}
	// Nothing runs unsupervised once Nomad has the result, before any DestroyTask.
	if left := processesMentioning(state.TaskDir); len(left) > 0 {
		return fmt.Errorf("after WaitTask reported the shim's death, these still run: %v", left)
	}
	return f.finish(h, 10*time.Second, func(r *drvpb.WaitTaskResponse) error {
		if r.GetResult().GetExitCode() == 0 || res.GetErr() != r.GetErr() {
			return fmt.Errorf("exit code 0, or a second WaitTask differs")
		}
		return errContains(r, "task shim (pid "+strconv.Itoa(state.Shim.Pid)+") died", "its VM was stopped")
	})
}

func testFaultScratchFull(h *H) error {
	h.guestScenario()
	script := "echo up; dd if=/dev/zero of=/fill bs=1M count=200 2>&1 | grep -o 'No space left on device' | head -n 1;" +
		" rm /fill; echo still-running; exit 0"
	f, err := h.startFaultTask(script, `scratch_size = "64MiB"`, "up\n")
	if err != nil {
		return err
	}
	return f.finish(h, 2*time.Minute, func(r *drvpb.WaitTaskResponse) error {
		if r.GetResult().GetExitCode() != 0 || r.GetErr() != "" {
			return fmt.Errorf("want exit 0")
		}
		// The shim delivers the last lines before the exit; the harness's log reader polls, so allow it a moment.
		if err := waitForExactOutput(f.t.Stdout, "up\nNo space left on device\nstill-running\n", 5*time.Second); err != nil {
			return fmt.Errorf("the workload must see ENOSPC and go on: %v", err)
		}
		return nil
	})
}

func testFaultBootTimeout(h *H) error {
	h.guestScenario()
	h.PluginExtra = "boot_timeout = \"1s\"\n" // the smallest the option allows
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	t, err := h.newTask(rt.Instance, "app", taskHCL([]string{"/bin/sh", "-c", "echo never"}, ""))
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { _, _, err := rt.startTask(t); done <- err }()
	// A guest under KVM answers well within 1 s, so the boot is made not to finish: the VMM is stopped as soon
	// as it exists (the shim's own 30 s QMP watchdog comes far later than the boot timeout).
	if err := stopVmmOnceStarted(h.dataDir(), 30*time.Second); err != nil {
		return err
	}
	// Nomad may stop or signal a task whose start has not returned (an alloc stopped meanwhile): both answer at
	// once and neither disturbs the start.
	if err := rt.stopTask(t.Config.Id, time.Second, ""); err != nil {
		return fmt.Errorf("StopTask during the boot: %v", err)
	}
	ctx, cancel := ctxTimeout(10 * time.Second)
	_, sigErr := rt.Driver.SignalTask(ctx, &drvpb.SignalTaskRequest{TaskId: t.Config.Id, Signal: "SIGHUP"})
	cancel()
	if sigErr == nil {
		return fmt.Errorf("SignalTask of a task still booting answered OK")
	}
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("StartTask did not return after the boot timeout")
	}
	if err == nil || !strings.Contains(err.Error(), "the guest agent did not answer within 1 s of the VM starting") {
		return fmt.Errorf("StartTask with boot_timeout = 1s: %v, want an error naming the 1 s limit", err)
	}
	if left := h.taskDirs(); len(left) > 0 {
		return fmt.Errorf("task dirs left: %v", left)
	}
	if left := leftProcesses(h.dataDir()); len(left) > 0 {
		return fmt.Errorf("processes left: %v", left)
	}
	_, err = rt.Kill(h)
	return err
}

// stopVmmOnceStarted sends SIGSTOP to a task's VMM as soon as the shim has recorded it as started (vmm.json in
// the task dir, written once QEMU answered QMP and runs the guest), before the guest can boot.
func stopVmmOnceStarted(dataDir string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		records, _ := filepath.Glob(filepath.Join(dataDir, "tasks", "*", "vmm.json"))
		for _, record := range records {
			var vmm struct {
				Pid int `json:"pid"`
			}
			if b, err := ioutil.ReadFile(record); err == nil && json.Unmarshal(b, &vmm) == nil && vmm.Pid > 0 {
				return syscall.Kill(vmm.Pid, syscall.SIGSTOP)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("no task of %s recorded a started VMM within %v", dataDir, limit)
}

func testFaultHostReboot(h *H) error {
	f, err := h.startIdle()
	if err != nil {
		return err
	}
	// Everything of ours dies at once; the data dir survives, as after a power cut.
	syscall.Kill(f.rt.client.ReattachConfig().Pid, syscall.SIGKILL)
	for _, p := range processesMentioning(h.dataDir()) {
		var pid int
		fmt.Sscanf(p, "%d:", &pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(processesMentioning(h.dataDir())) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	start := time.Now()
	ctx, cancel := ctxTimeout(30 * time.Second)
	_, err = rt.Driver.RecoverTask(ctx, &drvpb.RecoverTaskRequest{Handle: persisted(f.handle)})
	cancel()
	took := time.Since(start)
	h.Metric("recover_after_reboot_ms", took.Milliseconds())
	if err == nil || !strings.Contains(err.Error(), "is gone") || took > 5*time.Second {
		return fmt.Errorf("RecoverTask after a reboot: %v after %v, want a quick error saying the shim is gone", err, took)
	}
	f.rt = rt
	if err := rt.destroyAndCheck(f.t.Config.Id, f.handle); err != nil {
		return err
	}
	if left := h.taskDirs(); len(left) > 0 {
		return fmt.Errorf("task dirs left: %v", left)
	}
	_, err = rt.Kill(h)
	return err
}

// consoleBound is the console file's limit (shim/plan: 1 MiB in console.log plus one rotation, console.log.1).
const consoleBound = 1 << 20

// testFaultConsoleFlood: a guest that writes to its serial console without end (Firecracker dies when its
// serial pipe fills; a host disk must not fill through a console) leaves at most the bound on disk, and the
// task keeps running and stops normally.
func testFaultConsoleFlood(h *H) error {
	h.guestScenario()
	f, err := h.startFaultTask("echo up; while true; do echo flood-the-console-flood-the-console-flood-the-console; done > /dev/ttyS0", "", "up\n")
	if err != nil {
		return err
	}
	state, err := decodeDriverState(f.handle.GetDriverState())
	if err != nil {
		return err
	}
	console := filepath.Join(state.TaskDir, "console.log")
	// Until the console rotated at least once and then filled again past half the bound: well over 1.5 MiB
	// went through.
	deadline := time.Now().Add(100 * time.Second)
	for {
		cur, err1 := os.Stat(console)
		old, err2 := os.Stat(console + ".1")
		if err1 == nil && err2 == nil {
			if cur.Size() > consoleBound || old.Size() > consoleBound {
				return fmt.Errorf("console files %d + %d bytes, each must stay within %d", cur.Size(), old.Size(), consoleBound)
			}
			if cur.Size() > consoleBound/2 {
				h.Metric("console_bytes_on_disk", int(cur.Size()+old.Size()))
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the flood did not rotate the console within 100 s (%v, %v)", err1, err2)
		}
		time.Sleep(500 * time.Millisecond)
	}
	info, err := f.rt.inspectTask(f.t.Config.Id)
	if err != nil {
		return err
	}
	if st := info.GetTask().GetState(); st != drvpb.TaskState_RUNNING {
		return fmt.Errorf("the flooding task is %v, want running", st)
	}
	if err := f.rt.stopTask(f.t.Config.Id, 5*time.Second, ""); err != nil {
		return err
	}
	return f.finish(h, time.Minute, func(r *drvpb.WaitTaskResponse) error {
		if r.GetErr() != "" {
			return fmt.Errorf("the stop of a flooding task failed: %s", r.GetErr())
		}
		return nil
	})
}
