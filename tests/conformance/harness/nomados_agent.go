package main

// `nfc-conformance agent -config DIR`: the harness as the agent of a NomadOS image (tests/nomados/nested_test.cc).
// nomad-init runs /usr/bin/nomad exactly so; with this binary there, the image's "agent" drives the plugin through
// go-plugin like a Nomad client: one task from a local OCI layout, run to completion in a microVM (nested QEMU),
// its exit code and stdout checked. The result goes to the console (stdout is the serial console) and to a file
// on the data partition, then the machine is powered off (SIGUSR2 to nomad-init) so the outer test sees QEMU exit.
//
// Settings come from /etc/nomados-nested.env (KEY=VALUE lines, put there with `nomados build --file`):
//   NESTED_PLUGIN, NESTED_KERNEL, NESTED_INITRD, NESTED_IMAGE (oci:/path:tag), NESTED_DIR (on /var),
//   NFC_SHIM_PATH (read by the plugin).

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	drvpb "nfcproto/drivers"
)

const (
	nestedEnvFile  = "/etc/nomados-nested.env"
	nestedStdout   = "nested-hello from nested\n"
	nestedExitCode = 3
)

func loadNestedEnv() (map[string]string, error) {
	f, err := os.Open(nestedEnvFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = v
			os.Setenv(k, v)
		}
	}
	for _, k := range []string{"NESTED_PLUGIN", "NESTED_KERNEL", "NESTED_INITRD", "NESTED_IMAGE", "NESTED_DIR", "NFC_SHIM_PATH"} {
		if env[k] == "" {
			return nil, fmt.Errorf("%s: %s is not set", nestedEnvFile, k)
		}
	}
	return env, nil
}

// nomadosAgent runs the one task, reports, powers the machine off and then waits to be stopped.
func nomadosAgent() int {
	start := time.Now()
	fmt.Println("NOMADOS-NESTED START")
	report, err := runNestedTask()
	line := fmt.Sprintf("NOMADOS-NESTED RESULT %s total_ms=%d", report, time.Since(start).Milliseconds())
	if err != nil {
		line = fmt.Sprintf("NOMADOS-NESTED FAILED %v (%s)", err, report)
	}
	fmt.Println(line)
	if dir := os.Getenv("NESTED_DIR"); dir != "" {
		path := filepath.Join(dir, "result")
		if f, ferr := os.Create(path); ferr == nil {
			fmt.Fprintln(f, line)
			f.Sync()
			f.Close()
		}
	}
	syscall.Kill(1, syscall.SIGUSR2) // nomad-init: power off (the agent gets SIGTERM first)
	select {}
}

func runNestedTask() (string, error) {
	env, err := loadNestedEnv()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Join(env["NESTED_DIR"], "tmp"), 0700); err != nil {
		return "", err
	}
	os.Setenv("TMPDIR", filepath.Join(env["NESTED_DIR"], "tmp"))
	guest = &guestEnv{Dir: env["NESTED_DIR"], Kernel: env["NESTED_KERNEL"], Initrd: env["NESTED_INITRD"]}
	h, err := newH(env["NESTED_PLUGIN"], "nomados-nested", true)
	if err != nil {
		return "", err
	}
	defer h.cleanup()
	h.guestScenario()
	inst, err := h.Launch(LaunchOptions{Env: h.PluginEnv})
	if err != nil {
		return "", err
	}
	schema, err := pluginSchema(inst)
	if err != nil {
		return "", err
	}
	// boot_timeout: the guest kernel boots under TCG inside TCG (the default 180 s is for one level of TCG).
	pluginHCL := fmt.Sprintf("%scgroup_parent = %q\nkernel_path = %q\ninitrd_path = %q\ndata_dir = %q\nboot_timeout = \"20m\"\n",
		h.backendHCL(), h.cgroupParent(), guest.Kernel, guest.Initrd, h.dataDir())
	packed, _, err := EncodeConfig(pluginHCL, schema)
	if err != nil {
		return "", fmt.Errorf("encoding the plugin block: %v", err)
	}
	if err := setConfig(inst, packed, true); err != nil {
		return "", fmt.Errorf("SetConfig: %v", err)
	}
	rt, err := h.attachRuntime(inst, true)
	if err != nil {
		return "", err
	}
	script := fmt.Sprintf("echo nested-hello from $NOMAD_TASK_NAME; exit %d", nestedExitCode)
	t, err := h.newTask(rt.Instance, "nested", fmt.Sprintf("image = %q\nargs = %s\n", env["NESTED_IMAGE"],
		hclList([]string{"/bin/sh", "-c", script})))
	if err != nil {
		return "", err
	}
	// StartTask under nested emulation: the layout is copied, the rootfs built and the microVM booted by QEMU
	// (TCG) inside a QEMU (TCG) machine: minutes, not the client's usual seconds.
	ctx, cancel := ctxTimeout(25 * time.Minute)
	t0 := time.Now()
	_, err = rt.Driver.StartTask(ctx, &drvpb.StartTaskRequest{Task: t.Config})
	cancel()
	startMs := time.Since(t0).Milliseconds()
	if err != nil {
		printShimLogs(h.dataDir())
		return fmt.Sprintf("start_ms=%d", startMs), fmt.Errorf("StartTask: %v", err)
	}
	res, err := rt.waitTask(t.Config.Id, 25*time.Minute)
	runMs := time.Since(t0).Milliseconds()
	report := fmt.Sprintf("start_ms=%d start_to_exit_ms=%d", startMs, runMs)
	if err != nil {
		return report, err
	}
	report += fmt.Sprintf(" exit_code=%d signal=%d", res.GetResult().GetExitCode(), res.GetResult().GetSignal())
	if res.GetResult().GetExitCode() != nestedExitCode || res.GetErr() != "" {
		return report, fmt.Errorf("WaitTask %s, want exit_code=%d", describeExit(res), nestedExitCode)
	}
	if err := waitForExactOutput(t.Stdout, nestedStdout, 60*time.Second); err != nil {
		return report, err
	}
	report += " stdout=" + strings.TrimSpace(nestedStdout)
	if err := rt.destroyTask(t.Config.Id); err != nil {
		return report, err
	}
	_, err = rt.Kill(h)
	return report, err
}

// printShimLogs shows the end of every shim.log below dir on the console: the data dir is removed when the run
// ends, and the console is what the outer test keeps.
func printShimLogs(dir string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "tasks", "*", "shim.log"))
	for _, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if len(data) > 6000 {
			data = data[len(data)-6000:]
		}
		fmt.Printf("---- %s (end) ----\n%s\n----\n", path, data)
	}
}
