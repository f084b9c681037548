#include "server/log.h"

#include <atomic>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace mcmpart::server {
namespace {

std::atomic<bool> log_enabled{true};

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
