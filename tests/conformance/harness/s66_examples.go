package main

// examples/ kept true: every agent configuration and job there is parsed with HCL's native syntax parser, and
// what this driver gets from it is decoded with the plugin's own schemas and sent to the plugin, as Nomad's agent
// (plugin blocks) and client (task config blocks) do. The files are listed here, so an example added without
// being checked, or a walk that finds nothing, fails.

import (
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	basepb "nfcproto/base"
	drvpb "nfcproto/drivers"
	"nfcproto/hclspec"
)

// exampleKinds names every file under examples/ and what it is.
var exampleKinds = map[string]string{
	"README.md":              "doc",
	"agent/minimal.hcl":      "agent",
	"agent/full.hcl":         "agent",
	"agent/litegix.hcl":      "agent",
	"jobs/hello.nomad":       "job",
	"jobs/web.nomad":         "job",
	"jobs/templates.nomad":   "job",
	"jobs/host-volume.nomad": "job",
	"jobs/litegix.nomad":     "job",
}

// The names this driver is installed under in the agent examples (the plugin block is named after the file).
var ourPluginNames = map[string]bool{"nomad-driver-firecracker": true, "litegix-fc-driver": true}

func init() {
	register(Scenario{Name: "examples-parse", Timeout: 3 * time.Minute, Run: testExamplesParse})
}

type exampleFile struct {
	rel  string          // below examples/
	src  []byte          // nil for documentation
	body *hclsyntax.Body // nil when it did not parse
}

func (f *exampleFile) at(r hcl.Range) string {
	return fmt.Sprintf("examples/%s:%d", f.rel, r.Start.Line)
}

// loadExamples walks examples/ and parses every HCL file. Problems: files missing from exampleKinds, listed
// files not found, syntax errors.
func loadExamples() (map[string]*exampleFile, []string, error) {
	if *examplesDir == "" {
		return nil, nil, fmt.Errorf("-examples is not set (ctest passes the source tree's examples/)")
	}
	files := map[string]*exampleFile{}
	var problems []string
	err := filepath.Walk(*examplesDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, err := filepath.Rel(*examplesDir, path)
		if err != nil {
			return err
		}
		kind, known := exampleKinds[rel]
		if !known {
			problems = append(problems, fmt.Sprintf("examples/%s: not in the list of checked examples "+
				"(exampleKinds in tests/conformance/harness/s66_examples.go): add it there", rel))
			return nil
		}
		f := &exampleFile{rel: rel}
		files[rel] = f
		if kind == "doc" {
			return nil
		}
		if f.src, err = ioutil.ReadFile(path); err != nil {
			return err
		}
		parsed, diags := hclsyntax.ParseConfig(f.src, "examples/"+rel, hcl.InitialPos)
		if diags.HasErrors() {
			problems = append(problems, diags.Error())
			return nil
		}
		f.body = parsed.Body.(*hclsyntax.Body)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("walking %s: %v", *examplesDir, err)
	}
	for rel := range exampleKinds {
		if files[rel] == nil {
			problems = append(problems, fmt.Sprintf("examples/%s: listed in exampleKinds but not found under %s", rel, *examplesDir))
		}
	}
	return files, problems, nil
}

