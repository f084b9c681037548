#include "solver/topological_order.h"

#include <algorithm>
#include <functional>
#include <queue>

namespace mcmpart {

bool StableTopologicalOrder(absl::Span<const std::vector<int>> preds,
                            std::vector<int>* order, std::vector<int>* cycle) {
  const int n = static_cast<int>(preds.size());
  std::vector<std::vector<int>> succs(n);
  std::vector<int> indegree(n, 0);
  for (int v = 0; v < n; ++v) {
    for (int u : preds[v]) succs[u].push_back(v);
    indegree[v] = static_cast<int>(preds[v].size());
  }
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int v = 0; v < n; ++v) {
    if (indegree[v] == 0) ready.push(v);
  }
  order->clear();
  order->reserve(n);
  while (!ready.empty()) {
    const int u = ready.top();
    ready.pop();
    order->push_back(u);
    for (int v : succs[u]) {
      if (--indegree[v] == 0) ready.push(v);
    }
  }
  if (static_cast<int>(order->size()) == n) return true;

  // Every node left unordered has an unordered predecessor, so walking such
  // predecessors back must revisit a node: the loop from there is a cycle.
  int v = 0;
  while (indegree[v] == 0) ++v;
  std::vector<int> seen_at(n, -1);
  std::vector<int> walk;
  while (seen_at[v] < 0) {
    seen_at[v] = static_cast<int>(walk.size());
    walk.push_back(v);
    for (int u : preds[v]) {
      if (indegree[u] > 0) {
        v = u;
        break;
      }
    }
  }
  // walk[seen_at[v]..] follows edges backwards; reverse it to edge order.
  cycle->assign(walk.rbegin(), walk.rend() - seen_at[v]);
  std::rotate(cycle->begin(), std::min_element(cycle->begin(), cycle->end()),
              cycle->end());
  return false;
}

}  // namespace mcmpart
