// Tests of the status mapping between the core and gRPC (server/status.h).
#include "server/status.h"

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace mcmpart::server {
namespace {

TEST(ServerTest, StatusMappingKeepsCodesAndMessages) {
  const grpc::Status s =
      ToGrpcStatus(absl::FailedPreconditionError("node 'x' is too big"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "node 'x' is too big");
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_EQ(ToGrpcStatus(absl::ResourceExhaustedError("full")).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(FromGrpcStatus(s),
            absl::FailedPreconditionError("node 'x' is too big"));
}

}  // namespace
}  // namespace mcmpart::server
