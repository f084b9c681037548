// mcmpart-train: pre-trains the placement policy with PPO + repair on a
// corpus of graph files and synthetic DAGs on random hardware.
//
//   mcmpart-train --out=DIR [--corpus=DIR] [--holdout=a,b,...]
//                 [--time_budget_s=S] [--iterations=N] [--seed=S] ...
//
// Writes DIR/policy.meta + DIR/model.pt (loadable by Policy::Load) and
// DIR/optimizer.pt + DIR/trainer.state (for --resume) every
// --checkpoint_every iterations and at the end. See docs/policy.md.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "policy/policy.h"
#include "policy/ppo.h"
#include "policy/synthetic.h"
#include "solver/graph.h"
#include "solver/graph_io.h"
#include "solver/problem.h"

namespace mcmpart::policy {
namespace {

namespace fs = std::filesystem;

// The benchmark graphs (docs/policy.md): never trained on, so the
// benchmarks measure transfer to unseen graphs.
constexpr char kDefaultHoldout[] =
    "bert_base,resnet50,inception_v3,efficientnet_b0,mobilenet_v2,"
    "shufflenet_v2,regnet_y_400mf,googlenet,moe_e8";

struct Flags {
  std::string out;
  std::string corpus;
  std::string holdout = kDefaultHoldout;
  double time_budget_s = 0;  // 0 = no limit
  int64_t iterations = 1000;
  uint64_t seed = 1;
  int batch = 16;
  int epochs = 4;
  double lr = 1e-3;
  double entropy = 0.01;
  int checkpoint_every = 25;
  int steps_per_instance = 1;
  bool resume = false;
  int threads = 1;
  int repair_threads = 2;
  int repair_ms = 300;
  int min_nodes = 50;
  int max_nodes = 3000;
  int min_chips = 2;
  int max_chips = 16;
  double corpus_fraction = 0.3;
  std::string target = "repaired";
  bool rebalance = true;
  bool split_decode = true;
};

const char kUsage[] =
    "usage: mcmpart-train --out=DIR [flags]\n"
    "  --corpus=DIR            graphs (.onnx/.json/.pb) to train on besides\n"
    "                          the synthetic generator\n"
    "  --holdout=a,b,...       corpus graphs (file stems) to leave out\n"
    "                          (default: the benchmark graphs)\n"
    "  --time_budget_s=S       stop after S seconds (0 = no limit)\n"
    "  --iterations=N          stop after N PPO iterations (default 1000)\n"
    "  --seed=S --batch=K --epochs=E --lr=X --entropy=X\n"
    "  --checkpoint_every=N    iterations between checkpoints (default 25)\n"
    "  --steps_per_instance=K  PPO steps on each drawn instance (default 1)\n"
    "  --resume                continue from the checkpoint in --out\n"
    "  --threads=N             Torch threads (default 1)\n"
    "  --repair_threads=N --repair_ms=MS\n"
    "  --min_nodes=N --max_nodes=N --min_chips=N --max_chips=N\n"
    "  --corpus_fraction=X     share of iterations on corpus graphs\n"
    "  --target=repaired|proposal  log-prob target of the policy gradient\n"
    "  --rebalance=0|1         move the chip boundaries of each repaired\n"
    "                          sample to their best positions (default 1)\n"
    "  --decode=split|repair   how a sample becomes a valid placement: the\n"
    "                          split of its proposed order (default), or the\n"
    "                          repair\n";

// One setter per --key=value flag; false for a value that does not parse.
using Setter = std::function<bool(const std::string&, Flags*)>;

template <typename T>
Setter Number(T Flags::*field) {
  return [field](const std::string& v, Flags* f) {
    if constexpr (std::is_floating_point_v<T>) {
      return absl::SimpleAtod(v, &(f->*field));
    } else {
      return absl::SimpleAtoi(v, &(f->*field));
    }
  };
}

Setter Text(std::string Flags::*field) {
  return [field](const std::string& v, Flags* f) {
    f->*field = v;
    return true;
  };
}

const std::map<std::string, Setter>& Setters() {
  static const auto* setters = new std::map<std::string, Setter>{
      {"out", Text(&Flags::out)},
      {"corpus", Text(&Flags::corpus)},
      {"holdout", Text(&Flags::holdout)},
      {"time_budget_s", Number(&Flags::time_budget_s)},
      {"iterations", Number(&Flags::iterations)},
      {"seed", Number(&Flags::seed)},
      {"batch", Number(&Flags::batch)},
      {"epochs", Number(&Flags::epochs)},
      {"lr", Number(&Flags::lr)},
      {"entropy", Number(&Flags::entropy)},
      {"checkpoint_every", Number(&Flags::checkpoint_every)},
      {"steps_per_instance", Number(&Flags::steps_per_instance)},
      {"threads", Number(&Flags::threads)},
      {"repair_threads", Number(&Flags::repair_threads)},
      {"repair_ms", Number(&Flags::repair_ms)},
      {"min_nodes", Number(&Flags::min_nodes)},
      {"max_nodes", Number(&Flags::max_nodes)},
      {"min_chips", Number(&Flags::min_chips)},
      {"max_chips", Number(&Flags::max_chips)},
      {"corpus_fraction", Number(&Flags::corpus_fraction)},
      {"target", Text(&Flags::target)},
      {"rebalance",
       [](const std::string& v, Flags* f) {
         f->rebalance = v == "1";
         return v == "0" || v == "1";
       }},
      {"decode",
       [](const std::string& v, Flags* f) {
         f->split_decode = v == "split";
         return v == "split" || v == "repair";
       }},
  };
  return *setters;
}

absl::Status ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (arg == "--resume") {
      f->resume = true;
      continue;
    }
    std::vector<std::string> kv = absl::StrSplit(arg, absl::MaxSplits('=', 1));
    if (kv.size() != 2 || kv[0].rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad argument '", arg, "'"));
    }
    const std::string key = kv[0].substr(2);
    auto setter = Setters().find(key);
    if (setter == Setters().end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", key));
    }
    if (!setter->second(kv[1], f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad value for --", key, ": '", kv[1], "'"));
    }
  }
  if (f->out.empty()) return absl::InvalidArgumentError("--out is required");
  if (f->min_nodes < 10 || f->max_nodes < f->min_nodes ||
      f->max_nodes > 100000) {
    return absl::InvalidArgumentError(
        "need 10 <= --min_nodes <= --max_nodes <= 100000");
  }
  if (f->min_chips < 1 || f->max_chips < f->min_chips || f->max_chips > 64) {
    return absl::InvalidArgumentError(
        "need 1 <= --min_chips <= --max_chips <= 64");
  }
  if (f->target != "repaired" && f->target != "proposal") {
    return absl::InvalidArgumentError("--target must be repaired or proposal");
  }
  if (f->threads < 1 || f->repair_ms < 1 || f->checkpoint_every < 1 ||
      f->steps_per_instance < 1) {
    return absl::InvalidArgumentError(
        "--threads, --repair_ms, --checkpoint_every, --steps_per_instance "
        "must be >= 1");
  }
  return absl::OkStatus();
}

struct CorpusGraph {
  std::string name;
  std::shared_ptr<const Graph> graph;
};

absl::StatusOr<std::vector<CorpusGraph>> LoadCorpus(
    const Flags& f, std::vector<std::string>* held) {
  std::vector<CorpusGraph> out;
  if (f.corpus.empty()) return out;
  std::vector<std::string> holdout =
      absl::StrSplit(f.holdout, ',', absl::SkipEmpty());
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(f.corpus, ec)) {
    const std::string ext = e.path().extension().string();
    if (ext == ".onnx" || ext == ".json" || ext == ".pb")
      files.push_back(e.path());
  }
  if (ec)
    return absl::NotFoundError(
        absl::StrCat("--corpus ", f.corpus, ": ", ec.message()));
  std::sort(files.begin(), files.end());
  for (const fs::path& p : files) {
    const std::string stem = p.stem().string();
    if (std::find(holdout.begin(), holdout.end(), stem) != holdout.end()) {
      held->push_back(stem);
      continue;
    }
    absl::StatusOr<v1::Graph> proto = LoadGraphFile(p.string());
    if (!proto.ok()) {
      std::fprintf(stderr, "skipping %s: %s\n", p.c_str(),
                   proto.status().ToString().c_str());
      continue;
    }
    absl::StatusOr<Graph> g = Graph::FromProto(*proto);
    if (!g.ok()) {
      std::fprintf(stderr, "skipping %s: %s\n", p.c_str(),
                   g.status().ToString().c_str());
      continue;
    }
    out.push_back({stem, std::make_shared<const Graph>(*std::move(g))});
  }
  return out;
}

