// Who may do what on the HTTP API: bearer tokens, basic auth and the dashboard's session
// cookie, each for one of two roles (admin, viewer).
#pragma once
#include <httplib.h>

#include <string>

#include "serve/config.h"

namespace maskwatch {

enum class Role { None, Viewer, Admin };

// With token auth, a browser cannot add the Authorization header to a page it opens: the
// dashboard's login (a form posting to /login, or GET /?token=... once) sets an HttpOnly,
// SameSite=Strict cookie instead. Its value is derived from the token (a restart keeps it
// valid; the token itself is not kept in the browser), one per role. No Secure flag: `serve`
// speaks plain HTTP, where a browser would drop such a cookie.
class AuthGate {
 public:
  explicit AuthGate(HttpAuth auth);

  bool enabled() const { return auth_.enabled(); }
  bool has_login() const { return !auth_.token.empty() || !auth_.viewer_token.empty(); }
  // The role a token of the login form or a ?token= link gives.
  Role token_role(const std::string& token) const;
  // The role of a request's credentials (header or cookie); Admin when auth is off.
  Role role(const httplib::Request& req) const;
  // 303 to the dashboard with the role's session cookie.
  void let_in(httplib::Response& res, Role role) const;
  // 403: a viewer asked for what only an admin may do.
  static void forbid(const httplib::Request& req, httplib::Response& res);
  // 401: the login form for the dashboard page (token auth), JSON for everything else.
  void refuse(const httplib::Request& req, httplib::Response& res, bool wrong_token = false) const;

 private:
  HttpAuth auth_;
  std::string admin_session_, viewer_session_;
};

// What only an admin may do: read and reload the configuration, switch detection, watch
// event clips (video of people, where a viewer sees the blurred stills).
bool admin_only(const httplib::Request& req);

// "user:pass" -> "dXNlcjpwYXNz" (basic auth; exposed for tests).
std::string base64_encode(const std::string& in);

}  // namespace maskwatch
