#include "serve/http_params.h"

#include <fmt/format.h>

#include <strings.h>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "util/error.h"
#include "util/strings.h"

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

void mend_parsed_request(httplib::Request& req) {
  const size_t query = req.target.find('?');
  req.params = parse_query(query == std::string::npos ? "" : req.target.substr(query + 1));
  req.ranges.clear();
  // A DELETE with no length has no body (RFC 9112 6.3); httplib read one until the read
  // time-out (curl -X DELETE sends none), 5 s before its 404 or 405. (A POST, PUT or PATCH
  // without one is refused at once: refused_body.)
  if (req.method == "DELETE" && !req.has_header("Content-Length") && !req.has_header("Transfer-Encoding"))
    req.set_header("Content-Length", "0");
}

std::optional<ByteRange> byte_range(const std::string& header, uint64_t size) {
  const std::string h = trim(header);
  if (h.size() < 6 || strncasecmp(h.c_str(), "bytes=", 6) != 0) return std::nullopt;
  const std::string spec = trim(h.substr(6));
  const size_t dash = spec.find('-');
  if (spec.find(',') != std::string::npos || dash == std::string::npos) return std::nullopt;
  const auto number = [](const std::string& digits, uint64_t& out) {
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
    return !digits.empty() && ec == std::errc() && end == digits.data() + digits.size();
  };
  const std::string a = trim(spec.substr(0, dash)), b = trim(spec.substr(dash + 1));
  ByteRange r;
  if (a.empty()) {  // the last n bytes
    uint64_t n = 0;
    if (!number(b, n)) return std::nullopt;
    if (n == 0 || size == 0) return ByteRange{0, 0, false};
    r.first = n >= size ? 0 : size - n;
    r.last = size - 1;
    return r;
  }
  if (!number(a, r.first)) return std::nullopt;
  r.last = UINT64_MAX;
  if (!b.empty() && !number(b, r.last)) return std::nullopt;
  if (r.last < r.first) return std::nullopt;  // invalid: ignored
  if (r.first >= size) return ByteRange{0, 0, false};
  r.last = std::min(r.last, size - 1);
  return r;
}

int64_t event_id(const std::string& digits) {
  int64_t id = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc() || end != digits.data() + digits.size() || id < 1)
    throw Error(fmt::format("event id must be from 1 to {}", std::numeric_limits<int64_t>::max()));
  return id;
}

}  // namespace maskwatch
