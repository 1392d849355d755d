#include "driver/rpc/status.h"

#include <google/protobuf/any.pb.h>
#include <gtest/gtest.h>

#include "plugins/shared/structs/proto/recoverable_error.pb.h"

namespace nfc::driver::rpc {
namespace {

TEST(StatusTest, UnavailableIsNeverGrpcUnavailable) {
  // The Nomad client treats gRPC UNAVAILABLE as "plugin crashed".
  EXPECT_NE(ToGrpcStatus(Error::Unavailable("registry down")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpcStatus(Error::Unimplemented("x")).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(ToGrpcStatus(Error::InvalidArgument("bad")).error_message(), "bad");
}

TEST(StatusTest, TransientStartErrorsCarryRecoverableDetail) {
  grpc::Status s = ToGrpcStatusForStart(Error::Unavailable("pull alpine: registry unreachable"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // google.rpc.Status: 08 <code> 12 <message> 1a <Any>. Walk it with the wire format by hand.
  const std::string& d = s.error_details();
  ASSERT_GE(d.size(), 4u);
  EXPECT_EQ(static_cast<unsigned char>(d[0]), 0x08);
  EXPECT_EQ(static_cast<unsigned char>(d[1]), 9);
  size_t pos = 2;
  ASSERT_EQ(static_cast<unsigned char>(d[pos]), 0x12);
  size_t msg_len = static_cast<unsigned char>(d[pos + 1]);
  EXPECT_EQ(d.substr(pos + 2, msg_len), "pull alpine: registry unreachable");
  pos += 2 + msg_len;
  ASSERT_EQ(static_cast<unsigned char>(d[pos]), 0x1a);
  size_t any_len = static_cast<unsigned char>(d[pos + 1]);
  google::protobuf::Any any;
  ASSERT_TRUE(any.ParseFromString(d.substr(pos + 2, any_len)));
  EXPECT_EQ(any.type_url(), "type.googleapis.com/hashicorp.nomad.plugins.shared.structs.RecoverableError");
  hashicorp::nomad::plugins::shared::structs::RecoverableError recoverable;
  ASSERT_TRUE(any.UnpackTo(&recoverable));
  EXPECT_TRUE(recoverable.recoverable());

  grpc::Status final_error = ToGrpcStatusForStart(Error::InvalidArgument("task config option \"image\""));
  EXPECT_EQ(final_error.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(final_error.error_details().empty());
}

}  // namespace
}  // namespace nfc::driver::rpc
