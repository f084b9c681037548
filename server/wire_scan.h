// Reads what a request will cost before it is parsed.
//
// A 1M-node graph is 44 MB on the wire and about 260 MB once parsed into
// messages and a Problem; refusing it only after the parse let eight such
// requests in flight reach a 3 GB peak. CountGraphNodes walks the protobuf
// wire format (tags and lengths only, no allocation per node) so that the
// service refuses a graph over --max-nodes with the same message the engine
// gives after a parse, at a cost of one pass over the bytes.
#ifndef MCMPART_SERVER_WIRE_SCAN_H_
#define MCMPART_SERVER_WIRE_SCAN_H_

#include <cstdint>

#include "absl/types/span.h"
#include "google/protobuf/io/zero_copy_stream.h"

namespace mcmpart::server {

// How many nodes the ProblemSpec at `path_to_spec` (the field numbers from
// the request message down to it, e.g. {1} for PartitionRequest.problem,
// {1, 1} for SubmitJobRequest.request.problem) carries in its
// `graph` (ProblemSpec.graph.nodes, summed over repeated occurrences as a
// parse would merge them). 0 when it carries no graph message (an ONNX
// model, or nothing). -1 when the bytes are not well-formed protobuf; the
// parse that follows reports that. Reads `in` to its end.
int64_t CountGraphNodes(google::protobuf::io::ZeroCopyInputStream* in,
                        absl::Span<const int> path_to_spec);

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_WIRE_SCAN_H_
