// Writes the seed corpora of the fuzz harnesses from the bundled models, so
// that no generated binary is committed:
//   OUT/graph_io/      graphs as JSON and binary protobuf (imported from
//                      small bundled ONNX models), preset hardware as JSON,
//                      placements as JSON (with the extra keys placement
//                      files carry)
//   OUT/problem_spec/  serialized mcmpart.v1.ProblemSpec messages: graph
//                      messages and ONNX bytes, presets (with chip counts)
//                      and hardware messages, with and without constraints
// The ONNX harness reads tests/data/graphs itself. Usage:
//   fuzz_make_seeds DATA_DIR OUT
// (DATA_DIR: tests/data). Exits 1 when a bundled file is missing.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "mcmpart/v1/partitioner.pb.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"

namespace mcmpart {
namespace {

// Small models: each seed stays a few tens of KB.
const char* const kModels[] = {"alexnet", "resnet18", "squeezenet1_1",
                               "unet",    "vgg16",    "dlrm_criteo"};

bool Write(const std::string& path, const std::string& bytes) {
  absl::Status s = WriteFile(path, bytes);
  if (!s.ok())
    std::fprintf(stderr, "fuzz_make_seeds: %s\n", s.ToString().c_str());
  return s.ok();
}

// Node names of `g` in contiguous blocks over `chips` chips.
v1::Placement Blocks(const v1::Graph& g, int chips) {
  v1::Placement p;
  const int n = g.nodes_size();
  for (int v = 0; v < n; ++v) {
    (*p.mutable_assignment())[g.nodes(v).name()] = v * chips / n;
  }
  return p;
}

int Run(const std::string& data, const std::string& out) {
  namespace fs = std::filesystem;
  const std::string io = out + "/graph_io";
  const std::string spec_dir = out + "/problem_spec";
  fs::create_directories(io);
  fs::create_directories(spec_dir);
  bool ok = true;

  absl::StatusOr<v1::Graph> worked = LoadGraphFile(data + "/worked/graph.json");
  absl::StatusOr<v1::Hardware> tiny3 =
      LoadHardwareFile(data + "/worked/hardware.json");
  absl::StatusOr<std::string> worked_placement =
      ReadFile(data + "/worked/placement.json");
  if (!worked.ok() || !tiny3.ok() || !worked_placement.ok()) {
    std::fprintf(stderr, "fuzz_make_seeds: %s/worked is incomplete\n",
                 data.c_str());
    return 1;
  }
  ok &= Write(io + "/worked_graph.json", ToJson(*worked));
  ok &= Write(io + "/worked_graph.pb", worked->SerializeAsString());
  ok &= Write(io + "/worked_hardware.json", ToJson(*tiny3));
  ok &= Write(io + "/worked_placement.json", *worked_placement);
  ok &= Write(io + "/worked_placement_report.json",
              absl::StrCat(R"({"evaluation": {"valid": true}, )",
                           worked_placement->substr(1)));
  for (const std::string& preset : PresetNames()) {
    absl::StatusOr<v1::Hardware> hw = PresetHardware(preset);
    if (!hw.ok()) return 1;
    ok &= Write(io + "/" + preset + ".json", ToJson(*hw, /*pretty=*/false));
  }
  v1::Hardware constrained = *tiny3;
  constrained.mutable_constraints()->set_max_hops(2);
  constrained.mutable_constraints()->set_use_all_chips(true);
  (*constrained.mutable_constraints()->mutable_pins())["a"] = 0;
  constrained.mutable_constraints()->add_colocation_groups()->add_nodes("b");
  constrained.mutable_constraints()->mutable_colocation_groups(0)->add_nodes(
      "d");
  ok &= Write(io + "/tiny3_constrained.json", ToJson(constrained));

  // ProblemSpecs: the worked example as messages, with and without
  // constraints, and on a preset.
  v1::ProblemSpec spec;
  *spec.mutable_graph() = *worked;
  *spec.mutable_hardware() = *tiny3;
  ok &= Write(spec_dir + "/worked_tiny3.pb", spec.SerializeAsString());
  *spec.mutable_constraints() = constrained.constraints();
  ok &= Write(spec_dir + "/worked_tiny3_constrained.pb",
              spec.SerializeAsString());
  spec.Clear();
  *spec.mutable_graph() = *worked;
  spec.set_preset("ring4");
  spec.set_chips(2);
  ok &= Write(spec_dir + "/worked_ring4_2chips.pb", spec.SerializeAsString());

  for (const char* model : kModels) {
    const std::string path = absl::StrCat(data, "/graphs/", model, ".onnx");
    absl::StatusOr<std::string> onnx = ReadFile(path);
    absl::StatusOr<v1::Graph> g = LoadGraphFile(path);
    if (!onnx.ok() || !g.ok()) {
      std::fprintf(stderr, "fuzz_make_seeds: %s cannot be read\n",
                   path.c_str());
      return 1;
    }
    ok &= Write(absl::StrCat(io, "/", model, ".json"),
                ToJson(*g, /*pretty=*/false));
    ok &= Write(absl::StrCat(io, "/", model, ".pb"), g->SerializeAsString());
    ok &= Write(absl::StrCat(io, "/", model, "_ring4_placement.json"),
                ToJson(Blocks(*g, 4), /*pretty=*/false));

    spec.Clear();
    spec.set_onnx_model(*onnx);
    spec.set_preset("ring4");
    ok &= Write(absl::StrCat(spec_dir, "/", model, "_onnx_ring4.pb"),
                spec.SerializeAsString());
    spec.mutable_onnx()->set_default_dim(2);
    (*spec.mutable_onnx()->mutable_dims())["batch"] = 4;
    spec.set_preset("ring8");
    spec.set_chips(6);
    spec.mutable_constraints()->set_max_hops(2);
    (*spec.mutable_constraints()->mutable_pins())[g->nodes(0).name()] = 0;
    ok &= Write(absl::StrCat(spec_dir, "/", model, "_onnx_ring8_6chips.pb"),
                spec.SerializeAsString());
    spec.Clear();
    *spec.mutable_graph() = *g;
    *spec.mutable_hardware() = *PresetHardware("ring16");
    spec.mutable_constraints()->set_use_all_chips(true);
    ok &= Write(absl::StrCat(spec_dir, "/", model, "_graph_ring16.pb"),
                spec.SerializeAsString());
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace mcmpart

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fuzz_make_seeds DATA_DIR OUT\n");
    return 2;
  }
  return mcmpart::Run(argv[1], argv[2]);
}
