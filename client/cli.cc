#include "client/cli.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mcmpart::cli {

absl::StatusOr<Args> Args::Parse(const std::vector<std::string>& argv,
                                 const std::vector<FlagSpec>& specs) {
  Args args;
  auto find = [&specs](absl::string_view name,
                       bool is_short) -> const FlagSpec* {
    for (const FlagSpec& s : specs) {
      if ((is_short ? s.short_name : s.name) == name) return &s;
    }
    return nullptr;
  };
  bool flags_done = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (flags_done || a.size() < 2 || a[0] != '-') {
      args.positional_.push_back(a);
      continue;
    }
    if (a == "--") {
      flags_done = true;
      continue;
    }
    const bool is_short = a[1] != '-';
    std::string name = a.substr(is_short ? 1 : 2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); !is_short && eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const FlagSpec* spec = find(name, is_short);
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", a));
    }
    if (spec->takes_value && !value) {
      if (i + 1 >= argv.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", spec->name, " needs a value"));
      }
      value = argv[++i];
    }
    if (!spec->takes_value && value) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", spec->name, " takes no value"));
    }
    if (!spec->repeated && args.flags_.count(spec->name) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", spec->name, " given twice"));
    }
    args.flags_.emplace(spec->name, value.value_or(""));
  }
  return args;
}

bool Args::Has(absl::string_view name) const {
  return flags_.find(name) != flags_.end();
}

std::optional<std::string> Args::Get(absl::string_view name) const {
  auto it = flags_.find(name);
  if (it == flags_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> Args::GetAll(absl::string_view name) const {
  std::vector<std::string> out;
  auto [begin, end] = flags_.equal_range(name);
  for (auto it = begin; it != end; ++it) out.push_back(it->second);
  return out;
}

absl::StatusOr<int64_t> Args::GetInt(absl::string_view name, int64_t fallback,
                                     int64_t min, int64_t max) const {
  std::optional<std::string> v = Get(name);
  if (!v) return fallback;
  int64_t x;
  if (!absl::SimpleAtoi(*v, &x) || x < min || x > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", name, " is '", *v, "'; must be an integer in ", min, "..", max));
  }
  return x;
}

absl::StatusOr<absl::Duration> Args::GetDuration(
    absl::string_view name, absl::Duration fallback) const {
  std::optional<std::string> v = Get(name);
  if (!v) return fallback;
  absl::Duration d;
  double seconds;
  if (absl::SimpleAtod(*v, &seconds) && std::isfinite(seconds)) {
    d = absl::Seconds(seconds);  // a bare number means seconds
  } else if (!absl::ParseDuration(*v, &d)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", name, " is '", *v, "'; use a duration such as 500ms, 2s or 1m"));
  }
  if (d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", name, " is '", *v, "'; must be positive and finite"));
  }
  return d;
}

std::string FormatSeconds(double s) {
  if (!std::isfinite(s)) return absl::StrCat(s, " s");
  const double a = std::fabs(s);
  if (a == 0) return "0 s";
  // '#' keeps trailing zeros: four figures always, so that the columns of
  // a table line up ("49.20 us" under "61.72 us", not "49.2 us").
  if (a < 1e-6) return absl::StrFormat("%#.4g ns", s * 1e9);
  if (a < 1e-3) return absl::StrFormat("%#.4g us", s * 1e6);
  if (a < 1) return absl::StrFormat("%#.4g ms", s * 1e3);
  return absl::StrFormat("%#.4g s", s);
}

std::string FormatBytesShort(double bytes) {
  const double a = std::fabs(bytes);
  if (a < 1024) return absl::StrFormat("%.0f B", bytes);
  if (a < 1024.0 * 1024) return absl::StrFormat("%.2f KiB", bytes / 1024);
  if (a < 1024.0 * 1024 * 1024) {
    return absl::StrFormat("%.2f MiB", bytes / (1024.0 * 1024));
  }
  return absl::StrFormat("%.2f GiB", bytes / (1024.0 * 1024 * 1024));
}

}  // namespace mcmpart::cli
