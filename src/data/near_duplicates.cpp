#include "data/near_duplicates.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <numeric>
#include <opencv2/calib3d.hpp>
#include <opencv2/features2d.hpp>
#include <opencv2/imgproc.hpp>

#include "util/progress.h"

namespace maskwatch {
namespace {

struct Features {
  std::vector<cv::KeyPoint> keypoints;
  cv::Mat descriptors;
};

cv::Mat gray_of(const cv::Mat& bgr) {
  cv::Mat g;
  cv::cvtColor(bgr, g, cv::COLOR_BGR2GRAY);
  return g;
}

int keypoints_for(const cv::Mat& image, const DuplicateOptions& o) {
  return std::max(50, static_cast<int>(o.orb_keypoints_at_224 * image.total() / (224.0 * 224.0)));
}

Features orb_features(const cv::Mat& gray, int keypoints) {
  thread_local cv::Ptr<cv::ORB> orb = cv::ORB::create(500, 1.2f, 8, 15, 0, 2, cv::ORB::HARRIS_SCORE, 15, 10);
  orb->setMaxFeatures(keypoints);
  Features f;
  orb->detectAndCompute(gray, cv::noArray(), f.keypoints, f.descriptors);
  return f;
}

// Rows L2-normalised.
cv::Mat normalized_rows(const cv::Mat& m) {
  cv::Mat out = m.clone();
  for (int r = 0; r < out.rows; ++r) {
    const double n = cv::norm(out.row(r));
    if (n > 0) out.row(r) /= n;
  }
  return out;
}

// Fraction of textured grid cells (inside the overlap) where the warped image and b have
// normalised cross-correlation >= 0.7. Local cells, not the whole image: a pasted mask or a
// shared studio backdrop makes whole-image correlation high between different people, but
// their eyes, hair and mouths still disagree cell by cell.
double grid_agreement(const cv::Mat& warped, const cv::Mat& b, const cv::Mat& valid, int grid) {
  int textured = 0, agree = 0;
  const int cw = b.cols / grid, ch = b.rows / grid;
  for (int gy = 0; gy < grid; ++gy)
    for (int gx = 0; gx < grid; ++gx) {
      const cv::Rect cell(gx * cw, gy * ch, cw, ch);
      const cv::Mat m = valid(cell);
      if (cv::countNonZero(m) < 0.9 * cell.area()) continue;
      cv::Scalar ma, sa, mb, sb;
      cv::meanStdDev(warped(cell), ma, sa, m);
      cv::meanStdDev(b(cell), mb, sb, m);
      if (sa[0] < 6 && sb[0] < 6) continue;  // flat (wall, mask fabric): says nothing
      ++textured;
      if (sa[0] < 1 || sb[0] < 1) continue;
      cv::Mat wa, wb;
      warped(cell).convertTo(wa, CV_32F, 1.0, -ma[0]);
      b(cell).convertTo(wb, CV_32F, 1.0, -mb[0]);
      const double ncc = cv::mean(wa.mul(wb), m)[0] / (sa[0] * sb[0]);
      agree += ncc >= 0.7;
    }
  return textured >= 4 ? static_cast<double>(agree) / textured : 0.0;
}

// Verifies that gray image b is a warped copy of a, given their features.
bool verify(const cv::Mat& a, const Features& fa, const cv::Mat& b, const Features& fb, const DuplicateOptions& o) {
  if (fa.descriptors.empty() || fb.descriptors.empty()) return false;
  thread_local cv::BFMatcher matcher(cv::NORM_HAMMING);
  std::vector<std::vector<cv::DMatch>> knn;
  matcher.knnMatch(fa.descriptors, fb.descriptors, knn, 2);
  std::vector<cv::Point2f> pa, pb;
  for (const auto& m : knn)
    if (m.size() == 2 && m[0].distance < 0.8f * m[1].distance) {
      pa.push_back(fa.keypoints[static_cast<size_t>(m[0].queryIdx)].pt);
      pb.push_back(fb.keypoints[static_cast<size_t>(m[0].trainIdx)].pt);
    }
  if (static_cast<int>(pa.size()) < o.min_inliers) return false;
  std::vector<uchar> inliers;
  const cv::Mat affine = cv::estimateAffine2D(pa, pb, inliers, cv::RANSAC, 3.0, 2000, 0.99, 10);
  if (affine.empty() || cv::countNonZero(inliers) < o.min_inliers) return false;
  // Warp all of a onto b and compare where both have pixels.
  cv::Mat warped, valid;
  cv::warpAffine(a, warped, affine, b.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, 0);
  cv::warpAffine(cv::Mat(a.size(), CV_8U, cv::Scalar(255)), valid, affine, b.size(), cv::INTER_NEAREST,
                 cv::BORDER_CONSTANT, 0);
  cv::erode(valid, valid, cv::Mat(), cv::Point(-1, -1), 2);
  if (cv::countNonZero(valid) < o.min_overlap * b.total()) return false;
  return grid_agreement(warped, b, valid, o.grid) >= o.min_cell_agreement;
}

struct UnionFind {
  std::vector<int> parent;
  explicit UnionFind(size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  int find(int x) {
    while (parent[static_cast<size_t>(x)] != x)
      x = parent[static_cast<size_t>(x)] = parent[static_cast<size_t>(parent[static_cast<size_t>(x)])];
    return x;
  }
  void unite(int a, int b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[static_cast<size_t>(std::max(a, b))] = std::min(a, b);
  }
};

// Group ids 0..k-1 in order of each group's first member.
void renumber(UnionFind& uf, DuplicateGroups& out) {
  const int n = static_cast<int>(out.group.size());
  std::vector<int> id(static_cast<size_t>(n), -1);
  out.num_groups = 0;
  for (int i = 0; i < n; ++i) {
    const int root = uf.find(i);
    if (id[static_cast<size_t>(root)] < 0) id[static_cast<size_t>(root)] = out.num_groups++;
    out.group[static_cast<size_t>(i)] = id[static_cast<size_t>(root)];
  }
}

}  // namespace

bool geometric_duplicate(const cv::Mat& a, const cv::Mat& b, const DuplicateOptions& o) {
  const cv::Mat ga = gray_of(a), gb = gray_of(b);
  cv::Mat gb_flip;
  cv::flip(gb, gb_flip, 1);
  const auto fa = orb_features(ga, keypoints_for(ga, o));
  return verify(ga, fa, gb, orb_features(gb, keypoints_for(gb, o)), o) ||
         verify(ga, fa, gb_flip, orb_features(gb_flip, keypoints_for(gb_flip, o)), o);
}

DuplicateGroups find_near_duplicates(const std::vector<cv::Mat>& images, const cv::Mat& embeddings,
                                     const cv::Mat& mirrored_embeddings, const DuplicateOptions& o,
                                     bool show_progress) {
  const int n = static_cast<int>(images.size());
  DuplicateGroups out;
  out.group.assign(static_cast<size_t>(n), 0);
  out.neighbours.assign(static_cast<size_t>(n), {});
  if (n == 0) return out;

  // Mirror-aware cosine similarity max(sim(a, b), sim(a, mirror(b))), in blocks of rows so
  // memory stays O(block x n) (a full n x n matrix is 0.5 GB for 11,000 images).
  const cv::Mat e = normalized_rows(embeddings), em = normalized_rows(mirrored_embeddings);
  struct Candidate {
    int a, b;
    float sim;
  };
  std::vector<Candidate> candidates;
  constexpr int kBlock = 256;
  for (int b0 = 0; b0 < n; b0 += kBlock) {
    const int b1 = std::min(n, b0 + kBlock);
    cv::Mat sim, sim_m;
    cv::gemm(e.rowRange(b0, b1), e, 1.0, cv::noArray(), 0.0, sim, cv::GEMM_2_T);
    cv::gemm(e.rowRange(b0, b1), em, 1.0, cv::noArray(), 0.0, sim_m, cv::GEMM_2_T);
    sim = cv::max(sim, sim_m);
    for (int i = b0; i < b1; ++i) {
      std::vector<int> order(static_cast<size_t>(n));
      std::iota(order.begin(), order.end(), 0);
      const float* row = sim.ptr<float>(i - b0);
      const int k = std::min(o.candidates_per_image + 1, n);
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](int x, int y) { return row[x] != row[y] ? row[x] > row[y] : x < y; });
      for (int r = 0; r < k; ++r) {
        const int j = order[static_cast<size_t>(r)];
        if (j == i) continue;
        out.neighbours[static_cast<size_t>(i)].emplace_back(j, row[j]);
        if (row[j] >= o.candidate_cosine) candidates.push_back({std::min(i, j), std::max(i, j), row[j]});
      }
    }
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const Candidate& x, const Candidate& y) { return x.a != y.a ? x.a < y.a : x.b < y.b; });
  candidates.erase(std::unique(candidates.begin(), candidates.end(),
                               [](const Candidate& x, const Candidate& y) { return x.a == y.a && x.b == y.b; }),
                   candidates.end());

  // ORB features of every image and its mirror.
  std::vector<cv::Mat> gray(static_cast<size_t>(n)), gray_flip(static_cast<size_t>(n));
  std::vector<Features> feat(static_cast<size_t>(n)), feat_flip(static_cast<size_t>(n));
  cv::parallel_for_(cv::Range(0, n), [&](const cv::Range& r) {
    for (int i = r.start; i < r.end; ++i) {
      const size_t s = static_cast<size_t>(i);
      gray[s] = gray_of(images[s]);
      cv::flip(gray[s], gray_flip[s], 1);
      feat[s] = orb_features(gray[s], keypoints_for(gray[s], o));
      feat_flip[s] = orb_features(gray_flip[s], keypoints_for(gray_flip[s], o));
    }
  });

  out.candidates = candidates.size();
  std::vector<char> accepted(candidates.size(), 0);
  std::vector<char> direct(candidates.size(), 0);
  ProgressBar bar("near-duplicates", candidates.size(), "pair");
  std::mutex bar_mutex;
  cv::parallel_for_(cv::Range(0, static_cast<int>(candidates.size())), [&](const cv::Range& r) {
    for (int c = r.start; c < r.end; ++c) {
      const auto [a, b, cosine] = candidates[static_cast<size_t>(c)];
      const size_t sa = static_cast<size_t>(a), sb = static_cast<size_t>(b);
      if (cosine >= o.direct_cosine) {
        accepted[static_cast<size_t>(c)] = direct[static_cast<size_t>(c)] = 1;
      } else {
        accepted[static_cast<size_t>(c)] = verify(gray[sa], feat[sa], gray[sb], feat[sb], o) ||
                                           verify(gray[sa], feat[sa], gray_flip[sb], feat_flip[sb], o);
      }
      if (show_progress) {
        std::lock_guard<std::mutex> lock(bar_mutex);
        bar.advance(1);
      }
    }
  });
  if (show_progress) bar.finish();

  UnionFind uf(static_cast<size_t>(n));
  for (size_t c = 0; c < candidates.size(); ++c) {
    if (!accepted[c]) continue;
    const auto [a, b, cosine] = candidates[c];
    uf.unite(a, b);
    out.pairs.push_back({a, b, cosine, direct[c] ? "embedding" : "geometry"});
  }
  renumber(uf, out);
  return out;
}

