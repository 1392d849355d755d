package main

// The go-plugin process contract (reference 1.2-1.9): handshake, environment checks, logs, health, Controller
// shutdown, Stdio/Broker streams, surviving a dead agent's pipes.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	basepb "nfcproto/base"
	"nfcproto/goplugin"
)

var handshakeRE = regexp.MustCompile(`^1\|2\|unix\|(/[^|]+)\|grpc\|?$`)

func init() {
	register(
		Scenario{Name: "handshake-line-and-socket", Run: testHandshake},
		Scenario{Name: "refuses-wrong-cookie-or-protocol", Run: testRefusals},
		Scenario{Name: "fingerprint-instance-info-schema-kill", Run: testFingerprintInstance},
		Scenario{Name: "driver-name-from-binary-name", Run: testNaming},
		Scenario{Name: "ping-health-plugin-serving", Run: testPing},
		Scenario{Name: "stdio-stream-open-until-cancelled", Run: testStdio},
		Scenario{Name: "survives-broken-stderr-pipe", Run: testBrokenStderr},
	)
}

func testHandshake(h *H) error {
	sockDir := filepath.Join(h.Dir, "sockets")
	if err := os.Mkdir(sockDir, 0700); err != nil {
		return err
	}
	p, err := h.StartRaw([]string{"PLUGIN_UNIX_SOCKET_DIR=" + sockDir})
	if err != nil {
		return err
	}
	line := strings.TrimRight(p.Handshake, "\n")
	m := handshakeRE.FindStringSubmatch(line)
	if m == nil {
		return fmt.Errorf("handshake %q is not `1|2|unix|<path>|grpc`", line)
	}
	if filepath.Dir(m[1]) != sockDir {
		return fmt.Errorf("socket %s is not in PLUGIN_UNIX_SOCKET_DIR %s", m[1], sockDir)
	}
	st, err := os.Stat(m[1])
	if err != nil || st.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s is not a unix socket: %v", m[1], err)
	}
	ctx, cancel := ctxTimeout(5 * time.Second)
	defer cancel()
	info, err := basepb.NewBasePluginClient(p.Conn).PluginInfo(ctx, &basepb.PluginInfoRequest{})
	if err != nil {
		return fmt.Errorf("PluginInfo over the raw connection: %v", err)
	}
	if info.GetType() != basepb.PluginType_DRIVER {
		return fmt.Errorf("type %v", info.GetType())
	}
	took, err := p.Shutdown()
	if err != nil {
		return err
	}
	h.Metric("raw_controller_shutdown_to_exit_ms", took.Milliseconds())
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		return fmt.Errorf("socket %s still exists after exit (%v)", m[1], err)
	}
	// Every stderr line must be an hclog JSON record the agent can parse (reference 1.5).
	return checkHclogLines(p.StderrText())
}

func checkHclogLines(text string) error {
	scanner := bufio.NewScanner(strings.NewReader(text))
	n := 0
	for scanner.Scan() {
		line := scanner.Text()
		if line == "" {
			continue
		}
		n++
		var rec map[string]interface{}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			return fmt.Errorf("stderr line is not JSON: %q", line)
		}
		level, _ := rec["@level"].(string)
		switch level {
		case "trace", "debug", "info", "warn", "error":
		default:
			return fmt.Errorf("bad @level in %q", line)
		}
		if _, ok := rec["@message"].(string); !ok {
			return fmt.Errorf("no @message in %q", line)
		}
		ts, _ := rec["@timestamp"].(string)
		if _, err := time.Parse("2006-01-02T15:04:05.000000Z07:00", ts); err != nil || len(ts) < 27 {
			return fmt.Errorf("@timestamp %q does not have hclog's layout: %v", ts, err)
		}
	}
	if n == 0 {
		return fmt.Errorf("the plugin logged nothing at debug level")
	}
	return nil
}