func sortedOfKind(files map[string]*exampleFile, kind string) []*exampleFile {
	var out []*exampleFile
	for rel, f := range files {
		if exampleKinds[rel] == kind && f.body != nil {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	return out
}

// agentPlugin is one `plugin "<name>"` block of this driver in an agent example.
type agentPlugin struct {
	where  string
	name   string
	args   []string
	config *hclsyntax.Body // nil: no config block, every option takes its default
}

// agentParts finds the plugin blocks of this driver and the host volumes the client declares.
func agentParts(f *exampleFile) (plugins []agentPlugin, volumes []string, problems []string) {
	for _, b := range f.body.Blocks {
		switch {
		case b.Type == "client":
			for _, v := range only(b.Body.Blocks, "host_volume") {
				if len(v.Labels) == 1 {
					volumes = append(volumes, v.Labels[0])
				}
			}
		case b.Type == "plugin" && len(b.Labels) == 1 && ourPluginNames[b.Labels[0]]:
			p := agentPlugin{where: f.at(b.DefRange()), name: b.Labels[0]}
			if a := b.Body.Attributes["args"]; a != nil {
				args, err := stringList(a.Expr, &jobspecEval{src: f.src})
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s: plugin %q args: %v", p.where, p.name, err))
					continue
				}
				p.args = args
			}
			switch configs := only(b.Body.Blocks, "config"); len(configs) {
			case 0:
			case 1:
				p.config = configs[0].Body
			default:
				problems = append(problems, fmt.Sprintf("%s: plugin %q has %d config blocks", p.where, p.name, len(configs)))
				continue
			}
			plugins = append(plugins, p)
		}
	}
	return plugins, volumes, problems
}

func stringList(expr hclsyntax.Expression, j *jobspecEval) ([]string, error) {
	v, diags := evalKeepingRefs(expr, j)
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s", diags.Error())
	}
	if !v.Type().IsTupleType() && !v.Type().IsListType() {
		return nil, fmt.Errorf("expected a list of strings, got %s", v.Type().FriendlyName())
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, item := it.Element()
		if item.Type() != cty.String {
			return nil, fmt.Errorf("expected a list of strings, found a %s", item.Type().FriendlyName())
		}
		out = append(out, item.AsString())
	}
	return out, nil
}

// checkAgentPlugin launches the plugin installed under the block's name with the block's args, decodes the config
// block with the plugin's ConfigSchema and sends it with SetConfig (the agent's validation instance). It returns
// the driver name jobs use, the options the block sets and the schema, as far as it got.
func checkAgentPlugin(h *H, f *exampleFile, p agentPlugin) (driver string, set []string, schema *hclspec.Spec, err error) {
	dir := filepath.Join(h.Dir, "plugins")
	link := filepath.Join(dir, p.name)
	if err := os.MkdirAll(dir, 0755); err != nil {
		return "", nil, nil, err
	}
	if err := os.Symlink(h.PluginPath, link); err != nil && !os.IsExist(err) {
		return "", nil, nil, err
	}
	inst, err := h.Launch(LaunchOptions{Path: link, Args: p.args})
	if err != nil {
		return "", nil, nil, fmt.Errorf("launching the plugin as %s with args %q: %v", p.name, p.args, err)
	}
	defer inst.Kill(h)
	ctx, cancel := ctxTimeout(5 * time.Second)
	info, err := inst.Base.PluginInfo(ctx, &basepb.PluginInfoRequest{})
	cancel()
	if err != nil {
		return "", nil, nil, fmt.Errorf("PluginInfo: %v", err)
	}
	driver = info.GetName()
	if schema, err = pluginSchema(inst); err != nil {
		return driver, nil, nil, err
	}
	generic := map[string]interface{}{}
	eval := &jobspecEval{src: f.src}
	if p.config != nil {
		if generic, err = bodyToMapWith(p.config, eval.value); err != nil {
			return driver, nil, schema, fmt.Errorf("config: %v", err)
		}
	}
	for k := range generic {
		set = append(set, k)
	}
	packed, _, err := encodeGenericVars(generic, schema, eval.standIns())
	if err != nil {
		return driver, set, schema, fmt.Errorf("config does not decode with the plugin's ConfigSchema: %v", err)
	}
	if err := setConfig(inst, packed, false); err != nil {
		return driver, set, schema, fmt.Errorf("SetConfig rejects the config: %v", err)
	}
	return driver, set, schema, nil
}

// agentFacts is what the agent examples provide to the jobs and the coverage check.
type agentFacts struct {
	drivers     map[string]bool // driver names of the plugin blocks
	hostVolumes map[string]bool
	optionsSet  map[string]bool
	schema      *hclspec.Spec
}

