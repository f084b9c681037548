#include "server/store/store.h"

#include <cstdint>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/store/memory_store.h"
#include "server/store/redis_store.h"
#include "server/store/sqlite_store.h"
#include "solver/quote.h"

namespace mcmpart::store {
namespace {

constexpr absl::string_view kExpected =
    "expected memory, sqlite:PATH or redis://HOST:PORT[/DB]";
constexpr absl::string_view kRedisForm = "expected redis://HOST:PORT[/DB]";

absl::Status BadRedis(absl::string_view spec, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("--store ", QuoteInput(spec), ": ", what, "; ", kRedisForm));
}

absl::StatusOr<RedisAddress> ParseRedis(absl::string_view spec) {
  absl::string_view rest = spec.substr(absl::string_view("redis://").size());
  // A password would end up in logs and error messages; refuse it without
  // quoting the spec.
  if (absl::StrContains(rest, '@')) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--store redis://...: user names and passwords are not supported "
        "(Redis without AUTH on a private network); ",
        kRedisForm));
  }
  RedisAddress address;
  absl::string_view hostport = rest;
  absl::string_view db;
  bool has_db = false;
  if (const size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    hostport = rest.substr(0, slash);
    db = rest.substr(slash + 1);
    has_db = true;
  }
  absl::string_view port;
  bool has_port = false;
  if (absl::StartsWith(hostport, "[")) {
    const size_t close = hostport.find(']');
    if (close == absl::string_view::npos) {
      return BadRedis(spec, "the IPv6 address has no closing ']'");
    }
    address.host = std::string(hostport.substr(1, close - 1));
    absl::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        return BadRedis(spec, "expected ':' after the IPv6 address");
      }
      port = after.substr(1);
      has_port = true;
    }
  } else if (const size_t colon = hostport.rfind(':');
             colon != absl::string_view::npos) {
    address.host = std::string(hostport.substr(0, colon));
    port = hostport.substr(colon + 1);
    has_port = true;
  } else {
    address.host = std::string(hostport);
  }
  if (address.host.empty()) return BadRedis(spec, "no host");
  if (has_port) {
    int value = 0;
    if (!absl::SimpleAtoi(port, &value) || value < 1 || value > 65535 ||
        port.empty() || port[0] == '+' || port[0] == '-') {
      return BadRedis(spec, absl::StrCat("port ", QuoteInput(port),
                                         " is not a number from 1 to 65535"));
    }
    address.port = value;
  }
  if (has_db) {
    int value = 0;
    if (!absl::SimpleAtoi(db, &value) || value < 0 || db.empty() ||
        db[0] == '+' || db[0] == '-') {
      return BadRedis(spec, absl::StrCat("database ", QuoteInput(db),
                                         " is not a number from 0 up"));
    }
    address.db = value;
  }
  return address;
}

}  // namespace

bool IsTerminal(JobState state) {
  return state == v1::Job::SUCCEEDED || state == v1::Job::FAILED ||
         state == v1::Job::CANCELLED;
}

absl::string_view StateName(JobState state) {
  switch (state) {
    case v1::Job::QUEUED:
      return "queued";
    case v1::Job::RUNNING:
      return "running";
    case v1::Job::SUCCEEDED:
      return "succeeded";
    case v1::Job::FAILED:
      return "failed";
    case v1::Job::CANCELLED:
      return "cancelled";
    default:
      break;
  }
  return "unknown";
}

absl::Status StateStore::RenewSearch(absl::string_view problem_key,
                                     absl::string_view job_id,
                                     absl::string_view owner,
                                     absl::Duration ttl) {
  absl::StatusOr<SearchClaim> claim =
      ClaimSearch(problem_key, job_id, owner, ttl);
  if (!claim.ok()) return claim.status();
  if (claim->owned) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("the search claim of job ", QuoteInput(job_id),
                   " lapsed and job ", QuoteInput(claim->job_id),
                   " on replica ", QuoteInput(claim->owner), " holds it now"));
}

absl::StatusOr<std::unique_ptr<StateStore>> OpenStore(
    absl::string_view spec, const StoreOptions& options) {
  if (spec.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--store is empty; ", kExpected));
  }
  if (spec == "memory") return NewMemoryStore(options);
  if (absl::StartsWith(spec, "sqlite:")) {
    absl::string_view path = spec.substr(absl::string_view("sqlite:").size());
    if (path.empty()) {
      return absl::InvalidArgumentError(
          "--store 'sqlite:' needs a file path: sqlite:PATH, e.g. "
          "sqlite:/var/lib/mcmpart/state.db");
    }
    return OpenSqliteStore(std::string(path), options);
  }
  if (absl::StartsWith(spec, "redis://")) {
    absl::StatusOr<RedisAddress> address = ParseRedis(spec);
    if (!address.ok()) return address.status();
    return OpenRedisStore(*address, options);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown --store ", QuoteInput(spec), "; ", kExpected));
}

}  // namespace mcmpart::store
