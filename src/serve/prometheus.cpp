#include "serve/prometheus.h"

#include <fmt/format.h>

namespace maskwatch {
namespace {

std::string escaped(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string label_text(const PromLabels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i)
    out += fmt::format("{}{}=\"{}\"", i ? "," : "", labels[i].first, escaped(labels[i].second));
  return out + "}";
}

}  // namespace

const std::vector<double>& PromHistogram::bounds() {
  static const std::vector<double> b = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};
  return b;
}

void PromHistogram::add(double seconds) {
  size_t i = 0;
  while (i < bounds().size() && seconds > bounds()[i]) ++i;
  ++counts[i];
  sum += seconds;
  ++n;
}

PromText& PromText::family(const std::string& name, const std::string& type, const std::string& help) {
  out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  return *this;
}

PromText& PromText::sample(const std::string& name, double value, const PromLabels& labels) {
  out_ += fmt::format("{}{} {}\n", name, label_text(labels), value);
  return *this;
}

PromText& PromText::histogram(const std::string& name, const PromHistogram& h, const PromLabels& labels) {
  uint64_t cumulative = 0;
  for (size_t b = 0; b < PromHistogram::bounds().size(); ++b) {
    cumulative += h.counts[b];
    PromLabels with_le = labels;
    with_le.emplace_back("le", fmt::format("{}", PromHistogram::bounds()[b]));
    sample(name + "_bucket", static_cast<double>(cumulative), with_le);
  }
  PromLabels inf = labels;
  inf.emplace_back("le", "+Inf");
  sample(name + "_bucket", static_cast<double>(h.n), inf);
  sample(name + "_sum", h.sum, labels);
  return sample(name + "_count", static_cast<double>(h.n), labels);
}

}  // namespace maskwatch
