// mcmpart policies, and the Evaluate and Repair calls behind `evaluate` and
// `repair` with --server.
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/common.h"
#include "client/connection.h"
#include "client/exit_codes.h"
#include "solver/graph_io.h"

namespace mcmpart::cli {

int RunPolicies(const std::vector<std::string>& argv) {
  const std::string help = absl::StrCat(
      "Usage: mcmpart policies [--json]\n\n"
      "Lists the pre-trained policies the server keeps warm, and its "
      "strategies.\n",
      kRemoteHelp, "\n", kRemoteExitHelp);
  std::vector<FlagSpec> specs = RemoteFlags();
  specs.push_back({"json", false});
  specs.push_back({"help", false, false, "h"});
  absl::StatusOr<Args> args = Args::Parse(argv, specs);
  if (!args.ok()) return Usage("policies", args.status().message(), help);
  if (args->Has("help")) {
    std::cout << help;
    return kExitOk;
  }
  absl::StatusOr<Connection> c = Connect(*args);
  if (!c.ok()) return Fail("policies", c.status());
  grpc::ClientContext ctx;
  SetDeadline(ctx, CallTimeout(*args, absl::ZeroDuration()));
  v1::ListPoliciesResponse response;
  grpc::Status s = c->stub->ListPolicies(&ctx, {}, &response);
  if (!s.ok()) return FailRpc("policies", *c, s, Expired(ctx));
  if (args->Has("json")) {
    std::cout << ToJson(response) << "\n";
    return kExitOk;
  }
  std::cout << "policies:\n";
  for (const v1::PolicyInfo& p : response.policies()) {
    std::cout << absl::StrFormat("  %-16s %s%s\n", p.name(),
                                 p.is_default() ? "(default) " : "",
                                 p.description());
  }
  if (response.policies().empty()) std::cout << "  (none loaded)\n";
  std::cout << "strategies:";
  for (int i = 0; i < response.strategies_size(); ++i) {
    std::cout << " " << response.strategies(i) << (i == 0 ? " (default)" : "");
  }
  std::cout << "\n";
  return kExitOk;
}

std::optional<v1::Evaluation> EvaluateOnServer(const Args& args,
                                               const v1::ProblemSpec& spec,
                                               const v1::Placement& placement,
                                               int* exit_code) {
  v1::EvaluateRequest request;
  *request.mutable_problem() = spec;
  *request.mutable_placement() = placement;
  absl::StatusOr<Connection> c = Connect(args);
  if (!c.ok()) {
    *exit_code = Fail("evaluate", c.status());
    return std::nullopt;
  }
  grpc::ClientContext ctx;
  SetDeadline(ctx, CallTimeout(args, absl::ZeroDuration()));
  v1::Evaluation e;
  grpc::Status s = c->stub->Evaluate(&ctx, request, &e);
  if (!s.ok()) {
    *exit_code = FailRpc("evaluate", *c, s, Expired(ctx));
    return std::nullopt;
  }
  return e;
}

std::optional<v1::RepairReport> RepairOnServer(const Args& args,
                                               const v1::ProblemSpec& spec,
                                               const v1::Placement& candidate,
                                               absl::Duration time_limit,
                                               int* exit_code) {
  v1::RepairRequest request;
  *request.mutable_problem() = spec;
  *request.mutable_candidate() = candidate;
  request.set_time_limit_s(absl::ToDoubleSeconds(time_limit));
  absl::StatusOr<Connection> c = Connect(args);
  if (!c.ok()) {
    *exit_code = Fail("repair", c.status());
    return std::nullopt;
  }
  grpc::ClientContext ctx;
  SetDeadline(ctx, CallTimeout(args, time_limit));
  v1::RepairReport report;
  grpc::Status s = c->stub->Repair(&ctx, request, &report);
  if (!s.ok()) {
    *exit_code = FailRpc("repair", *c, s, Expired(ctx));
    return std::nullopt;
  }
  return report;
}

}  // namespace mcmpart::cli
