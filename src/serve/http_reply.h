// Replies of the HTTP API that every route shares: JSON bodies, errors, and refusing a
// request body before it is read.
#pragma once
#include <httplib.h>

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

namespace maskwatch {

// The API's bodies are a word or a token: a larger one is refused (413) unread.
constexpr size_t kMaxRequestBody = 64 * 1024;

void send_json(httplib::Response& res, const nlohmann::json& j, int status = 200);
void send_error(httplib::Response& res, int status, const std::string& message);
// An error that ends the connection after it is sent: the body the client is sending is not
// read, so what follows it on the connection is not a request. Returns `status`.
int refuse_and_close(httplib::Response& res, int status, const std::string& message);
// 400 for a Content-Length that is not one number, 411 for a chunked body, 400 for a POST,
// PUT or PATCH without a length, 413 for a body over kMaxRequestBody (the answer set in `res`,
// which closes the connection); 0 for a request whose body may be read.
int refused_body(const httplib::Request& req, httplib::Response& res);

}  // namespace maskwatch
