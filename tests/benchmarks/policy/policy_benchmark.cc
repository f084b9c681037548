// policy_benchmark: the learned policy against the classical strategies on
// the shared graphs, on equal wall-clock budgets (docs/benchmarks.md,
// "## Policy"). Its own command, never part of ctest.
//
//   policy_benchmark [--budgets=5,30] [--seeds=3] [--cases=bert_base/ring8,...]
//                    [--methods=rl,scratch,anneal,random,constructive]
//                    [--policy=DIR] [--graphs=DIR] [--csv=FILE]
//                    [--target=repaired|proposal] [--warm-start=0|1]
//                    [--rebalance=0|1]
//
// rl = the shipped pre-trained policy fine-tuned on the case; scratch = the
// same fine-tuning from a freshly initialised policy. Every run gets the
// same budget and one process at a time (2 cores: repairs use both).
// Prints one CSV row per run (with the improvement trace) and a summary.
#include <algorithm>
#include <cmath>
#include <cstdio>
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
#include "solver/graph.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"
#include "solver/problem.h"
#include "solver/strategy.h"

namespace mcmpart::policy {
namespace {

constexpr char kDefaultCases[] =
    "bert_base/ring8,resnet50/ring4,inception_v3/ring8,efficientnet_b0/ring4,"
    "mobilenet_v2/ring4,shufflenet_v2/ring8,regnet_y_400mf/ring8,"
    "googlenet/ring4";

struct Run {
  std::string case_name, method;
  double budget_s = 0;
  int seed = 0;
  double quality = 0, throughput = 0;
  int64_t samples = 0;
  std::string error;
  std::vector<std::pair<double, double>> trace;  // (seconds, quality)
};

int Main(int argc, char** argv) {
  std::string budgets = "5,30", cases = kDefaultCases,
              methods = "rl,scratch,anneal,random,constructive",
              policy_dir = DefaultPolicyDirectory() + "/default",
              graphs = MCMPART_SHARED_GRAPHS_DIR, csv, target = "repaired";
  int seeds = 3;
  // The committed tables measure the policy alone (docs/policy.md, "Warm
  // start"): --warm-start=1 measures what an rl request gets.
  bool warm_start = false;
  bool rebalance = true;
  for (int i = 1; i < argc; ++i) {
    std::vector<std::string> kv =
        absl::StrSplit(argv[i], absl::MaxSplits('=', 1));
    const std::string k = kv[0];
    const std::string v = kv.size() > 1 ? kv[1] : "";
    if (k == "--budgets")
      budgets = v;
    else if (k == "--cases")
      cases = v;
    else if (k == "--methods")
      methods = v;
    else if (k == "--policy")
      policy_dir = v;
    else if (k == "--graphs")
      graphs = v;
    else if (k == "--csv")
      csv = v;
    else if (k == "--target")
      target = v;
    else if (k == "--warm-start")
      warm_start = v == "1";
    else if (k == "--rebalance")
      rebalance = v == "1";
    else if (k == "--seeds" && absl::SimpleAtoi(v, &seeds)) {
    } else {
      std::fprintf(stderr, "policy_benchmark: bad argument %s\n", argv[i]);
      return 2;
    }
  }
  SetTorchThreads(1);  // measured in docs/policy.md
  std::shared_ptr<const Policy> pretrained;
  if (absl::StrContains(methods, "rl")) {
    auto p = Policy::Load(policy_dir);
    if (!p.ok()) {
      std::fprintf(stderr, "policy_benchmark: %s\n",
                   p.status().ToString().c_str());
      return 1;
    }
    pretrained = std::move(*p);
  }
  std::vector<double> budget_list;
  for (absl::string_view b : absl::StrSplit(budgets, ',')) {
    double x;
    if (absl::SimpleAtod(b, &x)) budget_list.push_back(x);
  }
  std::FILE* csv_file = csv.empty() ? nullptr : std::fopen(csv.c_str(), "a");
  std::vector<Run> runs;
  for (absl::string_view c : absl::StrSplit(cases, ',')) {
    std::vector<std::string> gh = absl::StrSplit(c, '/');
    auto proto = LoadGraphFile(absl::StrCat(graphs, "/", gh[0], ".onnx"));
    if (!proto.ok()) {
      std::fprintf(stderr, "%s: %s\n", gh[0].c_str(),
                   proto.status().ToString().c_str());
      continue;
    }
    auto graph = Graph::FromProto(*proto);
    auto hw = PresetHardware(gh[1]);
    if (!graph.ok() || !hw.ok()) continue;
    auto problem =
        Problem::Create(std::make_shared<const Graph>(*std::move(graph)), *hw);
    if (!problem.ok()) continue;
    for (double budget_s : budget_list) {
      for (absl::string_view m : absl::StrSplit(methods, ',')) {
        const std::string method(m);
        for (int seed = 1; seed <= seeds; ++seed) {
          if (method == "constructive" && seed > 1) break;  // deterministic
          Run run;
          run.case_name = std::string(c);
          run.method = method;
          run.budget_s = budget_s;
          run.seed = seed;
          std::unique_ptr<Strategy> strategy;
          if (method == "rl" || method == "scratch") {
            std::shared_ptr<const Policy> base = pretrained;
            if (method == "scratch")
              base = std::move(*Policy::Create(PolicyConfig{}, seed));
            FineTuneOptions o;
            o.warm_start = warm_start;
            o.ppo.rebalance = rebalance;
            o.ppo.seed = seed;
            o.ppo.target = target == "proposal" ? LogProbTarget::kProposal
                                                : LogProbTarget::kRepaired;
            strategy = std::make_unique<RlStrategy>(base, o);
          } else {
            StrategyOptions so;
            so.seed = seed;
            auto s = MakeStrategy(method, so);
            if (!s.ok()) {
              std::fprintf(stderr, "%s: %s\n", method.c_str(),
                           s.status().ToString().c_str());
              break;
            }
            strategy = std::move(*s);
          }
          Budget budget;
          budget.time = absl::Seconds(budget_s);
          StopToken stop;
          const absl::Time start = absl::Now();
          auto r = strategy->Run(
              *problem, budget, stop, [&](const Improvement& imp) {
                run.trace.emplace_back(
                    absl::ToDoubleSeconds(absl::Now() - start),
                    imp.figures.quality);
              });
          if (r.ok()) {
            run.quality = r->quality;
            run.throughput = r->throughput_per_s;
            run.samples = r->samples;
          } else {
            run.error = r.status().ToString();
          }
          std::vector<std::string> tr;
          for (auto [t, q] : run.trace)
            tr.push_back(absl::StrFormat("%.3f:%.5f", t, q));
          std::string line = absl::StrFormat(
              "%s,%s,%g,%d,%.6f,%.3f,%lld,%s,%s", run.case_name, run.method,
              run.budget_s, run.seed, run.quality, run.throughput,
              (long long)run.samples, absl::StrJoin(tr, ";"), run.error);
          std::printf("%s\n", line.c_str());
          std::fflush(stdout);
          if (csv_file) {
            std::fprintf(csv_file, "%s\n", line.c_str());
            std::fflush(csv_file);
          }
          runs.push_back(std::move(run));
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
