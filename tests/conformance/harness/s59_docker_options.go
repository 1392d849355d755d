package main

// The docker driver's everyday options, as a job that moved from docker would write them, checked where they
// land: hostname, dns_servers/dns_search_domains/dns_options and labels inside the guest (/etc/hostname,
// /etc/resolv.conf, /run/nomad/labels.json) and in InspectTask's driver attributes; `resources { cores }`
// (LinuxResources.cpuset_cpus) as the VMM's cpuset and CPU affinity; `memory_max` above `memory` as the VM's
// size, the cgroup's hard limit, and `memory` as its reservation (soft limit). On either backend.

import (
	"fmt"
	"io/ioutil"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func init() {
	register(Scenario{Name: "lifecycle-docker-options", Guest: true, Timeout: 4 * time.Minute, Run: testDockerOptions})
}

const dockerOptionsHCL = `hostname           = "api-1.example"
dns_servers        = ["10.53.0.1", "10.53.0.2"]
dns_search_domains = ["svc.example"]
dns_options        = ["ndots:2", "timeout:3"]
labels = {
  team = "web"
  tier = "2"
}
`

const memoryMaxMB = 256

func testDockerOptions(h *H) error {
	h.guestScenario()
	if runtime.NumCPU() < 2 {
		return fmt.Errorf("this scenario pins the VM to core 1 and needs a host with 2 or more CPUs (has %d)", runtime.NumCPU())
	}
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	script := "hostname; cat /etc/hostname; cat /etc/resolv.conf; cat /run/nomad/labels.json; echo end-of-report; sleep 300"
	t, err := h.newTask(rt.Instance, "opts", taskHCL([]string{"/bin/sh", "-c", script}, dockerOptionsHCL))
	if err != nil {
		return err
	}
	// resources { cores = 1, memory = 128, memory_max = 256 }, as the client sends it for a reserved core.
	res := t.Config.Resources
	res.AllocatedResources.Memory.MemoryMaxMb = memoryMaxMB
	res.LinuxResources.CpusetCpus = "1"
	handle, _, err := rt.startTask(t)
	if err != nil {
		return err
	}
	defer rt.destroyTask(t.Config.Id)
	if err := waitForOutput(t.Stdout, "end-of-report\n", 90*time.Second); err != nil {
		return err
	}
	if err := checkGuestReport(t.Stdout.Contents()); err != nil {
		return err
	}
	inspected, err := rt.inspectTask(t.Config.Id)
	if err != nil {
		return err
	}
	attrs := inspected.GetDriver().GetAttributes()
	if attrs["label.team"] != "web" || attrs["label.tier"] != "2" {
		return fmt.Errorf("InspectTask's driver attributes carry no labels: %v", attrs)
	}
	if attrs["memory_mib"] != strconv.Itoa(memoryMaxMB) {
		return fmt.Errorf("memory_max = %d: the VM has %s MiB", memoryMaxMB, attrs["memory_mib"])
	}
	state, err := decodeDriverState(handle.GetDriverState())
	if err != nil {
		return err
	}
	pid, _, err := vmmOf(state)
	if err != nil {
		return err
	}
	if err := checkPinnedAndReserved(h, pid); err != nil {
		return err
	}
	if err := rt.stopTask(t.Config.Id, 5*time.Second, ""); err != nil {
		return err
	}
	return rt.destroyAndCheck(t.Config.Id, handle)
}

// checkGuestReport: what the workload printed of its hostname, resolv.conf and labels file.
func checkGuestReport(out string) error {
	want := []string{
		"api-1.example\napi-1.example\n", // hostname(1), then /etc/hostname
		"nameserver 10.53.0.1\nnameserver 10.53.0.2\n",
		"search svc.example\n",
		"options ndots:2 timeout:3\n",
		`"team": "web"`,
		`"tier": "2"`,
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			return fmt.Errorf("the guest's report lacks %q:\n%s", w, out)
		}
	}
	return nil
}

// checkPinnedAndReserved: the VMM may run on core 1 only (its cpuset, which its threads inherit), and its
// memory cgroup has memory_max as the hard limit and memory as the reservation, each plus the VMM's 320 MiB.
func checkPinnedAndReserved(h *H, pid int) error {
	f, err := statusFields(pid, "Cpus_allowed_list")
	if err != nil {
		return err
	}
	if f["Cpus_allowed_list"] != "1" {
		cgroups, _ := ioutil.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		return fmt.Errorf("VMM %d may run on CPUs %q, want only the reserved core 1; its cgroups:\n%s", pid,
			f["Cpus_allowed_list"], cgroups)
	}
	tasks, err := ioutil.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, thread := range tasks {
		b, err := ioutil.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, thread.Name()))
		if err == nil && !strings.Contains(string(b), "Cpus_allowed_list:\t1\n") {
			return fmt.Errorf("VMM %d's thread %s is not pinned to core 1", pid, thread.Name())
		}
	}
	path, err := cgroupOf(pid, h.cgroupParent())
	if err != nil {
		return err
	}
	hard, soft := strconv.Itoa((memoryMaxMB+320)<<20), strconv.Itoa((taskMemoryMB+320)<<20)
	files := map[string]string{
		"/sys/fs/cgroup" + path + "/cpuset.cpus": "1",
		"/sys/fs/cgroup" + path + "/memory.max":  hard,
		"/sys/fs/cgroup" + path + "/memory.low":  soft,
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil { // v1
		files = map[string]string{
			"/sys/fs/cgroup/cpuset" + path + "/cpuset.cpus":                "1",
			"/sys/fs/cgroup/memory" + path + "/memory.limit_in_bytes":      hard,
			"/sys/fs/cgroup/memory" + path + "/memory.soft_limit_in_bytes": soft,
		}
	}
	for file, want := range files {
		got, err := ioutil.ReadFile(file)
		if err != nil || strings.TrimSpace(string(got)) != want {
			return fmt.Errorf("%s is %q (%v), want %s", file, strings.TrimSpace(string(got)), err, want)
		}
	}
	return nil
}

// cgroupOf: the cgroup path of pid below parent, from its memory controller's line (v1) or the unified one.
func cgroupOf(pid int, parent string) (string, error) {
	b, err := ioutil.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && (parts[1] == "memory" || parts[1] == "") && strings.HasPrefix(parts[2], parent+"/") {
			return parts[2], nil
		}
	}
	return "", fmt.Errorf("VMM %d is not in a cgroup below %s: %s", pid, parent, b)
}
