// The face-stage settings `run` and `detect` take as flags and `serve` takes as config keys
// (detector: ...): name, flag, range and meaning declared once, so the CLI and the config
// never disagree on what a value means or may be. Defaults live in FaceDetectorOptions,
// PipelineOptions and ClassifyScheduleOptions.
#pragma once

namespace maskwatch {

struct SettingSpec {
  const char* key;   // serve config key (under detector:)
  const char* flag;  // run / detect option
  double lo, hi;     // allowed range
  const char* help;
};

namespace face_stage {
inline constexpr SettingSpec kFaceThreshold{"score_threshold", "--face-threshold", 0.05, 1.0,
                                            "face score (YuNet) needed to show a face"};
inline constexpr SettingSpec kDetectWidth{"detect_width", "--detect-width", 64, 4096,
                                          "frames are scaled to this width for face detection (wider finds "
                                          "smaller faces, costs more and finds more false faces in texture: "
                                          "precision 0.75 at 384, 0.71 at 640 on real scenes)"};
inline constexpr SettingSpec kMargin{"margin", "--margin", 0.0, 3.0,
                                     "crop side = face side x (1 + margin) for the classifier (0.5: head and "
                                     "shoulders, like the training photos)"};
inline constexpr SettingSpec kReclassifyAfter{"reclassify_after_s", "--reclassify-after", 0.0, 10.0,
                                              "seconds after which a steady face is classified again; new, unsure or "
                                              "moving faces are classified every frame (0: every face every frame)"};
}  // namespace face_stage

}  // namespace maskwatch