func testRefusals(h *H) error {
	cases := []struct {
		env  []string
		want string
	}{
		{[]string{"NOMAD_PLUGIN_MAGIC_COOKIE=wrong"}, "magic cookie"},
		{[]string{"NOMAD_PLUGIN_MAGIC_COOKIE=" + nomadHandshake.MagicCookieValue, "PLUGIN_PROTOCOL_VERSIONS=1"}, "PLUGIN_PROTOCOL_VERSIONS"},
	}
	for _, c := range cases {
		cmd := exec.Command(h.PluginPath)
		cmd.Env = append(os.Environ(), c.env...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		exit, ok := err.(*exec.ExitError)
		if !ok || exit.ExitCode() != 1 {
			return fmt.Errorf("env %v: want exit status 1, got %v", c.env, err)
		}
		if stdout.Len() != 0 {
			return fmt.Errorf("env %v: printed %q on stdout (must stay empty)", c.env, stdout.String())
		}
		if !strings.Contains(stderr.String(), c.want) {
			return fmt.Errorf("env %v: stderr %q does not mention %q", c.env, stderr.String(), c.want)
		}
	}
	return nil
}

// Reference 1.1: the agent's fingerprint instance: launch, PluginInfo, ConfigSchema, Kill.
func testFingerprintInstance(h *H) error {
	start := time.Now()
	inst, err := h.Launch(LaunchOptions{})
	if err != nil {
		return err
	}
	h.Metric("launch_to_dispense_ms", time.Since(start).Milliseconds())
	ctx, cancel := ctxTimeout(5 * time.Second)
	defer cancel()
	info, err := inst.Base.PluginInfo(ctx, &basepb.PluginInfoRequest{})
	if err != nil {
		return fmt.Errorf("PluginInfo: %v", err)
	}
	if info.GetType() != basepb.PluginType_DRIVER {
		return fmt.Errorf("type = %v, want DRIVER", info.GetType())
	}
	if len(info.GetPluginApiVersions()) != 1 || info.GetPluginApiVersions()[0] != "v0.1.0" {
		return fmt.Errorf("plugin_api_versions = %v, want [v0.1.0]", info.GetPluginApiVersions())
	}
	if !regexp.MustCompile(`^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`).MatchString(info.GetPluginVersion()) {
		return fmt.Errorf("plugin_version %q is not a semantic version", info.GetPluginVersion())
	}
	if info.GetName() != "firecracker" {
		return fmt.Errorf("name = %q, want firecracker", info.GetName())
	}
	schema, err := inst.Base.ConfigSchema(ctx, &basepb.ConfigSchemaRequest{})
	if err != nil {
		return fmt.Errorf("ConfigSchema: %v", err)
	}
	if schema.GetSpec().GetObject() == nil {
		return fmt.Errorf("ConfigSchema root is not an Object (the loader requires one)")
	}
	if _, err := specToHcldec(schema.GetSpec(), ""); err != nil {
		return fmt.Errorf("ConfigSchema does not convert to hcldec: %v", err)
	}
	took, err := inst.Kill(h)
	h.Metric("kill_fingerprint_instance_ms", took.Milliseconds())
	if err != nil {
		return err
	}
	if took >= 2*time.Second {
		return fmt.Errorf("Kill took %v (go-plugin waits at most 2 s)", took)
	}
	return nil
}

func testNaming(h *H) error {
	for _, c := range []struct{ file, want string }{
		{"litegix-fc-driver", "litegix-fc-driver"},
		{"nomad-driver-fc", "fc"},
	} {
		link := filepath.Join(h.Dir, c.file)
		if err := os.Symlink(h.PluginPath, link); err != nil {
			return err
		}
		inst, err := h.Launch(LaunchOptions{Path: link})
		if err != nil {
			return err
		}
		ctx, cancel := ctxTimeout(5 * time.Second)
		info, err := inst.Base.PluginInfo(ctx, &basepb.PluginInfoRequest{})
		cancel()
		if err != nil {
			return err
		}
		if info.GetName() != c.want {
			return fmt.Errorf("installed as %s: name = %q, want %q", c.file, info.GetName(), c.want)
		}
		if _, err := inst.Kill(h); err != nil {
			return err
		}
	}
	return nil
}

func testPing(h *H) error {
	inst, err := h.Launch(LaunchOptions{})
	if err != nil {
		return err
	}
	if err := inst.rpc.Ping(); err != nil {
		return fmt.Errorf("Ping (grpc.health.v1 Check service=plugin): %v", err)
	}
	_, err = inst.Kill(h)
	return err
}

// Newer go-plugin clients (Nomad 1.9+) open GRPCStdio.StreamStdio; it must stay open, quietly, until cancelled.
func testStdio(h *H) error {
	inst, err := h.Launch(LaunchOptions{})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := goplugin.NewGRPCStdioClient(inst.Conn).StreamStdio(ctx, &emptypb.Empty{})
	if err != nil {
		cancel()
		return fmt.Errorf("StreamStdio: %v", err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := stream.Recv()
		got <- err
	}()
	select {
	case err := <-got:
		cancel()
		return fmt.Errorf("StreamStdio ended or sent data before being cancelled: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-got:
		if status.Code(err) != codes.Canceled {
			return fmt.Errorf("after cancel: %v, want Canceled", err)
		}
	case <-time.After(2 * time.Second):
		return fmt.Errorf("StreamStdio did not end after cancel")
	}
	took, err := inst.Kill(h)
	h.Metric("kill_after_stdio_ms", took.Milliseconds())
	return err
}

// After an agent crash the plugin's stderr pipe has no reader; logging must not kill the plugin (SIGPIPE).
func testBrokenStderr(h *H) error {
	p, err := h.StartRaw(nil)
	if err != nil {
		return err
	}
	p.CloseStderr()
	base := basepb.NewBasePluginClient(p.Conn)
	for i := 0; i < 3; i++ { // each SetConfig logs at debug level -> writes to the broken pipe
		ctx, cancel := ctxTimeout(5 * time.Second)
		_, err := base.SetConfig(ctx, &basepb.SetConfigRequest{MsgpackConfig: []byte{0x80}})
		cancel()
		if err != nil {
			p.Cmd.Process.Kill()
			p.Cmd.Wait()
			return fmt.Errorf("SetConfig %d after closing stderr: %v", i, err)
		}
	}
	_, err = p.Shutdown()
	return err
}
