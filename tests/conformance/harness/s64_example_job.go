package main

// examples/jobs/templates.nomad run as Nomad's client would run it, so the example stays true: the job file is
// parsed, its task's `config` block is encoded with the plugin's schema (the image swapped for the harness's
// local copy), its templates are rendered with Go's text/template (the engine consul-template uses) and stand-in
// Nomad variables, its artifact is replaced by a stand-in file (fetching is the client's job, before the driver
// sees anything), and its host volume becomes a directory of the harness.

import (
	"bytes"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"strconv"
	"text/template"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"google.golang.org/protobuf/types/known/durationpb"

	drvpb "nfcproto/drivers"
)

var examplesDir = flag.String("examples", "", "the source tree's examples/ directory (the examples-parse and example-job scenarios read it)")

func init() {
	register(Scenario{Name: "example-job-templates-artifact-volume", Guest: true, Timeout: 4 * time.Minute, Run: testExampleJob})
}

// exampleTask is what the scenario takes from the job file's one group and task.
type exampleTask struct {
	name      string
	driver    string
	config    *hclsyntax.Body
	templates []map[string]string          // data, destination, perms, change_mode, change_signal
	artifacts []map[string]string          // source, destination
	mounts    []map[string]string          // volume, destination, read_only
	volumes   map[string]map[string]string // group volumes by name: type, source, read_only
	cpu, mem  int64
}

func only(blocks hclsyntax.Blocks, kind string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range blocks {
		if b.Type == kind {
			out = append(out, b)
		}
	}
	return out
}

// attrs evaluates a block's attributes (literals only, as in the example) to strings.
func attrs(body *hclsyntax.Body) (map[string]string, error) {
	out := map[string]string{}
	for name, a := range body.Attributes {
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s: %s", name, diags.Error())
		}
		switch {
		case v.Type().FriendlyName() == "string":
			out[name] = v.AsString()
		case v.Type().FriendlyName() == "bool":
			out[name] = strconv.FormatBool(v.True())
		case v.Type().FriendlyName() == "number":
			out[name] = v.AsBigFloat().Text('f', -1)
		}
	}
	return out, nil
}

func parseExampleJob(path string) (*exampleTask, error) {
	src, err := ioutil.ReadFile(path)
	if err != nil {
		return nil, err
	}
	file, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s", diags.Error())
	}
	jobs := only(file.Body.(*hclsyntax.Body).Blocks, "job")
	if len(jobs) != 1 {
		return nil, fmt.Errorf("%s: %d jobs, want 1", path, len(jobs))
	}
	groups := only(jobs[0].Body.Blocks, "group")
	if len(groups) != 1 {
		return nil, fmt.Errorf("%s: %d groups, want 1", path, len(groups))
	}
	tasks := only(groups[0].Body.Blocks, "task")
	if len(tasks) != 1 {
		return nil, fmt.Errorf("%s: %d tasks, want 1", path, len(tasks))
	}
	t := &exampleTask{name: tasks[0].Labels[0], volumes: map[string]map[string]string{}}
	vols := only(groups[0].Body.Blocks, "volume")
	for _, v := range vols {
		if t.volumes[v.Labels[0]], err = attrs(v.Body); err != nil {
			return nil, err
		}
	}
	top, err := attrs(tasks[0].Body)
	if err != nil {
		return nil, err
	}
	t.driver = top["driver"]
	for _, b := range tasks[0].Body.Blocks {
		a, err := attrs(b.Body)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", b.Type, err)
		}
		switch b.Type {
		case "config":
			t.config = b.Body
		case "template":
			t.templates = append(t.templates, a)
		case "artifact":
			t.artifacts = append(t.artifacts, a)
		case "volume_mount":
			t.mounts = append(t.mounts, a)
		case "resources":
			t.cpu, _ = strconv.ParseInt(a["cpu"], 10, 64)
			t.mem, _ = strconv.ParseInt(a["memory"], 10, 64)
		}
	}
	if t.config == nil {
		return nil, fmt.Errorf("%s: the task has no config block", path)
	}
	return t, nil
}

// renderTemplates writes each template's destination (relative to the task dir) the way the template runner
// does: rendered to a temp file, renamed into place, with the template's perms.
func renderTemplates(taskDir string, templates []map[string]string, vars map[string]map[string]string) error {
	funcs := template.FuncMap{"nomadVar": func(path string) map[string]string { return vars[path] }}
	for _, tm := range templates {
		tpl, err := template.New(tm["destination"]).Funcs(funcs).Parse(tm["data"])
		if err != nil {
			return fmt.Errorf("template %s: %v", tm["destination"], err)
		}
		var out bytes.Buffer
		if err := tpl.Execute(&out, nil); err != nil {
			return fmt.Errorf("template %s: %v", tm["destination"], err)
		}
		perms := uint64(0644)
		if p := tm["perms"]; p != "" {
			if perms, err = strconv.ParseUint(p, 8, 32); err != nil {
				return fmt.Errorf("template %s: perms %q: %v", tm["destination"], p, err)
			}
		}
		dst := filepath.Join(taskDir, tm["destination"])
		if err := os.MkdirAll(filepath.Dir(dst), 0755); err != nil {
			return err
		}
		if err := ioutil.WriteFile(dst+".tmp", out.Bytes(), os.FileMode(perms)); err != nil {
			return err
		}
		if err := os.Chmod(dst+".tmp", os.FileMode(perms)); err != nil {
			return err
		}
		if err := os.Rename(dst+".tmp", dst); err != nil {
			return err
		}
	}
	return nil
}

