#include "server/clock.h"

namespace mcmpart::server {
namespace {

class Real final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

const Clock& RealClock() {
  static const Real* clock = new Real();
  return *clock;
}

}  // namespace mcmpart::server
