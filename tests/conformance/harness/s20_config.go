package main

// Configuration encoding end to end (reference 3, 4): agent plugin blocks and task config blocks written as HCL,
// encoded with the plugin's own schemas, sent to the plugin, and errors checked for naming option and value.

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	basepb "nfcproto/base"
	drvpb "nfcproto/drivers"
	"nfcproto/hclspec"
)

// The seed driver's agent config (nomad-litegix-fc-driver README), verbatim.
const seedPluginConfig = `
    vmlinux_path     = "/path/to/vmlinux"
    rootfs_base_path = "/tmp/litegix-rootfs"
`

// The seed driver's example task config, verbatim.
const seedTaskConfig = `
        image     = "ubuntu:20.04"
        vpu_count = 1
        mem_size  = 512
        command   = "/bin/bash"
        args      = "-c 'echo Hello from Firecracker VM && sleep 30'"
        env       = ["ENV_VAR=value", "ANOTHER_VAR=value2"]
`

// What a docker-driver user writes.
const modernTaskConfig = `
  image      = "registry.local:5000/tools/app:1.2"
  vcpu_count = 2
  mem_size   = 256
  entrypoint = ["/bin/sh", "-c"]
  args       = ["echo $GREETING", "ignored"]
  env        = { GREETING = "hello", COUNT = 3 }
  work_dir   = "/srv"
  user       = "1000:1000"
  boot_args  = "quiet"
  backend    = "qemu"
  force_pull = true
  image_pull_timeout = "5m"
  auth {
    username       = "robot"
    password       = "s3cret"
    server_address = "registry.local:5000"
  }
`

func init() {
	register(
		Scenario{Name: "encoder-matches-reference-bytes", Run: testEncoderReference},
		Scenario{Name: "validation-instance-seed-plugin-config", Run: testValidationInstance},
		Scenario{Name: "plugin-config-empty-block-and-options", Run: testPluginConfigVariants},
		Scenario{Name: "plugin-config-bad-values-are-named", Run: testPluginConfigErrors},
		Scenario{Name: "task-config-seed-and-modern-forms", Run: testTaskConfigForms},
		Scenario{Name: "task-config-bad-values-are-named", Run: testTaskConfigErrors},
	)
}

// Cross-checks this harness's encoding pipeline (and the reference's hand-made bytes) against go-cty itself.
func testEncoderReference(h *H) error {
	attr := func(name, typ string, required bool) *hclspec.Spec {
		return &hclspec.Spec{Block: &hclspec.Spec_Attr{Attr: &hclspec.Attr{Name: name, Type: typ, Required: required}}}
	}
	withDefault := func(a *hclspec.Spec, literal string) *hclspec.Spec {
		return &hclspec.Spec{Block: &hclspec.Spec_Default{Default: &hclspec.Default{Primary: a,
			Default: &hclspec.Spec{Block: &hclspec.Spec_Literal{Literal: &hclspec.Literal{Value: literal}}}}}}
	}
	schema := &hclspec.Spec{Block: &hclspec.Spec_Object{Object: &hclspec.Object{Attributes: map[string]*hclspec.Spec{
		"image":      attr("image", "string", true),
		"vcpu_count": withDefault(attr("vcpu_count", "number", false), "1"),
		"mem_size":   withDefault(attr("mem_size", "number", false), "128"),
		"command":    attr("command", "string", false),
		"args":       attr("args", "list(string)", false),
		"env":        attr("env", "map(string)", false),
	}}}}
	cases := []struct{ hcl, want string }{
		{`image = "alpine.ext4"
		  vcpu_count = 2
		  mem_size = 512
		  command = "/bin/echo"
		  args = ["hello", "world"]
		  env = { FOO = "bar" }`,
			"86a46172677392a568656c6c6fa5776f726c64a7636f6d6d616e64a92f62696e2f6563686fa3656e7681a3464f4fa3626172" +
				"a5696d616765ab616c70696e652e65787434a86d656d5f73697a65cd0200aa766370755f636f756e7402"},
		{`image = "alpine.ext4"`,
			"86a461726773c0a7636f6d6d616e64c0a3656e76c0a5696d616765ab616c70696e652e65787434a86d656d5f73697a65cc80" +
				"aa766370755f636f756e7401"},
		{`image = "x"
		  mem_size = 0.1`, ""}, // checked below: decimal text
	}
	for i, c := range cases {
		got, _, err := EncodeConfig(c.hcl, schema)
		if err != nil {
			return fmt.Errorf("case %d: %v", i, err)
		}
		if c.want != "" && hex.EncodeToString(got) != c.want {
			return fmt.Errorf("case %d: encoded %x, reference says %s", i, got, c.want)
		}
		if c.want == "" && !bytes.Contains(got, []byte{0xa3, '0', '.', '1'}) {
			return fmt.Errorf("case %d: 0.1 was not sent as the decimal string \"0.1\": %x", i, got)
		}
	}
	return nil
}

