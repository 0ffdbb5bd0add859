#include "engine/tools/bench/mac_ceiling.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace phi3::bench {

MacCeiling MacCeilingFor(const ComputeRoofline& r, std::string_view type) {
  if (!r.measured) return {};
  for (const TypeMacRate& t : r.types) {
    if (t.type == type && t.macs_per_second > 0) {
      return {t.macs_per_second,
              absl::StrCat(absl::AsciiStrToUpper(t.type), " exact: ", t.instructions)};
    }
  }
  return {};
}

MacCeiling ModelMacCeiling(const ComputeRoofline& r,
                           const std::map<std::string, int64_t>& macs_by_type) {
  double seconds = 0, total = 0;
  std::string shares;
  for (const auto& [type, macs] : macs_by_type) {
    if (macs <= 0) continue;
    const MacCeiling c = MacCeilingFor(r, type);
    if (!(c.macs_per_second > 0)) return {};
    seconds += static_cast<double>(macs) / c.macs_per_second;
    total += static_cast<double>(macs);
  }
  if (!(seconds > 0)) return {};
  int num_types = 0;
  std::string only;
  for (const auto& [type, macs] : macs_by_type) {
    if (macs <= 0) continue;
    ++num_types;
    only = type;
    absl::StrAppendFormat(&shares, "%s%s %.0f%%", shares.empty() ? "" : ", ", type,
                          100 * static_cast<double>(macs) / total);
  }
  if (num_types == 1) return {total / seconds, MacCeilingFor(r, only).kind};
  return {total / seconds, absl::StrCat("exact mix: ", shares)};
}

BatchedRoofline BatchedRooflineOf(double compute_tok_s, std::string_view compute_kind,
                                  double decode_tok_s, int tokens_per_pass) {
  BatchedRoofline r;
  r.compute_tok_s = compute_tok_s > 0 ? compute_tok_s : 0;
  r.bandwidth_tok_s = decode_tok_s > 0 ? tokens_per_pass * decode_tok_s : 0;
  if (r.bandwidth_tok_s > 0 && (r.compute_tok_s == 0 || r.bandwidth_tok_s < r.compute_tok_s)) {
    r.tok_s = r.bandwidth_tok_s;
    r.bandwidth_bound = true;
    r.kind = absl::StrFormat("bandwidth: %d x %.2f tok/s; ", tokens_per_pass, decode_tok_s);
    if (r.compute_tok_s > 0) {
      absl::StrAppendFormat(&r.kind, "compute %.2f tok/s, %s", r.compute_tok_s, compute_kind);
    } else {
      absl::StrAppend(&r.kind, "compute not measured");
    }
  } else if (r.compute_tok_s > 0) {
    r.tok_s = r.compute_tok_s;
    r.kind = std::string(compute_kind);
    if (r.bandwidth_tok_s > 0) {
      absl::StrAppendFormat(&r.kind, "; bandwidth %d x %.2f = %.2f tok/s", tokens_per_pass,
                            decode_tok_s, r.bandwidth_tok_s);
    }
  }
  return r;
}

std::string TypeCeilingLines(const ComputeRoofline& r) {
  std::string out;
  for (const TypeMacRate& t : r.types) {
    absl::StrAppendFormat(&out, "  %-5s %7.1f G MAC/s  %s\n", t.type, t.macs_per_second / 1e9,
                          MacCeilingFor(r, t.type).kind);
  }
  return out;
}

}  // namespace phi3::bench