std::string CorpusText(const Flags& flags,
                       const std::vector<CorpusGraph>& corpus,
                       const std::vector<std::string>& held) {
  std::vector<std::string> names;
  for (const auto& c : corpus) names.push_back(c.name);
  std::vector<std::string> families;
  for (int f = 0; f < kNumSyntheticFamilies; ++f) {
    families.push_back(SyntheticFamilyName(static_cast<SyntheticFamily>(f)));
  }
  return absl::StrCat(
      "synthetic(", absl::StrJoin(families, ","), "; ", flags.min_nodes, "-",
      flags.max_nodes, " nodes; ", flags.min_chips, "-", flags.max_chips,
      " chips; max_hops 1-C; SRAM slack 1.1-4x)",
      names.empty() ? "" : absl::StrCat(" + ", absl::StrJoin(names, ",")),
      held.empty() ? ""
                   : absl::StrCat("; held out: ", absl::StrJoin(held, ",")));
}

// A fresh policy, or with `resuming` the one in --out with its optimizer
// state and step count.
absl::StatusOr<std::unique_ptr<PpoTrainer>> MakeTrainer(const Flags& flags,
                                                        bool resuming) {
  absl::StatusOr<std::unique_ptr<Policy>> policy =
      resuming ? Policy::Load(flags.out)
               : Policy::Create(PolicyConfig{}, flags.seed);
  if (!policy.ok()) return policy.status();
  PpoOptions ppo;
  ppo.batch = flags.batch;
  ppo.epochs = flags.epochs;
  ppo.learning_rate = flags.lr;
  ppo.entropy_coef = flags.entropy;
  ppo.seed = flags.seed;
  ppo.repair_threads = flags.repair_threads;
  ppo.repair_time_limit = absl::Milliseconds(flags.repair_ms);
  ppo.score_greedy = true;
  ppo.rebalance = flags.rebalance;
  ppo.decode = flags.split_decode ? Decode::kSplit : Decode::kRepair;
  ppo.target = flags.target == "proposal" ? LogProbTarget::kProposal
                                          : LogProbTarget::kRepaired;
  absl::StatusOr<std::unique_ptr<PpoTrainer>> trainer =
      PpoTrainer::Create(*std::move(policy), ppo);
  if (!trainer.ok() || !resuming) return trainer;
  if (absl::Status s = (*trainer)->LoadState(flags.out); !s.ok()) return s;
  return trainer;
}

