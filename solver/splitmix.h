// SplitMix64 (Steele, Lea and Flood, 2014): a tiny 64-bit generator, the
// same sequence on every platform. The exact search draws its hash keys
// from it and annealing seeds its xoshiro256** state with it.
#ifndef MCMPART_SOLVER_SPLITMIX_H_
#define MCMPART_SOLVER_SPLITMIX_H_

#include <cstdint>

namespace mcmpart {

// Advances `state` and returns the next output.
inline uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_SPLITMIX_H_
