package main

// examples/jobs/hello.nomad run as Nomad's client would run it: its task's config block decoded with the plugin's
// schema (the image swapped for the harness's local copy of a busybox image, as example-job-templates-artifact-
// volume does), started in a real microVM, waited for. The output it must print is the indented line of the
// file's header comment, so the comment stays true too.

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

func init() {
	register(Scenario{Name: "example-job-hello", Guest: true, Timeout: 4 * time.Minute, Run: testExampleHello})
}

// promisedOutput is what a job file's header comment says `nomad alloc logs` shows: its lines indented by at
// least three spaces after "#".
func promisedOutput(src []byte) string {
	var out strings.Builder
	for _, line := range strings.Split(string(src), "\n") {
		if !strings.HasPrefix(line, "#") {
			break // the header comment ends at the first line of HCL
		}
		if strings.HasPrefix(line, "#   ") {
			out.WriteString(strings.TrimSpace(line[1:]) + "\n")
		}
	}
	return out.String()
}

func testExampleHello(h *H) error {
	h.guestScenario()
	files, problems, err := loadExamples()
	if err != nil {
		return err
	}
	f := files["jobs/hello.nomad"]
	if f == nil || f.body == nil {
		return fmt.Errorf("examples/jobs/hello.nomad did not load: %v", problems)
	}
	want := promisedOutput(f.src)
	if want == "" {
		return fmt.Errorf("examples/jobs/hello.nomad: its header comment shows no output (lines \"#   ...\")")
	}
	tasks, _, probs := jobParts(f)
	if len(probs) > 0 || len(tasks) != 1 || tasks[0].driver != "firecracker" {
		return fmt.Errorf("examples/jobs/hello.nomad: want one task with driver \"firecracker\", got %d (%v)", len(tasks), probs)
	}
	task := tasks[0]
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	schema, err := taskSchema(rt.Instance)
	if err != nil {
		return err
	}
	packed, err := encodeTaskConfig(f, task, schema, map[string]interface{}{
		"image": guest.Image, // offline: the harness's registry holds the demo busybox image
		"auth":  []interface{}{map[string]interface{}{"username": guest.Username, "password": guest.Password}},
	})
	if err != nil {
		return fmt.Errorf("%s: %v", task.where, err)
	}
	t, err := h.newTaskEncoded(task.name, packed)
	if err != nil {
		return err
	}
	cpu, errCPU := strconv.ParseInt(task.resources["cpu"], 10, 64)
	mem, errMem := strconv.ParseInt(task.resources["memory"], 10, 64)
	if errCPU != nil || errMem != nil {
		return fmt.Errorf("%s: resources cpu %q, memory %q: want numbers", task.where, task.resources["cpu"], task.resources["memory"])
	}
	t.Config.Resources.AllocatedResources.Cpu.CpuShares = cpu
	t.Config.Resources.AllocatedResources.Memory.MemoryMb = mem
	t.Config.Resources.LinuxResources.CpuShares = cpu
	t.Config.Resources.LinuxResources.MemoryLimitBytes = mem << 20
	handle, _, err := rt.startTask(t)
	if err != nil {
		return err
	}
	id := t.Config.Id
	res, err := rt.waitTask(id, 3*time.Minute)
	if err != nil {
		return err
	}
	if res.GetResult().GetExitCode() != 0 || res.GetResult().GetSignal() != 0 || res.GetErr() != "" {
		return fmt.Errorf("the hello task ended with %s (stderr %q), want exit code 0", describeExit(res), t.Stderr.Contents())
	}
	if err := waitForExactOutput(t.Stdout, want, 10*time.Second); err != nil {
		return fmt.Errorf("the hello task's output: %v", err)
	}
	if err := waitForExactOutput(t.Stderr, "", time.Second); err != nil {
		return fmt.Errorf("the hello task wrote to stderr: %v", err)
	}
	if err := rt.destroyAndCheck(id, handle); err != nil {
		return err
	}
	_, err = rt.Kill(h)
	return err
}
