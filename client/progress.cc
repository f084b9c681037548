#include "client/progress.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <string>
#include <thread>

#include "absl/strings/str_format.h"
#include "client/connection.h"
#include "solver/graph_io.h"

namespace mcmpart::cli {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void OnSigint(int) { g_interrupted.store(true); }

}  // namespace

void Progress::Update(const v1::PartitionUpdate& u) {
  std::lock_guard<std::mutex> lock(mu_);
  if (u.placement().assignment().empty()) return;
  const double t = u.evaluation().throughput_per_s();
  if (have_ && !(t > last_.evaluation().throughput_per_s())) return;
  if (!have_) first_ = t;
  last_ = u;
  have_ = true;
  started_ = absl::Now() - absl::Seconds(u.elapsed_s());
  if (tty_) {
    DrawLocked(u.elapsed_s());
  } else {
    std::cerr << absl::StrFormat(
        "[%8s] throughput %.6g /s  quality %.4f  %+.1f%% over first  %lld "
        "samples%s\n",
        FormatSeconds(u.elapsed_s()), t, u.evaluation().quality(),
        100.0 * (t / first_ - 1), static_cast<long long>(u.samples()),
        u.from_cache() ? "  (from the server's cache)" : "");
  }
}

void Progress::Tick() {
  std::lock_guard<std::mutex> lock(mu_);
  if (tty_) DrawLocked(absl::ToDoubleSeconds(absl::Now() - started_));
}

void Progress::Done() {
  std::lock_guard<std::mutex> lock(mu_);
  if (tty_ && drawn_) std::cerr << "\n";
}

void Progress::DrawLocked(double elapsed) {
  const std::string clock =
      budget_s_ > 0 ? absl::StrFormat("%.1fs / %gs", elapsed, budget_s_)
                    : absl::StrFormat("%.1fs", elapsed);
  if (!have_) {
    std::cerr << "\r\033[Ksearching, no valid placement yet  " << clock;
  } else {
    const double t = last_.evaluation().throughput_per_s();
    // The server sends only improvements: the rate is the one up to the
    // latest of them.
    const std::string rate =
        last_.from_cache()
            ? std::string("from the server's cache")
            : absl::StrFormat("%.0f samples/s",
                              last_.elapsed_s() > 0
                                  ? last_.samples() / last_.elapsed_s()
                                  : 0.0);
    std::cerr << absl::StrFormat(
        "\r\033[Kbest %.6g /s  quality %.4f  %+.1f%% over first  %s  %s", t,
        last_.evaluation().quality(), 100.0 * (t / first_ - 1), rate, clock);
  }
  std::cerr.flush();
  drawn_ = true;
}

StreamOutcome ReadStream(
    grpc::ClientContext& ctx,
    grpc::ClientReaderInterface<v1::PartitionUpdate>& reader,
    Progress& progress) {
  StreamOutcome out;
  std::atomic<bool> done{false};
  g_interrupted.store(false);
  auto previous = std::signal(SIGINT, OnSigint);
  std::thread ticker([&] {
    bool cancelled = false;
    int ticks = 0;
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (!cancelled && g_interrupted.load()) {
        ctx.TryCancel();
        cancelled = true;
      }
      if (++ticks % 4 == 0) progress.Tick();
    }
  });
  v1::PartitionUpdate u;
  while (reader.Read(&u)) {
    progress.Update(u);
    if (!u.placement().assignment().empty()) out.best = u;
    if (u.final()) out.final_update = u;
  }
  done.store(true);
  ticker.join();
  std::signal(SIGINT, previous);
  progress.Done();
  out.status = reader.Finish();
  out.interrupted = g_interrupted.load();
  out.call_expired = Expired(ctx);
  return out;
}

}  // namespace mcmpart::cli
