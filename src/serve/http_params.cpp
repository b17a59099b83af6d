#include "serve/http_params.h"

#include <fmt/format.h>

#include <algorithm>
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

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX is the byte; a '%' without two hex digits stays as it is.
std::string percent_decoded(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

httplib::Params parse_query(const std::string& text) {
  httplib::Params out;
  for (size_t at = 0; at <= text.size();) {
    const size_t end = std::min(text.find('&', at), text.size());
    const std::string pair = text.substr(at, end - at);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      out.emplace(percent_decoded(pair.substr(0, eq)),
                  eq == std::string::npos ? "" : percent_decoded(pair.substr(eq + 1)));
    }
    at = end + 1;
  }
  return out;
}

int64_t event_id(const std::string& digits) {
  int64_t id = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc() || end != digits.data() + digits.size() || id < 1)
    throw Error(fmt::format("event id must be from 1 to {}", std::numeric_limits<int64_t>::max()));
  return id;
}

}  // namespace maskwatch
