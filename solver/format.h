// How messages and reports print figures.
#ifndef MCMPART_SOLVER_FORMAT_H_
#define MCMPART_SOLVER_FORMAT_H_

#include <string>

namespace mcmpart {

// "12.50 MiB (13107200 bytes)": how reports and messages print memory.
// From kExactBytesBelow (1e15) on, and for a non-finite figure, the count
// alone in %g style: "1e+308 bytes", "1.5e+15 bytes", "inf bytes".
inline constexpr double kExactBytesBelow = 1e15;
std::string FormatBytes(double bytes);

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_FORMAT_H_
