// policy_benchmark: the learned policy against the classical strategies on
// the shared graphs, on equal wall-clock budgets (docs/benchmarks.md,
// "## Policy"). Its own command, never part of ctest.
//
//   policy_benchmark [--budgets=5,30] [--seeds=3] [--cases=bert_base/ring8,...]
//                    [--suite=wide] [--methods=rl,scratch,anneal,random,
//                    constructive,exact,auto] [--policy=DIR] [--graphs=DIR]
//                    [--csv=FILE] [--target=repaired|proposal]
//                    [--warm-start=0|1] [--rebalance=0|1]
//                    [--decode=split|repair] [--batch=K] [--polish=K]
//
// A case is GRAPH/PRESET[/hN] (max_hops N, hC = the preset's chip count;
// tests/benchmarks/cases.h). --suite=wide is the wide and long-range
// suite of docs/benchmarks.md: the three hard graphs and two branchy ones on
// ring4/8/16 with max_hops 1, 2 and C. A case with no valid placement is
// proved so by every method at once; it is run once, not per budget and
// seed. The last column is the proved bound on quality (exact and auto
// report one), empty when the run has none.
//
// rl = the shipped pre-trained policy fine-tuned on the case; scratch = the
// same fine-tuning from a freshly initialised policy. Every run gets the
// same budget and one process at a time (2 cores: repairs use both).
// Prints one CSV row per run (with the improvement trace) and a summary.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "policy/finetune.h"
#include "policy/policy.h"
#include "policy/registry.h"
#include "solver/problem.h"
#include "solver/repair.h"
#include "solver/strategy.h"
#include "tests/benchmarks/cases.h"

namespace mcmpart::policy {
namespace {

constexpr char kDefaultCases[] =
    "bert_base/ring8,resnet50/ring4,inception_v3/ring8,efficientnet_b0/ring4,"
    "mobilenet_v2/ring4,shufflenet_v2/ring8,regnet_y_400mf/ring8,"
    "googlenet/ring4";

constexpr char kUsage[] =
    "usage: policy_benchmark [--budgets=5,30] [--seeds=3] "
    "[--cases=GRAPH/PRESET[/hN],...]\n"
    "         [--suite=wide] [--methods=rl,scratch,anneal,random,"
    "constructive,exact,auto]\n"
    "         [--policy=DIR] [--graphs=DIR] [--csv=FILE] "
    "[--target=repaired|proposal]\n"
    "         [--warm-start=0|1] [--rebalance=0|1] [--decode=split|repair]\n"
    "         [--batch=K] [--polish=K]\n"
    "docs/benchmarks.md (\"Policy\", \"Wide and long-range models\") has "
    "the commands behind its tables.\n";

struct Run {
  std::string case_name, method;
  double budget_s = 0;
  int seed = 0;
  double quality = 0, throughput = 0;
  int64_t samples = 0;
  double bound_quality = 0;  // proved bound on quality; 0 = none
  std::string error;
  std::vector<std::pair<double, double>> trace;  // (seconds, quality)
};

struct Flags {
  std::string budgets = "5,30", cases = kDefaultCases,
              methods = "rl,scratch,anneal,random,constructive",
              policy_dir = DefaultPolicyDirectory() + "/default",
              graphs = MCMPART_SHARED_GRAPHS_DIR, csv, target = "repaired";
  int seeds = 3;
  // The committed tables of "## Policy" measure the policy alone
  // (docs/policy.md, "Warm start"): --warm-start=1 measures what an rl
  // request gets.
  bool warm_start = false;
  bool rebalance = true;
  bool split_decode = true;
  int batch = 0;    // 0: FineTuneOptions' own (growing); K: fixed at K
  int polish = -1;  // -1: PpoOptions' own; K: polish the best K per step
};

// Parses --name=value flags; false (with a message) on a bad one.
bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::vector<std::string> kv =
        absl::StrSplit(argv[i], absl::MaxSplits('=', 1));
    const std::string k = kv[0];
    const std::string v = kv.size() > 1 ? kv[1] : "";
    bool ok = true;
    if (k == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (k == "--budgets") {
      f->budgets = v;
    } else if (k == "--cases") {
      f->cases = v;
    } else if (k == "--suite" && v == "wide") {
      f->cases = bench::SuiteCases(
          {"dlrm_criteo", "moe_e8", "unet", "googlenet", "inception_v3"});
      f->methods = "rl,anneal,random,constructive,exact,auto";
      f->warm_start = true;  // what a request gets
    } else if (k == "--methods") {
      f->methods = v;
    } else if (k == "--policy") {
      f->policy_dir = v;
    } else if (k == "--graphs") {
      f->graphs = v;
    } else if (k == "--csv") {
      f->csv = v;
    } else if (k == "--target") {
      f->target = v;
    } else if (k == "--warm-start") {
      f->warm_start = v == "1";
    } else if (k == "--rebalance") {
      f->rebalance = v == "1";
    } else if (k == "--decode") {
      f->split_decode = v != "repair";
    } else if (k == "--batch") {
      ok = absl::SimpleAtoi(v, &f->batch) && f->batch >= 2;
    } else if (k == "--polish") {
      ok = absl::SimpleAtoi(v, &f->polish) && f->polish >= 0;
    } else if (k == "--seeds") {
      ok = absl::SimpleAtoi(v, &f->seeds) && f->seeds >= 1;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "policy_benchmark: bad argument %s\n%s", argv[i],
                   kUsage);
      return false;
    }
  }
  return true;
}

