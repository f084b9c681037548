// sample_rate_benchmark: how many valid (decoded) samples per second the
// rl strategy's PPO loop makes, per case and decoding, and where a step's
// time goes (docs/policy.md, "Decoding"). Its own command, never part of
// ctest.
//
//   sample_rate_benchmark [--cases=dlrm_criteo/ring8/h8,...] [--seconds=5]
//                         [--decode=split,repair] [--batch=K]
//                         [--max-batch=K] [--lr=X]
//                         [--policy=DIR|scratch] [--graphs=DIR] [--trace]
//
// A case is GRAPH/PRESET[/hN] (tests/benchmarks/cases.h).
// Runs the fine-tuning loop's PPO steps (FineTuneOptions' defaults: a batch
// from 32 growing with the update's cost; --batch=K fixes it at K) from the
// shipped policy for --seconds each and prints one CSV row per case and
// decoding:
//   case,decode,mean_batch,steps,candidates,valid,split,valid_per_s,
//   sample_s,repair_s,learn_s,best_quality
// --max-batch and --lr override FineTuneOptions' batch limit and learning
// rate; --policy=scratch starts from a freshly initialised policy (seed 1);
// --trace also prints every step to stderr (seconds, batch, entropy, the
// batch's mean and best quality, the best so far), to see whether and how
// fast the policy learns on a case.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "policy/finetune.h"
#include "policy/policy.h"
#include "policy/registry.h"
#include "solver/problem.h"
#include "tests/benchmarks/cases.h"

