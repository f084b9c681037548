// Structured log lines: one JSON object per line on stderr, so that log
// shippers parse them without a grammar. Thread-safe (one write per line).
#ifndef MCMPART_SERVER_LOG_H_
#define MCMPART_SERVER_LOG_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace mcmpart::server {

// A value already rendered as JSON (a number, true/false) or a string that
// LogLine will quote and escape.
struct LogField {
  LogField(absl::string_view k, absl::string_view v)
      : key(k), value(v), quoted(true) {}
  LogField(absl::string_view k, const std::string& v)
      : key(k), value(v), quoted(true) {}
  LogField(absl::string_view k, const char* v)
      : key(k), value(v), quoted(true) {}
  LogField(absl::string_view k, double v);
  LogField(absl::string_view k, int64_t v);
  LogField(absl::string_view k, int v) : LogField(k, int64_t{v}) {}
  LogField(absl::string_view k, bool v)
      : key(k), value(v ? "true" : "false"), quoted(false) {}

  std::string key;
  std::string value;
  bool quoted;
};

// {"ts":"2024-...Z","level":"info","event":"job_end",...fields}
void LogLine(absl::string_view level, absl::string_view event,
             const std::vector<LogField>& fields);

// Turns logging off (tests keep their output readable).
void SetLogEnabled(bool enabled);

// Sends protobuf's own messages (one per malformed string field a client
// sends, for example) through LogLine as event "protobuf", at most
// `per_minute` a minute; the rest are counted in the next line's
// "suppressed" field. A client sending garbage cannot flood the log.
void RouteProtobufLogs(int per_minute = 10);

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_LOG_H_
