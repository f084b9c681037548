#include "server/request_pool.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace mcmpart::server {
namespace {

TEST(RequestPoolTest, QueueBeyondItsBoundIsRefusedWithTheFlagNamed) {
  RequestPoolOptions options;
  options.threads = 1;
  options.max_queue = 2;
  RequestPool pool(options);
  absl::Notification release;
  std::atomic<int> ran{0};
  auto block = [&] {
    release.WaitForNotification();
    ++ran;
  };
  ASSERT_TRUE(pool.Schedule(block, 1).ok());
  // Wait until the thread took the first task, so that the queue is empty.
  while (pool.load().busy != 1) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_TRUE(pool.Schedule(block, 1).ok());
  ASSERT_TRUE(pool.Schedule(block, 1).ok());
  const absl::Status full = pool.Schedule(block, 1);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(full.message(),
            "server busy: 1 requests running and 2 waiting, the limit "
            "(--handler-threads 1 + --max-pending-requests 2); retry later");
  EXPECT_EQ(pool.load().queued, 2);
  EXPECT_EQ(pool.load().bytes, 3);
  release.Notify();
  while (ran != 3) absl::SleepFor(absl::Milliseconds(1));
  while (pool.load().bytes != 0) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(pool.load().busy, 0);
}

TEST(RequestPoolTest, BytesBeyondTheBoundAreRefusedButOneLargeRequestFits) {
  RequestPoolOptions options;
  options.threads = 2;
  options.max_bytes = 10 << 20;
  RequestPool pool(options);
  absl::Notification release;
  // Larger than the bound, on an idle pool: admitted.
  ASSERT_TRUE(
      pool.Schedule([&] { release.WaitForNotification(); }, 50 << 20).ok());
  const absl::Status over = pool.Schedule([] {}, 1 << 19);
  EXPECT_EQ(over.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(over.message(),
            "server busy: requests holding 50.0 MiB are being handled and "
            "this one has 0.5 MiB, over the limit (--max-inflight-bytes 10.0 "
            "MiB); retry later");
  release.Notify();
  while (pool.load().bytes != 0) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_TRUE(pool.Schedule([] {}, 10).ok());
}

}  // namespace
}  // namespace mcmpart::server
