package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	basepb "nfcproto/base"
	drvpb "nfcproto/drivers"
)

// Nomad's handshake (plugins/base/plugin.go Handshake).
var nomadHandshake = plugin.HandshakeConfig{
	ProtocolVersion:  2,
	MagicCookieKey:   "NOMAD_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "e4327c2e01eabfd75a8a67adb114fb34a757d57eee7728d857a8cec6e91a7255",
}

// Scenario is one behaviour a Nomad client relies on.
type Scenario struct {
	Name    string
	Timeout time.Duration // default 60 s
	// Guest scenarios boot real microVMs from a real registry: they run only with -lifecycle, inside
	// nfc-harness-env (tests/lifecycle), which provides the registry, the guest artifacts and the shim.
	Guest bool
	Run   func(h *H) error
}

var scenarios []Scenario

func register(s ...Scenario) { scenarios = append(scenarios, s...) }

// H is a scenario's context: the plugin binary, a private temp dir, the plugin's captured log, metrics to print.
type H struct {
	PluginPath string
	Dir        string
	// PluginExtra is appended to the plugin's config block (a scenario's own options, e.g. a short boot_timeout).
	PluginExtra string
	// PluginEnv is added to the plugin process's environment.
	PluginEnv []string
	logs      *syncBuffer
	verbose   bool
	metrics   []string
	instances []*Instance
	cleanups  []func() // run after the instances were killed, last registered first
	// cgroupCleanup: the removal of the scenario's cgroup_parent is registered.
	cgroupCleanup bool
}

func newH(pluginPath, name string, verbose bool) (*H, error) {
	abs, err := filepath.Abs(pluginPath)
	if err != nil {
		return nil, err
	}
	dir, err := ioutil.TempDir("", "nfc-conformance-")
	if err != nil {
		return nil, err
	}
	return &H{PluginPath: abs, Dir: dir, logs: &syncBuffer{}, verbose: verbose}, nil
}

func (h *H) cleanup() {
	for _, inst := range h.instances {
		inst.client.Kill()
	}
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
	os.RemoveAll(h.Dir)
}

// OnCleanup registers f to run when the scenario ends (also after a failure or a time-out).
func (h *H) OnCleanup(f func()) { h.cleanups = append(h.cleanups, f) }

// Metric records a figure printed after all scenarios ("metric <name>=<value>").
func (h *H) Metric(name string, value interface{}) {
	h.metrics = append(h.metrics, fmt.Sprintf("%s=%v", name, value))
}

// Logs returns what the plugin wrote on stderr, as go-plugin's client logged it.
func (h *H) Logs() string { return h.logs.String() }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// driverPlugin is the go-plugin "driver" plugin: it only builds client stubs, like Nomad's drivers.PluginDriver.
type driverPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (driverPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return fmt.Errorf("the harness is only a client")
}

func (driverPlugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, conn *grpc.ClientConn) (interface{}, error) {
	return &Stubs{Conn: conn, Base: basepb.NewBasePluginClient(conn), Driver: drvpb.NewDriverClient(conn)}, nil
}

// Stubs are the gRPC clients of one connection to the plugin.
type Stubs struct {
	Conn   *grpc.ClientConn
	Base   basepb.BasePluginClient
	Driver drvpb.DriverClient
}

// Instance is one plugin process as the Nomad client holds it.
type Instance struct {
	client *plugin.Client
	rpc    plugin.ClientProtocol
	*Stubs
}

// LaunchOptions tweak how an instance is started.
type LaunchOptions struct {
	Path string   // binary to run (default: h.PluginPath)
	Args []string // the plugin block's `args`
	Env  []string // extra environment
}

// Launch starts a plugin process the way Nomad's loader does (exec the binary, handshake, dispense "driver").
func (h *H) Launch(opts LaunchOptions) (*Instance, error) {
	path := opts.Path
	if path == "" {
		path = h.PluginPath
	}
	cmd := exec.Command(path, opts.Args...)
	cmd.Env = append(os.Environ(), opts.Env...)
	return h.connect(&plugin.ClientConfig{
		HandshakeConfig:  nomadHandshake,
		Plugins:          map[string]plugin.Plugin{"driver": driverPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           h.logger(filepath.Base(path)),
	})
}

// Reattach connects to a running plugin process like the client does after an agent crash.
func (h *H) Reattach(rc *plugin.ReattachConfig) (*Instance, error) {
	return h.connect(&plugin.ClientConfig{
		HandshakeConfig:  nomadHandshake,
		Plugins:          map[string]plugin.Plugin{"driver": driverPlugin{}},
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           h.logger("reattached"),
	})
}

func (h *H) logger(name string) hclog.Logger {
	var out io.Writer = h.logs
	if h.verbose {
		out = io.MultiWriter(h.logs, os.Stderr)
	}
	return hclog.New(&hclog.LoggerOptions{Name: "plugin." + name, Output: out, Level: hclog.Trace})
}

func (h *H) connect(cfg *plugin.ClientConfig) (*Instance, error) {
	client := plugin.NewClient(cfg)
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("connecting to the plugin: %v", err)
	}
	raw, err := rpc.Dispense("driver")
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("dispensing the driver: %v", err)
	}
	inst := &Instance{client: client, rpc: rpc, Stubs: raw.(*Stubs)}
	h.instances = append(h.instances, inst)
	return inst, nil
}

