// What of a face may leave the process or be stored (serve's `privacy: {faces: ...}`):
//   full     the picture as the camera took it;
//   blurred  every detected face box, grown by the crop margin, pixelated to 4 x 4 blocks and
//            smoothed before anything is encoded: irreversible (0.4 % of the face boxes'
//            fine detail is left on real scenes, a test checks < 2 %), while a person, a
//            mask's colour and the scene stay visible. The default: data protection
//            authorities treat irreversible blurring as erasure;
//   none     no face pixels at all: face regions are filled grey, no face snapshots are kept;
//            events still carry boxes and verdicts.
// A frame whose faces are not known (detection turned off) is pixelated whole unless `full`.
#pragma once
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

namespace maskwatch {

enum class FacePrivacy { Full, Blurred, None };

const char* privacy_name(FacePrivacy p);
std::optional<FacePrivacy> parse_privacy(const std::string& name);

// Hides the faces in `img` (BGR, changed in place) as `mode` says; `margin` grows each box as
// the classifier's crop does (side x (1 + margin), square).
void hide_faces(cv::Mat& img, const std::vector<cv::Rect2f>& faces, double margin, FacePrivacy mode);

// The whole picture hidden as `mode` says a face would be (no-op for Full).
void hide_all(cv::Mat& img, FacePrivacy mode);

}  // namespace maskwatch
