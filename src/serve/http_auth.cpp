#include "serve/http_auth.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <regex>

#include "util/sha256.h"
#include "util/strings.h"

namespace maskwatch {

namespace {

constexpr const char* kSessionCookie = "maskwatch_session";

// Secrets compared in a time that does not depend on where they differ (OpenSSL's).
bool constant_time_equal(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The value of one cookie in the request's Cookie header, or "".
std::string cookie(const httplib::Request& req, const std::string& name) {
  const std::string all = req.get_header_value("Cookie");
  for (size_t at = 0; at < all.size();) {
    const size_t end = std::min(all.find(';', at), all.size());
    size_t begin = at;
    while (begin < end && all[begin] == ' ') ++begin;
    const std::string pair = all.substr(begin, end - begin);
    if (pair.compare(0, name.size() + 1, name + "=") == 0) return pair.substr(name.size() + 1);
    at = end + 1;
  }
  return "";
}

std::string login_page(bool wrong_token) {
  return fmt::format(
      "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
      "content=\"width=device-width\"><title>maskwatch: sign in</title><style>body{{font-family:sans-serif;"
      "max-width:22rem;margin:4rem auto;padding:0 1rem}}input{{width:100%;padding:.5rem;margin:.5rem 0;"
      "box-sizing:border-box}}.wrong{{color:#b00}}</style></head><body><h1>maskwatch</h1>{}"
      "<form method=\"post\" action=\"/login\"><label>Access token<input type=\"password\" name=\"token\" "
      "autocomplete=\"current-password\" autofocus required></label><input type=\"submit\" value=\"Sign in\">"
      "</form></body></html>\n",
      wrong_token ? "<p class=\"wrong\">That token is not the right one.</p>" : "");
}

// "bearer  X " -> "Bearer X": the scheme is case-insensitive (RFC 9110), spaces are not part
// of the credentials.
std::string normalised_authorization(std::string h) {
  h = trim(h);
  const size_t space = h.find(' ');
  if (space == std::string::npos) return h;
  std::string scheme = h.substr(0, space);
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme == "bearer") scheme = "Bearer";
  if (scheme == "basic") scheme = "Basic";
  return scheme + " " + trim(h.substr(space + 1));
}

std::string session_of(const std::string& token) {
  return token.empty() ? "" : sha256_hex("maskwatch dashboard session\n" + token);
}

}  // namespace

AuthGate::AuthGate(HttpAuth auth)
    : auth_(std::move(auth)),
      admin_session_(session_of(auth_.token)),
      viewer_session_(session_of(auth_.viewer_token)) {}

Role AuthGate::token_role(const std::string& token) const {
  if (!auth_.token.empty() && constant_time_equal(token, auth_.token)) return Role::Admin;
  if (!auth_.viewer_token.empty() && constant_time_equal(token, auth_.viewer_token)) return Role::Viewer;
  return Role::None;
}

Role AuthGate::role(const httplib::Request& req) const {
  if (!enabled()) return Role::Admin;
  const std::string header = normalised_authorization(req.get_header_value("Authorization"));
  const std::string session = cookie(req, kSessionCookie);
  const auto matches = [&](const std::string& token, const std::string& user, const std::string& password,
                           const std::string& session_value) {
    return (!token.empty() &&
            (constant_time_equal(header, "Bearer " + token) || constant_time_equal(session, session_value))) ||
           (!user.empty() && constant_time_equal(header, "Basic " + base64_encode(user + ":" + password)));
  };
  if (matches(auth_.token, auth_.user, auth_.password, admin_session_)) return Role::Admin;
  if (matches(auth_.viewer_token, auth_.viewer_user, auth_.viewer_password, viewer_session_)) return Role::Viewer;
  return Role::None;
}

void AuthGate::let_in(httplib::Response& res, Role role) const {
  res.status = 303;
  res.set_header("Location", "/");
  res.set_header("Set-Cookie", fmt::format("{}={}; HttpOnly; SameSite=Strict; Path=/", kSessionCookie,
                                           role == Role::Admin ? admin_session_ : viewer_session_));
  res.set_header("Cache-Control", "no-store");
}

void AuthGate::forbid(const httplib::Request& req, httplib::Response& res) {
  res.status = 403;
  res.set_content(nlohmann::json{{"error", fmt::format("{} {} needs the admin role; these credentials are a viewer's",
                                                       req.method, req.path)}}
                      .dump(),
                  "application/json");
}

void AuthGate::refuse(const httplib::Request& req, httplib::Response& res, bool wrong_token) const {
  res.status = 401;
  if (!auth_.user.empty() || !auth_.viewer_user.empty())
    res.set_header("WWW-Authenticate", "Basic realm=\"maskwatch\"");
  if (has_login() && (req.path == "/" || req.path == "/login"))
    res.set_content(login_page(wrong_token), "text/html; charset=utf-8");
  else
    res.set_content(R"({"error":"authentication required"})", "application/json");
}

bool admin_only(const httplib::Request& req) {
  static const std::regex detect(R"(/api/[A-Za-z0-9_-]+/detect)");
  static const std::regex clip(R"(/api/events/\d+/clip\.mp4)");
  return req.path == "/api/config" || req.path == "/api/config/reload" || std::regex_match(req.path, detect) ||
         std::regex_match(req.path, clip);
}

std::string base64_encode(const std::string& in) {
  // OpenSSL's encoder (no line breaks); 4 output bytes per 3 input bytes, plus its NUL.
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace maskwatch
