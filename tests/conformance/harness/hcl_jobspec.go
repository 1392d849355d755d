package main

// Evaluating a job file's expressions as Nomad's jobspec parser leaves them for the client: a reference inside a
// string to something only known on the node at run time ("${NOMAD_PORT_http}", "${attr.kernel.name}",
// "${meta.rack}", "${node.datacenter}", "${env.HOME}") is kept as its text; the client decodes the config with
// those variables bound to the task's environment. Here they are bound to stand-in values (standIns). Any other
// variable is an error, as it is for Nomad.

import (
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

func isRuntimeVariable(root string) bool {
	switch root {
	case "attr", "meta", "node", "env":
		return true
	}
	return strings.HasPrefix(root, "NOMAD_")
}

// jobspecEval evaluates the expressions of one file (src: its bytes, the text of a kept reference is cut from
// them) and remembers the references it kept.
type jobspecEval struct {
	src  []byte
	refs []hcl.Traversal
}

func (j *jobspecEval) value(e hclsyntax.Expression) (cty.Value, hcl.Diagnostics) {
	return evalKeepingRefs(e, j)
}

// standInText is the value a reference to name gets when the config is decoded: a port for ports, a number for the
// numbers Nomad puts in the environment, else a recognisable text.
func standInText(name string) string {
	switch {
	case strings.Contains(name, "PORT"):
		return "8080"
	case name == "NOMAD_MEMORY_LIMIT" || name == "NOMAD_MEMORY_MAX_LIMIT":
		return "128"
	case name == "NOMAD_CPU_LIMIT" || name == "NOMAD_CPU_CORES":
		return "500"
	case name == "NOMAD_ALLOC_INDEX":
		return "0"
	}
	return "standin-" + name
}

// standIns binds every kept reference to a stand-in value: NOMAD_X to a string, attr.a.b to {a = {b = ...}}.
func (j *jobspecEval) standIns() map[string]cty.Value {
	tree := map[string]interface{}{}
	for _, t := range j.refs {
		node := tree
		for i, step := range t {
			var name string
			switch s := step.(type) {
			case hcl.TraverseRoot:
				name = s.Name
			case hcl.TraverseAttr:
				name = s.Name
			case hcl.TraverseIndex:
				if s.Key.Type() != cty.String {
					return nil // the decode then reports the reference, naming it
				}
				name = s.Key.AsString()
			}
			if i == len(t)-1 {
				node[name] = standInText(name)
				break
			}
			child, ok := node[name].(map[string]interface{})
			if !ok {
				child = map[string]interface{}{}
				node[name] = child
			}
			node = child
		}
	}
	return treeValue(tree).AsValueMap()
}

func treeValue(tree map[string]interface{}) cty.Value {
	names := make([]string, 0, len(tree))
	for k := range tree {
		names = append(names, k)
	}
	sort.Strings(names)
	attrs := map[string]cty.Value{}
	for _, k := range names {
		switch v := tree[k].(type) {
		case string:
			attrs[k] = cty.StringVal(v)
		case map[string]interface{}:
			attrs[k] = treeValue(v)
		}
	}
	return cty.ObjectVal(attrs)
}

func evalKeepingRefs(expr hclsyntax.Expression, j *jobspecEval) (cty.Value, hcl.Diagnostics) {
	switch e := expr.(type) {
	case *hclsyntax.TemplateExpr:
		var text strings.Builder
		for _, part := range e.Parts {
			s, diags := templatePart(part, j)
			if diags.HasErrors() {
				return cty.DynamicVal, diags
			}
			text.WriteString(s)
		}
		return cty.StringVal(text.String()), nil
	case *hclsyntax.TemplateWrapExpr: // "${x}" alone
		if ref, ok := runtimeRef(e.Wrapped, j); ok {
			return cty.StringVal(ref), nil
		}
		return evalKeepingRefs(e.Wrapped, j)
	case *hclsyntax.TupleConsExpr:
		if len(e.Exprs) == 0 {
			return cty.EmptyTupleVal, nil
		}
		var items []cty.Value
		for _, item := range e.Exprs {
			v, diags := evalKeepingRefs(item, j)
			if diags.HasErrors() {
				return cty.DynamicVal, diags
			}
			items = append(items, v)
		}
		return cty.TupleVal(items), nil
	case *hclsyntax.ObjectConsExpr:
		return evalObject(e, j)
	}
	return expr.Value(nil)
}

func evalObject(e *hclsyntax.ObjectConsExpr, j *jobspecEval) (cty.Value, hcl.Diagnostics) {
	attrs := map[string]cty.Value{}
	for _, item := range e.Items {
		key, diags := item.KeyExpr.Value(nil)
		if diags.HasErrors() {
			return cty.DynamicVal, diags
		}
		name, err := convert.Convert(key, cty.String)
		if err != nil || name.IsNull() {
			return cty.DynamicVal, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid object key",
				Detail: "an object key must be a string", Subject: item.KeyExpr.Range().Ptr()}}
		}
		v, diags := evalKeepingRefs(item.ValueExpr, j)
		if diags.HasErrors() {
			return cty.DynamicVal, diags
		}
		attrs[name.AsString()] = v
	}
	return cty.ObjectVal(attrs), nil
}

// templatePart is one piece of a string template, as text.
func templatePart(part hclsyntax.Expression, j *jobspecEval) (string, hcl.Diagnostics) {
	if ref, ok := runtimeRef(part, j); ok {
		return ref, nil
	}
	v, diags := evalKeepingRefs(part, j)
	if diags.HasErrors() {
		return "", diags
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() || !s.IsKnown() {
		return "", hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid template interpolation value",
			Detail: "the value cannot be turned into text", Subject: part.Range().Ptr()}}
	}
	return s.AsString(), nil
}

// runtimeRef is "${<reference>}" for a reference the client fills in at run time.
func runtimeRef(expr hclsyntax.Expression, j *jobspecEval) (string, bool) {
	t, ok := expr.(*hclsyntax.ScopeTraversalExpr)
	if !ok || !isRuntimeVariable(t.Traversal.RootName()) {
		return "", false
	}
	j.refs = append(j.refs, t.Traversal)
	return "${" + string(t.SrcRange.SliceBytes(j.src)) + "}", true
}
