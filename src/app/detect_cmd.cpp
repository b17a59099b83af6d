// `maskwatch detect`: faces and mask verdicts for still images (no smoothing).
#include <fmt/format.h>
#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "app/commands.h"
#include "app/vision_options.h"
#include "media/image_io.h"
#include "eval/plots.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json_io.h"
#include "util/paths.h"
#include "util/threads.h"
#include "vision/events.h"
#include "vision/overlay.h"

namespace maskwatch::app {

namespace {

// Subfolders are not searched (a folder of class folders is not a folder of photos to look
// at); said, so a nested photo is not silently left out.
int count_subfolders(const std::filesystem::path& dir) {
  int n = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (std::error_code e; it->is_directory(e)) ++n;
  return n;
}

// The files named on the command line, folders expanded (images only, sorted), each file once.
// *unreadable: folder entries that could not be inspected (a dangling link, a loop).
std::vector<std::filesystem::path> list_inputs(const std::vector<std::string>& inputs, int* unreadable) {
  std::vector<std::filesystem::path> files;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (std::filesystem::is_directory(in, ec)) {
      const int before = *unreadable;
      const auto found = list_image_files(in, unreadable);
      if (found.empty() && *unreadable == before) spdlog::warn("no images in folder {}", in);
      if (const int sub = count_subfolders(in))
        spdlog::warn("{}: {} subfolder(s) not searched (name them as inputs too)", in, sub);
      files.insert(files.end(), found.begin(), found.end());
    } else if (std::filesystem::exists(in, ec) && is_video_file(in) &&
               !(std::filesystem::is_regular_file(in, ec) && has_image_signature(in))) {
      // A photo saved under a video's name, named by the user, is read as the photo it is;
      // only a plain file is looked into (opening a FIFO named cam.ts would wait for a writer).
      spdlog::warn("skipping {}: a video, not a still image (maskwatch run --source {} looks at every frame)", in,
                   in);
      ++*unreadable;
    } else if (std::filesystem::exists(in, ec)) {
      files.emplace_back(in);
    } else {
      // (a link loop or a folder we may not enter is not "not found")
      throw Error(ec ? fmt::format("input {}: {}", in, ec.message()) : "input not found: " + in);
    }
  }
  // One image is one result (and one annotated copy), however often it was named; a folder
  // named twice is said in a few lines, not one per image.
  constexpr int kSaid = 3;
  int repeats = 0;
  auto once = without_repeats(files, [&](const std::filesystem::path& again, const std::filesystem::path& first) {
    if (++repeats <= kSaid) spdlog::warn("{}: the same file as {}, looked at once", again.string(), first.string());
  });
  if (repeats > kSaid) spdlog::warn("{} more repeat(s), each file looked at once", repeats - kSaid);
  return once;
}

// Where each annotated copy goes: <out>/<stem>.png, and <stem>-2.png, -3, ... when inputs from
// different folders or with different extensions share a stem (one would overwrite the other).
// Refuses, before any work, a name that is one of the inputs (--out pointing at the images).
std::vector<std::filesystem::path> plan_annotated(const std::vector<std::filesystem::path>& files,
                                                  const std::filesystem::path& out) {
  const InputFiles inputs(files);
  std::vector<std::filesystem::path> planned;
  std::set<std::string> taken;
  for (const auto& file : files) {
    std::filesystem::path p = out / (file.stem().string() + ".png");
    for (int k = 2; !taken.insert(p.string()).second; ++k) p = out / fmt::format("{}-{}.png", file.stem().string(), k);
    if (p.filename().string() != file.stem().string() + ".png")
      spdlog::warn("{}: another input has the same name; its annotated copy is {}", file.string(), p.string());
    inputs.refuse_overwriting(p, "annotated copy");
    planned.push_back(std::move(p));
  }
  return planned;
}

// The annotated copy of a still image. A small image (a face crop) is shown larger, by a whole
// factor and with its pixels as they are, to at least kMinAnnotatedWidth: at its own size the
// label ran off the image ("with_mask 9" on a 90 px crop). Never beyond kMaxAnnotatedSide a side
// (a 2 x 6000 px image would have become 480 x 1440000, more than a PNG may hold).
constexpr int kMinAnnotatedWidth = 480, kMaxAnnotatedSide = 4096;
cv::Mat annotated_copy(const cv::Mat& img, std::vector<TrackedFace> faces, const std::vector<std::string>& classes) {
  const int k = std::min((kMinAnnotatedWidth + img.cols - 1) / img.cols,
                         std::max(1, kMaxAnnotatedSide / std::max(img.cols, img.rows)));
  cv::Mat annotated;
  if (k > 1) {
    cv::resize(img, annotated, {}, k, k, cv::INTER_NEAREST);
    for (auto& f : faces) f.box = cv::Rect2f(f.box.x * k, f.box.y * k, f.box.width * k, f.box.height * k);
  } else {
    annotated = img.clone();
  }
  draw_faces(annotated, faces, classes, false);
  return annotated;
}
}  // namespace

