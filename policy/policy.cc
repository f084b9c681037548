#include "policy/policy.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "policy/features.h"
#include "policy/policy_impl.h"

namespace mcmpart::policy {
namespace {

namespace fs = std::filesystem;

constexpr char kMetaFile[] = "policy.meta";
constexpr char kModelFile[] = "model.pt";
constexpr char kMetaMagic[] = "mcmpart-policy 1";

// torch::manual_seed sets a process-wide generator; serialising
// seed-and-construct keeps concurrent Creates deterministic.
std::mutex& InitMutex() {
  static std::mutex* m = new std::mutex;
  return *m;
}

std::string OneLine(std::string s) {
  for (char& ch : s) {
    if (ch == '\n' || ch == '\r') ch = ' ';
  }
  return s;
}

std::string MetadataToText(const PolicyMetadata& m) {
  const PolicyConfig& c = m.config;
  std::ostringstream out;
  out << kMetaMagic << "\n"
      << "feature_version: " << m.feature_version << "\n"
      << "op_vocabulary: " << c.op_vocabulary << "\n"
      << "op_embedding: " << c.op_embedding << "\n"
      << "hidden: " << c.hidden << "\n"
      << "gnn_layers: " << c.gnn_layers << "\n"
      << "attention_layers: " << c.attention_layers << "\n"
      << "heads: " << c.heads << "\n"
      << "window: " << c.window << "\n"
      << "max_chips: " << c.max_chips << "\n"
      << "chip_embedding: " << c.chip_embedding << "\n"
      << "steps: " << m.steps << "\n"
      << "seed: " << m.seed << "\n"
      << "date: " << OneLine(m.date) << "\n"
      << "corpus: " << OneLine(m.corpus) << "\n"
      << "notes: " << OneLine(m.notes) << "\n";
  return out.str();
}

absl::StatusOr<PolicyMetadata> MetadataFromText(const std::string& text,
                                                const std::string& path) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (lines.empty() || absl::StripAsciiWhitespace(lines[0]) != kMetaMagic) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a policy metadata file (first line must be '",
                     kMetaMagic, "')"));
  }
  std::map<std::string, std::string> kv;
  for (size_t i = 1; i < lines.size(); ++i) {
    absl::string_view line = absl::StripAsciiWhitespace(lines[i]);
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", i + 1, ": expected 'key: value'"));
    }
    kv[std::string(absl::StripAsciiWhitespace(line.substr(0, colon)))] =
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  PolicyMetadata m;
  auto get_int = [&](const char* key, int* out) -> absl::Status {
    auto it = kv.find(key);
    if (it == kv.end() || !absl::SimpleAtoi(it->second, out)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": missing or non-integer '", key, "'"));
    }
    return absl::OkStatus();
  };
  PolicyConfig& c = m.config;
  for (auto [key, field] : std::initializer_list<std::pair<const char*, int*>>{
           {"feature_version", &m.feature_version},
           {"op_vocabulary", &c.op_vocabulary},
           {"op_embedding", &c.op_embedding},
           {"hidden", &c.hidden},
           {"gnn_layers", &c.gnn_layers},
           {"attention_layers", &c.attention_layers},
           {"heads", &c.heads},
           {"window", &c.window},
           {"max_chips", &c.max_chips},
           {"chip_embedding", &c.chip_embedding}}) {
    if (absl::Status s = get_int(key, field); !s.ok()) return s;
  }
  if (auto it = kv.find("steps"); it != kv.end()) {
    if (!absl::SimpleAtoi(it->second, &m.steps)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": non-integer 'steps'"));
    }
  }
  if (auto it = kv.find("seed"); it != kv.end()) {
    if (!absl::SimpleAtoi(it->second, &m.seed)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": non-integer 'seed'"));
    }
  }
  m.date = kv["date"];
  m.corpus = kv["corpus"];
  m.notes = kv["notes"];
  if (absl::Status s = ValidateConfig(c); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  return m;
}

