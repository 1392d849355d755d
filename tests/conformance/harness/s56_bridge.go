package main

// Bridge (group) networking as Nomad drives it (reference 5.3, NetworkIsolationSpec): the client creates the
// allocation's network namespace and its CNI bridge setup gives eth0 the allocation's address; StartTask gets the
// namespace's path. Here the test makes both sides itself: an "outside" namespace standing for the host's bridge
// and an allocation namespace, joined by a veth pair, each held by a `sleep` that dies with the harness.

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	drvpb "nfcproto/drivers"
)

func init() {
	register(Scenario{Name: "lifecycle-bridge-network", Guest: true, Timeout: 3 * time.Minute, Run: testBridgeNetwork})
}

// netnsHolder is a process in a fresh network namespace; the namespace lives as long as it does.
type netnsHolder struct{ cmd *exec.Cmd }

func (h *H) newNetns() (*netnsHolder, error) {
	cmd := exec.Command("unshare", "--net", "sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("unshare --net: %v", err)
	}
	n := &netnsHolder{cmd: cmd}
	h.OnCleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// unshare execs sleep once the namespace exists: wait for that.
	for i := 0; i < 100; i++ {
		if exe, _ := exec.Command("readlink", fmt.Sprintf("/proc/%d/exe", cmd.Process.Pid)).Output(); strings.Contains(string(exe), "sleep") {
			return n, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("unshare --net did not start sleep")
}

func (n *netnsHolder) pid() string  { return strconv.Itoa(n.cmd.Process.Pid) }
func (n *netnsHolder) path() string { return "/proc/" + n.pid() + "/ns/net" }

// run runs a command inside the namespace and returns its output.
func (n *netnsHolder) run(args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"--net=" + n.path()}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func testBridgeNetwork(h *H) error {
	h.guestScenario()
	outside, err := h.newNetns()
	if err != nil {
		return err
	}
	alloc, err := h.newNetns()
	if err != nil {
		return err
	}
	// What Nomad's CNI bridge configuration leaves in an allocation's namespace.
	for _, step := range []struct {
		ns   *netnsHolder
		args string
	}{
		{outside, "ip link add name vout type veth peer name eth0 netns " + alloc.pid()},
		{outside, "ip addr add 10.79.0.1/24 dev vout"},
		{outside, "ip link set vout up"},
		{alloc, "ip addr add 10.79.0.2/24 dev eth0"},
		{alloc, "ip link set eth0 up"},
		{alloc, "ip route add default via 10.79.0.1"},
	} {
		if _, err := step.ns.run(strings.Fields(step.args)...); err != nil {
			return fmt.Errorf("setting up the test network: %v", err)
		}
	}

	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	ctx, cancel := ctxTimeout(10 * time.Second)
	caps, err := rt.Driver.Capabilities(ctx, &drvpb.CapabilitiesRequest{})
	cancel()
	if err != nil {
		return err
	}
	group := false
	for _, m := range caps.GetCapabilities().GetNetworkIsolationModes() {
		group = group || m == drvpb.NetworkIsolationSpec_GROUP
	}
	if !group || caps.GetCapabilities().GetMustCreateNetwork() {
		return fmt.Errorf("Capabilities: want GROUP isolation without must_create_network, got %v", caps.GetCapabilities())
	}

	t, err := h.newTask(rt.Instance, "web", taskHCL([]string{"/bin/sh", "-c",
		"/bin/busybox ip -o addr show eth0; echo ready; " +
			"while true; do echo hello-over-the-bridge | /bin/busybox nc -l -p 8080; done"}, ""))
	if err != nil {
		return err
	}
	t.Config.NetworkIsolationSpec = &drvpb.NetworkIsolationSpec{Mode: drvpb.NetworkIsolationSpec_GROUP, Path: alloc.path()}
	ctx, cancel = ctxTimeout(3 * time.Minute)
	resp, err := rt.Driver.StartTask(ctx, &drvpb.StartTaskRequest{Task: t.Config})
	cancel()
	if err != nil {
		return fmt.Errorf("StartTask in bridge mode: %v", err)
	}
	if got := resp.GetNetworkOverride().GetAddr(); got != "10.79.0.2" {
		return fmt.Errorf("StartTask's network_override.addr = %q, want the allocation's address 10.79.0.2", got)
	}
	id := t.Config.Id
	if err := waitForOutput(t.Stdout, "ready\n", 90*time.Second); err != nil {
		return err
	}
	if out := t.Stdout.Contents(); !strings.Contains(out, "inet 10.79.0.2/24") {
		return fmt.Errorf("the guest's eth0 does not hold the allocation's address:\n%s", out)
	}
	// A peer on the bridge reaches the workload at the allocation's address (nc may refuse while it restarts).
	var got string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(got, "hello-over-the-bridge") {
		got, _ = outside.run("busybox", "nc", "-w", "3", "10.79.0.2", "8080")
		if !strings.Contains(got, "hello-over-the-bridge") {
			time.Sleep(250 * time.Millisecond)
		}
	}
	if !strings.Contains(got, "hello-over-the-bridge") {
		return fmt.Errorf("no answer from the guest at 10.79.0.2:8080 (last: %q)", got)
	}
	if err := rt.stopTask(id, 2*time.Second, "SIGTERM"); err != nil {
		return err
	}
	if err := rt.destroyAndCheck(id, resp.GetHandle()); err != nil {
		return err
	}
	// The namespace is as Nomad made it: no TAP, no redirect on eth0.
	links, err := alloc.run("ip", "-o", "link", "show")
	if err != nil {
		return err
	}
	if strings.Contains(links, "nfc") {
		return fmt.Errorf("a TAP is left in the allocation's namespace after DestroyTask:\n%s", links)
	}
	filters, err := alloc.run("tc", "filter", "show", "dev", "eth0", "ingress")
	if err != nil {
		return err
	}
	if strings.Contains(filters, "mirred") {
		return fmt.Errorf("the redirect is left on eth0 after DestroyTask:\n%s", filters)
	}
	return nil
}
