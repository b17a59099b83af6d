#include "vision/face_fusion.h"

#include <algorithm>
#include <utility>

#include "vision/box_iou.h"

namespace maskwatch {
namespace {

cv::Rect2f weighted_mean(const std::vector<std::pair<cv::Rect2f, float>>& boxes) {
  double x = 0, y = 0, w = 0, h = 0, total = 0;
  for (const auto& [b, s] : boxes) x += s * b.x, y += s * b.y, w += s * b.width, h += s * b.height, total += s;
  if (total <= 0) return boxes.front().first;
  return cv::Rect2f(static_cast<float>(x / total), static_cast<float>(y / total), static_cast<float>(w / total),
                    static_cast<float>(h / total));
}

struct Cluster {
  std::vector<std::pair<Face, size_t>> members;  // face, look; strongest first
  cv::Rect2f box;                                // fused so far
  bool has_look(size_t look) const {
    return std::any_of(members.begin(), members.end(), [&](const auto& m) { return m.second == look; });
  }
  void fuse_boxes() {
    std::vector<std::pair<cv::Rect2f, float>> boxes;
    for (const auto& [f, look] : members) boxes.emplace_back(f.box, f.score);
    box = weighted_mean(boxes);
  }
};

}  // namespace

Face unmirror_face(const Face& face, float frame_width) {
  Face f = face;
  const auto back = [&](const cv::Rect2f& r) {
    return cv::Rect2f(frame_width - r.x - r.width, r.y, r.width, r.height);
  };
  f.box = back(face.box);
  f.crop_box = back(face.crop_box);
  const bool has_landmarks = std::any_of(face.landmarks.begin(), face.landmarks.end(),
                                         [](const cv::Point2f& p) { return p != cv::Point2f(); });
  if (!has_landmarks) return f;
  for (auto& p : f.landmarks) p.x = frame_width - p.x;
  std::swap(f.landmarks[0], f.landmarks[1]);  // eyes
  std::swap(f.landmarks[3], f.landmarks[4]);  // mouth corners
  return f;
}

std::vector<Face> fuse_looks(const std::vector<std::vector<Face>>& looks, float join_iou, float threshold,
                             float nms_iou) {
  if (looks.empty()) return {};
  std::vector<std::pair<Face, size_t>> all;
  for (size_t l = 0; l < looks.size(); ++l)
    for (const auto& f : looks[l]) all.emplace_back(f, l);
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first.score > b.first.score; });
  std::vector<Cluster> clusters;
  for (const auto& m : all) {
    Cluster* best = nullptr;
    float best_iou = join_iou;
    for (auto& c : clusters) {
      if (c.has_look(m.second)) continue;
      const auto o = static_cast<float>(iou(c.box, m.first.box));
      if (o >= best_iou) best_iou = o, best = &c;
    }
    if (!best) {
      clusters.push_back({{m}, m.first.box});
      continue;
    }
    best->members.push_back(m);
    best->fuse_boxes();
  }
  std::vector<Face> fused;
  for (const auto& c : clusters) {
    Face f = c.members.front().first;  // the strongest: its landmarks
    std::vector<std::pair<cv::Rect2f, float>> crops;
    float total = 0;
    for (const auto& [member, look] : c.members)
      crops.emplace_back(member.crop_box, member.score), total += member.score;
    f.box = c.box;
    f.crop_box = weighted_mean(crops);
    f.score = total / static_cast<float>(looks.size());
    if (f.score >= threshold) fused.push_back(f);
  }
  std::stable_sort(fused.begin(), fused.end(), [](const Face& a, const Face& b) { return a.score > b.score; });
  std::vector<Face> kept;
  for (const auto& f : fused)
    if (std::none_of(kept.begin(), kept.end(), [&](const Face& k) { return iou(k.box, f.box) > nms_iou; }))
      kept.push_back(f);
  return kept;
}

}  // namespace maskwatch
