#include "client/report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "client/cli.h"
#include "client/common.h"

namespace mcmpart::cli {
namespace {

// Distinct, print-friendly fill colours; chips beyond the palette reuse it.
constexpr const char* kPalette[] = {"#8dd3c7", "#ffffb3", "#bebada", "#fb8072",
                                    "#80b1d3", "#fdb462", "#b3de69", "#fccde5",
                                    "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f"};
constexpr int kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

std::string XmlEscape(absl::string_view s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"},
                                 {"<", "&lt;"},
                                 {">", "&gt;"},
                                 {"\"", "&quot;"},
                                 {"'", "&apos;"}});
}

std::string DotEscape(absl::string_view s) {
  return absl::StrReplaceAll(s, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", " "}});
}

}  // namespace

namespace {

// A box fits its widest line, "memory 47.56 MiB / 96.00 MiB", at 12 px
// sans-serif (about 190 px), so that no text runs into the link labels.
constexpr int kBoxW = 210, kBoxH = 150, kGap = 90, kMargin = 20, kTop = 50;

// The title lines: graph, hardware, throughput, bottleneck, optimality.
std::string SvgTitle(const Problem& problem, const v1::Evaluation& e) {
  const std::string how = Optimality(e);
  return absl::StrCat(
      absl::StrFormat(
          "<text x=\"%d\" y=\"22\" font-size=\"15\" font-weight=\"bold\">%s on "
          "%s: %.6g samples/s (quality %.3f)%s</text>\n",
          kMargin, XmlEscape(problem.graph().name()),
          XmlEscape(problem.hardware().name()), e.throughput_per_s(),
          e.quality(), e.valid() ? "" : " INVALID"),
      absl::StrFormat("<text x=\"%d\" y=\"40\" fill=\"#555\">"
                      "bottleneck %s (%s), red%s</text>\n",
                      kMargin, e.bottleneck(), FormatSeconds(e.bottleneck_s()),
                      how.empty() ? "" : XmlEscape(absl::StrCat("; ", how))));
}

// A labelled bar filled to `share` (0..1), red when `over`.
std::string SvgBar(int x, int y, const char* label, double share,
                   const std::string& text, bool over) {
  const int w = kBoxW - 20;
  return absl::StrFormat(
      "<text x=\"%d\" y=\"%d\">%s %s</text>\n"
      "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"10\" fill=\"#eee\" "
      "stroke=\"#999\"/>\n"
      "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"10\" fill=\"%s\"/>\n",
      x + 10, y, label, XmlEscape(text), x + 10, y + 4, w, x + 10, y + 4,
      std::clamp(share, 0.0, 1.0) * w, over ? "#d62728" : "#1f77b4");
}

// Chip c's box: its node count, compute and memory bars.
std::string SvgChip(const Problem& problem, const v1::Evaluation& e, int c,
                    int nodes) {
  const int x = kMargin + c * (kBoxW + kGap);
  const bool hot = e.bottleneck() == absl::StrCat("chip ", c);
  const double sram = problem.hardware().chip(c).sram_bytes;
  const double mem_share = e.memory_bytes(c) / sram;
  const double scale = e.bottleneck_s() > 0 ? e.bottleneck_s() : 1;
  return absl::StrCat(
      absl::StrFormat(
          "<g class=\"chip\" id=\"chip%d\">\n"
          "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"8\" "
          "fill=\"%s\" stroke=\"%s\" stroke-width=\"%d\"/>\n"
          "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">chip %d</text>\n"
          "<text x=\"%d\" y=\"%d\">%d nodes</text>\n",
          c, x, kTop, kBoxW, kBoxH, kPalette[c % kPaletteSize],
          hot ? "#d62728" : "#333", hot ? 4 : 1, x + 10, kTop + 20, c, x + 10,
          kTop + 38, nodes),
      SvgBar(x, kTop + 62, "compute", e.compute_s(c) / scale,
             FormatSeconds(e.compute_s(c)), hot),
      SvgBar(x, kTop + 100, "memory", mem_share,
             absl::StrFormat("%s / %s", FormatBytesShort(e.memory_bytes(c)),
                             FormatBytesShort(sram)),
             mem_share > 1),
      "</g>\n");
}

// The arrow from chip k to chip k + 1 with its bytes and time.
std::string SvgLink(const v1::Evaluation& e, int k) {
  const int x1 = kMargin + k * (kBoxW + kGap) + kBoxW;
  const int x2 = x1 + kGap;
  const int y = kTop + kBoxH / 2;
  const bool hot = e.bottleneck() == absl::StrCat("link ", k);
  const char* colour = hot ? "#d62728" : "#333";
  const double bytes = k < e.link_bytes_size() ? e.link_bytes(k) : 0;
  return absl::StrFormat(
      "<g class=\"link\" id=\"link%d\">\n"
      "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
      "stroke-width=\"%d\"/>\n"
      "<polygon points=\"%d,%d %d,%d %d,%d\" fill=\"%s\"/>\n"
      "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n"
      "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n"
      "</g>\n",
      k, x1 + 4, y, x2 - 10, y, colour, hot ? 4 : 2, x2 - 2, y, x2 - 12, y - 6,
      x2 - 12, y + 6, colour, (x1 + x2) / 2, y - 12, FormatBytesShort(bytes),
      (x1 + x2) / 2, y + 22, FormatSeconds(e.comm_s(k)));
}

}  // namespace

std::string PipelineSvg(const Problem& problem, absl::Span<const int> p,
                        const v1::Evaluation& e) {
  const int chips = problem.num_chips();
  const int width = 2 * kMargin + chips * kBoxW + (chips - 1) * kGap;
  const int height = kTop + kBoxH + 50;
  std::vector<int> nodes(chips, 0);
  for (int c : p) ++nodes[c];
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      width, height, width, height);
  absl::StrAppend(&svg, SvgTitle(problem, e));
  for (int c = 0; c < chips; ++c) {
    absl::StrAppend(&svg, SvgChip(problem, e, c, nodes[c]));
  }
  for (int k = 0; k + 1 < chips; ++k) absl::StrAppend(&svg, SvgLink(e, k));
  absl::StrAppend(&svg, "</svg>\n");
  return svg;
}

std::string GraphDot(const Problem& problem, absl::Span<const int> p) {
  const Graph& g = problem.graph();
  std::string dot = absl::StrFormat(
      "digraph \"%s\" {\n  rankdir=TB;\n  node [shape=box, style=filled, "
      "fontname=\"sans-serif\", fontsize=10];\n",
      DotEscape(g.name()));
  for (int c = 0; c < problem.num_chips(); ++c) {
    absl::StrAppend(
        &dot, absl::StrFormat("  subgraph cluster_chip%d {\n    label=\"chip "
                              "%d\";\n    color=\"#999999\";\n",
                              c, c));
    for (int v = 0; v < g.num_nodes(); ++v) {
      if (p[v] != c) continue;
      absl::StrAppend(
          &dot,
          absl::StrFormat("    n%d [label=\"%s\\n%s\", fillcolor=\"%s\"];\n", v,
                          DotEscape(g.node_name(v)), DotEscape(g.op(v)),
                          kPalette[c % kPaletteSize]));
    }
    absl::StrAppend(&dot, "  }\n");
  }
  for (int u = 0; u < g.num_nodes(); ++u) {
    for (int v : g.successors(u)) {
      absl::StrAppend(&dot,
                      absl::StrFormat("  n%d -> n%d%s;\n", u, v,
                                      p[u] != p[v] ? " [color=red]" : ""));
    }
  }
  absl::StrAppend(&dot, "}\n");
  return dot;
}

}  // namespace mcmpart::cli
