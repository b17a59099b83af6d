// MODEL_CARD.md for a trained model, written from its metrics.json: how it was made (exact
// command, data manifest, split, recipe), how it learned (per-epoch summary), how good it is
// (test metrics) and what it does not know.
#pragma once
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace maskwatch {

std::string model_card_markdown(const nlohmann::json& metrics, const std::string& command_line);
void write_model_card(const std::filesystem::path& path, const nlohmann::json& metrics, const std::string& command_line);

}  // namespace maskwatch
