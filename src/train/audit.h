// `maskwatch audit`: finds likely label errors with out-of-fold predictions. Every image's
// pooled backbone features (the image and its mirror, averaged) are computed once and cached;
// the data is cut into k folds (crops of one photo and identical files stay in one fold); a
// small head trained on k-1 folds predicts the held-out fold. An image whose own label gets
// a low out-of-fold probability is a candidate: the ranked list goes to a CSV and the top of
// it to a contact sheet to review by eye. Items are flagged as confident-learning does: the
// predicted class's probability reaches that class's threshold (its mean self-confidence).
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace maskwatch {

struct AuditOptions {
  std::vector<std::filesystem::path> data;
  std::map<std::string, std::string> class_map;
  std::filesystem::path exclude, backbone, out, face_model;
  int input_size = 160;
  int folds = 5;
  int epochs = 30;
  int sheet = 120;  // images on the contact sheet
  uint64_t seed = 42;
  bool face_crops = true;
};

struct AuditResult {
  size_t images = 0, flagged = 0;
  std::map<std::string, std::pair<size_t, size_t>> flagged_per_source;  // source -> (flagged, images)
  double out_of_fold_accuracy = 0;
  bool features_from_cache = false;
  size_t sheet_images = 0, sheet_pages = 0;  // audit.png, audit-2.png, ... (50 a page)
};

AuditResult run_audit(const AuditOptions& options);

}  // namespace maskwatch
