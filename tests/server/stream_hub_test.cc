#include "server/stream_hub.h"

#include "gtest/gtest.h"

namespace mcmpart::server {
namespace {

TEST(StreamHubTest, ClientOfDropsThePort) {
  EXPECT_EQ(StreamHub::ClientOf("ipv4:10.0.0.7:51234"), "ipv4:10.0.0.7");
  EXPECT_EQ(StreamHub::ClientOf("ipv6:[::1]:8080"), "ipv6:[::1]");
  EXPECT_EQ(StreamHub::ClientOf("unix:/tmp/s"), "unix:/tmp/s");
  EXPECT_EQ(StreamHub::ClientOf(""), "");
}

}  // namespace
}  // namespace mcmpart::server