namespace mcmpart::policy {
namespace {

constexpr char kDefaultCases[] =
    "dlrm_criteo/ring8/h8,moe_e8/ring16/h2,moe_e8/ring16/h16,unet/ring8/h8,"
    "googlenet/ring8/h1,inception_v3/ring8/h1";

constexpr char kUsage[] =
    "usage: sample_rate_benchmark [--cases=GRAPH/PRESET[/hN],...] "
    "[--seconds=5]\n"
    "         [--decode=split,repair] [--batch=K] [--max-batch=K] [--lr=X]\n"
    "         [--policy=DIR|scratch] [--graphs=DIR] [--overlap=0|1] [--trace]\n"
    "docs/policy.md (\"Decoding\") has the commands behind its table.\n";

int Main(int argc, char** argv) {
  std::string cases = kDefaultCases, decodes = "split,repair",
              policy_dir = DefaultPolicyDirectory() + "/default",
              graphs = MCMPART_SHARED_GRAPHS_DIR;
  double seconds = 5;
  int batch = 0;
  bool trace = false;
  double lr = 0;
  int max_batch = -1;
  int overlap = -1;  // -1: FineTuneOptions' default
  for (int i = 1; i < argc; ++i) {
    std::vector<std::string> kv =
        absl::StrSplit(argv[i], absl::MaxSplits('=', 1));
    const std::string& k = kv[0];
    const std::string v = kv.size() > 1 ? kv[1] : "";
    bool ok = true;
    if (k == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (k == "--cases") {
      cases = v;
    } else if (k == "--decode") {
      decodes = v;
    } else if (k == "--policy") {
      policy_dir = v;
    } else if (k == "--graphs") {
      graphs = v;
    } else if (k == "--seconds") {
      ok = absl::SimpleAtod(v, &seconds) && seconds > 0;
    } else if (k == "--batch") {
      ok = absl::SimpleAtoi(v, &batch) && batch >= 2;
    } else if (k == "--lr") {
      ok = absl::SimpleAtod(v, &lr) && lr > 0;
    } else if (k == "--max-batch") {
      ok = absl::SimpleAtoi(v, &max_batch) && max_batch >= 0;
    } else if (k == "--overlap") {
      ok = (v == "0" || v == "1") && absl::SimpleAtoi(v, &overlap);
    } else if (k == "--trace") {
      trace = true;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "sample_rate_benchmark: bad argument %s\n%s",
                   argv[i], kUsage);
      return 2;
    }
  }
  SetTorchThreads(1);  // as the server runs it (docs/policy.md)
  absl::StatusOr<std::unique_ptr<Policy>> base =
      policy_dir == "scratch" ? Policy::Create(PolicyConfig{}, 1)
                              : Policy::Load(policy_dir);
  if (!base.ok()) {
    std::fprintf(stderr, "sample_rate_benchmark: %s\n",
                 base.status().ToString().c_str());
    return 1;
  }
  std::printf(
      "case,decode,mean_batch,steps,candidates,valid,split,valid_per_s,sample_"
      "s,"
      "repair_s,learn_s,best_quality\n");
  for (const std::string& name :
       std::vector<std::string>(absl::StrSplit(cases, ','))) {
    absl::StatusOr<Problem> problem = bench::LoadCase(graphs, name);
    if (!problem.ok()) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(),
                   problem.status().ToString().c_str());
      continue;
    }
    for (const std::string& d :
         std::vector<std::string>(absl::StrSplit(decodes, ','))) {
      FineTuneOptions ft;
      ft.ppo.seed = 1;
      if (batch > 0) {
        ft.ppo.batch = batch;
        ft.ppo.max_batch = 0;
      }
      if (lr > 0) ft.ppo.learning_rate = lr;
      if (max_batch >= 0) ft.ppo.max_batch = max_batch;
      if (overlap >= 0) ft.ppo.overlap = overlap == 1;
      ft.ppo.decode = d == "repair" ? Decode::kRepair : Decode::kSplit;
      auto trainer = PpoTrainer::Create((*base)->Clone(), ft.ppo);
      if (!trainer.ok()) {
        std::fprintf(stderr, "%s\n", trainer.status().ToString().c_str());
        return 1;
      }
      int steps = 0;
      int64_t candidates = 0, valid = 0, split = 0, batches = 0;
      double sample_s = 0, repair_s = 0, learn_s = 0, best = 0;
      const absl::Time start = absl::Now();
      const absl::Time deadline = start + absl::Seconds(seconds);
      std::string error;
      while (absl::Now() < deadline) {
        absl::StatusOr<PpoStepStats> st =
            (*trainer)->Step(*problem, nullptr, deadline);
        if (!st.ok()) {
          error = st.status().ToString();
          break;
        }
        ++steps;
        candidates += st->candidates;
        batches += st->batch;
        valid += st->valid;
        split += st->split;
        sample_s += absl::ToDoubleSeconds(st->sample_time);
        repair_s += absl::ToDoubleSeconds(st->repair_time);
        learn_s += absl::ToDoubleSeconds(st->learn_time);
        if (st->best_quality > best) best = st->best_quality;
        if (trace) {
          std::fprintf(stderr,
                       "%s,%s,step %d,%.2f s,batch %d,entropy %.4f,mean %.4f,"
                       "best %.5f,so far %.5f,sample %.1f ms,repair %.1f ms,"
                       "learn %.1f ms\n",
                       name.c_str(), d.c_str(), steps,
                       absl::ToDoubleSeconds(absl::Now() - start), st->batch,
                       st->entropy, st->mean_quality, st->best_quality, best,
                       absl::ToDoubleMilliseconds(st->sample_time),
                       absl::ToDoubleMilliseconds(st->repair_time),
                       absl::ToDoubleMilliseconds(st->learn_time));
        }
        if (st->cancelled) break;
      }
      const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
      std::printf("%s,%s,%.0f,%d,%lld,%lld,%lld,%.1f,%.3f,%.3f,%.3f,%.4f%s%s\n",
                  name.c_str(), d.c_str(),
                  static_cast<double>(batches) / std::max(steps, 1), steps,
                  static_cast<long long>(candidates),
                  static_cast<long long>(valid), static_cast<long long>(split),
                  valid / elapsed, sample_s, repair_s, learn_s, best,
                  error.empty() ? "" : ",", error.c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace
}  // namespace mcmpart::policy

int main(int argc, char** argv) { return mcmpart::policy::Main(argc, argv); }
