#include "driver/spec.h"

namespace nfc::driver::spec {

Node Object(std::vector<Attribute> attributes) {
  Node n;
  n.kind = Node::Kind::kObject;
  n.attributes = std::move(attributes);
  return n;
}

Node Array(std::vector<Node> values) {
  Node n;
  n.kind = Node::Kind::kArray;
  n.children = std::move(values);
  return n;
}

Node Attr(std::string name, std::string type, bool required) {
  Node n;
  n.kind = Node::Kind::kAttr;
  n.name = std::move(name);
  n.type = std::move(type);
  n.required = required;
  return n;
}

Node Block(std::string name, bool required, Node nested) {
  Node n;
  n.kind = Node::Kind::kBlock;
  n.name = std::move(name);
  n.required = required;
  n.children.push_back(std::move(nested));
  return n;
}

Node BlockAttrs(std::string name, std::string type, bool required) {
  Node n;
  n.kind = Node::Kind::kBlockAttrs;
  n.name = std::move(name);
  n.type = std::move(type);
  n.required = required;
  return n;
}

Node BlockList(std::string name, Node nested, uint64_t min_items, uint64_t max_items) {
  Node n;
  n.kind = Node::Kind::kBlockList;
  n.name = std::move(name);
  n.min_items = min_items;
  n.max_items = max_items;
  n.children.push_back(std::move(nested));
  return n;
}

Node BlockSet(std::string name, Node nested, uint64_t min_items, uint64_t max_items) {
  Node n = BlockList(std::move(name), std::move(nested), min_items, max_items);
  n.kind = Node::Kind::kBlockSet;
  return n;
}

Node BlockMap(std::string name, std::vector<std::string> labels, Node nested) {
  Node n;
  n.kind = Node::Kind::kBlockMap;
  n.name = std::move(name);
  n.labels = std::move(labels);
  n.children.push_back(std::move(nested));
  return n;
}

Node Default(Node primary, Node fallback) {
  Node n;
  n.kind = Node::Kind::kDefault;
  n.children.push_back(std::move(primary));
  n.children.push_back(std::move(fallback));
  return n;
}

Node Literal(std::string expression) {
  Node n;
  n.kind = Node::Kind::kLiteral;
  n.literal = std::move(expression);
  return n;
}

Node StringLiteral(std::string_view value) {
  std::string expr = "\"";
  for (size_t i = 0; i < value.size(); i++) {
    char c = value[i];
    if (c == '"' || c == '\\') {
      expr += '\\';
      expr += c;
    } else if (c == '\n') {
      expr += "\\n";
    } else if ((c == '$' || c == '%') && i + 1 < value.size() && value[i + 1] == '{') {
      expr += c;  // "$${" and "%%{" are HCL's escapes for a literal "${" / "%{"
      expr += c;
    } else {
      expr += c;
    }
  }
  expr += '"';
  return Literal(std::move(expr));
}

Node NumberLiteral(long long value) {
  return Literal(std::to_string(value));
}
Node BoolLiteral(bool value) {
  return Literal(value ? "true" : "false");
}
Node EmptyListLiteral() {
  return Literal("[]");
}

Node AttrWithDefault(std::string name, std::string type, Node literal) {
  return Default(Attr(std::move(name), std::move(type)), std::move(literal));
}

}  // namespace nfc::driver::spec