// One iteration's training instance. It depends on (seed, iteration) only,
// so a resumed run sees the same instances a fresh one would.
struct Instance {
  std::shared_ptr<const Graph> graph;  // null when the draw was rejected
  std::string kind;
  int chips = 0;
  int max_hops = 1;
  double slack = 1;
  uint64_t hw_seed = 0;
};

Instance DrawInstance(const Flags& flags,
                      const std::vector<CorpusGraph>& corpus, int64_t it) {
  std::mt19937_64 rng(flags.seed * 1000003ull + static_cast<uint64_t>(it));
  std::uniform_real_distribution<double> u(0, 1);
  Instance inst;
  if (!corpus.empty() && u(rng) < flags.corpus_fraction) {
    const CorpusGraph& c = corpus[rng() % corpus.size()];
    inst.graph = c.graph;
    inst.kind = c.name;
  } else {
    const auto family =
        static_cast<SyntheticFamily>(rng() % kNumSyntheticFamilies);
    const double lo = std::log(flags.min_nodes), hi = std::log(flags.max_nodes);
    const int size = static_cast<int>(std::exp(lo + (hi - lo) * u(rng)));
    absl::StatusOr<Graph> g =
        Graph::FromProto(SyntheticGraph(family, size, rng()));
    if (!g.ok()) {
      std::fprintf(stderr, "synthetic graph rejected: %s\n",
                   g.status().ToString().c_str());
      return inst;
    }
    inst.graph = std::make_shared<const Graph>(*std::move(g));
    inst.kind = SyntheticFamilyName(family);
  }
  inst.chips =
      flags.min_chips +
      static_cast<int>(rng() % (flags.max_chips - flags.min_chips + 1));
  // Hop limits from 1 to C: one hop (the presets' default) most often, two
  // (a skip over one chip), anything in between, and no limit at all.
  const double hop_draw = u(rng);
  const int c = inst.chips;
  inst.max_hops = hop_draw < 0.35  ? 1
                  : hop_draw < 0.6 ? 2
                  : hop_draw < 0.75
                      ? 3 + static_cast<int>(rng() % std::max(1, c - 2))
                      : c;
  inst.max_hops = std::clamp(inst.max_hops, 1, std::max(1, c));
  inst.slack =
      std::exp(std::log(1.1) + (std::log(4.0) - std::log(1.1)) * u(rng));
  inst.hw_seed = rng();
  return inst;
}

