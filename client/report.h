// Pictures of a placement: an SVG of the chip pipeline and a Graphviz DOT
// of the graph coloured by chip. Pure functions of the problem, placement
// and evaluation; no I/O.
#ifndef MCMPART_CLIENT_REPORT_H_
#define MCMPART_CLIENT_REPORT_H_

#include <string>

#include "absl/types/span.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/problem.h"

namespace mcmpart::cli {

// Chips as boxes left to right with a compute bar (share of the bottleneck)
// and a memory bar (share of SRAM, red when over), links as arrows labelled
// with traffic and time; the bottleneck chip or link is drawn in red.
// Preconditions: p is a full assignment of `problem`, `e` its evaluation.
std::string PipelineSvg(const Problem& problem, absl::Span<const int> p,
                        const v1::Evaluation& e);

// One cluster per chip, nodes filled with their chip's colour, every edge.
std::string GraphDot(const Problem& problem, absl::Span<const int> p);

}  // namespace mcmpart::cli

#endif  // MCMPART_CLIENT_REPORT_H_
