package main

// Config encoding exactly as the Nomad client does it (reference 4.1): the HCL block becomes a generic map (nested
// blocks become lists of objects, as Nomad's HCL2 jobspec does), is JSON-encoded, parsed as an HCL JSON body,
// decoded with an hcldec spec converted from the plugin's hclspec.Spec, and marshalled with go-cty's msgpack
// using the value's own type. The Spec conversion below is ours, written from the documented semantics.

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	"github.com/zclconf/go-cty/cty/msgpack"

	"nfcproto/hclspec"
)

// The functions a schema Literal may call (Nomad's hclspecutils).
var literalFunctions = map[string]function.Function{
	"abs": stdlib.AbsoluteFunc, "coalesce": stdlib.CoalesceFunc, "concat": stdlib.ConcatFunc,
	"hasindex": stdlib.HasIndexFunc, "int": stdlib.IntFunc, "jsondecode": stdlib.JSONDecodeFunc,
	"jsonencode": stdlib.JSONEncodeFunc, "length": stdlib.LengthFunc, "lower": stdlib.LowerFunc,
	"max": stdlib.MaxFunc, "min": stdlib.MinFunc, "reverse": stdlib.ReverseFunc, "strlen": stdlib.StrlenFunc,
	"substr": stdlib.SubstrFunc, "upper": stdlib.UpperFunc,
}

// specToHcldec converts a plugin schema; `implied` is the Object key naming an attribute or block without a name.
func specToHcldec(s *hclspec.Spec, implied string) (hcldec.Spec, error) {
	if s == nil {
		return nil, fmt.Errorf("nil spec")
	}
	switch b := s.Block.(type) {
	case *hclspec.Spec_Object:
		obj := hcldec.ObjectSpec{}
		for key, child := range b.Object.GetAttributes() {
			d, err := specToHcldec(child, key)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", key, err)
			}
			obj[key] = d
		}
		return obj, nil
	case *hclspec.Spec_Array:
		var tuple hcldec.TupleSpec
		for i, child := range b.Array.GetValues() {
			d, err := specToHcldec(child, "")
			if err != nil {
				return nil, fmt.Errorf("[%d]: %v", i, err)
			}
			tuple = append(tuple, d)
		}
		return tuple, nil
	case *hclspec.Spec_Attr:
		name := nameOr(b.Attr.GetName(), implied)
		if name == "" {
			return nil, fmt.Errorf("Missing name in attribute spec")
		}
		t, err := parseType(b.Attr.GetType())
		if err != nil {
			return nil, fmt.Errorf("attribute %q: %v", name, err)
		}
		return &hcldec.AttrSpec{Name: name, Type: t, Required: b.Attr.GetRequired()}, nil
	case *hclspec.Spec_BlockValue:
		nested, err := specToHcldec(b.BlockValue.GetNested(), "")
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockSpec{TypeName: nameOr(b.BlockValue.GetName(), implied), Required: b.BlockValue.GetRequired(), Nested: nested}, nil
	case *hclspec.Spec_BlockAttrs:
		t, err := parseType(b.BlockAttrs.GetType())
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockAttrsSpec{TypeName: nameOr(b.BlockAttrs.GetName(), implied), ElementType: t, Required: b.BlockAttrs.GetRequired()}, nil
	case *hclspec.Spec_BlockList:
		nested, err := specToHcldec(b.BlockList.GetNested(), "")
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockListSpec{TypeName: nameOr(b.BlockList.GetName(), implied), Nested: nested,
			MinItems: int(b.BlockList.GetMinItems()), MaxItems: int(b.BlockList.GetMaxItems())}, nil
	case *hclspec.Spec_BlockSet:
		nested, err := specToHcldec(b.BlockSet.GetNested(), "")
		if err != nil {
			return nil, err
		}
		return &hcldec.BlockSetSpec{TypeName: nameOr(b.BlockSet.GetName(), implied), Nested: nested,
			MinItems: int(b.BlockSet.GetMinItems()), MaxItems: int(b.BlockSet.GetMaxItems())}, nil
	case *hclspec.Spec_BlockMap:
		nested, err := specToHcldec(b.BlockMap.GetNested(), "")
		if err != nil {
			return nil, err
		}
		if len(b.BlockMap.GetLabels()) == 0 {
			return nil, fmt.Errorf("block map %q needs at least one label", b.BlockMap.GetName())
		}
		return &hcldec.BlockMapSpec{TypeName: nameOr(b.BlockMap.GetName(), implied), LabelNames: b.BlockMap.GetLabels(), Nested: nested}, nil
	case *hclspec.Spec_Default:
		primary, err := specToHcldec(b.Default.GetPrimary(), "")
		if err != nil {
			return nil, fmt.Errorf("default primary: %v", err)
		}
		def, err := specToHcldec(b.Default.GetDefault(), "")
		if err != nil {
			return nil, fmt.Errorf("default value: %v", err)
		}
		return &hcldec.DefaultSpec{Primary: primary, Default: def}, nil
	case *hclspec.Spec_Literal:
		expr, diags := hclsyntax.ParseExpression([]byte(b.Literal.GetValue()), "literal", hcl.InitialPos)
		if diags.HasErrors() {
			return nil, fmt.Errorf("literal %q: %s", b.Literal.GetValue(), diags.Error())
		}
		v, diags := expr.Value(&hcl.EvalContext{Functions: literalFunctions})
		if diags.HasErrors() {
			return nil, fmt.Errorf("literal %q: %s", b.Literal.GetValue(), diags.Error())
		}
		return &hcldec.LiteralSpec{Value: v}, nil
	default:
		return nil, fmt.Errorf("Invalid spec block (no case set)")
	}
}

