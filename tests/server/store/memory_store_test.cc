// The memory backend beyond the shared contract: the cache's LRU bound.
#include "server/store/memory_store.h"

#include "gtest/gtest.h"
#include "tests/server/store/test_util.h"

namespace mcmpart::store {
namespace {

using testing::Update;

bool Has(StateStore& store, const std::string& key) {
  absl::StatusOr<std::optional<CacheEntry>> e = store.CacheGet(key);
  return e.ok() && e->has_value();
}

TEST(MemoryStoreTest, TheCacheDropsTheLeastRecentlyUsedEntry) {
  StoreOptions options;
  options.cache_entries = 2;
  std::unique_ptr<StateStore> store = NewMemoryStore(options);
  ASSERT_TRUE(store->CachePut("a", Update(1)).ok());
  ASSERT_TRUE(store->CachePut("b", Update(1)).ok());
  EXPECT_TRUE(Has(*store, "a"));  // a is now the most recent
  ASSERT_TRUE(store->CachePut("c", Update(1)).ok());
  EXPECT_TRUE(Has(*store, "a"));
  EXPECT_FALSE(Has(*store, "b"));
  EXPECT_TRUE(Has(*store, "c"));
}

TEST(MemoryStoreTest, ZeroCacheEntriesTurnTheCacheOff) {
  StoreOptions options;
  options.cache_entries = 0;
  std::unique_ptr<StateStore> store = NewMemoryStore(options);
  absl::StatusOr<bool> stored = store->CachePut("a", Update(1));
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(*stored);
  EXPECT_FALSE(Has(*store, "a"));
}

TEST(MemoryStoreTest, TwoStoreObjectsShareNothing) {
  std::unique_ptr<StateStore> a = NewMemoryStore({});
  std::unique_ptr<StateStore> b = NewMemoryStore({});
  ASSERT_TRUE(a->CreateJob(testing::NewJob("job-1", "a")).ok());
  EXPECT_TRUE(absl::IsNotFound(b->GetJob("job-1").status()));
}

}  // namespace
}  // namespace mcmpart::store