// Kill is go-plugin's Kill (GRPCController.Shutdown, close, wait up to 2 s, then SIGKILL); returns how long it took
// and whether the process exited by itself (go-plugin logs "plugin failed to exit gracefully" otherwise).
func (inst *Instance) Kill(h *H) (time.Duration, error) {
	before := strings.Count(h.Logs(), "plugin failed to exit gracefully")
	start := time.Now()
	inst.client.Kill()
	took := time.Since(start)
	if strings.Count(h.Logs(), "plugin failed to exit gracefully") > before {
		return took, fmt.Errorf("the plugin did not exit within go-plugin's 2 s grace and was SIGKILLed")
	}
	return took, nil
}

func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// RawProcess is a plugin started by hand (no go-plugin client), for checks on the process contract itself.
type RawProcess struct {
	Cmd        *exec.Cmd
	Handshake  string
	Stdout     *bufio.Reader
	Conn       *grpc.ClientConn
	stderrR    *os.File
	stderr     syncBuffer
	stderrDone chan struct{}
}

// CloseStderr closes our read end of the plugin's stderr pipe, like a crashed agent does.
func (p *RawProcess) CloseStderr() { p.stderrR.Close() }

// StderrText waits until the plugin closed its stderr (exited) and returns everything it wrote.
func (p *RawProcess) StderrText() string {
	<-p.stderrDone
	return p.stderr.String()
}

// StartRaw execs the plugin with Nomad's environment plus `env`, reads the first stdout line and dials the address.
func (h *H) StartRaw(env []string, args ...string) (*RawProcess, error) {
	cmd := exec.Command(h.PluginPath, args...)
	cmd.Env = append(append(os.Environ(), "NOMAD_PLUGIN_MAGIC_COOKIE="+nomadHandshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=2", "PLUGIN_MIN_PORT=10000", "PLUGIN_MAX_PORT=25000"), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = stderrW
	if err := cmd.Start(); err != nil {
		stderrR.Close()
		stderrW.Close()
		return nil, err
	}
	stderrW.Close()
	p := &RawProcess{Cmd: cmd, Stdout: bufio.NewReader(stdout), stderrR: stderrR, stderrDone: make(chan struct{})}
	go func() {
		io.Copy(&p.stderr, stderrR)
		close(p.stderrDone)
	}()
	lineCh := make(chan string, 1)
	go func() {
		line, _ := p.Stdout.ReadString('\n')
		lineCh <- line
	}()
	select {
	case p.Handshake = <-lineCh:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("no handshake line within 30 s")
	}
	parts := strings.Split(strings.TrimSpace(p.Handshake), "|")
	if len(parts) < 5 {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("handshake line %q has fewer than 5 fields", p.Handshake)
	}
	addr := parts[3]
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	p.Conn, err = grpc.DialContext(ctx, "unused", grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		}))
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("dialing %s: %v", addr, err)
	}
	return p, nil
}

// Shutdown calls GRPCController.Shutdown (plugin.Empty is wire-identical to google.protobuf.Empty) and waits for
// the process to exit; returns the time from the call to the exit.
func (p *RawProcess) Shutdown() (time.Duration, error) {
	start := time.Now()
	ctx, cancel := ctxTimeout(5 * time.Second)
	defer cancel()
	if err := p.Conn.Invoke(ctx, "/plugin.GRPCController/Shutdown", &emptypb.Empty{}, &emptypb.Empty{}); err != nil {
		return 0, fmt.Errorf("GRPCController.Shutdown: %v", err)
	}
	p.Conn.Close()
	exited := make(chan error, 1)
	go func() { exited <- p.Cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			return time.Since(start), fmt.Errorf("plugin exited with %v", err)
		}
		return time.Since(start), nil
	case <-time.After(5 * time.Second):
		p.Cmd.Process.Kill()
		<-exited
		return 0, fmt.Errorf("plugin did not exit within 5 s of GRPCController.Shutdown")
	}
}
