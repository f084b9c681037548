#include "server/log.h"

#include <atomic>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/stubs/logging.h"

namespace mcmpart::server {
namespace {

std::atomic<bool> log_enabled{true};

std::atomic<int> protobuf_per_minute{10};

void OnProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                   const std::string& message) {
  static absl::Mutex mu(absl::kConstInit);
  static absl::Time window_start = absl::InfinitePast();
  static int in_window = 0;
  static int64_t suppressed = 0;
  int64_t suppressed_before = 0;
  {
    absl::MutexLock lock(&mu);
    const absl::Time now = absl::Now();
    if (now - window_start >= absl::Minutes(1)) {
      window_start = now;
      in_window = 0;
    }
    if (in_window >= protobuf_per_minute.load()) {
      ++suppressed;
      return;
    }
    ++in_window;
    suppressed_before = suppressed;
    suppressed = 0;
  }
  LogLine(level >= google::protobuf::LOGLEVEL_ERROR ? "warning" : "info",
          "protobuf",
          {{"message", message},
           {"source", absl::StrCat(file, ":", line)},
           {"suppressed", suppressed_before}});
}

void AppendQuoted(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", static_cast<int>(c));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

}  // namespace

LogField::LogField(absl::string_view k, double v) : key(k), quoted(false) {
  value = std::isfinite(v) ? absl::StrFormat("%.6g", v) : "null";
}

LogField::LogField(absl::string_view k, int64_t v)
    : key(k), value(absl::StrCat(v)), quoted(false) {}

void RouteProtobufLogs(int per_minute) {
  protobuf_per_minute = per_minute;
  google::protobuf::SetLogHandler(&OnProtobufLog);
}

void SetLogEnabled(bool enabled) { log_enabled.store(enabled); }

void LogLine(absl::string_view level, absl::string_view event,
             const std::vector<LogField>& fields) {
  if (!log_enabled.load()) return;
  std::string line = "{\"ts\":";
  AppendQuoted(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                absl::UTCTimeZone()),
               &line);
  line.append(",\"level\":");
  AppendQuoted(level, &line);
  line.append(",\"event\":");
  AppendQuoted(event, &line);
  for (const LogField& f : fields) {
    line.push_back(',');
    AppendQuoted(f.key, &line);
    line.push_back(':');
    if (f.quoted) {
      AppendQuoted(f.value, &line);
    } else {
      line.append(f.value);
    }
  }
  line.append("}\n");
  // One fwrite per line: stdio locks the stream, so lines never interleave.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace mcmpart::server