int merge_groups_by_key(DuplicateGroups& g, const std::vector<std::string>& keys) {
  const size_t n = g.group.size();
  UnionFind uf(n);
  std::vector<int> first_member(static_cast<size_t>(g.num_groups), -1);
  for (size_t i = 0; i < n; ++i) {  // keep the existing groups
    int& f = first_member[static_cast<size_t>(g.group[i])];
    if (f < 0)
      f = static_cast<int>(i);
    else
      uf.unite(f, static_cast<int>(i));
  }
  std::map<std::string, int> first;
  int merges = 0;
  for (size_t i = 0; i < n && i < keys.size(); ++i) {
    if (keys[i].empty()) continue;
    const auto [it, inserted] = first.emplace(keys[i], static_cast<int>(i));
    if (!inserted && uf.find(it->second) != uf.find(static_cast<int>(i))) {
      uf.unite(it->second, static_cast<int>(i));
      ++merges;
    }
  }
  renumber(uf, g);
  return merges;
}

nlohmann::json leak_report(const DuplicateGroups& g, const std::vector<int>& labels,
                           const std::vector<std::string>& keys, int num_classes, const std::vector<Split>& split,
                           const SplitFractions& fractions, uint64_t seed,
                           double loose_cosine) {
  auto count = [&](const std::vector<Split>& s) {
    std::vector<char> by_detector(s.size(), 0), by_embedding(s.size(), 0);
    for (const auto& p : g.pairs) {
      const auto sa = s[static_cast<size_t>(p.a)], sb = s[static_cast<size_t>(p.b)];
      if (sa == Split::Test && sb == Split::Train) by_detector[static_cast<size_t>(p.a)] = 1;
      if (sb == Split::Test && sa == Split::Train) by_detector[static_cast<size_t>(p.b)] = 1;
    }
    int tests = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] != Split::Test) continue;
      ++tests;
      for (const auto& [j, cos] : g.neighbours[i])
        if (cos >= loose_cosine && s[static_cast<size_t>(j)] == Split::Train) by_embedding[i] = 1;
    }
    const int det = static_cast<int>(std::count(by_detector.begin(), by_detector.end(), 1));
    const int emb = static_cast<int>(std::count(by_embedding.begin(), by_embedding.end(), 1));
    return nlohmann::json{{"test_images", tests},
                          {"with_near_copy_in_train", det},
                          {"with_near_copy_in_train_fraction", tests ? static_cast<double>(det) / tests : 0.0},
                          {"with_similar_train_image", emb},
                          {"similar_cosine_threshold", loose_cosine}};
  };
  std::vector<int> singletons(labels.size());
  std::iota(singletons.begin(), singletons.end(), 0);
  return {{"this_split", count(split)},
          {"plain_random_split", count(split_groups(labels, singletons, keys, num_classes, fractions, seed))},
          {"note",
           "near copies by the detector (embedding + geometric check); 'similar' = any train image among "
           "the top embedding neighbours with mirror-aware cosine >= the threshold (also catches the same "
           "person in another photo, and some look-alikes)"}};
}

nlohmann::json DuplicateGroups::summary() const {
  std::vector<int> sizes(static_cast<size_t>(num_groups), 0);
  for (int g : group) ++sizes[static_cast<size_t>(g)];
  int multi = 0, largest = 0, in_multi = 0;
  for (int s : sizes) {
    if (s > 1) {
      ++multi;
      in_multi += s;
    }
    largest = std::max(largest, s);
  }
  int by_embedding = 0;
  for (const auto& p : pairs) by_embedding += p.how == "embedding";
  return {{"groups", num_groups},
          {"groups_with_duplicates", multi},
          {"images_in_duplicate_groups", in_multi},
          {"largest_group", largest},
          {"pairs", pairs.size()},
          {"candidates_checked", candidates},
          {"pairs_by_embedding", by_embedding},
          {"pairs_by_geometry", static_cast<int>(pairs.size()) - by_embedding}};
}

}  // namespace maskwatch
