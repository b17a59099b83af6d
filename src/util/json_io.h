// JSON files: atomic pretty-printed writes and reads with one-line errors.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace maskwatch {

using json = nlohmann::json;

void write_json_atomic(const std::filesystem::path& path, const json& value);
// Throws Error("<what> <path>: not valid JSON (...)") on bad content.
json read_json(const std::filesystem::path& path, const std::string& what = "JSON file");

}  // namespace maskwatch
