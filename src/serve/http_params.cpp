#include "serve/http_params.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "util/error.h"

namespace maskwatch {

double number_param(const httplib::Request& req, const char* name, double fallback) {
  if (!req.has_param(name)) return fallback;
  const std::string v = req.get_param_value(name);
  try {
    size_t used = 0;
    const double d = std::stod(v, &used);
    if (used != v.size() || !std::isfinite(d)) throw std::invalid_argument(v);
    return d;
  } catch (const std::exception&) {
    throw Error(fmt::format("parameter {}='{}' is not a number", name, v));
  }
}

int int_param(const httplib::Request& req, const char* name, int fallback, int lo, int hi) {
  if (!req.has_param(name)) return fallback;
  const double d = number_param(req, name, fallback);
  if (d < lo || d > hi || d != std::floor(d))
    throw Error(
        fmt::format("parameter {}={} must be a whole number from {} to {}", name, req.get_param_value(name), lo, hi));
  return static_cast<int>(d);
}

int64_t event_id(const std::string& digits) {
  int64_t id = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc() || end != digits.data() + digits.size() || id < 1)
    throw Error(fmt::format("event id must be from 1 to {}", std::numeric_limits<int64_t>::max()));
  return id;
}

}  // namespace maskwatch
