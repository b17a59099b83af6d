// Prometheus text exposition (format 0.0.4) for /metrics: each metric family written once with
// its HELP and TYPE lines, label values escaped, histograms with cumulative buckets. Engine,
// HTTP and MQTT each add their families to one writer.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace maskwatch {

using PromLabels = std::vector<std::pair<std::string, std::string>>;

// A histogram of seconds; not thread-safe (the owner locks).
struct PromHistogram {
  static const std::vector<double>& bounds();  // 1 ms .. 1 s
  std::vector<uint64_t> counts = std::vector<uint64_t>(bounds().size() + 1, 0);
  double sum = 0;
  uint64_t n = 0;
  void add(double seconds);
  double mean() const { return n ? sum / static_cast<double>(n) : 0.0; }
};

class PromText {
 public:
  // Starts a family: `type` is gauge, counter or histogram.
  PromText& family(const std::string& name, const std::string& type, const std::string& help);
  PromText& sample(const std::string& name, double value, const PromLabels& labels = {});
  PromText& histogram(const std::string& name, const PromHistogram& h, const PromLabels& labels = {});
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

}  // namespace maskwatch