absl::Status WriteAtomically(const fs::path& path, const std::string& data) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot write ", tmp.string()));
    }
    out << data;
    if (!out.good()) {
      return absl::InternalError(absl::StrCat("write failed: ", tmp.string()));
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("rename ", tmp.string(), " -> ",
                                            path.string(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> ForwardProbabilities(const Policy::Impl& impl,
                                                   const Problem& problem) {
  absl::StatusOr<GraphTensors> g =
      PrepareProblem(impl.metadata.config, problem);
  if (!g.ok()) return g.status();
  torch::Tensor probs;
  absl::Status s = GuardTorch("policy forward", [&] {
    torch::NoGradGuard no_grad;
    // forward() is not const in the module API, but it only reads the
    // parameters, which is safe from many threads.
    probs =
        torch::softmax(const_cast<PolicyNetImpl&>(*impl.net).forward(*g), 1);
  });
  if (!s.ok()) return s;
  return probs;
}

}  // namespace

absl::Status ValidateConfig(const PolicyConfig& c) {
  auto range = [](const char* name, int v, int lo, int hi) -> absl::Status {
    if (v < lo || v > hi) {
      return absl::InvalidArgumentError(absl::StrCat(
          "policy config ", name, " is ", v, "; must be in ", lo, "..", hi));
    }
    return absl::OkStatus();
  };
  for (absl::Status s :
       {range("op_vocabulary", c.op_vocabulary, 1, 1 << 20),
        range("op_embedding", c.op_embedding, 1, 1024),
        range("hidden", c.hidden, 1, 4096),
        range("gnn_layers", c.gnn_layers, 0, 64),
        range("attention_layers", c.attention_layers, 0, 64),
        range("heads", c.heads, 1, 64), range("window", c.window, 1, 1 << 16),
        range("max_chips", c.max_chips, 1, kMaxChips),
        range("chip_embedding", c.chip_embedding, 1, 1024)}) {
    if (!s.ok()) return s;
  }
  if (c.hidden % c.heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy config hidden (", c.hidden,
                     ") must be a multiple of heads (", c.heads, ")"));
  }
  return absl::OkStatus();
}

void SetTorchThreads(int n) {
  n = std::max(1, n);
  torch::set_num_threads(n);
  // Debian's LibTorch calls the system's BLAS, and OpenBLAS keeps its own
  // thread pool, which torch::set_num_threads does not size: its idle
  // threads spin in sched_yield and take a core from the repair threads.
  // Looked up at run time because the BLAS is whatever the system selected
  // (the reference BLAS has no pool). docs/policy.md, "Threads".
  using SetBlasThreads = void (*)(int);
  if (auto set_blas = reinterpret_cast<SetBlasThreads>(
          dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set_blas(n);
  }
}

std::string UtcNowIso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

absl::StatusOr<GraphTensors> PrepareProblem(const PolicyConfig& config,
                                            const Problem& problem) {
  if (problem.num_chips() > config.max_chips) {
    return absl::InvalidArgumentError(
        absl::StrCat("the problem has ", problem.num_chips(),
                     " chips; this policy serves at most ", config.max_chips));
  }
  absl::StatusOr<GraphFeatures> f =
      ExtractFeatures(problem, config.op_vocabulary);
  if (!f.ok()) return f.status();
  GraphTensors g;
  absl::Status s = GuardTorch("feature tensors", [&] { g = ToTensors(*f); });
  if (!s.ok()) return s;
  return g;
}

Policy::Policy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Policy::~Policy() = default;

absl::StatusOr<std::unique_ptr<Policy>> Policy::Create(
    const PolicyConfig& config, uint64_t seed) {
  if (absl::Status s = ValidateConfig(config); !s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  impl->metadata.config = config;
  impl->metadata.feature_version = kFeatureVersion;
  impl->metadata.seed = seed;
  impl->metadata.date = UtcNowIso8601();
  absl::Status s = GuardTorch("policy init", [&] {
    std::lock_guard<std::mutex> lock(InitMutex());
    torch::manual_seed(seed);
    impl->net = PolicyNet(config);
  });
  if (!s.ok()) return s;
  return std::unique_ptr<Policy>(new Policy(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<Policy>> Policy::Load(const std::string& dir) {
  const fs::path meta_path = fs::path(dir) / kMetaFile;
  const fs::path model_path = fs::path(dir) / kModelFile;
  std::error_code ec;
  for (const fs::path& p : {meta_path, model_path}) {
    if (!fs::is_regular_file(p, ec)) {
      return absl::NotFoundError(
          absl::StrCat("policy checkpoint file not found: ", p.string()));
    }
  }
  std::ifstream in(meta_path);
  std::stringstream buf;
  buf << in.rdbuf();
  if (buf.str().size() > (1 << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat(meta_path.string(), ": larger than 1 MiB"));
  }
  absl::StatusOr<PolicyMetadata> meta =
      MetadataFromText(buf.str(), meta_path.string());
  if (!meta.ok()) return meta.status();
  if (meta->feature_version != kFeatureVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        dir, ": checkpoint uses feature version ", meta->feature_version,
        "; this build computes feature version ", kFeatureVersion,
        " (retrain with mcmpart-train)"));
  }
  auto impl = std::make_unique<Impl>();
  impl->metadata = *meta;
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
  absl::Status s = GuardTorch("policy init", [&] {
    impl->net = PolicyNet(meta->config);
    for (const auto& item : impl->net->named_parameters()) {
      expected.emplace_back(item.key(), item.value().sizes().vec());
    }
  });
  if (!s.ok()) return s;
  try {
    torch::load(impl->net, model_path.string());
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat(
        model_path.string(), " does not match the architecture in ",
        meta_path.string(), ": ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::DataLossError(
        absl::StrCat(model_path.string(), ": ", e.what()));
  }
  // torch::load replaces a parameter whose stored shape differs instead of
  // failing, so the shapes are checked here.
  auto params = impl->net->named_parameters();
  for (const auto& [name, shape] : expected) {
    const torch::Tensor* t = params.find(name);
    if (t == nullptr || t->sizes().vec() != shape) {
      std::string got = t == nullptr ? "missing" : "";
      if (t != nullptr) {
        for (int64_t d : t->sizes())
          absl::StrAppend(&got, got.empty() ? "" : "x", d);
      }
      std::string want;
      for (int64_t d : shape)
        absl::StrAppend(&want, want.empty() ? "" : "x", d);
      return absl::DataLossError(absl::StrCat(
          model_path.string(), ": tensor '", name, "' has shape ", got,
          " but the architecture in ", meta_path.string(), " needs ", want));
    }
  }
  impl->net->eval();
  return std::unique_ptr<Policy>(new Policy(std::move(impl)));
}

absl::Status Policy::Save(const std::string& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", dir, ": ", ec.message()));
  }
  const fs::path model_path = fs::path(dir) / kModelFile;
  fs::path tmp = model_path;
  tmp += ".tmp";
  absl::Status s = GuardTorch("saving the policy",
                              [&] { torch::save(impl_->net, tmp.string()); });
  if (!s.ok()) return s;
  fs::rename(tmp, model_path, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("rename to ", model_path.string(), ": ", ec.message()));
  }
  return WriteAtomically(fs::path(dir) / kMetaFile,
                         MetadataToText(impl_->metadata));
}

std::unique_ptr<Policy> Policy::Clone() const {
  auto impl = std::make_unique<Impl>();
  impl->metadata = impl_->metadata;
  torch::NoGradGuard no_grad;
  impl->net = PolicyNet(impl_->metadata.config);
  auto dst = impl->net->named_parameters();
  for (const auto& item : impl_->net->named_parameters()) {
    dst[item.key()].copy_(item.value());
  }
  return std::unique_ptr<Policy>(new Policy(std::move(impl)));
}

const PolicyMetadata& Policy::metadata() const { return impl_->metadata; }

std::unique_ptr<Policy> Policy::WithMetadataText(
    const std::string& corpus, int64_t steps, const std::string& notes) const {
  std::unique_ptr<Policy> copy = Clone();
  copy->impl_->metadata.corpus = corpus;
  copy->impl_->metadata.steps = steps;
  copy->impl_->metadata.notes = notes;
  copy->impl_->metadata.date = UtcNowIso8601();
  return copy;
}

absl::StatusOr<std::vector<float>> Policy::Probabilities(
    const Problem& problem) const {
  absl::StatusOr<torch::Tensor> probs = ForwardProbabilities(*impl_, problem);
  if (!probs.ok()) return probs.status();
  torch::Tensor p = probs->contiguous();
  return std::vector<float>(p.data_ptr<float>(),
                            p.data_ptr<float>() + p.numel());
}

absl::StatusOr<Assignment> Policy::Greedy(const Problem& problem) const {
  absl::StatusOr<torch::Tensor> probs = ForwardProbabilities(*impl_, problem);
  if (!probs.ok()) return probs.status();
  torch::Tensor arg = probs->argmax(1).contiguous();
  const int64_t* a = arg.data_ptr<int64_t>();
  return Assignment(a, a + arg.numel());
}

}  // namespace mcmpart::policy
