#include "client/connection.h"

#include <grpc/support/log.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/exit_codes.h"
#include "solver/graph_io.h"

namespace mcmpart::cli {

const char kRemoteHelp[] =
    "  --server ADDR         mcmpart-server address (default: "
    "$MCMPART_SERVER,\n"
    "                        else localhost:50051)\n"
    "  --tls                 speak TLS, checking the server's certificate "
    "against\n"
    "                        the system roots (or --tls-ca)\n"
    "  --tls-ca FILE         PEM roots to check the server's certificate with\n"
    "  --tls-cert FILE       PEM client certificate chain, for mTLS\n"
    "  --tls-key FILE        PEM client private key, for mTLS\n"
    "  --timeout D           deadline of the call (default: 30s; for a search,"
    " its\n"
    "                        budget plus 30s)\n";

std::vector<FlagSpec> RemoteFlags() {
  return {{"server"},   {"tls", false}, {"tls-ca"},
          {"tls-cert"}, {"tls-key"},    {"timeout"}};
}

namespace {

Address ServerAddress(const Args& args) {
  if (std::optional<std::string> s = args.Get("server")) {
    return {*s, "--server"};
  }
  if (const char* env = std::getenv("MCMPART_SERVER"); env && *env) {
    return {env, "MCMPART_SERVER"};
  }
  return {kDefaultServer, "the default"};
}

// gRPC logs transport errors (a failed TLS handshake, a refused connection)
// to stderr on its own; the command's message already says what went wrong,
// in words, so those lines are noise. GRPC_VERBOSITY, when the user sets it,
// keeps gRPC's own logging for debugging.
void QuietGrpcLogs() {
  const char* v = std::getenv("GRPC_VERBOSITY");
  if (v == nullptr || *v == '\0') {
    gpr_set_log_function([](gpr_log_func_args*) {});
  }
}

}  // namespace

absl::StatusOr<Connection> Connect(const Args& args) {
  // Every remote command calls this before its first call: a malformed
  // --timeout is an error here rather than silently the default later.
  if (absl::StatusOr<absl::Duration> t =
          args.GetDuration("timeout", absl::Seconds(1));
      !t.ok()) {
    return t.status();
  }
  QuietGrpcLogs();
  Connection c;
  c.address = ServerAddress(args);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  const bool tls = args.Has("tls") || args.Has("tls-ca") ||
                   args.Has("tls-cert") || args.Has("tls-key");
  if (tls) {
    if (args.Has("tls-cert") != args.Has("tls-key")) {
      return absl::InvalidArgumentError(
          "--tls-cert and --tls-key go together (mTLS)");
    }
    grpc::SslCredentialsOptions options;
    for (auto [flag, field] : {std::pair<const char*, std::string*>{
                                   "tls-ca", &options.pem_root_certs},
                               {"tls-cert", &options.pem_cert_chain},
                               {"tls-key", &options.pem_private_key}}) {
      if (std::optional<std::string> path = args.Get(flag)) {
        absl::StatusOr<std::string> pem = ReadFile(*path, 1 << 20);
        if (!pem.ok()) return pem.status();
        *field = *std::move(pem);
      }
    }
    creds = grpc::SslCredentials(options);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(256 << 20);
  channel_args.SetMaxSendMessageSize(256 << 20);
  c.channel = grpc::CreateCustomChannel(c.address.address, creds, channel_args);
  c.stub = v1::Partitioner::NewStub(c.channel);
  return c;
}

bool Expired(const grpc::ClientContext& ctx) {
  return std::chrono::system_clock::now() >= ctx.deadline();
}

int FailRpc(absl::string_view command, const Connection& c,
            const grpc::Status& s, bool call_expired) {
  std::string message = s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      // A connected channel means the server answered (it is draining);
      // otherwise no connection was made at all.
      if (c.channel->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY) {
        message = absl::StrCat("mcmpart-server at ", c.address.address,
                               " is unavailable: ", message);
      } else {
        message = absl::StrCat(
            "cannot reach mcmpart-server at ", c.address.address, " (",
            c.address.source, "): ", message,
            "\n  Is it running? Start it with `mcmpart-server`, or give its "
            "address with --server ADDR or MCMPART_SERVER (and --tls or "
            "--tls-ca FILE if it speaks TLS).");
      }
      break;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      message = absl::StrCat("the server refused the request: ", message);
      break;
    case grpc::StatusCode::FAILED_PRECONDITION:
      message = absl::StrCat("no valid placement exists: ", message);
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      if (call_expired) {
        message = absl::StrCat("no answer within the call's deadline (",
                               message, "); raise --timeout");
      } else {
        message = absl::StrCat("no valid placement found: ", message,
                               "; try a larger --time-budget");
      }
      break;
    default:
      break;
  }
  std::cerr << "mcmpart " << command << ": " << message << "\n";
  return ExitCodeFor(static_cast<absl::StatusCode>(s.error_code()),
                     ErrorSource::kServer);
}

void SetDeadline(grpc::ClientContext& ctx, absl::Duration timeout) {
  ctx.set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::microseconds(absl::ToInt64Microseconds(timeout)));
}

// --timeout, else the budget plus 30 s. Connect has already checked the
// flag, so a bad value cannot reach here.
absl::Duration CallTimeout(const Args& args, absl::Duration budget) {
  absl::StatusOr<absl::Duration> t =
      args.GetDuration("timeout", budget + absl::Seconds(30));
  return t.ok() ? *t : budget + absl::Seconds(30);
}

}  // namespace mcmpart::cli