func testExampleJob(h *H) error {
	h.guestScenario()
	if *examplesDir == "" {
		return fmt.Errorf("-examples is not set (ctest passes the source tree's examples/)")
	}
	job, err := parseExampleJob(filepath.Join(*examplesDir, "jobs", "templates.nomad"))
	if err != nil {
		return err
	}
	if job.driver != "firecracker" {
		return fmt.Errorf("the example's task uses driver %q", job.driver)
	}
	rt, err := h.launchRuntime()
	if err != nil {
		return err
	}
	schema, err := taskSchema(rt.Instance)
	if err != nil {
		return err
	}
	generic, err := bodyToMap(job.config)
	if err != nil {
		return fmt.Errorf("the example's config block: %v", err)
	}
	generic["image"] = guest.Image // offline: the harness's registry holds the demo busybox image
	generic["auth"] = []interface{}{map[string]interface{}{"username": guest.Username, "password": guest.Password}}
	packed, _, err := encodeGeneric(generic, schema)
	if err != nil {
		return fmt.Errorf("the example's config block does not fit the plugin's schema: %v", err)
	}
	t, err := h.newTaskEncoded(job.name, packed)
	if err != nil {
		return err
	}
	t.Config.Resources.AllocatedResources.Cpu.CpuShares = job.cpu
	t.Config.Resources.AllocatedResources.Memory.MemoryMb = job.mem
	t.Config.Resources.LinuxResources.MemoryLimitBytes = job.mem << 20
	taskDir := filepath.Join(t.Config.AllocDir, job.name)
	for _, a := range job.artifacts {
		dst := filepath.Join(taskDir, a["destination"])
		if err := os.MkdirAll(dst, 0755); err != nil {
			return err
		}
		if err := ioutil.WriteFile(filepath.Join(dst, "index.html"), []byte("stand-in for "+a["source"]), 0644); err != nil {
			return err
		}
	}
	for _, m := range job.mounts {
		v := job.volumes[m["volume"]]
		if v == nil || v["type"] != "host" {
			return fmt.Errorf("volume_mount of %q: no host volume of that name in the group", m["volume"])
		}
		hostPath := filepath.Join(h.Dir, "host-volumes", v["source"])
		if err := os.MkdirAll(hostPath, 0755); err != nil {
			return err
		}
		t.Config.Mounts = append(t.Config.Mounts, &drvpb.Mount{TaskPath: m["destination"], HostPath: hostPath,
			Readonly: m["read_only"] == "true" || v["read_only"] == "true"})
	}
	vars := map[string]map[string]string{"nomad/jobs/web-config": {"greeting": "hello", "api_key": "k-" + randomHex(8)}}
	if err := renderTemplates(taskDir, job.templates, vars); err != nil {
		return err
	}
	handle, _, err := rt.startTask(t)
	if err != nil {
		return err
	}
	id := t.Config.Id
	want := "greeting = hello\nindex.html\nstarts: 1\n"
	if err := waitForExactOutput(t.Stdout, want, 90*time.Second); err != nil {
		return fmt.Errorf("the example's task at start (stderr %q): %v", t.Stderr.Contents(), err)
	}
	// A variable changes: the template runner re-renders, then sends change_signal.
	vars["nomad/jobs/web-config"]["greeting"] = "bonjour"
	if err := renderTemplates(taskDir, job.templates, vars); err != nil {
		return err
	}
	for _, tm := range job.templates {
		if tm["change_mode"] != "signal" {
			continue
		}
		ctx, cancel := ctxTimeout(30 * time.Second)
		_, err := rt.Driver.SignalTask(ctx, &drvpb.SignalTaskRequest{TaskId: id, Signal: tm["change_signal"]})
		cancel()
		if err != nil {
			return fmt.Errorf("SignalTask %s: %v", tm["change_signal"], err)
		}
	}
	if err := waitForExactOutput(t.Stdout, want+"reloaded: greeting = bonjour\n", 30*time.Second); err != nil {
		return err
	}
	ctx, cancel := ctxTimeout(60 * time.Second)
	ex, err := rt.Driver.ExecTask(ctx, &drvpb.ExecTaskRequest{TaskId: id,
		Command: []string{"/bin/sh", "-c", "stat -c %a /secrets/api_key; cat /secrets/api_key"}, Timeout: durationpb.New(30 * time.Second)})
	cancel()
	if wantSecret := "400\n" + vars["nomad/jobs/web-config"]["api_key"]; err != nil || string(ex.GetStdout()) != wantSecret {
		return fmt.Errorf("the secret template in the guest: %v, stdout %q, want %q", err, ex.GetStdout(), wantSecret)
	}
	if err := rt.stopTask(id, 5*time.Second, ""); err != nil {
		return err
	}
	if err := rt.destroyAndCheck(id, handle); err != nil {
		return err
	}
	_, err = rt.Kill(h)
	return err
}