func checkAgents(h *H, files map[string]*exampleFile) (*agentFacts, []string) {
	facts := &agentFacts{drivers: map[string]bool{}, hostVolumes: map[string]bool{}, optionsSet: map[string]bool{}}
	var problems []string
	for _, f := range sortedOfKind(files, "agent") {
		plugins, volumes, probs := agentParts(f)
		problems = append(problems, probs...)
		if len(plugins) == 0 && len(probs) == 0 {
			problems = append(problems, fmt.Sprintf("examples/%s: no plugin block of this driver", f.rel))
		}
		for _, v := range volumes {
			facts.hostVolumes[v] = true
		}
		for _, p := range plugins {
			driver, set, schema, err := checkAgentPlugin(h, f, p)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: plugin %q: %v", p.where, p.name, err))
			}
			if driver != "" {
				facts.drivers[driver] = true
			}
			if schema != nil {
				facts.schema = schema
			}
			for _, k := range set {
				facts.optionsSet[k] = true
			}
		}
	}
	// Together the agent examples show every plugin option (examples/agent/full.hcl all but the seed's aliases).
	if facts.schema != nil {
		var missing []string
		for option := range facts.schema.GetObject().GetAttributes() {
			if !facts.optionsSet[option] {
				missing = append(missing, option)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			problems = append(problems, fmt.Sprintf("no agent example sets the plugin option(s) %s: add them to examples/agent/full.hcl", strings.Join(missing, ", ")))
		}
	}
	return facts, problems
}

// jobTask is one task of a job example.
type jobTask struct {
	where, name, driver string
	configs             []*hclsyntax.Block
	resources           map[string]string
}

// jobParts finds the tasks of a job file and the host volumes its groups use; a volume_mount must name a volume
// of its group.
func jobParts(f *exampleFile) (tasks []jobTask, hostVolumes []string, problems []string) {
	jobs := only(f.body.Blocks, "job")
	if len(jobs) == 0 {
		return nil, nil, []string{fmt.Sprintf("examples/%s: no job block", f.rel)}
	}
	for _, job := range jobs {
		for _, g := range only(job.Body.Blocks, "group") {
			volumes := map[string]bool{}
			for _, v := range only(g.Body.Blocks, "volume") {
				a, err := attrs(v.Body)
				if err != nil || len(v.Labels) != 1 {
					problems = append(problems, fmt.Sprintf("%s: volume: %v", f.at(v.DefRange()), err))
					continue
				}
				volumes[v.Labels[0]] = true
				if a["type"] == "host" {
					hostVolumes = append(hostVolumes, a["source"])
				}
			}
			for _, t := range only(g.Body.Blocks, "task") {
				task, probs := taskParts(f, t, volumes)
				problems = append(problems, probs...)
				tasks = append(tasks, task)
			}
		}
	}
	return tasks, hostVolumes, problems
}

func taskParts(f *exampleFile, t *hclsyntax.Block, volumes map[string]bool) (jobTask, []string) {
	task := jobTask{where: f.at(t.DefRange()), configs: only(t.Body.Blocks, "config")}
	var problems []string
	if len(t.Labels) == 1 {
		task.name = t.Labels[0]
	}
	if a := t.Body.Attributes["driver"]; a != nil {
		if v, diags := evalKeepingRefs(a.Expr, &jobspecEval{src: f.src}); !diags.HasErrors() && v.Type() == cty.String {
			task.driver = v.AsString()
		}
	}
	for _, m := range only(t.Body.Blocks, "volume_mount") {
		if a, err := attrs(m.Body); err != nil {
			problems = append(problems, fmt.Sprintf("%s: volume_mount: %v", f.at(m.DefRange()), err))
		} else if !volumes[a["volume"]] {
			problems = append(problems, fmt.Sprintf("%s: volume_mount of %q: the group has no volume of that name", f.at(m.DefRange()), a["volume"]))
		}
	}
	if res := only(t.Body.Blocks, "resources"); len(res) == 1 {
		a, err := attrs(res[0].Body)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: resources: %v", f.at(res[0].DefRange()), err))
		}
		task.resources = a
	}
	return task, problems
}

