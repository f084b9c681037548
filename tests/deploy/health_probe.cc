// deploy_health_probe: what the kubelet's gRPC probe does, for tests/deploy.
// One grpc.health.v1.Health/Check call (repeated until --wait runs out, for
// start-up), printing the status:
//   deploy_health_probe --addr 127.0.0.1:50051 [--service NAME]
//                       [--timeout 1s] [--wait 0s]
// Exit codes: 0 SERVING, 1 another status (NOT_SERVING, SERVICE_UNKNOWN...),
// 2 bad usage, 3 the call failed (unreachable, timeout...).
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"

namespace {

using grpc::health::v1::Health;
using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// "1s", "250ms" or a number of seconds.
bool ParseSeconds(const std::string& s, double* out) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  const std::string unit(end);
  if (end == s.c_str() || v < 0) return false;
  if (unit.empty() || unit == "s") {
    *out = v;
  } else if (unit == "ms") {
    *out = v / 1000;
  } else {
    return false;
  }
  return true;
}

int Usage() {
  std::cerr << "usage: deploy_health_probe --addr HOST:PORT [--service NAME] "
               "[--timeout 1s] [--wait 0s]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string addr;
  std::string service;
  double timeout_s = 1;
  double wait_s = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return Usage();
    const std::string value = argv[++i];
    if (arg == "--addr") {
      addr = value;
    } else if (arg == "--service") {
      service = value;
    } else if (arg == "--timeout") {
      if (!ParseSeconds(value, &timeout_s)) return Usage();
    } else if (arg == "--wait") {
      if (!ParseSeconds(value, &wait_s)) return Usage();
    } else {
      return Usage();
    }
  }
  if (addr.empty()) return Usage();

  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  auto stub = Health::NewStub(channel);
  const auto give_up =
      std::chrono::steady_clock::now() +
      std::chrono::milliseconds(static_cast<int>(wait_s * 1000));
  for (;;) {
    grpc::ClientContext context;
    context.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(static_cast<int>(timeout_s * 1000)));
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    const grpc::Status status = stub->Check(&context, request, &response);
    const bool serving =
        status.ok() && response.status() == HealthCheckResponse::SERVING;
    if (serving || std::chrono::steady_clock::now() >= give_up) {
      if (!status.ok()) {
        std::cout << "error " << status.error_code() << ": "
                  << status.error_message() << "\n";
        // NOT_FOUND is the health service's answer for an unknown service.
        return status.error_code() == grpc::StatusCode::NOT_FOUND ? 1 : 3;
      }
      std::cout << HealthCheckResponse::ServingStatus_Name(response.status())
                << "\n";
      return serving ? 0 : 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}