func pluginSchema(inst *Instance) (*hclspec.Spec, error) {
	ctx, cancel := ctxTimeout(5 * time.Second)
	defer cancel()
	resp, err := inst.Base.ConfigSchema(ctx, &basepb.ConfigSchemaRequest{})
	if err != nil {
		return nil, fmt.Errorf("ConfigSchema: %v", err)
	}
	return resp.GetSpec(), nil
}

func setConfig(inst *Instance, msgpack []byte, runtime bool) error {
	req := &basepb.SetConfigRequest{MsgpackConfig: msgpack, PluginApiVersion: "v0.1.0"}
	if runtime {
		req.NomadConfig = &basepb.NomadConfig{Driver: &basepb.NomadDriverConfig{ClientMinPort: 14000, ClientMaxPort: 14512}}
	}
	ctx, cancel := ctxTimeout(10 * time.Second)
	defer cancel()
	_, err := inst.Base.SetConfig(ctx, req)
	return err
}

// Reference 1.1: the validation instance: SetConfig (no nomad_config) twice with the same bytes, then Kill.
func testValidationInstance(h *H) error {
	inst, err := h.Launch(LaunchOptions{})
	if err != nil {
		return err
	}
	schema, err := pluginSchema(inst)
	if err != nil {
		return err
	}
	packed, val, err := EncodeConfig(seedPluginConfig, schema)
	if err != nil {
		return fmt.Errorf("encoding the seed's plugin config with our schema: %v", err)
	}
	if v := val.GetAttr("vmlinux_path").AsString(); v != "/path/to/vmlinux" {
		return fmt.Errorf("vmlinux_path encoded as %q", v)
	}
	for i := 0; i < 2; i++ {
		if err := setConfig(inst, packed, false); err != nil {
			return fmt.Errorf("SetConfig #%d: %v", i+1, err)
		}
	}
	took, err := inst.Kill(h)
	h.Metric("kill_validation_instance_ms", took.Milliseconds())
	return err
}

func testPluginConfigVariants(h *H) error {
	inst, err := h.Launch(LaunchOptions{})
	if err != nil {
		return err
	}
	schema, err := pluginSchema(inst)
	if err != nil {
		return err
	}
	for _, cfg := range []string{
		``, // plugin "nomad-driver-firecracker" {}
		`kernel_path = "/boot/vmlinux"
		 initrd_path = ""
		 data_dir = "/srv/fc"
		 backend = "qemu"
		 image_cache_size = 1073741824
		 insecure_registries = ["registry.local:5000"]
		 ca_file = "/etc/ssl/extra.pem"
		 firecracker_path = "/usr/local/bin/firecracker"
		 jailer_path = "/usr/local/bin/jailer"
		 qemu_path = "qemu-system-x86_64"`,
		`image_cache_size = "500MiB"`,
		`pull_activity_timeout = "90s"`,
		`containerd_socket = "/run/containerd/containerd.sock"`,
	} {
		packed, _, err := EncodeConfig(cfg, schema)
		if err != nil {
			return fmt.Errorf("config %q does not encode: %v", cfg, err)
		}
		if err := setConfig(inst, packed, false); err != nil {
			return fmt.Errorf("config %q: SetConfig: %v", cfg, err)
		}
	}
	// Tolerates an absent config entirely (no schema bytes).
	if err := setConfig(inst, nil, false); err != nil {
		return fmt.Errorf("SetConfig with empty msgpack_config: %v", err)
	}
	if _, err := inst.Kill(h); err != nil {
		return err
	}
	if !strings.Contains(h.Logs(), "containerd_socket") || !strings.Contains(h.Logs(), "ignored") {
		return fmt.Errorf("no warning about the ignored containerd_socket in the plugin's log")
	}
	return nil
}

