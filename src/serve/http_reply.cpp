#include "serve/http_reply.h"

#include <fmt/format.h>

#include "serve/guarded_server.h"

namespace maskwatch {

void send_json(httplib::Response& res, const nlohmann::json& j, int status) {
  res.status = status;
  // Text from outside (a config file's bytes in an error) may not be UTF-8: replaced, not a 500.
  res.set_content(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, {{"error", message}}, status);
}

int refuse_and_close(httplib::Response& res, int status, const std::string& message) {
  res.set_header("Connection", "close");
  close_connection_after_reply();
  send_error(res, status, message);
  return status;
}

int refused_body(const httplib::Request& req, httplib::Response& res) {
  // One Content-Length, of digits only. httplib 0.11 takes the first of two and reads "abc" or
  // "+5" as a number or 0; the bytes it then left unread were parsed as the next request (a
  // proxy in front that read them otherwise would pass requests it never saw).
  const size_t lengths = req.get_header_value_count("Content-Length");
  for (size_t i = 0; i < lengths; ++i) {
    const std::string v = req.get_header_value("Content-Length", i);
    if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos ||
        v != req.get_header_value("Content-Length", 0))
      return refuse_and_close(res, 400, "Content-Length must be one number of digits");
  }
  if (req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos)
    return refuse_and_close(res, 411, "send the body with Content-Length, not chunked");
  // A method that takes a body, with no length (`curl -X POST` alone): httplib would read a
  // body until the connection's read time-out (5 s) before refusing it.
  if (lengths == 0 && (req.method == "POST" || req.method == "PUT" || req.method == "PATCH"))
    return refuse_and_close(res, 400, fmt::format("a {} needs a body or Content-Length: 0 (curl: -d '')", req.method));
  if (req.get_header_value<uint64_t>("Content-Length") > kMaxRequestBody)
    return refuse_and_close(res, 413, fmt::format("body too large (at most {} bytes)", kMaxRequestBody));
  return 0;
}

}  // namespace maskwatch