// A PPO step on the instance, loosening SRAM (up to three times) while it
// has no valid placement.
absl::StatusOr<PpoStepStats> TrainOn(PpoTrainer& trainer,
                                     const Instance& inst) {
  absl::StatusOr<PpoStepStats> st = absl::UnknownError("not run");
  double slack = inst.slack;
  for (int attempt = 0; attempt < 4; ++attempt, slack *= 2) {
    v1::Hardware hw = RandomHardware(
        inst.graph->ToProto(), std::min(inst.chips, inst.graph->num_nodes()),
        slack, inst.hw_seed);
    v1::Constraints constraints = hw.constraints();
    constraints.set_max_hops(inst.max_hops);
    absl::StatusOr<Problem> problem =
        Problem::Create(inst.graph, hw, constraints);
    if (!problem.ok()) return problem.status();
    st = trainer.Step(*problem, nullptr);
    if (!absl::IsFailedPrecondition(st.status())) break;
  }
  return st;
}

// The run's figures so far, for the progress line.
struct Progress {
  absl::Time start = absl::Now();
  int64_t first_it = 0;
  int64_t samples = 0;
  double ema_quality = -1;
};

void PrintIteration(const Flags& flags, Progress& p, int64_t it,
                    const Instance& inst, const PpoStepStats& st) {
  p.samples += st.candidates;
  p.ema_quality = p.ema_quality < 0
                      ? st.mean_quality
                      : 0.95 * p.ema_quality + 0.05 * st.mean_quality;
  const double now = absl::ToDoubleSeconds(absl::Now() - p.start);
  // ETA: the sooner of the time budget and the remaining iterations at this
  // run's average pace.
  const double per_it = now / std::max<int64_t>(1, it - p.first_it);
  double eta = per_it * (flags.iterations - it);
  if (flags.time_budget_s > 0) {
    eta = std::min(eta, std::max(0.0, flags.time_budget_s - now));
  }
  std::printf(
      "iter %5lld  %-12s n=%-5d C=%-2d h=%-2d  mean_q %.3f  best_q %.3f  valid "
      "%2d/%2d  "
      "ent %.3f  ema_q %.3f  %.1f samples/s  repair %.2fs learn %.2fs  ETA "
      "%.0fs\n",
      (long long)it, inst.kind.c_str(), inst.graph->num_nodes(), inst.chips,
      inst.max_hops, st.mean_quality, st.best_quality, st.valid, st.candidates,
      st.entropy, p.ema_quality, p.samples / std::max(1e-9, now),
      absl::ToDoubleSeconds(st.repair_time),
      absl::ToDoubleSeconds(st.learn_time), eta);
  std::fflush(stdout);
}

