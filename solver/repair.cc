#include "solver/repair.h"

namespace mcmpart {

absl::Status CheckFeasibility(const Problem&) {
  return absl::UnimplementedError("repair is not built yet");
}

absl::StatusOr<RepairResult> Repair(const Problem&, absl::Span<const int>,
                                    absl::Span<const double>, const RepairOptions&) {
  return absl::UnimplementedError("repair is not built yet");
}

}  // namespace mcmpart