// encodeTaskConfig decodes a task's config block with the plugin's TaskConfigSchema as the client does.
func encodeTaskConfig(f *exampleFile, t jobTask, schema *hclspec.Spec, replace map[string]interface{}) ([]byte, error) {
	if len(t.configs) != 1 {
		return nil, fmt.Errorf("%d config blocks, want 1", len(t.configs))
	}
	eval := &jobspecEval{src: f.src}
	generic, err := bodyToMapWith(t.configs[0].Body, eval.value)
	if err != nil {
		return nil, fmt.Errorf("config: %v", err)
	}
	for k, v := range replace {
		generic[k] = v
	}
	packed, _, err := encodeGenericVars(generic, schema, eval.standIns())
	if err != nil {
		return nil, fmt.Errorf("config does not decode with the plugin's TaskConfigSchema: %v", err)
	}
	return packed, nil
}

// checkJobs decodes every task config of this driver and has the plugin validate it (StartTask validates first;
// the isolated plugin then fails the image pull at once, so nothing runs).
func checkJobs(h *H, files map[string]*exampleFile, agents *agentFacts) ([]string, error) {
	inst, err := h.Launch(LaunchOptions{Env: isolatedEnv})
	if err != nil {
		return nil, err
	}
	defer inst.Kill(h)
	cfg, err := isolatedPluginConfig(h, inst)
	if err != nil {
		return nil, err
	}
	if err := setConfig(inst, cfg, true); err != nil {
		return nil, err
	}
	schema, err := taskSchema(inst)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, f := range sortedOfKind(files, "job") {
		tasks, volumes, probs := jobParts(f)
		problems = append(problems, probs...)
		checked := 0
		for _, t := range tasks {
			if !agents.drivers[t.driver] {
				continue
			}
			checked++
			if err := validateTaskConfig(inst, f, t, schema); err != nil {
				problems = append(problems, fmt.Sprintf("%s: task %q: %v", t.where, t.name, err))
			}
		}
		if checked == 0 {
			problems = append(problems, fmt.Sprintf("examples/%s: no task uses a driver the agent examples install (%v)", f.rel, keys(agents.drivers)))
		}
		for _, v := range volumes {
			if !agents.hostVolumes[v] {
				problems = append(problems, fmt.Sprintf("examples/%s: host volume %q is not declared by any agent example (client { host_volume %q { ... } })", f.rel, v, v))
			}
		}
	}
	return problems, nil
}

func validateTaskConfig(inst *Instance, f *exampleFile, t jobTask, schema *hclspec.Spec) error {
	packed, err := encodeTaskConfig(f, t, schema, nil)
	if err != nil {
		return err
	}
	err = startWithConfig(inst, packed)
	if status.Code(err) == codes.InvalidArgument {
		return fmt.Errorf("the plugin rejects the config: %v", status.Convert(err).Message())
	}
	if err == nil { // started after all: remove it as the client would
		ctx, cancel := ctxTimeout(30 * time.Second)
		inst.Driver.DestroyTask(ctx, &drvpb.DestroyTaskRequest{TaskId: "alloc1/web/0000abcd", Force: true})
		cancel()
	}
	return nil
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func testExamplesParse(h *H) error {
	files, problems, err := loadExamples()
	if err != nil {
		return err
	}
	agents, probs := checkAgents(h, files)
	problems = append(problems, probs...)
	probs, err = checkJobs(h, files, agents)
	if err != nil {
		return err
	}
	problems = append(problems, probs...)
	h.Metric("examples_checked", len(files))
	if len(problems) > 0 {
		return fmt.Errorf("%d problem(s) in examples/:\n  %s", len(problems), strings.Join(problems, "\n  "))
	}
	return nil
}