bool Checkpoint(const Flags& flags, const std::string& corpus_text,
                PpoTrainer& trainer) {
  std::unique_ptr<Policy> tagged = trainer.policy().WithMetadataText(
      corpus_text, trainer.steps(),
      absl::StrCat("mcmpart-train seed=", flags.seed, " batch=", flags.batch,
                   " lr=", flags.lr, " target=", flags.target,
                   " rebalance=", flags.rebalance ? 1 : 0,
                   " decode=", flags.split_decode ? "split" : "repair",
                   " steps_per_instance=", flags.steps_per_instance));
  absl::Status s = tagged->Save(flags.out);
  if (s.ok()) s = trainer.SaveState(flags.out);
  if (!s.ok()) {
    std::fprintf(stderr, "mcmpart-train: checkpoint: %s\n",
                 s.ToString().c_str());
    return false;
  }
  return true;
}

int Main(int argc, char** argv) {
  Flags flags;
  if (absl::Status s = ParseFlags(argc, argv, &flags); !s.ok()) {
    std::fprintf(stderr, "mcmpart-train: %s\n%s",
                 std::string(s.message()).c_str(), kUsage);
    return 2;
  }
  SetTorchThreads(flags.threads);
  std::vector<std::string> held;
  absl::StatusOr<std::vector<CorpusGraph>> corpus = LoadCorpus(flags, &held);
  if (!corpus.ok()) {
    std::fprintf(stderr, "mcmpart-train: %s\n",
                 corpus.status().ToString().c_str());
    return 1;
  }
  const std::string corpus_text = CorpusText(flags, *corpus, held);
  std::printf("corpus: %s\n", corpus_text.c_str());
  const bool resuming =
      flags.resume && fs::exists(fs::path(flags.out) / "policy.meta");
  absl::StatusOr<std::unique_ptr<PpoTrainer>> trainer =
      MakeTrainer(flags, resuming);
  if (!trainer.ok()) {
    std::fprintf(stderr, "mcmpart-train: %s%s\n", resuming ? "--resume: " : "",
                 trainer.status().ToString().c_str());
    return 1;
  }
  if (resuming) {
    std::printf("resumed after %lld PPO steps\n",
                (long long)(*trainer)->steps());
  }
  Progress progress;
  // Iterations count instances; a resumed run with several steps per
  // instance continues at the next whole instance.
  progress.first_it = (*trainer)->steps() / flags.steps_per_instance;
  for (int64_t it = progress.first_it; it < flags.iterations;) {
    const double elapsed = absl::ToDoubleSeconds(absl::Now() - progress.start);
    if (flags.time_budget_s > 0 && elapsed >= flags.time_budget_s) break;
    const Instance inst = DrawInstance(flags, *corpus, it);
    ++it;
    if (inst.graph == nullptr) continue;
    absl::StatusOr<PpoStepStats> st = TrainOn(**trainer, inst);
    for (int k = 1; st.ok() && k < flags.steps_per_instance; ++k) {
      PrintIteration(flags, progress, it, inst, *st);
      st = TrainOn(**trainer, inst);
    }
    if (!st.ok()) {
      std::fprintf(stderr,
                   "iteration %lld (%s, %d nodes, %d chips) skipped: %s\n",
                   (long long)it, inst.kind.c_str(), inst.graph->num_nodes(),
                   inst.chips, st.status().ToString().c_str());
      continue;
    }
    PrintIteration(flags, progress, it, inst, *st);
    if (it % flags.checkpoint_every == 0 &&
        !Checkpoint(flags, corpus_text, **trainer)) {
      return 1;
    }
  }
  if (!Checkpoint(flags, corpus_text, **trainer)) return 1;
  std::printf(
      "done: %lld PPO steps, %lld samples in %.0f s; checkpoint in %s\n",
      (long long)(*trainer)->steps(), (long long)progress.samples,
      absl::ToDoubleSeconds(absl::Now() - progress.start), flags.out.c_str());
  return 0;
}

}  // namespace
}  // namespace mcmpart::policy

int main(int argc, char** argv) { return mcmpart::policy::Main(argc, argv); }
