#include "policy/ppo.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "policy/policy_impl.h"
#include "solver/constructive.h"
#include "solver/polish.h"
#include "solver/repair.h"

namespace mcmpart::policy {
namespace {

// How far above its order's best split a decoded sample's bottleneck may
// be: rewards a thousandth apart are noise to PPO, and stopping the
// split's search there saves about a third of its sweeps. The fine-tuning
// loop re-splits each new best exactly (Rebalance) before reporting it.
constexpr double kDecodeTolerance = 1e-3;

// The largest weight a node's term gets in an update on a batch drawn by
// an older policy (Update): a chip the older policy rarely chose would
// otherwise dominate the step.
constexpr double kMaxStaleWeight = 2.0;

// Per-thread scratch for scoring repaired candidates.
struct Scored {
  bool attempted = false;  // false: skipped after a stop or the deadline
  absl::Status status;
  Assignment placement;
  bool split = false;  // decoded by the split alone
  double quality = 0;
  double throughput = 0;
};

// Whether to stop now, or rather than start a phase that takes `next`
// (never for the default deadline, InfiniteFuture).
struct StopCheck {
  const StopToken* stop;
  absl::Time deadline;
  bool operator()(absl::Duration next = absl::ZeroDuration()) const {
    return (stop != nullptr && stop->stop_requested()) ||
           absl::Now() + next >= deadline;
  }
};

// One batch drawn from the policy.
struct Sampled {
  torch::Tensor logp_old;  // [N, M]
  std::vector<Assignment> proposals;
  Assignment greedy;  // each node's most likely chip
  double entropy = 0;
};

// Draws `k` placements. Sampling is done here rather than with
// torch::multinomial so that it depends on the trainer's seed only, not on
// Torch's global generator or thread count.
absl::Status SampleBatch(PolicyNet& net, const GraphTensors& g, int n, int c,
                         int m, int k, std::mt19937_64& rng, Sampled* out) {
  out->proposals.assign(k, Assignment(n));
  out->greedy.assign(n, 0);
  return GuardTorch("policy forward", [&] {
    torch::NoGradGuard no_grad;
    out->logp_old = torch::log_softmax(net->forward(g), 1).contiguous();
    torch::Tensor probs = out->logp_old.exp().contiguous();
    out->entropy = -(probs * out->logp_old).sum(1).mean().item<double>();
    const float* p = probs.data_ptr<float>();
    std::uniform_real_distribution<double> unif(0.0, 1.0);
    for (int v = 0; v < n; ++v) {
      const float* row = p + static_cast<size_t>(v) * m;
      out->greedy[v] = static_cast<int>(std::max_element(row, row + c) - row);
      for (int s = 0; s < k; ++s) {
        double u = unif(rng), acc = 0;
        int chip = c - 1;
        for (int j = 0; j < c; ++j) {
          acc += row[j];
          if (u < acc) {
            chip = j;
            break;
          }
        }
        out->proposals[s][v] = chip;
      }
    }
  });
}

// Repairs `candidate` into a valid placement of `problem`: mcmpart::Repair
// with uniform weights and the given limits. Thread-safe.
absl::StatusOr<Assignment> RepairCandidate(const Problem& problem,
                                           const Assignment& candidate,
                                           absl::Duration time_limit,
                                           const StopToken* stop) {
  RepairOptions opts;
  opts.time_limit = time_limit;
  opts.stop = stop;
  absl::StatusOr<RepairResult> r = Repair(problem, candidate, {}, opts);
  if (!r.ok()) return r.status();
  return std::move(r->placement);
}

// Scores a decoded candidate (or records why there is none) into `out`.
void Score(absl::StatusOr<Assignment> r, Evaluator& eval, Scored* out) {
  if (!r.ok()) {
    out->status = r.status();
    return;
  }
  if (!eval.IsValid(*r)) {
    out->status = absl::InternalError("decoding gave an invalid placement");
    return;
  }
  const Figures& f = eval.Score(*r);
  out->placement = *std::move(r);
  out->quality = f.quality;
  out->throughput = f.throughput_per_s;
}

// The topological order keyed by a weighted mean of the proposed chip's
// share of the chips (`weight`) and the node's share of the graph's own
// (node-id) order.
std::vector<int> BlendedOrder(const Problem& problem, const Assignment& q,
                              double weight) {
  const int n = problem.num_nodes();
  const double c = problem.num_chips();
  std::vector<double> keys(n);
  for (int v = 0; v < n; ++v) {
    keys[v] = weight * (q[v] + 0.5) / c + (1 - weight) * (v + 0.5) / n;
  }
  return OrderByKeys(problem.graph(), keys);
}

// Decodes (options.decode) and scores one candidate into `out`.
void DecodeOne(const Problem& problem, const Assignment& q,
               const PpoOptions& options, const StopCheck& stopped,
               std::atomic<int>& fallbacks, Evaluator& eval, Scored* out) {
  if (stopped()) {
    out->status = absl::CancelledError("stopped");
    return;
  }
  // Inside the deadline (an infinite one leaves the limit as it is).
  const absl::Duration limit = std::max(
      absl::Milliseconds(1),
      std::min(options.repair_time_limit, stopped.deadline - absl::Now()));
  out->attempted = true;
  if (options.decode == Decode::kSplit) {
    absl::StatusOr<Assignment> split =
        SplitOrder(problem, OrderByChips(problem.graph(), q), stopped.stop,
                   kDecodeTolerance);
    // NOT_FOUND: no split of this order fits. An order halfway between the
    // proposal's and the graph's own often does where hop limits bind (the
    // proposal's order stretches edges over many chips); failing that, the
    // repair may still place the candidate differently, or prove the
    // instance infeasible.
    for (double weight : {0.5, 0.25, 0.0}) {
      if (!absl::IsNotFound(split.status())) break;
      split = SplitOrder(problem, BlendedOrder(problem, q, weight),
                         stopped.stop, kDecodeTolerance);
    }
    if (!split.ok() && !absl::IsNotFound(split.status())) {
      out->status = split.status();
      return;
    }
    if (split.ok()) {
      out->split = true;
      Score(std::move(split), eval, out);
      return;
    }
    if (fallbacks.fetch_add(1) >= options.max_fallback_repairs) {
      out->status = split.status();
      return;
    }
  }
  absl::StatusOr<Assignment> r =
      RepairCandidate(problem, q, limit, stopped.stop);
  if (r.ok() && options.rebalance) {
    // Without the stop token: it takes milliseconds, and a placement
    // repaired before a stop is still worth keeping.
    absl::StatusOr<Assignment> balanced = Rebalance(problem, *r, nullptr);
    if (balanced.ok()) r = *std::move(balanced);
  }
  Score(std::move(r), eval, out);
}

// Decodes a batch (and the greedy placement, last, with score_greedy) on
// several threads: Start spawns the background ones, Finish makes the
// calling thread one more worker until nothing is left, then joins. Between
// the two the calling thread is free (the PPO update runs there while the
// next batch decodes: PpoOptions::overlap). `batch` must outlive Finish.
class BatchDecoder {
 public:
  BatchDecoder(const Problem& problem, const Sampled& batch,
               const PpoOptions& options, const StopCheck& stopped)
      : problem_(problem),
        batch_(batch),
        options_(options),
        stopped_(stopped),
        k_(static_cast<int>(batch.proposals.size())),
        scored_(k_ + (options.score_greedy ? 1 : 0)) {}
  ~BatchDecoder() {
    for (std::thread& t : pool_) t.join();
  }

