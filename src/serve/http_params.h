// Query parameters and path parts of the HTTP API, checked: a malformed one throws Error,
// which the server answers 400 with the message (never a 500, never a silent default).
#pragma once
#include <httplib.h>

#include <cstdint>
#include <optional>
#include <string>

namespace maskwatch {

// Query parameter as a number; absent -> fallback; malformed or not finite -> throws.
double number_param(const httplib::Request& req, const char* name, double fallback);
// A whole-number query parameter within [lo, hi]; absent -> fallback; otherwise throws with the range.
int int_param(const httplib::Request& req, const char* name, int fallback, int lo, int hi);
// The name/value pairs of a query string or a form body ("a=1&b=x%3D"), each split at its
// first '=' and percent-decoded ('+' is a space). httplib 0.11 splits a pair at every '=' and
// keeps the last piece: a token "abc=" was read as "abc", camera=x=demo as camera=demo.
httplib::Params parse_query(const std::string& text);
// What the library parsed of a request, mended before any handler sees it (GuardedServer's
// request setup, on the library's own non-const Request): the query read again by
// parse_query, and no ranges. The one route that serves ranges (a clip) reads its Range header
// itself (byte_range); every other reply is whole, as RFC 9110 lets a server answer, where the
// library's slicing had answered `bytes=-0` with 206 and no bytes. (An unparsable Range is
// answered 416 by the library before this.) A DELETE without a length gets Content-Length: 0.
// A hook on the library's own parse, so it names request methods and headers; its routes know none.
void mend_parsed_request(httplib::Request& req);
// One range of a Range header (RFC 9110 14.1.2) against a resource of `size` bytes.
struct ByteRange {
  uint64_t first = 0, last = 0;  // inclusive
  bool satisfiable = true;       // false: 416 with "bytes */<size>"
};
// std::nullopt when the header is to be ignored and the whole resource sent: absent,
// unparsable, another unit, or several ranges (a server may send all instead); in `serve`
// the library itself answers 416 to a Range it cannot parse, before any route. httplib 0.11's
// own slicing sent "bytes 0-4933090/493309", 206 with no bytes for "-0", and a total of 0 for
// several ranges.
std::optional<ByteRange> byte_range(const std::string& header, uint64_t size);
// The id of /api/events/<id>: the route's \d+ can be any length, stoll would throw a 500.
int64_t event_id(const std::string& digits);

}  // namespace maskwatch