func nameOr(name, implied string) string {
	if name != "" {
		return name
	}
	return implied
}

func parseType(t string) (cty.Type, error) {
	expr, diags := hclsyntax.ParseExpression([]byte(t), "type", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("type %q: %s", t, diags.Error())
	}
	ty, diags := typeexpr.TypeConstraint(expr)
	if diags.HasErrors() {
		return cty.NilType, fmt.Errorf("type %q: %s", t, diags.Error())
	}
	return ty, nil
}

// hclToMap parses the inside of a `config { ... }` block into the generic map the client stores.
func hclToMap(src string) (map[string]interface{}, error) {
	file, diags := hclsyntax.ParseConfig([]byte(src), "config.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("parsing HCL: %s", diags.Error())
	}
	return bodyToMap(file.Body.(*hclsyntax.Body))
}

func bodyToMap(body *hclsyntax.Body) (map[string]interface{}, error) {
	return bodyToMapWith(body, func(e hclsyntax.Expression) (cty.Value, hcl.Diagnostics) { return e.Value(nil) })
}

// bodyToMapWith is bodyToMap with the evaluation of each attribute's expression given (see jobspecValue).
func bodyToMapWith(body *hclsyntax.Body, eval func(hclsyntax.Expression) (cty.Value, hcl.Diagnostics)) (map[string]interface{}, error) {
	out := map[string]interface{}{}
	for name, attr := range body.Attributes {
		v, diags := eval(attr.Expr)
		if diags.HasErrors() {
			return nil, fmt.Errorf("%s: %s", name, diags.Error())
		}
		raw, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			return nil, err
		}
		var generic interface{}
		if err := json.Unmarshal(raw, &generic); err != nil {
			return nil, err
		}
		out[name] = generic
	}
	for _, block := range body.Blocks {
		if len(block.Labels) > 0 {
			return nil, fmt.Errorf("labelled block %q is not supported by this harness", block.Type)
		}
		sub, err := bodyToMapWith(block.Body, eval)
		if err != nil {
			return nil, err
		}
		list, _ := out[block.Type].([]interface{})
		out[block.Type] = append(list, sub)
	}
	return out, nil
}

// EncodeConfig turns HCL text into the msgpack bytes the plugin receives, given the plugin's schema. Errors are
// what the Nomad client would report (e.g. "Unsupported argument", "Missing required argument").
func EncodeConfig(src string, schema *hclspec.Spec) ([]byte, cty.Value, error) {
	generic, err := hclToMap(src)
	if err != nil {
		return nil, cty.NilVal, err
	}
	return encodeGeneric(generic, schema)
}

func encodeGeneric(generic map[string]interface{}, schema *hclspec.Spec) ([]byte, cty.Value, error) {
	return encodeGenericVars(generic, schema, map[string]cty.Value{})
}

// encodeGenericVars is encodeGeneric with the variables "${...}" in the config's strings may use (the client
// binds its task environment).
func encodeGenericVars(generic map[string]interface{}, schema *hclspec.Spec, vars map[string]cty.Value) ([]byte, cty.Value, error) {
	dec, err := specToHcldec(schema, "")
	if err != nil {
		return nil, cty.NilVal, fmt.Errorf("converting the plugin's schema: %v", err)
	}
	raw, err := json.Marshal(generic)
	if err != nil {
		return nil, cty.NilVal, err
	}
	file, diags := hcljson.Parse(raw, "config.json")
	if diags.HasErrors() {
		return nil, cty.NilVal, fmt.Errorf("%s", diags.Error())
	}
	val, diags := hcldec.Decode(file.Body, dec, &hcl.EvalContext{Functions: literalFunctions, Variables: vars})
	if diags.HasErrors() {
		return nil, cty.NilVal, fmt.Errorf("%s", diags.Error())
	}
	packed, err := msgpack.Marshal(val, val.Type())
	if err != nil {
		return nil, cty.NilVal, err
	}
	return packed, val, nil
}

// describeSchema lists a root Object schema's options: "name type [required] [= default]".
func describeSchema(s *hclspec.Spec) []string {
	var lines []string
	for key, child := range s.GetObject().GetAttributes() {
		lines = append(lines, key+" "+describeNode(child))
	}
	sort.Strings(lines)
	return lines
}

func describeNode(s *hclspec.Spec) string {
	switch b := s.Block.(type) {
	case *hclspec.Spec_Attr:
		if b.Attr.GetRequired() {
			return b.Attr.GetType() + " (required)"
		}
		return b.Attr.GetType()
	case *hclspec.Spec_Default:
		return describeNode(b.Default.GetPrimary()) + " = " + b.Default.GetDefault().GetLiteral().GetValue()
	case *hclspec.Spec_BlockValue:
		return "block { " + fmt.Sprint(len(b.BlockValue.GetNested().GetObject().GetAttributes())) + " options }"
	default:
		return fmt.Sprintf("%T", s.Block)
	}
}
