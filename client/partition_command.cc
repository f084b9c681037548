// mcmpart partition: one streamed search on the server.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/commands.h"
#include "client/common.h"
#include "client/connection.h"
#include "client/exit_codes.h"
#include "client/progress.h"
#include "client/search_output.h"

namespace mcmpart::cli {

int RunPartition(const std::vector<std::string>& argv) {
  const std::string help = absl::StrCat(
      "Usage: mcmpart partition GRAPH (--preset NAME [--chips N] | --hardware "
      "FILE)\n"
      "         [--server ADDR] [--strategy NAME] [--time-budget 30s]\n"
      "         [--samples N] [--seed N] [--pin NODE=CHIP ...] [--out FILE] "
      "[--json]\n\n"
      "Asks mcmpart-server for the best placement it can find within the "
      "budget,\nshowing progress as improvements stream in. Ctrl-C stops the "
      "search on the\nserver and still writes the best placement so far.\n",
      kGraphHelp, kHardwareHelp, kSearchHelp, kRemoteHelp, "\n",
      kRemoteExitHelp);
  absl::StatusOr<Args> args = Args::Parse(
      argv, ConcatFlags(ConcatFlags(ProblemFlags(), SearchFlagSpecs()),
                        RemoteFlags()));
  if (!args.ok()) return Usage("partition", args.status().message(), help);
  if (args->Has("help")) {
    std::cout << help;
    return kExitOk;
  }
  if (args->positional().size() != 1) {
    return Usage("partition", "expected exactly one GRAPH", help);
  }
  absl::StatusOr<Loaded> loaded = LoadProblem(*args, args->positional()[0]);
  if (!loaded.ok()) return Fail("partition", loaded.status());
  absl::StatusOr<SearchFlags> flags = ParseSearchFlags(*args, loaded->spec);
  if (!flags.ok()) return Fail("partition", flags.status());
  absl::StatusOr<Connection> c = Connect(*args);
  if (!c.ok()) return Fail("partition", c.status());

  grpc::ClientContext ctx;
  SetDeadline(ctx, CallTimeout(*args, flags->budget));
  auto reader = c->stub->Partition(&ctx, flags->request);
  Progress progress(isatty(STDERR_FILENO) == 1,
                    absl::ToDoubleSeconds(flags->budget));
  StreamOutcome out = ReadStream(ctx, *reader, progress);
  return FinishStream("partition", *c, *args, out, loaded->problem.get(),
                      flags->request.seed(), /*detach_on_ctrl_c=*/false);
}

}  // namespace mcmpart::cli
