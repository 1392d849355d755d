package main

// Each VMM's confinement (docs/security.md): it runs as its own uid and gid from the plugin's vm_uids range,
// with no capabilities, no_new_privs, in its own cgroup with its VM's limits, chrooted; its uid lease, cgroup
// and jail go with DestroyTask. The guest still runs (the drop happens before it starts).
//   - QEMU (sandbox = true): QEMU's seccomp filter; its root is the task dir's empty jail.
//   - Firecracker (-jailer-standin): through the jailer; its root is <data_dir>/jail/firecracker/<vm id>/root,
//     its cgroup made by the jailer. The stand-in installs no seccomp filter (Firecracker does), so Seccomp is
//     not checked there.

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

	drvpb "nfcproto/drivers"
)

func init() {
	register(Scenario{Name: "sandbox-vmm-confined", Guest: true, Timeout: 4 * time.Minute, Run: testSandboxedVmm})
}

// sandboxCgroups: the cgroup checkConfined found for a task dir, for the check after DestroyTask.
var sandboxCgroups = map[string]string{}

// cgroupParent is the scenario's own cgroup_parent, so VM cgroups never land in the host's default place; it is
// removed (it must be empty by then) when the scenario ends.
func (h *H) cgroupParent() string {
	parent := "/nfc-test-" + filepath.Base(h.Dir)[len("nfc-conformance-"):]
	if !h.cgroupCleanup {
		h.cgroupCleanup = true
		h.OnCleanup(func() {
			for _, dir := range cgroupDirs(parent) {
				if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
					fmt.Printf("     LEAK: cgroup %s: %v\n", dir, err)
				}
			}
		})
	}
	return parent
}

// cgroupDirs: where a cgroup path lives on this host (each v1 controller's tree, the cpuset one for pinned
// VMs included, or the unified one).
func cgroupDirs(path string) []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{"/sys/fs/cgroup" + path}
	}
	return []string{"/sys/fs/cgroup/memory" + path, "/sys/fs/cgroup/cpu" + path, "/sys/fs/cgroup/pids" + path,
		"/sys/fs/cgroup/cpuset" + path}
}

// checkCgroup: the VMM sits in <parent>/<vm id> with the memory and pids limits of its VM's size.
func (h *H) checkCgroup(pid int, memoryMiB int64) (string, error) {
	path, err := cgroupOf(pid, h.cgroupParent())
	if err != nil {
		return "", err
	}
	dirs := cgroupDirs(path)
	memFile, pidsFile := dirs[0]+"/memory.max", dirs[0]+"/pids.max"
	if len(dirs) > 1 {
		memFile, pidsFile = dirs[0]+"/memory.limit_in_bytes", dirs[2]+"/pids.max"
	}
	wantMem := strconv.FormatInt((memoryMiB+320)<<20, 10)
	if got, _ := ioutil.ReadFile(memFile); strings.TrimSpace(string(got)) != wantMem {
		return "", fmt.Errorf("%s is %q, want %s (the VM's %d MiB + 320 MiB for the VMM)", memFile, got, wantMem, memoryMiB)
	}
	if got, _ := ioutil.ReadFile(pidsFile); strings.TrimSpace(string(got)) == "max" || len(got) == 0 {
		return "", fmt.Errorf("%s has no limit: %q", pidsFile, got)
	}
	return path, nil
}

// qemuOf finds the QEMU process of a task (its command line names the task dir).
func qemuOf(taskDir string) (int, error) {
	for _, p := range processesMentioning(taskDir) {
		if strings.Contains(p, "qemu-system") {
			return strconv.Atoi(p[:strings.Index(p, ":")])
		}
	}
	return 0, fmt.Errorf("no QEMU process names %s", taskDir)
}

// statusFields reads the named lines of /proc/<pid>/status.
func statusFields(pid int, names ...string) (map[string]string, error) {
	b, err := ioutil.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		for _, n := range names {
			if strings.HasPrefix(line, n+":") {
				out[n] = strings.Join(strings.Fields(line[len(n)+1:]), " ")
			}
		}
	}
	return out, nil
}

// vmmOf finds the VMM process of a task and the directory that must be its root: QEMU by its command line
// (it names the task dir) and the task's jail; a jailed Firecracker by the shim's record (vmm.json) and the
// chroot named in the driver state.
func vmmOf(state *driverState) (int, string, error) {
	if vmBackend != "firecracker" {
		pid, err := qemuOf(state.TaskDir)
		return pid, filepath.Join(state.TaskDir, "jail"), err
	}
	if state.Sandbox.Jail == "" {
		return 0, "", fmt.Errorf("the driver state names no jail: Firecracker did not run through the jailer")
	}
	b, err := ioutil.ReadFile(filepath.Join(state.TaskDir, "vmm.json"))
	if err != nil {
		return 0, "", err
	}
	var rec struct{ Pid int }
	if err := json.Unmarshal(b, &rec); err != nil || rec.Pid <= 0 {
		return 0, "", fmt.Errorf("vmm.json %q: no pid (%v)", b, err)
	}
	return rec.Pid, filepath.Join(state.Sandbox.Jail, "root"), nil
}