func testPluginConfigErrors(h *H) error {
	inst, err := h.Launch(LaunchOptions{})
	if err != nil {
		return err
	}
	schema, err := pluginSchema(inst)
	if err != nil {
		return err
	}
	// Rejected by the plugin: the message must name the option and the value.
	for _, c := range []struct {
		hcl  string
		want []string
	}{
		{`backend = "kvmtool"`, []string{"backend", "kvmtool"}},
		{`image_cache_size = "lots"`, []string{"image_cache_size", "lots"}},
		{`kernel_path = "vmlinux"`, []string{"kernel_path", "vmlinux", "absolute"}},
		{`kernel_path = "/a"
		  vmlinux_path = "/b"`, []string{"kernel_path", "vmlinux_path"}},
		{`insecure_registries = ["https://x/y"]`, []string{"insecure_registries", "https://x/y"}},
		{`pull_activity_timeout = "120"`, []string{"pull_activity_timeout", "120", "unit"}},
	} {
		packed, _, err := EncodeConfig(c.hcl, schema)
		if err != nil {
			return fmt.Errorf("%q should encode (the plugin, not the client, rejects it): %v", c.hcl, err)
		}
		err = setConfig(inst, packed, false)
		if status.Code(err) != codes.InvalidArgument {
			return fmt.Errorf("%q: SetConfig returned %v, want InvalidArgument", c.hcl, err)
		}
		for _, w := range c.want {
			if !strings.Contains(status.Convert(err).Message(), w) {
				return fmt.Errorf("%q: error %q does not mention %q", c.hcl, status.Convert(err).Message(), w)
			}
		}
	}
	// Rejected by the client's decoding with our schema (the agent would refuse to start).
	for _, c := range []struct{ hcl, want string }{
		{`colour = "blue"`, "colour"},
		{`insecure_registries = "one"`, "insecure_registries"},
	} {
		if _, _, err := EncodeConfig(c.hcl, schema); err == nil || !strings.Contains(err.Error(), c.want) {
			return fmt.Errorf("%q: want a client-side error mentioning %q, got %v", c.hcl, c.want, err)
		}
	}
	_, err = inst.Kill(h)
	return err
}

func taskSchema(inst *Instance) (*hclspec.Spec, error) {
	ctx, cancel := ctxTimeout(5 * time.Second)
	defer cancel()
	resp, err := inst.Driver.TaskConfigSchema(ctx, &drvpb.TaskConfigSchemaRequest{})
	if err != nil {
		return nil, fmt.Errorf("TaskConfigSchema: %v", err)
	}
	if resp.GetSpec().GetObject() == nil {
		return nil, fmt.Errorf("TaskConfigSchema root is not an Object")
	}
	return resp.GetSpec(), nil
}

// startWithConfig sends StartTask with a task config and returns the status; the driver validates the config
// before anything else, so INVALID_ARGUMENT means "rejected", anything else means "accepted".
func startWithConfig(inst *Instance, packed []byte) error {
	ctx, cancel := ctxTimeout(30 * time.Second)
	defer cancel()
	_, err := inst.Driver.StartTask(ctx, &drvpb.StartTaskRequest{Task: &drvpb.TaskConfig{
		Id: "alloc1/web/0000abcd", Name: "web", AllocId: "alloc1", JobName: "vm", JobId: "vm", TaskGroupName: "g",
		Namespace: "default", MsgpackDriverConfig: packed, StdoutPath: "/dev/null", StderrPath: "/dev/null",
	}})
	return err
}

// isolatedEnv keeps a task manager that really starts tasks from reaching the network or the host's state: the
// configs below are only meant to pass validation, so any image pull must fail at once.
var isolatedEnv = []string{"http_proxy=http://127.0.0.1:9", "https_proxy=http://127.0.0.1:9",
	"HTTPS_PROXY=http://127.0.0.1:9", "ALL_PROXY=http://127.0.0.1:9", "all_proxy=http://127.0.0.1:9", "NO_PROXY=", "no_proxy="}

func isolatedPluginConfig(h *H, inst *Instance) ([]byte, error) {
	schema, err := pluginSchema(inst)
	if err != nil {
		return nil, err
	}
	packed, _, err := EncodeConfig(fmt.Sprintf("data_dir = %q\nkernel_path = %q\nbackend = \"firecracker\"\nfirecracker_path = %q\n",
		h.Dir+"/data", h.Dir+"/no-kernel", h.Dir+"/no-firecracker"), schema)
	return packed, err
}

