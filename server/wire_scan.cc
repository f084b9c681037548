#include "server/wire_scan.h"

#include <limits>
#include <vector>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"

namespace mcmpart::server {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

// ProblemSpec.graph and Graph.nodes (proto/mcmpart/v1/*.proto).
constexpr int kSpecGraphField = 1;
constexpr int kGraphNodesField = 3;

// Counts occurrences of the length-delimited field path[depth..] inside the
// current limit of `in`; the last entry of `path` is the counted field.
// Returns -1 on malformed input.
int64_t Count(CodedInputStream& in, const std::vector<int>& path,
              size_t depth) {
  int64_t count = 0;
  while (true) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0) {
      // End of the current limit (fine) or a malformed tag (not fine).
      return in.ConsumedEntireMessage() ? count : -1;
    }
    const int field = WireFormatLite::GetTagFieldNumber(tag);
    const bool delimited = WireFormatLite::GetTagWireType(tag) ==
                           WireFormatLite::WIRETYPE_LENGTH_DELIMITED;
    if (!delimited || field != path[depth]) {
      if (!WireFormatLite::SkipField(&in, tag)) return -1;
      continue;
    }
    uint32_t length = 0;
    if (!in.ReadVarint32(&length)) return -1;
    if (depth + 1 == path.size()) {
      ++count;
      if (!in.Skip(static_cast<int>(length))) return -1;
      continue;
    }
    const CodedInputStream::Limit limit =
        in.PushLimit(static_cast<int>(length));
    const int64_t inner = Count(in, path, depth + 1);
    if (inner < 0 || in.BytesUntilLimit() != 0) return -1;
    in.PopLimit(limit);
    count += inner;
  }
}

}  // namespace

int64_t CountGraphNodes(google::protobuf::io::ZeroCopyInputStream* in,
                        absl::Span<const int> path_to_spec) {
  std::vector<int> path(path_to_spec.begin(), path_to_spec.end());
  path.push_back(kSpecGraphField);
  path.push_back(kGraphNodesField);
  CodedInputStream coded(in);
  coded.SetTotalBytesLimit(std::numeric_limits<int>::max());
  // Nesting is fixed by the path, so recursion depth is bounded by it.
  return Count(coded, path, 0);
}

}  // namespace mcmpart::server
