// Small string helpers shared by readers of text from files and from HTTP headers.
#pragma once
#include <string>
#include <string_view>

namespace maskwatch {

// `s` without the spaces, tabs and line ends around it ("" when it holds nothing else).
inline std::string trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  const auto b = s.find_first_not_of(kSpace);
  if (b == std::string_view::npos) return {};
  return std::string(s.substr(b, s.find_last_not_of(kSpace) - b + 1));
}

}  // namespace maskwatch