func testTaskConfigForms(h *H) error {
	inst, err := h.Launch(LaunchOptions{Env: isolatedEnv})
	if err != nil {
		return err
	}
	cfg, err := isolatedPluginConfig(h, inst)
	if err != nil {
		return err
	}
	if err := setConfig(inst, cfg, true); err != nil {
		return err
	}
	schema, err := taskSchema(inst)
	if err != nil {
		return err
	}
	for _, c := range []struct{ name, hcl string }{{"seed", seedTaskConfig}, {"modern", modernTaskConfig},
		{"env-block", "image = \"alpine\"\nenv {\n  FOO = \"bar\"\n}\n"}} {
		packed, val, err := EncodeConfig(c.hcl, schema)
		if err != nil {
			return fmt.Errorf("%s task config does not encode with our schema: %v", c.name, err)
		}
		if val.GetAttr("image").IsNull() {
			return fmt.Errorf("%s: image lost in encoding", c.name)
		}
		err = startWithConfig(inst, packed)
		if status.Code(err) == codes.InvalidArgument {
			return fmt.Errorf("%s task config rejected by the plugin: %v", c.name, err)
		}
		if err == nil { // a lifecycle that started it anyway: clean up like the client does
			ctx, cancel := ctxTimeout(30 * time.Second)
			inst.Driver.DestroyTask(ctx, &drvpb.DestroyTaskRequest{TaskId: "alloc1/web/0000abcd", Force: true})
			cancel()
		}
	}
	_, err = inst.Kill(h)
	return err
}

func testTaskConfigErrors(h *H) error {
	inst, err := h.Launch(LaunchOptions{Env: isolatedEnv})
	if err != nil {
		return err
	}
	cfg, err := isolatedPluginConfig(h, inst)
	if err != nil {
		return err
	}
	if err := setConfig(inst, cfg, true); err != nil {
		return err
	}
	schema, err := taskSchema(inst)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		hcl  string
		want []string
	}{
		{"image = \"a\"\nvcpu_count = 1.5", []string{"vcpu_count", "1.5"}},
		{"image = \"a\"\nvcpu_count = 99", []string{"vcpu_count", "99"}},
		{"image = \"a\"\nmem_size = 0.1", []string{"mem_size", "0.1"}},
		{"image = \"a\"\nvcpu_count = 2\nvpu_count = 4", []string{"vcpu_count", "vpu_count"}},
		{"image = \"a\"\nenv = [\"NOEQUALS\"]", []string{"env", "NOEQUALS"}},
		{"image = \"a\"\nargs = \"echo 'unterminated\"", []string{"args", "unterminated"}},
		{"image = \"a\"\nargs = { x = 1 }", []string{"args"}},
		{"image = \"a\"\nbackend = \"docker\"", []string{"backend", "docker"}},
		{"image = \"a\"\nwork_dir = \"relative\"", []string{"work_dir", "relative"}},
		{"image = \"a\"\nkernel = \"vmlinux\"", []string{"kernel", "vmlinux"}},
		{"image = \"\"", []string{"image"}},
		{"image = \"a\"\nauth {\n username = \"u\"\n}", []string{"auth", "password"}},
		{"image = \"a\"\nimage_pull_timeout = \"soon\"", []string{"image_pull_timeout", "soon"}},
	} {
		packed, _, err := EncodeConfig(c.hcl, schema)
		if err != nil {
			return fmt.Errorf("%q should pass the client's decoding: %v", c.hcl, err)
		}
		err = startWithConfig(inst, packed)
		if status.Code(err) != codes.InvalidArgument {
			return fmt.Errorf("%q: StartTask returned %v, want InvalidArgument", c.hcl, err)
		}
		for _, w := range c.want {
			if !strings.Contains(status.Convert(err).Message(), w) {
				return fmt.Errorf("%q: error %q does not mention %q", c.hcl, status.Convert(err).Message(), w)
			}
		}
	}
	// Rejected by the client with our schema, before the plugin sees it.
	for _, c := range []struct{ hcl, want string }{
		{`vcpu_count = 1`, "image"},
		{"image = \"a\"\nvolumes = [\"/x:/y\"]", "volumes"},
		{"image = \"a\"\nforce_pull = \"maybe\"", "force_pull"},
	} {
		if _, _, err := EncodeConfig(c.hcl, schema); err == nil || !strings.Contains(err.Error(), c.want) {
			return fmt.Errorf("%q: want a client-side error mentioning %q, got %v", c.hcl, c.want, err)
		}
	}
	// An unknown value (ext d4 00 00) never crashes the decoder.
	err = startWithConfig(inst, []byte{0x81, 0xa5, 'i', 'm', 'a', 'g', 'e', 0xd4, 0x00, 0x00})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "not known") {
		return fmt.Errorf("unknown value: got %v", err)
	}
	_, err = inst.Kill(h)
	return err
}
