// A protobuf-free builder for Nomad's configuration schema language (hclspec, reference 3.1).
//
// Config code describes its schema with these nodes; the RPC layer converts them to hclspec.Spec messages
// (rpc/spec_proto.h). Keeping the tree here lets the schemas and their tests live next to the config structs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nfc::driver::spec {

struct Attribute;

struct Node {
  enum class Kind {
    kObject,
    kArray,
    kAttr,
    kBlock,
    kBlockAttrs,
    kBlockList,
    kBlockSet,
    kBlockMap,
    kDefault,
    kLiteral
  };
  Kind kind = Kind::kObject;
  std::string name;                       // Attr, Block*, input name in HCL
  std::string type;                       // Attr, BlockAttrs: an HCL type expression
  bool required = false;                  // Attr, Block, BlockAttrs
  uint64_t min_items = 0, max_items = 0;  // BlockList, BlockSet
  std::vector<std::string> labels;        // BlockMap
  std::string literal;                    // Literal: an HCL expression
  std::vector<Attribute> attributes;      // Object: output key -> spec, in declaration order
  // Array: its values. Block*/BlockMap: children[0] = nested. Default: children[0] = primary, [1] = default.
  std::vector<Node> children;
};

// A named member of an Object. Its own type (not std::pair<std::string, Node>) because a pair needs Node
// complete inside Node's own definition, which libstdc++ accepts under GCC but clang refuses.
struct Attribute {
  std::string key;
  Node spec;
};

Node Object(std::vector<Attribute> attributes);
Node Array(std::vector<Node> values);
Node Attr(std::string name, std::string type, bool required = false);
Node Block(std::string name, bool required, Node nested);
Node BlockAttrs(std::string name, std::string type, bool required = false);
Node BlockList(std::string name, Node nested, uint64_t min_items = 0, uint64_t max_items = 0);
Node BlockSet(std::string name, Node nested, uint64_t min_items = 0, uint64_t max_items = 0);
Node BlockMap(std::string name, std::vector<std::string> labels, Node nested);
Node Default(Node primary, Node fallback);
Node Literal(std::string expression);

// Literal expressions for typical defaults. StringLiteral escapes quotes, backslashes and HCL template
// sequences
// ("${", "%{"), so the value arrives verbatim.
Node StringLiteral(std::string_view value);
Node NumberLiteral(long long value);
Node BoolLiteral(bool value);
Node EmptyListLiteral();

// Attr(name, type) with a default: Default(Attr(name, type), literal). The attribute inside a Default must
// carry its name (hcldec does not imply it there), which this guarantees.
Node AttrWithDefault(std::string name, std::string type, Node literal);

}  // namespace nfc::driver::spec
