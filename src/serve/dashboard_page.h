// The single-page dashboard served at / (serve/dashboard.html, embedded at build time).
#pragma once

namespace maskwatch {
const char* dashboard_html();
}