// The strategy a run measures, or null (with a message) when it cannot be
// made.
std::unique_ptr<Strategy> MakeMethod(
    const std::string& method, int seed, const Flags& flags,
    const std::shared_ptr<const Policy>& pretrained) {
  if (method == "rl" || method == "scratch") {
    std::shared_ptr<const Policy> base = pretrained;
    if (method == "scratch") {
      base = std::move(*Policy::Create(PolicyConfig{}, seed));
    }
    FineTuneOptions o;
    o.warm_start = flags.warm_start;
    o.ppo.rebalance = flags.rebalance;
    o.ppo.decode = flags.split_decode ? Decode::kSplit : Decode::kRepair;
    if (flags.batch > 0) {  // a fixed batch
      o.ppo.batch = flags.batch;
      o.ppo.max_batch = 0;
    }
    if (flags.polish >= 0) o.ppo.polish_best = flags.polish;
    o.ppo.seed = seed;
    o.ppo.target = flags.target == "proposal" ? LogProbTarget::kProposal
                                              : LogProbTarget::kRepaired;
    return std::make_unique<RlStrategy>(base, o);
  }
  StrategyOptions so;
  so.seed = seed;
  auto s = MakeStrategy(method, so);
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", method.c_str(),
                 s.status().ToString().c_str());
    return nullptr;
  }
  return std::move(*s);
}

// One run of `strategy` on `problem` for `budget_s` seconds.
void Measure(const Problem& problem, Strategy& strategy, double budget_s,
             Run* run) {
  Budget budget;
  budget.time = absl::Seconds(budget_s);
  StopToken stop;
  const absl::Time start = absl::Now();
  auto r = strategy.Run(problem, budget, stop, [&](const Improvement& imp) {
    run->trace.emplace_back(absl::ToDoubleSeconds(absl::Now() - start),
                            imp.figures.quality);
  });
  if (!r.ok()) {
    run->error = r.status().ToString();
    return;
  }
  run->quality = r->quality;
  run->throughput = r->throughput_per_s;
  run->samples = r->samples;
  if (r->bound_s > 0 && problem.upper_bound_per_s() > 0) {
    run->bound_quality =
        std::min(1.0, 1.0 / r->bound_s / problem.upper_bound_per_s());
  }
}

// A CSV field without the separators the summary splits on.
std::string CsvField(std::string s) {
  for (char& ch : s) {
    if (ch == ',' || ch == '\n') ch = ';';
  }
  return s;
}

std::string CsvLine(const Run& run) {
  std::vector<std::string> tr;
  for (auto [t, q] : run.trace)
    tr.push_back(absl::StrFormat("%.3f:%.5f", t, q));
  return absl::StrFormat("%s,%s,%g,%d,%.6f,%.3f,%lld,%s,%s,%s", run.case_name,
                         run.method, run.budget_s, run.seed, run.quality,
                         run.throughput, static_cast<long long>(run.samples),
                         absl::StrJoin(tr, ";"), CsvField(run.error),
                         run.bound_quality > 0
                             ? absl::StrFormat("%.6f", run.bound_quality)
                             : std::string());
}

int Main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, &flags)) return 2;
  SetTorchThreads(1);  // measured in docs/policy.md
  std::shared_ptr<const Policy> pretrained;
  if (absl::StrContains(flags.methods, "rl")) {
    auto p = Policy::Load(flags.policy_dir);
    if (!p.ok()) {
      std::fprintf(stderr, "policy_benchmark: %s\n",
                   p.status().ToString().c_str());
      return 1;
    }
    pretrained = std::move(*p);
  }
  std::vector<double> budget_list;
  for (absl::string_view b : absl::StrSplit(flags.budgets, ',')) {
    double x;
    if (absl::SimpleAtod(b, &x)) budget_list.push_back(x);
  }
  std::FILE* csv_file =
      flags.csv.empty() ? nullptr : std::fopen(flags.csv.c_str(), "a");
  auto emit = [&](const Run& run) {
    const std::string line = CsvLine(run);
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    if (csv_file) {
      std::fprintf(csv_file, "%s\n", line.c_str());
      std::fflush(csv_file);
    }
  };
  for (const std::string& c :
       std::vector<std::string>(absl::StrSplit(flags.cases, ','))) {
    absl::StatusOr<Problem> problem = bench::LoadCase(flags.graphs, c);
    if (!problem.ok()) {
      std::fprintf(stderr, "%s: %s\n", c.c_str(),
                   problem.status().ToString().c_str());
      continue;
    }
    // A case without any valid placement: the proof, once.
    if (absl::Status proof = CheckFeasibility(*problem); !proof.ok()) {
      Run run;
      run.case_name = c;
      run.method = "proof";
      run.error = proof.ToString();
      emit(run);
      continue;
    }
    for (double budget_s : budget_list) {
      for (const std::string& method :
           std::vector<std::string>(absl::StrSplit(flags.methods, ','))) {
        for (int seed = 1; seed <= flags.seeds; ++seed) {
          // Deterministic: one seed says it all.
          if ((method == "constructive" || method == "exact") && seed > 1) {
            break;
          }
          std::unique_ptr<Strategy> strategy =
              MakeMethod(method, seed, flags, pretrained);
          if (strategy == nullptr) break;
          Run run;
          run.case_name = c;
          run.method = method;
          run.budget_s = budget_s;
          run.seed = seed;
          Measure(*problem, *strategy, budget_s, &run);
          emit(run);
        }
      }
    }
  }
  if (csv_file) std::fclose(csv_file);
  return 0;
}

}  // namespace
}  // namespace mcmpart::policy

int main(int argc, char** argv) { return mcmpart::policy::Main(argc, argv); }
