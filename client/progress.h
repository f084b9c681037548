// What a streamed search shows while it runs, and how it is read: the
// progress line (self-updating on a terminal, one line per improvement
// otherwise) and Ctrl-C, which cancels the call.
#ifndef MCMPART_CLIENT_PROGRESS_H_
#define MCMPART_CLIENT_PROGRESS_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/sync_stream.h>

#include <mutex>
#include <optional>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "mcmpart/v1/partitioner.pb.h"

namespace mcmpart::cli {

// Shows the progress of a streamed search. Only strictly better placements
// count as improvements: the final update repeats the best (and is shown
// only when the server coalesced it away before). Thread-safe: the stream's
// reader and the clock's ticker both draw.
class Progress {
 public:
  // `tty`: draw one self-updating line. `budget_s` 0 means unknown
  // (watching a job someone else submitted).
  Progress(bool tty, double budget_s) : tty_(tty), budget_s_(budget_s) {}

  void Update(const v1::PartitionUpdate& u);
  // Redraws the terminal line with the clock moving on, also before the
  // first valid placement so that a slow start does not look like a hang.
  void Tick();
  void Done();

 private:
  void DrawLocked(double elapsed);

  std::mutex mu_;
  const bool tty_;
  const double budget_s_;
  double first_ = 0;
  bool have_ = false;
  bool drawn_ = false;
  v1::PartitionUpdate last_;
  absl::Time started_ = absl::Now();
};

struct StreamOutcome {
  grpc::Status status;
  std::optional<v1::PartitionUpdate> best;  // last update with a placement
  std::optional<v1::PartitionUpdate> final_update;
  bool interrupted = false;  // Ctrl-C
  bool call_expired = false;
};

// Reads a stream of updates until it ends, drawing progress. Ctrl-C cancels
// the call (the server stops the work for Partition; a watch just detaches).
StreamOutcome ReadStream(
    grpc::ClientContext& ctx,
    grpc::ClientReaderInterface<v1::PartitionUpdate>& reader,
    Progress& progress);

}  // namespace mcmpart::cli

#endif  // MCMPART_CLIENT_PROGRESS_H_
