#include "driver/rpc/spec_proto.h"

namespace nfc::driver::rpc {

namespace hclspec = hashicorp::nomad::plugins::shared::hclspec;

void SpecToProto(const spec::Node& node, hclspec::Spec* out) {
  using Kind = spec::Node::Kind;
  switch (node.kind) {
    case Kind::kObject: {
      auto* object = out->mutable_object();
      for (const auto& [key, child] : node.attributes)
        SpecToProto(child, &(*object->mutable_attributes())[key]);
      break;
    }
    case Kind::kArray: {
      auto* array = out->mutable_array();
      for (const spec::Node& child : node.children) SpecToProto(child, array->add_values());
      break;
    }
    case Kind::kAttr: {
      auto* attr = out->mutable_attr();
      attr->set_name(node.name);
      attr->set_type(node.type);
      attr->set_required(node.required);
      break;
    }
    case Kind::kBlock: {
      auto* block = out->mutable_block_value();
      block->set_name(node.name);
      block->set_required(node.required);
      SpecToProto(node.children.at(0), block->mutable_nested());
      break;
    }
    case Kind::kBlockAttrs: {
      auto* block = out->mutable_block_attrs();
      block->set_name(node.name);
      block->set_type(node.type);
      block->set_required(node.required);
      break;
    }
    case Kind::kBlockList: {
      auto* block = out->mutable_block_list();
      block->set_name(node.name);
      block->set_min_items(node.min_items);
      block->set_max_items(node.max_items);
      SpecToProto(node.children.at(0), block->mutable_nested());
      break;
    }
    case Kind::kBlockSet: {
      auto* block = out->mutable_block_set();
      block->set_name(node.name);
      block->set_min_items(node.min_items);
      block->set_max_items(node.max_items);
      SpecToProto(node.children.at(0), block->mutable_nested());
      break;
    }
    case Kind::kBlockMap: {
      auto* block = out->mutable_block_map();
      block->set_name(node.name);
      for (const std::string& label : node.labels) block->add_labels(label);
      SpecToProto(node.children.at(0), block->mutable_nested());
      break;
    }
    case Kind::kDefault: {
      auto* def = out->mutable_default_();
      SpecToProto(node.children.at(0), def->mutable_primary());
      SpecToProto(node.children.at(1), def->mutable_default_());
      break;
    }
    case Kind::kLiteral:
      out->mutable_literal()->set_value(node.literal);
      break;
  }
}

}  // namespace nfc::driver::rpc
