// The data of the exact search (solver/exact.h): the downset lattice one
// layer at a time, the partial placements kept per downset, and the trail
// that leads back from each to the empty placement. Internal to
// solver/exact*; docs/exact.md explains what each figure means.
#ifndef MCMPART_SOLVER_EXACT_LATTICE_H_
#define MCMPART_SOLVER_EXACT_LATTICE_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"

namespace mcmpart::exact {

inline constexpr double kInf = std::numeric_limits<double>::infinity();
// Placements within this relative distance of the incumbent are not
// searched for: ties and rounding differences between the search's sums and
// the evaluator's would otherwise be explored for nothing. The bound says so.
inline constexpr double kTieTolerance = 1e-12;
inline constexpr int32_t kClose =
    -1;  // trail action: the current chip is closed
inline constexpr int32_t kFinish =
    -2;  // trail action: every node left goes on it

// One step of the trail from the empty placement to a partial one.
struct Trail {
  int32_t parent;
  int32_t action;  // node added to the current chip, or kClose
};

// A downset J of the lattice, with the figures every partial placement
// ending at J shares.
struct Entry {
  uint64_t hash = 0;
  int32_t next = -1;  // next entry with the same hash
  int32_t bnd_begin = 0;
  int32_t bnd_size = 0;  // boundary: nodes of J with a successor outside J
  double bnd_bytes = 0;  // their output bytes
  double rem_time = 0;   // fastest time of the nodes outside J
  double rem_res = 0;    // resident bytes of the nodes outside J
  double rem_last = 0;   // time of the nodes outside J on the last chip
  absl::InlinedVector<int32_t, 2> states;
};

// A partial placement of J: chips 0..chip-1 closed, `chip` open.
struct State {
  double b = 0;      // max of the closed chips' compute and their links' comm
  double acc_c = 0;  // the open chip's compute so far
  double acc_m = 0;  // the open chip's memory so far (with transit buffers)
  int32_t trail = 0;
  // Boundary nodes on closed chips, with their age (open chip - their chip),
  // sorted by node: they bound how late their readers may be placed.
  int32_t pend_begin = 0;
  int32_t pend_size = 0;
  int16_t chip = 0;
  bool nonempty = false;
  bool dead = false;
};

struct Pending {
  int32_t node;
  int32_t age;
};

// One layer of the lattice: every downset of one size.
struct Layer {
  std::vector<uint64_t> words;  // `width` words per entry
  std::vector<Entry> entries;
  std::vector<int32_t> bnd;
  std::vector<State> states;
  std::vector<Pending> pend;
  absl::flat_hash_map<uint64_t, int32_t> index;

  void Clear() {
    words.clear();
    entries.clear();
    bnd.clear();
    states.clear();
    pend.clear();
    index.clear();
  }
  int64_t Bytes() const {
    return static_cast<int64_t>(
        words.capacity() * sizeof(uint64_t) +
        entries.capacity() * sizeof(Entry) + bnd.capacity() * sizeof(int32_t) +
        states.capacity() * (sizeof(State) + sizeof(int32_t)) +
        pend.capacity() * sizeof(Pending) +
        index.capacity() * (sizeof(uint64_t) + sizeof(int32_t) + 1));
  }
};

// Why a partial placement could go no further, for the explanation when
// none gets through.
struct Blocker {
  int depth = -1;  // nodes placed when it was blocked
  std::string text;
};

}  // namespace mcmpart::exact

#endif  // MCMPART_SOLVER_EXACT_LATTICE_H_
