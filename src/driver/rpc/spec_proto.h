// spec::Node (protobuf-free schema tree) -> hclspec.Spec message.
#pragma once

#include "driver/spec.h"
#include "plugins/shared/hclspec/hcl_spec.pb.h"

namespace nfc::driver::rpc {

void SpecToProto(const spec::Node& node, hashicorp::nomad::plugins::shared::hclspec::Spec* out);

}  // namespace nfc::driver::rpc
