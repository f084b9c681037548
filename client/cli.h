// Command-line parsing and output helpers for the mcmpart tool.
#ifndef MCMPART_CLIENT_CLI_H_
#define MCMPART_CLIENT_CLI_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/exit_codes.h"

namespace mcmpart::cli {

struct FlagSpec {
  // Not explicit: flag tables are written as braced lists, {"json", false}.
  FlagSpec(std::string name, bool takes_value = true, bool repeated = false,
           std::string short_name = "")
      : name(std::move(name)),
        takes_value(takes_value),
        repeated(repeated),
        short_name(std::move(short_name)) {}

  std::string name;  // without dashes, e.g. "preset"
  bool takes_value;
  bool repeated;
  std::string short_name;  // e.g. "o"
};

// `a` then `b`, for commands that take several flag groups.
inline std::vector<FlagSpec> ConcatFlags(std::vector<FlagSpec> a,
                                         const std::vector<FlagSpec>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Parsed arguments of one subcommand: flags as --name VALUE, --name=VALUE or
// -o VALUE; everything else positional ("--" ends flags).
class Args {
 public:
  static absl::StatusOr<Args> Parse(const std::vector<std::string>& argv,
                                    const std::vector<FlagSpec>& specs);

  const std::vector<std::string>& positional() const { return positional_; }
  bool Has(absl::string_view name) const;
  std::optional<std::string> Get(absl::string_view name) const;
  std::vector<std::string> GetAll(absl::string_view name) const;

  // Typed getters: INVALID_ARGUMENT naming the flag when the value is bad.
  absl::StatusOr<int64_t> GetInt(absl::string_view name, int64_t fallback,
                                 int64_t min, int64_t max) const;
  absl::StatusOr<absl::Duration> GetDuration(absl::string_view name,
                                             absl::Duration fallback) const;

 private:
  std::vector<std::string> positional_;
  std::multimap<std::string, std::string, std::less<>> flags_;
};

// "81.03 us", "1.250 ms", "2.000 s": four significant figures.
std::string FormatSeconds(double s);
// "512 B", "3.50 KiB", "45.20 MiB", "1.20 GiB".
std::string FormatBytesShort(double bytes);

}  // namespace mcmpart::cli

#endif  // MCMPART_CLIENT_CLI_H_