void add_detect_command(CLI::App& root) {
  struct Opts {
    VisionOptions vision;
    std::vector<std::string> inputs;
    std::string out, json_out;
    bool no_close_up_retry = false, single_look = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = root.add_subcommand("detect", "Find faces in still images and say whether each wears a mask");
  o->vision.add_to(cmd);
  cmd->add_option("inputs", o->inputs, "Images and/or folders of images")->required();
  cmd->add_option("--out", o->out,
                  "Write annotated copies here: <name>.png for <name>.jpg (<name>-2.png when two inputs share a "
                  "name; an image under 480 px wide is shown enlarged by a whole factor, while --json keeps the "
                  "image's own pixels); refused if that would overwrite an input");
  cmd->add_option(
      "--json", o->json_out,
      "Write [{image, width, height, annotated, faces: [{track_id (0: not tracked), x1, y1, x2, y2, label, score, "
      "face_score, probs, p_right}]}]");
  cmd->add_flag("--no-close-up-retry", o->no_close_up_retry,
                "Do not look again at an image in which no face is found (by default it is looked at again in the "
                "middle of a grey canvas three times its size, which finds faces in small close-ups and tight "
                "crops)");
  cmd->add_flag("--single-look", o->single_look,
                "Look for faces once, as `run` looks at a video frame (by default a still is looked at four times: "
                "at the detect width and 1.25 times it, each also mirrored; two for an image no wider than the "
                "detect width. The faces found are fused: a face's score (--face-threshold applies to it) is the "
                "mean over the looks, one that missed it counting 0. Higher face AP and precision at about the "
                "same recall, at about five times the detection cost of a 640x480 photo)");
  cmd->callback([o] {
    set_compute_threads(o->vision.threads);
    o->vision.detector.close_up_retry = !o->no_close_up_retry;
    o->vision.detector.multi_look = !o->single_look;
    if (!o->json_out.empty()) check_output_path(o->json_out, "JSON file");
    if (!o->out.empty()) check_output_dir(o->out, "output folder");
    // One-shot: an ensemble's other members are built only if a face needs them.
    MaskClassifier classifier(o->vision.model, {}, o->vision.engine(), 0, MemberLoading::WhenNeeded);
    classifier.warn_if_crops_differ(true, o->vision.model);
    FaceDetector detector(o->vision.detector_options());
    Pipeline pipeline(classifier, detector, o->vision.pipeline);
    int failed = 0, suspect = 0;
    const auto files = list_inputs(o->inputs, &failed);
    if (files.empty() && failed) throw Error(fmt::format("none of the {} image(s) could be read", failed));
    if (files.empty()) throw Error("no images to look at: the input folders hold no image files");
    if (!o->json_out.empty()) {
      auto inputs = o->vision.model_input_files();  // nor the models it runs
      inputs.insert(inputs.end(), files.begin(), files.end());
      InputFiles(inputs).refuse_overwriting(o->json_out, "JSON file");
    }
    const auto annotated_paths = o->out.empty() ? std::vector<std::filesystem::path>{} : plan_annotated(files, o->out);
    std::vector<std::pair<std::filesystem::path, std::string>> outputs = {{o->json_out, "JSON file"}};
    for (const auto& p : annotated_paths) outputs.emplace_back(p, "annotated copy " + p.filename().string());
    refuse_same_output(outputs);
    json results = json::array();
    for (size_t i = 0; i < files.size(); ++i) {
      const auto& file = files[i];
      std::string why, warning;
      cv::Mat img = load_image(file, &why, &warning);
      if (img.empty()) {
        spdlog::warn("skipping {}: {}", file.string(), why);
        ++failed;
        continue;
      }
      if (!warning.empty()) {
        spdlog::warn("{}: {}", file.string(), warning);
        ++suspect;
      }
      const auto faces = pipeline.classify_still(img);
      json jf = json::array();
      for (const auto& f : faces) jf.push_back(face_json(f, classifier.classes()));
      std::string verdicts;
      const auto top = [](const TrackedFace& f) {
        return static_cast<size_t>(std::max_element(f.raw.begin(), f.raw.end()) - f.raw.begin());
      };
      for (const auto& f : faces)
        verdicts += f.answered || f.raw.empty() ? fmt::format(" {} {:.0f}%", verdict_name(f.verdict, classifier.classes()),
                                             f.confidence * 100)
                               : fmt::format(" uncertain (cannot judge this face: {} {:.0f}%, P(right) {:.0f}%)",
                                             classifier.classes()[top(f)],
                                             f.confidence * 100, f.p_right * 100);
      fmt::print("{}: {} face{}{}\n", file.string(), faces.size(), faces.size() == 1 ? "" : "s", verdicts);
      results.push_back({{"image", file.string()}, {"width", img.cols}, {"height", img.rows}, {"faces", jf}});
      if (!o->out.empty()) {
        save_png(annotated_paths[i], annotated_copy(img, faces, classifier.classes()));
        results.back()["annotated"] = annotated_paths[i].string();
      }
    }
    // Nothing read, nothing written: an earlier --json stays (it had been replaced by []).
    if (results.empty()) throw Error(fmt::format("none of the {} image(s) could be read", failed));
    if (!o->json_out.empty()) write_json_atomic(o->json_out, results);
    if (failed) spdlog::warn("{} image(s) skipped", failed);
    if (suspect) spdlog::warn("{} image(s) decoded with problems (see above)", suspect);
  });
}

}  // namespace maskwatch::app
