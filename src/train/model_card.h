// MODEL_CARD.md for a trained model: how it was made (exact command, data sources with their
// licence notes, crops, split, recipe), how it learned (per-epoch summary), how good it is
// (test metrics overall and per source, against any baseline model, calibration) and what it
// does not know.
#pragma once
#include <filesystem>
#include <string>

#include "train/training_metrics.h"

namespace maskwatch {

std::string model_card_markdown(const TrainingMetrics& metrics, const std::string& command_line);
void write_model_card(const std::filesystem::path& path, const TrainingMetrics& metrics,
                      const std::string& command_line);

// What ../shared/README.md says about a source's origin and licence ("" when unknown).
std::string source_note(const std::string& source);

}  // namespace maskwatch