  void Start(int background_threads) {
    const int total = static_cast<int>(scored_.size());
    for (int i = 0; i < std::min(background_threads, total); ++i) {
      pool_.emplace_back([this] { Work(); });
    }
  }

  std::vector<Scored> Finish() {
    Work();
    for (std::thread& t : pool_) t.join();
    pool_.clear();
    return std::move(scored_);
  }

  // When the last candidate was done (after Finish): the calling thread may
  // have been busy with something else well past it.
  absl::Time done() const { return done_; }

 private:
  void Work() {
    Evaluator eval(problem_);
    const int total = static_cast<int>(scored_.size());
    bool worked = false;
    for (int i; (i = next_.fetch_add(1)) < total;) {
      DecodeOne(problem_, i < k_ ? batch_.proposals[i] : batch_.greedy,
                options_, stopped_, fallbacks_, eval, &scored_[i]);
      worked = true;
    }
    if (worked) {
      const absl::Time now = absl::Now();
      std::lock_guard<std::mutex> lock(done_mu_);
      done_ = std::max(done_, now);
    }
  }

  const Problem& problem_;
  const Sampled& batch_;
  const PpoOptions& options_;
  const StopCheck stopped_;
  const int k_;
  std::vector<Scored> scored_;
  std::atomic<int> next_{0}, fallbacks_{0};
  std::vector<std::thread> pool_;
  std::mutex done_mu_;
  absl::Time done_ = absl::InfinitePast();
};

// Decodes the batch on options.repair_threads threads (this one included).
std::vector<Scored> DecodeBatch(const Problem& problem, const Sampled& batch,
                                const PpoOptions& options,
                                const StopCheck& stopped) {
  BatchDecoder decoder(problem, batch, options, stopped);
  decoder.Start(options.repair_threads - 1);
  return decoder.Finish();
}

// Makes `sc` (valid) the step's best when it beats it.
void KeepBest(const Scored& sc, PpoStepStats* stats) {
  if (sc.throughput > stats->best_throughput) {
    stats->best_throughput = sc.throughput;
    stats->best_quality = sc.quality;
    stats->best = sc.placement;
  }
}

// Fills the step's figures from the scored candidates and the rewards of
// the first `k` (those attempted). FAILED_PRECONDITION when a repair proved
// the instance infeasible.
absl::Status Tally(const std::vector<Scored>& scored, int k,
                   double failed_reward, PpoStepStats* stats,
                   std::vector<double>* reward, int* rewarded) {
  reward->assign(k, 0);
  *rewarded = 0;
  double sum_q = 0;
  for (int i = 0; i < static_cast<int>(scored.size()); ++i) {
    const Scored& sc = scored[i];
    if (absl::IsFailedPrecondition(sc.status)) return sc.status;
    const bool ok = sc.status.ok();
    if (ok) {
      ++stats->valid;
      if (sc.split) ++stats->split;
      sum_q += sc.quality;
      KeepBest(sc, stats);
    }
    if (i < k && sc.attempted) {
      (*reward)[i] = ok ? sc.quality : failed_reward;
      ++*rewarded;
    }
  }
  stats->mean_quality = stats->valid > 0 ? sum_q / stats->valid : 0;
  double mean = 0;
  for (double r : *reward) mean += r;
  stats->mean_reward = mean / std::max(*rewarded, 1);
  return absl::OkStatus();
}

// Polishes the `top` best distinct valid placements of the step
// (PpoOptions::polish_best) and makes the best result the step's best.
// The rewards stay those of the decoded placements.
void PolishBest(const Problem& problem, int top,
                const std::vector<Scored>& scored, const StopCheck& stopped,
                PpoStepStats* stats) {
  std::vector<int> valid;
  for (int i = 0; i < static_cast<int>(scored.size()); ++i) {
    if (scored[i].status.ok()) valid.push_back(i);
  }
  std::sort(valid.begin(), valid.end(), [&](int a, int b) {
    return scored[a].throughput > scored[b].throughput;
  });
  Polisher polisher(problem);
  Evaluator eval(problem);
  std::vector<const Assignment*> done;
  for (int i : valid) {
    if (static_cast<int>(done.size()) >= top) break;
    const Assignment& p = scored[i].placement;
    if (std::any_of(done.begin(), done.end(),
                    [&](const Assignment* q) { return *q == p; })) {
      continue;
    }
    done.push_back(&p);
    absl::StatusOr<Assignment> polished =
        polisher.Run(p, stopped.stop, stopped.deadline);
    if (!polished.ok()) return;  // cancelled
    const Figures& f = eval.Score(*polished);
    if (f.throughput_per_s > stats->best_throughput) {
      stats->best_throughput = f.throughput_per_s;
      stats->best_quality = f.quality;
      stats->best = *std::move(polished);
    }
  }
}

// Batch-mean baseline, scaled by the batch's spread so that the step size
// does not depend on how far apart qualities happen to be. Empty when
// every candidate scored the same (no signal).
std::vector<float> Advantages(const std::vector<double>& reward, double mean) {
  const int k = static_cast<int>(reward.size());
  double var = 0;
  for (double r : reward) var += (r - mean) * (r - mean);
  const double sd = std::sqrt(var / k);
  if (sd < 1e-9) return {};
  std::vector<float> adv(k);
  for (int i = 0; i < k; ++i) {
    adv[i] = static_cast<float>((reward[i] - mean) / sd);
  }
  return adv;
}
}  // namespace

absl::Status ValidatePpoOptions(const PpoOptions& o) {
  auto bad = [](const char* name, double v) {
    return absl::InvalidArgumentError(
        absl::StrCat("PPO option ", name, " is out of range: ", v));
  };
  if (o.batch < 2 || o.batch > 4096) return bad("batch", o.batch);
  if (o.max_batch != 0 && (o.max_batch < o.batch || o.max_batch > 4096)) {
    return bad("max_batch", o.max_batch);
  }
  if (o.epochs < 0 || o.epochs > 100) return bad("epochs", o.epochs);
  if (!(o.clip > 0 && o.clip < 1)) return bad("clip", o.clip);
  if (!(o.entropy_coef >= 0 && o.entropy_coef < 10)) {
    return bad("entropy_coef", o.entropy_coef);
  }
  if (!(o.learning_rate > 0 && o.learning_rate < 1)) {
    return bad("learning_rate", o.learning_rate);
  }
  if (!(o.max_grad_norm > 0 && std::isfinite(o.max_grad_norm))) {
    return bad("max_grad_norm", o.max_grad_norm);
  }
  if (!std::isfinite(o.failed_repair_reward)) {
    return bad("failed_repair_reward", o.failed_repair_reward);
  }
  if (o.repair_threads < 1 || o.repair_threads > 256) {
    return bad("repair_threads", o.repair_threads);
  }
  if (o.max_fallback_repairs < 0 || o.max_fallback_repairs > 4096) {
    return bad("max_fallback_repairs", o.max_fallback_repairs);
  }
  if (o.repair_time_limit <= absl::ZeroDuration()) {
    return bad("repair_time_limit", absl::ToDoubleSeconds(o.repair_time_limit));
  }
  if (o.polish_best < 0 || o.polish_best > 4096) {
    return bad("polish_best", o.polish_best);
  }
  if (!(o.min_sample_rate >= 0 && o.min_sample_rate <= 1e9)) {
    return bad("min_sample_rate", o.min_sample_rate);
  }
  return absl::OkStatus();
}

struct PpoTrainer::Impl {
  std::unique_ptr<torch::optim::Adam> optimizer;
  std::mt19937_64 rng;
  // Features of the last problem seen: fine-tuning steps on one problem
  // many times.
  const Problem* cached_problem = nullptr;
  GraphTensors cached;
  // How long the last sampling pass and the last PPO epoch took: a phase is
  // not started when it would end past the step's deadline.
  absl::Duration last_sample = absl::ZeroDuration();
  absl::Duration last_epoch = absl::ZeroDuration();
  absl::Duration last_learn = absl::ZeroDuration();  // the whole update
  int last_sample_batch = 1;  // the batch that last_sample drew
  int batch = 0;              // of the next step (PpoOptions::max_batch)
  // PpoOptions::overlap: the next step's batch, sampled before this step's
  // update and decoded while it ran, for the problem `cached` describes;
  // dropped when the next step is on another one.
  struct Prefetch {
    Sampled batch;
    std::vector<Scored> scored;
    absl::Duration sample_time, decode_time;
  };
  std::optional<Prefetch> prefetch;
};

namespace {

// The ratio is taken per node (each node's chip is its own factor of the
// joint distribution): a ratio of the joint probability over ~1000 nodes
// would leave the clip range at once.
//
// `logp_prox` holds the log-probabilities of the policy as it is now, when
// that is not the one `batch` was drawn from (PpoOptions::overlap: the
// batch is one update old); undefined otherwise. The clip is then taken
// around the current policy and each node's term weighted by how much
// likelier the current policy makes its chip than the policy that drew it
// ("decoupled" PPO, Hilton et al. 2022): clipping around the old policy
// would leave little gradient, since the last update already moved the
// ratio to the edge of its range.
absl::Status Update(PolicyNet& net, const PpoOptions& options,
                    PpoTrainer::Impl& impl, const GraphTensors& g,
                    const Sampled& batch, const torch::Tensor& logp_prox,
                    const std::vector<Scored>& scored,
                    const std::vector<float>& adv_in, const StopCheck& stopped,
                    PpoStepStats* stats) {
  const int n = g.num_nodes;
  const int k = static_cast<int>(adv_in.size());
  std::vector<float> adv = adv_in;
  return GuardTorch("PPO update", [&] {
    std::vector<int64_t> act(static_cast<size_t>(n) * k);
    for (int i = 0; i < k; ++i) {
      // A split-decoded sample is a function of its proposal's order: the
      // proposal is what was rewarded (docs/policy.md, "Decoding").
      const bool repaired = options.target == LogProbTarget::kRepaired &&
                            scored[i].status.ok() && !scored[i].split;
      const Assignment& a = repaired ? scored[i].placement : batch.proposals[i];
      for (int v = 0; v < n; ++v) act[static_cast<size_t>(v) * k + i] = a[v];
    }
    torch::Tensor actions = torch::from_blob(act.data(), {n, k}, torch::kInt64);
    torch::Tensor advantage =
        torch::from_blob(adv.data(), {1, k}, torch::kFloat32).clone();
    torch::Tensor old_lp = batch.logp_old.gather(1, actions);  // [N, K]
    torch::Tensor weight;  // undefined: every weight 1
    if (logp_prox.defined()) {
      torch::Tensor prox_lp = logp_prox.gather(1, actions);
      weight = torch::exp(prox_lp - old_lp).clamp_max(kMaxStaleWeight);
      old_lp = prox_lp;
    }
    for (int e = 0; e < options.epochs; ++e) {
      // An epoch (forward and backward) takes about three sampling passes
      // (forward only) before the first one has been timed.
      if (stopped(std::max(impl.last_epoch, 3 * impl.last_sample))) {
        stats->cancelled = true;
        break;
      }
      const absl::Time epoch_start = absl::Now();
      torch::Tensor logp = torch::log_softmax(net->forward(g), 1);
      torch::Tensor lp = logp.gather(1, actions);
      torch::Tensor ratio = torch::exp(lp - old_lp);
      torch::Tensor surr = torch::min(
          ratio * advantage,
          torch::clamp(ratio, 1 - options.clip, 1 + options.clip) * advantage);
      if (weight.defined()) surr = weight * surr;
      torch::Tensor entropy = -(logp.exp() * logp).sum(1).mean();
      torch::Tensor loss = -surr.mean() - options.entropy_coef * entropy;
      impl.optimizer->zero_grad();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(net->parameters(),
                                        options.max_grad_norm);
      impl.optimizer->step();
      impl.last_epoch = absl::Now() - epoch_start;
    }
  });
}

// The batch after a step that learned (PpoOptions::max_batch). Without
// overlap: large enough that sampling and decoding take about twice as long
// as the update, which costs about the same whatever the batch. With
// overlap: as long as the update, so that the decoding hides behind it (a
// larger batch then buys samples at the cost of updates, and on the wide
// graphs learning is limited by updates: docs/policy.md, "Decoding").
// Either way at least what keeps min_sample_rate candidates decoded per
// second: `rate` is that of the step that just ended, which decoded
// `decoded` candidates. At most twice the last batch, so that one slow
// phase does not swing it.
int NextBatch(const PpoOptions& options, const PpoStepStats& stats, int decoded,
              double rate) {
  if (options.max_batch <= options.batch) return options.batch;
  const double per_sample =
      absl::ToDoubleSeconds(stats.sample_time + stats.repair_time) /
      stats.batch;
  if (!(per_sample > 0)) return stats.batch;
  double want = (options.overlap ? 1 : 2) *
                absl::ToDoubleSeconds(stats.learn_time) / per_sample;
  // Below the decoding's own limit the rate grows with the batch about in
  // proportion (the step's time is the update's).
  if (options.min_sample_rate > 0 && rate > 0) {
    want = std::max(want, decoded * options.min_sample_rate / rate);
  }
  const double capped =
      std::min({want, 2.0 * decoded, static_cast<double>(options.max_batch)});
  return std::max(options.batch, static_cast<int>(capped));
}

}  // namespace

PpoTrainer::~PpoTrainer() = default;

absl::StatusOr<std::unique_ptr<PpoTrainer>> PpoTrainer::Create(
    std::unique_ptr<Policy> policy, const PpoOptions& options) {
  if (policy == nullptr) return absl::InvalidArgumentError("no policy");
  if (absl::Status s = ValidatePpoOptions(options); !s.ok()) return s;
  auto t = std::unique_ptr<PpoTrainer>(new PpoTrainer());
  t->policy_ = std::move(policy);
  t->options_ = options;
  t->impl_ = std::make_unique<Impl>();
  t->impl_->rng.seed(options.seed);
  t->impl_->batch = options.batch;
  absl::Status s = GuardTorch("optimizer", [&] {
    t->policy_->impl_->net->train();
    t->impl_->optimizer = std::make_unique<torch::optim::Adam>(
        t->policy_->impl_->net->parameters(),
        torch::optim::AdamOptions(options.learning_rate));
  });
  if (!s.ok()) return s;
  return t;
}

absl::StatusOr<PpoStepStats> PpoTrainer::Step(const Problem& problem,
                                              const StopToken* stop,
                                              absl::Time deadline) {
  const absl::Time step_start = absl::Now();
  PpoStepStats stats;
  const StopCheck stopped{stop, deadline};
  Policy::Impl& pi = *policy_->impl_;
  const int n = problem.num_nodes();
  const int c = problem.num_chips();
  // A batch drawn ahead belongs to the cached problem.
  std::optional<Impl::Prefetch> pre;
  pre.swap(impl_->prefetch);
  if (impl_->cached_problem != &problem || impl_->cached.num_nodes != n ||
      impl_->cached.num_chips != c) {
    pre.reset();
    absl::StatusOr<GraphTensors> g =
        PrepareProblem(pi.metadata.config, problem);
    if (!g.ok()) return g.status();
    impl_->cached = *std::move(g);
    impl_->cached_problem = &problem;
  }
  const GraphTensors& g = impl_->cached;

  // 1. Sample and decode, unless the last step did both during its update
  // (PpoOptions::overlap). A batch grown since the last pass
  // (PpoOptions::max_batch) takes at most proportionally longer to sample.
  Sampled batch;
  std::vector<Scored> scored;
  int k = impl_->batch;
  absl::Time t0 = absl::Now();
  if (pre.has_value()) {
    batch = std::move(pre->batch);
    scored = std::move(pre->scored);
    k = static_cast<int>(batch.proposals.size());
    stats.prefetched = true;
    stats.sample_time = pre->sample_time;
  } else {
    stats.batch = k;
    if (stopped(
            impl_->last_sample *
            std::max(1.0, static_cast<double>(k) / impl_->last_sample_batch))) {
      stats.cancelled = true;
      return stats;
    }
    if (absl::Status s =
            SampleBatch(pi.net, g, n, c, pi.metadata.config.max_chips, k,
                        impl_->rng, &batch);
        !s.ok()) {
      return s;
    }
    stats.sample_time = absl::Now() - t0;
    impl_->last_sample = stats.sample_time;
    impl_->last_sample_batch = k;
    if (stopped()) {
      stats.cancelled = true;
      stats.entropy = batch.entropy;
      return stats;
    }
    // 2. Repair and score, several candidates at once.
    t0 = absl::Now();
    scored = DecodeBatch(problem, batch, options_, stopped);
  }
  stats.batch = k;
  stats.entropy = batch.entropy;
  stats.candidates = static_cast<int>(
      std::count_if(scored.begin(), scored.end(),
                    [](const Scored& sc) { return sc.attempted; }));
  if (stopped()) stats.cancelled = true;
  std::vector<double> reward;
  int rewarded = 0;
  if (absl::Status s = Tally(scored, k, options_.failed_repair_reward, &stats,
                             &reward, &rewarded);
      !s.ok()) {
    return s;
  }
  if (options_.polish_best > 0 && !stopped()) {
    PolishBest(problem, options_.polish_best, scored, stopped, &stats);
  }
  stats.repair_time = absl::Now() - t0;
  if (stats.prefetched) stats.repair_time += pre->decode_time;
  // Every batch candidate was repaired unless the step was cancelled.
  if (stats.cancelled || rewarded < k) {
    stats.cancelled = true;
    return stats;
  }

  // 3. Advantages.
  ++steps_;
  const std::vector<float> adv = Advantages(reward, stats.mean_reward);
  if (adv.empty()) return stats;           // every candidate equal: no signal
  if (options_.epochs == 0) return stats;  // sampling only (no fine-tuning)

  // 4. With overlap, the next batch: sampled now, from the policy before
  // this update, and decoded while the update runs.
  std::optional<BatchDecoder> next;
  absl::Time decode_start;
  // Not when the next step could not make its own update before the
  // deadline: its batch would then only compete with this update for the
  // cores, and on a busy machine make this one end past the deadline.
  if (options_.overlap &&
      !stopped(impl_->last_sample + 2 * impl_->last_learn)) {
    Impl::Prefetch& pf = impl_->prefetch.emplace();
    // Of the size the last step chose: this step's own choice needs the
    // update's time.
    const int next_k = impl_->batch;
    t0 = absl::Now();
    if (absl::Status s =
            SampleBatch(pi.net, g, n, c, pi.metadata.config.max_chips, next_k,
                        impl_->rng, &pf.batch);
        !s.ok()) {
      impl_->prefetch.reset();
      return s;
    }
    pf.sample_time = absl::Now() - t0;
    impl_->last_sample = pf.sample_time;
    impl_->last_sample_batch = next_k;
    decode_start = absl::Now();
    next.emplace(problem, pf.batch, options_, stopped);
    next->Start(options_.repair_threads - 1);
  }

  // 5. Clipped PPO updates. A batch drawn ahead is one update old; the
  // next batch's pass, if any, gave the current policy's log-probabilities.
  torch::Tensor logp_prox;
  if (stats.prefetched) {
    if (next.has_value()) {
      logp_prox = impl_->prefetch->batch.logp_old;
    } else {
      // No next batch because the deadline is near: a pass for these
      // log-probabilities and then an epoch would not fit either.
      if (stopped(impl_->last_sample +
                  std::max(impl_->last_epoch, 3 * impl_->last_sample))) {
        stats.cancelled = true;
        return stats;
      }
      absl::Status s = GuardTorch("policy forward", [&] {
        torch::NoGradGuard no_grad;
        logp_prox = torch::log_softmax(pi.net->forward(g), 1);
      });
      if (!s.ok()) return s;
    }
  }
  t0 = absl::Now();
  absl::Status updated = Update(pi.net, options_, *impl_, g, batch, logp_prox,
                                scored, adv, stopped, &stats);
  stats.learn_time = absl::Now() - t0;
  if (!stats.cancelled) impl_->last_learn = stats.learn_time;
  if (next.has_value()) {
    Impl::Prefetch& pf = *impl_->prefetch;
    pf.scored = next->Finish();
    pf.decode_time = std::max(next->done(), decode_start) - decode_start;
    // Reported now too: the caller may not take another step.
    for (const Scored& sc : pf.scored) {
      if (sc.status.ok()) KeepBest(sc, &stats);
    }
  }
  if (!updated.ok()) {
    impl_->prefetch.reset();
    return updated;
  }
  const int decoded = next.has_value() ? impl_->batch : k;
  const double step_s = absl::ToDoubleSeconds(absl::Now() - step_start);
  impl_->batch =
      NextBatch(options_, stats, decoded, step_s > 0 ? decoded / step_s : 0);
  return stats;
}

absl::Status PpoTrainer::SaveState(const std::string& dir) const {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  const std::string opt_path = (fs::path(dir) / "optimizer.pt").string();
  absl::Status s = GuardTorch("saving the optimizer", [&] {
    torch::serialize::OutputArchive archive;
    impl_->optimizer->save(archive);
    archive.save_to(opt_path + ".tmp");
  });
  if (!s.ok()) return s;
  fs::rename(opt_path + ".tmp", opt_path, ec);
  if (ec) return absl::InternalError(ec.message());
  std::ofstream out((fs::path(dir) / "trainer.state").string());
  out << "steps: " << steps_ << "\n";
  if (!out.good()) return absl::InternalError("cannot write trainer.state");
  return absl::OkStatus();
}

absl::Status PpoTrainer::LoadState(const std::string& dir) {
  namespace fs = std::filesystem;
  const std::string opt_path = (fs::path(dir) / "optimizer.pt").string();
  std::ifstream in((fs::path(dir) / "trainer.state").string());
  std::string key;
  int64_t steps = 0;
  if (!(in >> key >> steps) || key != "steps:" || steps < 0) {
    return absl::DataLossError(
        absl::StrCat(dir, "/trainer.state is malformed"));
  }
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(opt_path);
    impl_->optimizer->load(archive);
  } catch (const c10::Error& e) {
    return absl::DataLossError(
        absl::StrCat(opt_path, ": ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat(opt_path, ": ", e.what()));
  }
  steps_ = steps;
  // Continue the sampling stream where a fresh run would be at this step.
  impl_->rng.seed(options_.seed + 0x9E3779B97F4A7C15ull * steps_);
  return absl::OkStatus();
}

}  // namespace mcmpart::policy