// sameDir: a and b are the same directory (device and inode), also when a is seen through /proc/<pid>/root of
// a process in another mount namespace.
func sameDir(a, b string) bool {
	var sa, sb syscall.Stat_t
	return syscall.Stat(a, &sa) == nil && syscall.Stat(b, &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// checkConfined checks one running task's VMM and returns its uid.
func (h *H) checkConfined(state *driverState) (int, error) {
	taskDir := state.TaskDir
	pid, root, err := vmmOf(state)
	if err != nil {
		return 0, err
	}
	f, err := statusFields(pid, "Uid", "Gid", "CapEff", "CapPrm", "NoNewPrivs", "Seccomp")
	if err != nil {
		return 0, err
	}
	uids := strings.Fields(f["Uid"])
	if len(uids) != 4 || uids[0] != uids[1] || uids[0] != uids[2] || uids[0] != uids[3] {
		return 0, fmt.Errorf("VMM %d: real, effective, saved and fs uid differ: %q", pid, f["Uid"])
	}
	uid, _ := strconv.Atoi(uids[0])
	if uid < 200000 || uid > 265535 {
		return 0, fmt.Errorf("VMM %d runs as uid %d, outside vm_uids 200000-265535", pid, uid)
	}
	if f["Gid"] != strings.Repeat(uids[0]+" ", 3)+uids[0] {
		return 0, fmt.Errorf("VMM %d: gids %q, want all %d", pid, f["Gid"], uid)
	}
	want := map[string]string{"CapEff": "0000000000000000", "CapPrm": "0000000000000000", "NoNewPrivs": "1"}
	if vmBackend != "firecracker" {
		want["Seccomp"] = "2"
	}
	for k, v := range want {
		if f[k] != v {
			return 0, fmt.Errorf("VMM %d: %s is %q, want %q", pid, k, f[k], v)
		}
	}
	if !sameDir(fmt.Sprintf("/proc/%d/root/", pid), root) {
		return 0, fmt.Errorf("VMM %d: its root is not %s", pid, root)
	}
	cgroup, err := h.checkCgroup(pid, taskMemoryMB)
	if err != nil {
		return 0, err
	}
	sandboxCgroups[taskDir] = cgroup
	lease, err := ioutil.ReadFile(filepath.Join(h.dataDir(), "vm-uids", uids[0]))
	if err != nil || string(lease) != taskDir {
		return 0, fmt.Errorf("uid %d's lease: %q (%v), want the task dir %s", uid, lease, err, taskDir)
	}
	return uid, nil
}

func testSandboxedVmm(h *H) error {
	h.guestScenario()
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	type running struct {
		t      *nomadTask
		handle *drvpb.TaskHandle
		uid    int
	}
	var tasks []running
	// Two at once: each VMM must get a uid of its own.
	for _, name := range []string{"one", "two"} {
		t, err := h.newTask(rt.Instance, name, taskHCL([]string{"/bin/sh", "-c", "echo up; sleep 300"}, ""))
		if err != nil {
			return err
		}
		handle, _, err := rt.startTask(t)
		if err != nil {
			return err
		}
		defer rt.destroyTask(t.Config.Id)
		if err := waitForOutput(t.Stdout, "up\n", 60*time.Second); err != nil {
			return fmt.Errorf("task %s: the guest did not run under the sandboxed VMM: %v", name, err)
		}
		state, err := decodeDriverState(handle.GetDriverState())
		if err != nil {
			return err
		}
		uid, err := h.checkConfined(state)
		if err != nil {
			return fmt.Errorf("task %s: %v", name, err)
		}
		for _, other := range tasks {
			if other.uid == uid {
				return fmt.Errorf("tasks %s and %s run as the same uid %d", other.t.Config.Name, name, uid)
			}
		}
		tasks = append(tasks, running{t, handle, uid})
	}
	for _, r := range tasks {
		if err := rt.stopTask(r.t.Config.Id, 5*time.Second, ""); err != nil {
			return err
		}
		if err := rt.destroyAndCheck(r.t.Config.Id, r.handle); err != nil {
			return err
		}
		state, _ := decodeDriverState(r.handle.GetDriverState())
		for _, dir := range cgroupDirs(sandboxCgroups[state.TaskDir]) {
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				return fmt.Errorf("task %s: its VMM's cgroup %s is left after DestroyTask (%v)", r.t.Config.Name, dir, err)
			}
		}
		if _, err := os.Stat(filepath.Join(h.dataDir(), "vm-uids", strconv.Itoa(r.uid))); !os.IsNotExist(err) {
			return fmt.Errorf("task %s: uid %d's lease is left after DestroyTask (%v)", r.t.Config.Name, r.uid, err)
		}
	}
	return nil
}
