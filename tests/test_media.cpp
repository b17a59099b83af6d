// Our image and video I/O (libjpeg-turbo, libpng, FFmpeg) against OpenCV's imgcodecs and
// videoio, which the runtime no longer loads: decoded pixels must be the same, so accuracy
// numbers, training and the clip tests mean what they meant before.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "media/area_resize.h"
#include "media/image_io.h"
#include "media/image_codec.h"
#include "media/save_png.h"
#include "media/v4l2_camera.h"
#include "media/video_reader.h"
#include "media/video_writer.h"
#include "perf/timing.h"
#include "support.h"
#include "util/error.h"
#include "util/files.h"
#include "vision/recorder.h"
#include "vision/source.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

bool same_pixels(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && (a.empty() || cv::norm(a, b, cv::NORM_INF) == 0);
}

// A picture with edges, gradients and noise in every channel (a flat colour would hide a
// swapped channel or a chroma filter).
cv::Mat test_picture(cv::Size size, int channels, int depth = CV_8U, uint64_t seed = 7) {
  cv::Mat img(size, CV_MAKETYPE(depth, channels));
  cv::RNG rng(seed);
  rng.fill(img, cv::RNG::UNIFORM, 0, depth == CV_16U ? 65536 : 256);
  cv::Mat blurred;
  cv::GaussianBlur(img, blurred, cv::Size(7, 7), 2);
  cv::rectangle(blurred, cv::Rect(size.width / 4, size.height / 4, size.width / 3, size.height / 3),
                cv::Scalar::all(depth == CV_16U ? 60000 : 230), cv::FILLED);
  return blurred;
}

}  // namespace

TEST(Media, JpegDecodingMatchesOpenCvOnTheSharedPhotos) {
  // Every 16th photo of each data set (about 730 JPEGs from six cameras and tools).
  int compared = 0;
  for (const char* set : {"data/seed-masks", "data/real-masks", "data/real-masks-incorrect"}) {
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(shared_path(set)))
      if (e.is_regular_file() && is_image_file(e.path())) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    ASSERT_GT(files.size(), 100u) << set;
    for (size_t i = 0; i < files.size(); i += 16) {
      const cv::Mat ours = load_image(files[i]);
      const cv::Mat theirs = cv::imread(files[i].string(), cv::IMREAD_COLOR);
      ASSERT_TRUE(same_pixels(ours, theirs)) << files[i];
      ++compared;
    }
  }
  EXPECT_GT(compared, 700);
}

TEST(Media, PngDecodingMatchesOpenCvForEveryLayout) {
  TempDir dir;
  int n = 0;
  for (int depth : {CV_8U, CV_16U})
    for (int channels : {1, 3, 4}) {
      const cv::Mat img = test_picture({37, 23}, channels, depth, static_cast<uint64_t>(n));
      const auto path = dir / ("p" + std::to_string(n++) + ".png");
      ASSERT_TRUE(cv::imwrite(path.string(), img));
      const auto bytes = read_file_bytes(path);
      const cv::Mat ours = decode_png(bytes.data(), bytes.size());
      EXPECT_TRUE(same_pixels(ours, cv::imread(path.string(), cv::IMREAD_UNCHANGED))) << depth << " " << channels;
      EXPECT_TRUE(same_pixels(ours, img)) << depth << " " << channels;
    }
  // 1-bit gray (bilevel) expands to 0/255 as OpenCV gives it.
  cv::Mat bw = test_picture({40, 9}, 1) > 128;
  const auto path = dir / "bw.png";
  ASSERT_TRUE(cv::imwrite(path.string(), bw, {cv::IMWRITE_PNG_BILEVEL, 1}));
  const auto bytes = read_file_bytes(path);
  EXPECT_TRUE(same_pixels(decode_png(bytes.data(), bytes.size()), cv::imread(path.string(), cv::IMREAD_UNCHANGED)));
}

TEST(Media, EncodersRoundTrip) {
  for (int channels : {1, 3, 4}) {
    const cv::Mat img = test_picture({64, 40}, channels);
    const auto png = encode_png(img);
    EXPECT_TRUE(same_pixels(cv::imdecode(png, cv::IMREAD_UNCHANGED), img)) << channels;
  }
  const cv::Mat img = test_picture({160, 120}, 3);
  const auto jpg = encode_jpeg(img, 95);
  const cv::Mat back = cv::imdecode(jpg, cv::IMREAD_COLOR);
  ASSERT_EQ(back.size(), img.size());
  EXPECT_GT(cv::PSNR(back, img), 30.0);
  EXPECT_TRUE(same_pixels(decode_jpeg(jpg.data(), jpg.size()), back));  // and our decoder reads it as OpenCV
  EXPECT_THROW(encode_jpeg(cv::Mat(4, 4, CV_32FC3), 90), Error);
  EXPECT_THROW(encode_png(cv::Mat()), Error);
}

TEST(Media, OtherImageFormatsDecodeThroughFfmpeg) {
  TempDir dir;
  const cv::Mat img = test_picture({50, 30}, 3);
  for (const char* ext : {".bmp", ".tiff", ".ppm", ".webp"}) {
    const auto path = dir / (std::string("x") + ext);
    // WebP quality above 100 is lossless.
    ASSERT_TRUE(cv::imwrite(path.string(), img, {cv::IMWRITE_WEBP_QUALITY, 101})) << ext;
    std::string why;
    const cv::Mat ours = load_image(path, &why);
    EXPECT_TRUE(same_pixels(ours, img)) << ext << ": " << why;
  }
  const cv::Mat gray = test_picture({21, 11}, 1);
  ASSERT_TRUE(cv::imwrite((dir / "g.pgm").string(), gray));
  cv::Mat gray_bgr;
  cv::cvtColor(gray, gray_bgr, cv::COLOR_GRAY2BGR);
  EXPECT_TRUE(same_pixels(load_image(dir / "g.pgm"), gray_bgr));
}

TEST(Media, UndecodableBytesGiveAReason) {
  std::string why;
  const std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd'};
  EXPECT_TRUE(decode_image(text, &why).empty());
  EXPECT_FALSE(why.empty());
  auto png = encode_png(test_picture({30, 30}, 3));
  png.resize(png.size() / 2);
  why.clear();
  EXPECT_TRUE(decode_png(png.data(), png.size(), &why).empty());
  EXPECT_NE(why.find("PNG decoder: truncated"), std::string::npos) << why;
  // Which it is, said: a header claiming 40000 x 40000 pixels (CRC mended), a flipped pixel byte.
  auto large = encode_png(test_picture({30, 30}, 3));
  for (int at : {16, 20}) {  // IHDR width, height: big-endian 40000
    large[at] = 0, large[at + 1] = 0, large[at + 2] = 0x9C, large[at + 3] = 0x40;
  }
  uint32_t crc = 0xFFFFFFFFu;  // CRC-32 of the chunk type and data (bytes 12-28)
  for (int i = 12; i < 29; ++i) {
    crc ^= large[i];
    for (int b = 0; b < 8; ++b) crc = crc & 1 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
  }
  crc ^= 0xFFFFFFFFu;
  for (int k = 0; k < 4; ++k) large[29 + k] = static_cast<uint8_t>(crc >> (24 - 8 * k));
  why.clear();
  EXPECT_TRUE(decode_png(large.data(), large.size(), &why).empty());
  EXPECT_NE(why.find("too large (40000 x 40000 pixels"), std::string::npos) << why;
  auto flipped = encode_png(test_picture({30, 30}, 3));
  flipped[flipped.size() - 20] ^= 0xFF;  // inside the last IDAT: its CRC no longer matches
  why.clear();
  EXPECT_TRUE(decode_png(flipped.data(), flipped.size(), &why).empty());
  EXPECT_NE(why.find("PNG decoder: corrupt"), std::string::npos) << why;
  // A header claiming 60000x60000 pixels is refused before any memory is taken.
  auto huge = encode_jpeg(test_picture({16, 16}, 3), 90);
  for (size_t i = 2; i + 8 < huge.size(); ++i)
    if (huge[i] == 0xFF && huge[i + 1] == 0xC0) {  // SOF0: length(2) precision(1) height(2) width(2)
      huge[i + 5] = huge[i + 7] = 0xEA;
      huge[i + 6] = huge[i + 8] = 0x60;
      break;
    }
  why.clear();
  EXPECT_TRUE(decode_jpeg(huge.data(), huge.size(), &why).empty());
  EXPECT_NE(why.find("too large"), std::string::npos) << why;
  std::vector<uint8_t> header_only = {0xFF, 0xD8, 0xFF, 0xE0, 0x00};
  why.clear();
  EXPECT_TRUE(decode_jpeg(header_only.data(), header_only.size(), &why).empty());
  EXPECT_NE(why.find("JPEG"), std::string::npos) << why;
}

TEST(Media, VideoFramesMatchOpenCvOnTheClip) {
  const auto clip = shared_path("samples/video/webcam-mask-on-off.mp4").string();
  cv::VideoCapture cap(clip, cv::CAP_FFMPEG);
  ASSERT_TRUE(cap.isOpened());
  VideoReader reader;
  ASSERT_TRUE(reader.open(clip)) << reader.error();
  EXPECT_DOUBLE_EQ(reader.fps(), cap.get(cv::CAP_PROP_FPS));
  EXPECT_EQ(reader.width(), 1280);
  EXPECT_EQ(reader.height(), 720);
  int frames = 0;
  for (cv::Mat theirs; cap.read(theirs); ++frames) {
    cv::Mat ours;
    ASSERT_TRUE(reader.read(ours)) << "frame " << frames;
    ASSERT_TRUE(same_pixels(ours, theirs)) << "frame " << frames;
  }
  cv::Mat extra;
  EXPECT_FALSE(reader.read(extra));
  EXPECT_EQ(frames, 78);
}

TEST(Media, WrittenVideosPlayBackInOpenCv) {
  TempDir dir;
  std::vector<cv::Mat> frames;
  for (int i = 0; i < 20; ++i) {
    cv::Mat f = test_picture({160, 120}, 3, CV_8U, 1);
    cv::circle(f, cv::Point(10 + 6 * i, 60), 15, cv::Scalar(0, 0, 255), cv::FILLED);
    frames.push_back(f);
  }
  for (const char* name : {"v.mp4", "v.avi"}) {
    VideoWriter w;
    ASSERT_TRUE(w.open(dir / name, 15, {160, 120})) << w.error();
    for (const auto& f : frames) ASSERT_TRUE(w.write(f)) << w.error();
    EXPECT_FALSE(w.write(cv::Mat(10, 10, CV_8UC3)));  // wrong size: refused, not written
    ASSERT_TRUE(w.close()) << w.error();
    cv::VideoCapture cap((dir / name).string(), cv::CAP_FFMPEG);
    ASSERT_TRUE(cap.isOpened()) << name;
    EXPECT_NEAR(cap.get(cv::CAP_PROP_FPS), 15.0, 1e-6) << name;
    int n = 0;
    for (cv::Mat f; cap.read(f); ++n) {
      ASSERT_LT(n, 20) << name;
      EXPECT_GT(cv::PSNR(f, frames[static_cast<size_t>(n)]), 25.0) << name << " frame " << n;
    }
    EXPECT_EQ(n, 20) << name;
  }
  VideoWriter w;
  EXPECT_FALSE(w.open(dir / "v.gif", 15, {160, 120}));
  EXPECT_FALSE(w.open(dir / "odd.mp4", 15, {161, 120}));
  EXPECT_NE(w.error().find("161x120"), std::string::npos) << w.error();
  EXPECT_FALSE(w.open(dir / "no" / "such" / "dir" / "v.mp4", 15, {160, 120}));
}

// A recording of frames of mixed sizes (`run --source folder --record`): later frames are
// fitted into the first one's size with their aspect kept, not stretched.
TEST(Media, RecordingFitsFramesOfAnotherSizeWithoutStretchingThem) {
  TempDir dir;
  {
    VideoRecorder rec(dir / "mixed.avi", 5);
    rec.write(cv::Mat(120, 160, CV_8UC3, cv::Scalar(0, 0, 200)));  // landscape: fixes 160x120
    rec.write(cv::Mat(160, 120, CV_8UC3, cv::Scalar(240, 240, 240)));  // portrait: 90x120, centred
    rec.close();
  }
  cv::VideoCapture cap((dir / "mixed.avi").string(), cv::CAP_FFMPEG);
  ASSERT_TRUE(cap.isOpened());
  cv::Mat first, second;
  ASSERT_TRUE(cap.read(first) && cap.read(second));
  EXPECT_EQ(second.size(), cv::Size(160, 120));
  EXPECT_LT(cv::mean(second(cv::Rect(0, 0, 30, 120)))[1], 20.0);     // black bars left
  EXPECT_LT(cv::mean(second(cv::Rect(130, 0, 30, 120)))[1], 20.0);   // and right
  EXPECT_GT(cv::mean(second(cv::Rect(40, 10, 80, 100)))[1], 200.0);  // the picture, whole height
}

// A run killed while it records (kill -9, the OOM killer, power loss): its .mp4 part had no
// index and did not play at all (review of 2026-12-07), and the next recording to the same
// name overwrote it. Now the part is fragmented and plays up to its last fragment, and the
// next recording keeps it.
TEST(Media, ARecordingCutOffByAKillStillPlaysAndIsKept) {
  TempDir dir;
  const auto frame = [](int i) {
    cv::Mat f = test_picture({160, 120}, 3, CV_8U, 1);
    cv::circle(f, cv::Point(10 + 3 * i, 60), 15, cv::Scalar(0, 0, 255), cv::FILLED);
    return f;
  };
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // records 40 frames and dies without closing anything
    try {
      VideoRecorder rec(dir / "k.mp4", 10);
      for (int i = 0; i < 40; ++i) rec.write(frame(i));
      ::kill(::getpid(), SIGKILL);  // before rec's destructor could finish the file
    } catch (...) {
    }
    _exit(3);  // never back into the test runner
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  const auto part = dir / ".k.part.mp4";
  ASSERT_TRUE(fs::exists(part));
  EXPECT_FALSE(fs::exists(dir / "k.mp4"));
  const auto played = [](const fs::path& p) {
    cv::VideoCapture cap(p.string(), cv::CAP_FFMPEG);
    int n = 0;
    for (cv::Mat f; cap.isOpened() && cap.read(f);) ++n;
    return n;
  };
  // Fragments close at each keyframe (every 12 frames): 36 of the 40 frames were written out.
  EXPECT_EQ(played(part), 36);
  {
    VideoRecorder next(dir / "k.mp4", 10);
    next.write(frame(0));
    next.close();
  }
  EXPECT_EQ(played(dir / "k.interrupted.mp4"), 36);
  EXPECT_EQ(played(dir / "k.mp4"), 1);
  EXPECT_FALSE(fs::exists(part));
  // A part that is being written is not left over: a second recorder to that name is refused.
  VideoRecorder first(dir / "busy.mp4", 10);
  first.write(frame(0));
  EXPECT_THROW(
      {
        try {
          VideoRecorder second(dir / "busy.mp4", 10);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("another run is recording to it"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  first.close();
  EXPECT_EQ(played(dir / "busy.mp4"), 1);
  EXPECT_FALSE(fs::exists(dir / "busy.interrupted.mp4"));
}

// A video cut short (or damaged) ended as if it were whole: 33 of 78 frames, no word of it.
TEST(Media, AVideoCutShortSaysHowManyFramesItLacks) {
  TempDir dir;
  VideoWriter w;
  ASSERT_TRUE(w.open(dir / "v.avi", 10, {160, 120})) << w.error();
  for (int i = 0; i < 40; ++i) ASSERT_TRUE(w.write(test_picture({160, 120}, 3, CV_8U, static_cast<uint64_t>(i))));
  ASSERT_TRUE(w.close()) << w.error();
  VideoReader whole;
  ASSERT_TRUE(whole.open((dir / "v.avi").string()));
  EXPECT_EQ(whole.listed_frames(), 40);
  const std::string bytes = read_bytes(dir / "v.avi");
  write_bytes(dir / "half.avi", bytes.substr(0, bytes.size() / 2));  // its header still lists 40
  const auto frames_and_log = [](const fs::path& p) {
    CapturedLog log;
    int n = 0;
    {
      auto source = open_reader(p.string());
      for (SourceFrame f; source->read(f);) ++n;
      SourceFrame after;
      source->read(after);  // said once, not at every read past the end
    }
    return std::make_pair(n, log.text());
  };
  const auto [n, log] = frames_and_log(dir / "half.avi");
  EXPECT_GT(n, 10);
  EXPECT_LT(n, 30);
  EXPECT_NE(log.find(fmt::format("half.avi: {} frames read of the 40 its container lists: the file is damaged or cut "
                                 "short", n)),
            std::string::npos)
      << log;
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
  const auto [all, quiet] = frames_and_log(dir / "v.avi");
  EXPECT_EQ(all, 40);
  EXPECT_EQ(quiet, "");
}

// Widths whose BGR rows are no multiple of swscale's SIMD blocks (a 360 px wide portrait
// corrupted the heap: swscale wrote past the last row); H.264 for browsers reads back too.
TEST(Media, OddWidthVideosDecodeIntoContinuousFramesWithoutOverrunningThem) {
  TempDir dir;
  for (const auto& [size, browsers] :
       {std::pair<cv::Size, bool>{{360, 640}, false}, {{360, 640}, true}, {{202, 98}, true}, {{2, 2}, false}}) {
    const fs::path file = dir / fmt::format("v{}x{}{}.mp4", size.width, size.height, browsers ? "h264" : "");
    VideoWriter w;
    VideoWriterOptions o;
    o.for_browsers = browsers;
    ASSERT_TRUE(w.open(file, 15, size, o)) << w.error();
    for (int i = 0; i < 12; ++i) ASSERT_TRUE(w.write(test_picture(size, 3, CV_8U, i))) << w.error();
    ASSERT_TRUE(w.close()) << w.error();
    for (int pass = 0; pass < 3; ++pass) {
      VideoReader r;
      ASSERT_TRUE(r.open(file.string())) << r.error();
      int n = 0;
      for (cv::Mat f; r.read(f); ++n) {
        ASSERT_EQ(f.size(), size);
        ASSERT_TRUE(f.isContinuous());
        // A heap the decoder wrote past would abort in these allocations sooner or later.
        std::vector<std::vector<char>> churn(64, std::vector<char>(static_cast<size_t>(f.total() * 3 % 4096 + 1)));
      }
      EXPECT_EQ(n, 12) << file;
    }
  }
}

// A legal file name of up to 255 bytes is written: the temporary sibling of an atomic write had
// added 13 bytes to it and failed with "File name too long" from 243 bytes on.
TEST(Media, AnOutputWithTheLongestLegalNameIsWritten) {
  TempDir dir;
  for (const size_t length : {size_t{243}, size_t{255}}) {
    for (const char* ext : {".json", ".png"}) {
      const auto file = dir / (std::string(length - std::strlen(ext), 'L') + ext);
      ASSERT_EQ(file.filename().string().size(), length);
      EXPECT_NO_THROW(check_output_path(file, "output")) << length << ext;
      if (std::string(ext) == ".png")
        save_png(file, cv::Mat(4, 4, CV_8UC3, cv::Scalar(1, 2, 3)));
      else
        write_file_atomic(file, std::string("{}"));
      EXPECT_TRUE(fs::is_regular_file(file)) << length << ext;
    }
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()), 4);  // no temporary left
  // A recording too: its ".<stem>.part" name, and the name an interrupted part is kept under.
  const auto video = dir / (std::string(251, 'V') + ".avi");
  const auto record = [&] {
    VideoRecorder rec(video, 10);
    for (int i = 0; i < 3; ++i) rec.write(cv::Mat(48, 64, CV_8UC3, cv::Scalar(10, 20, 30)));
    rec.close();
  };
  EXPECT_NO_THROW(record());
  EXPECT_TRUE(fs::is_regular_file(video));
  const fs::path part = sibling_name(video, ".", ".part");
  EXPECT_EQ(part.filename().string().size(), 255u);
  fs::copy_file(video, part);  // as a killed recording leaves it
  EXPECT_NO_THROW(record());
  EXPECT_TRUE(fs::is_regular_file(sibling_name(video, "", ".interrupted"))) << "kept";
  EXPECT_FALSE(fs::exists(part));
}

// serve's `loop: true` opens a photo again every second: a cut JPEG is said once, not each time.
TEST(Media, ACutPhotoThatIsReadAgainAndAgainIsSaidOnce) {
  TempDir dir;
  std::vector<uint8_t> jpeg;
  cv::Mat noise(240, 320, CV_8UC3);
  cv::randu(noise, 0, 255);
  ASSERT_TRUE(cv::imencode(".jpg", noise, jpeg));
  write_bytes(dir / "cut.jpg", std::string(jpeg.begin(), jpeg.begin() + static_cast<long>(jpeg.size() / 2)));
  CapturedLog log;
  for (int pass = 0; pass < 3; ++pass) {
    auto source = open_reader((dir / "cut.jpg").string());
    SourceFrame f;
    ASSERT_TRUE(source->read(f));
    EXPECT_EQ(f.image.rows, 240);
  }
  const std::string said = log.text();
  EXPECT_NE(said.find("cut.jpg: truncated JPEG"), std::string::npos) << said;
  EXPECT_EQ(said.find("cut.jpg: truncated JPEG"), said.rfind("cut.jpg: truncated JPEG")) << said;
}

// The stem is cut to fit 255 bytes, never inside a UTF-8 character (a whole one at the cut
// stays), and marked with a hash of the whole stem; the extension stays.
TEST(Media, ASiblingNameFitsAndKeepsWholeCharacters) {
  const std::string e = "\xC3\xA9";  // é, 2 bytes
  // ".", ".part", ".jpg" and "~xxxxxxxx" leave 236 bytes of the stem.
  const auto cut = [&](const std::string& stem) {
    const std::string name = sibling_name(fs::path("d") / (stem + ".jpg"), ".", ".part").filename().string();
    EXPECT_LE(name.size(), 255u) << name;
    EXPECT_EQ(name.substr(name.size() - 9), ".part.jpg");
    EXPECT_EQ(name[name.size() - 18], '~') << name;
    return name.substr(1, name.size() - 19);  // the stem as kept
  };
  const std::string tail(20, 'b');  // over 245 bytes in all: cut
  EXPECT_EQ(cut(std::string(235, 'a') + e + tail), std::string(235, 'a'));      // the cut falls inside the é
  EXPECT_EQ(cut(std::string(234, 'a') + e + tail), std::string(234, 'a') + e);  // ... right after it: kept
  EXPECT_EQ(cut(std::string(234, 'a') + "\xE2\x82\xAC" + tail), std::string(234, 'a'));  // inside a 3-byte €
  // Two names that differ only after the cut get two siblings.
  EXPECT_NE(sibling_name(std::string(300, 'a') + "1.mp4", ".", ".part"),
            sibling_name(std::string(300, 'a') + "2.mp4", ".", ".part"));
  // Names on disk stay what they were (a recording's part left by a kill is found by its name):
  // short ones as ever, cut ones with the FNV-1a hash of the whole stem.
  EXPECT_EQ(sibling_name(fs::path("x.jpg"), "", ".interrupted"), fs::path("x.interrupted.jpg"));
  EXPECT_EQ(sibling_name(fs::path("d/x.mp4"), ".", ".part"), fs::path("d/.x.part.mp4"));
  EXPECT_EQ(sibling_name(std::string(300, 'a') + "1.mp4", ".", ".part"),
            fs::path("." + std::string(236, 'a') + "~8e9b6890.part.mp4"));
  // An "extension" too long to keep is cut with the rest.
  EXPECT_LE(sibling_name("a." + std::string(253, 'e'), ".", ".tmp01234567").filename().string().size(), 255u);
}

// What `read_file_text` says when it may not read a file (a config readable by root only, read by
// the service's user): the reason, not only "cannot open" or "not found". Tests run as root here,
// whom no mode stops, so a child process (forked: the test's own process stays root) becomes nobody first.
TEST(Media, AFileThatMayNotBeReadSaysWhy) {
  TempDir dir;
  fs::permissions(dir.path, fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  const auto private_file = dir / "open" / "maskwatch.yaml";  // the folder may be searched, the file not read
  const auto hidden_file = dir / "closed" / "maskwatch.yaml";  // the folder may not be searched
  for (const auto& file : {private_file, hidden_file}) {
    write_file_atomic(file, std::string("cameras: []\n"));
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  }
  fs::permissions(dir / "open", fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  fs::permissions(dir / "closed", fs::perms::owner_all);
  const std::string said = run_isolated([&] {
    std::string out = "nobody";
    if (getuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return std::string("still root");
    for (const auto& file : {private_file, hidden_file}) {
      try {
        out += "|read " + read_file_text(file, "config file");
      } catch (const std::exception& e) {
        out += std::string("|") + e.what();
      }
    }
    return out;
  });
  EXPECT_EQ(said, "nobody|cannot open config file: " + private_file.string() +
                      ": Permission denied|cannot open config file: " + hidden_file.string() + ": Permission denied");
}

TEST(Media, MissingFilesAndDevicesAreReasonsNotCrashes) {
  VideoReader r;
  EXPECT_FALSE(r.open("/nonexistent/clip.mp4"));
  EXPECT_FALSE(r.error().empty());
  cv::Mat f;
  EXPECT_FALSE(r.read(f));
  VideoReaderOptions camera;
  camera.camera = true;
  EXPECT_FALSE(r.open("/dev/video97", camera));
  EXPECT_FALSE(r.error().empty());
  // A file that is not a video.
  TempDir dir;
  write_file_atomic(dir / "notes.mp4", std::string("these are not frames"));
  EXPECT_FALSE(r.open((dir / "notes.mp4").string()));
}

TEST(Media, CameraYuyvFramesConvertAsOpenCvDoes) {
  // 6x2 pixels in rows padded to 16 bytes, as drivers may pad them.
  const int w = 6, h = 2;
  const size_t stride = 16;
  std::vector<uint8_t> buf(stride * h, 0xEE);
  cv::RNG rng(3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w * 2; ++x) buf[static_cast<size_t>(y) * stride + static_cast<size_t>(x)] = rng.uniform(0, 256);
  const cv::Mat ours = v4l2_frame_to_bgr(kFourccYuyv, buf.data(), buf.size(), w, h, stride);
  cv::Mat expected;
  cv::cvtColor(cv::Mat(h, w, CV_8UC2, buf.data(), stride), expected, cv::COLOR_YUV2BGR_YUYV);
  EXPECT_TRUE(same_pixels(ours, expected));
  std::string why;
  EXPECT_TRUE(v4l2_frame_to_bgr(kFourccYuyv, buf.data(), buf.size() - 1, w, h, stride, &why).empty());
  EXPECT_NE(why.find("short"), std::string::npos) << why;
}

TEST(Media, CameraMjpegWithoutHuffmanTablesDecodes) {
  // Webcams leave the standard Huffman tables out of MJPEG frames; cut them from a JPEG
  // written with the standard tables and it must decode to the same pixels.
  const cv::Mat img = test_picture({64, 48}, 3);
  const auto jpg = encode_jpeg(img, 90);
  std::vector<uint8_t> mjpeg(jpg.begin(), jpg.begin() + 2);
  size_t at = 2, cut = 0;
  while (at + 4 <= jpg.size() && jpg[at] == 0xFF && jpg[at + 1] != 0xDA) {
    const size_t len = static_cast<size_t>(jpg[at + 2]) << 8 | jpg[at + 3];
    if (jpg[at + 1] == 0xC4)
      ++cut;
    else
      mjpeg.insert(mjpeg.end(), jpg.begin() + static_cast<long>(at), jpg.begin() + static_cast<long>(at + 2 + len));
    at += 2 + len;
  }
  mjpeg.insert(mjpeg.end(), jpg.begin() + static_cast<long>(at), jpg.end());
  ASSERT_GT(cut, 0u);
  const cv::Mat ours = v4l2_frame_to_bgr(kFourccMjpeg, mjpeg.data(), mjpeg.size(), 64, 48, 0);
  EXPECT_TRUE(same_pixels(ours, decode_jpeg(jpg.data(), jpg.size())));
}

TEST(Media, CameraDevicesThatAreNotCamerasAreRefusedAsSuch) {
  V4l2Camera cam;
  EXPECT_FALSE(cam.open("/dev/video97", 640, 480));
  EXPECT_TRUE(cam.device_failed());
  EXPECT_NE(cam.error().find("No such file"), std::string::npos) << cam.error();
  EXPECT_FALSE(cam.open("/dev/null", 640, 480));
  EXPECT_TRUE(cam.device_failed());
  EXPECT_NE(cam.error().find("not a V4L2 device"), std::string::npos) << cam.error();
  cv::Mat f;
  EXPECT_FALSE(cam.read(f, 10));
}

// The face detector's shrink (media/area_resize.h) must give what OpenCV's INTER_AREA gives, so
// the detector sees the pixels it was measured and fine-tuned on: at most one grey level apart,
// on at most 1 % of the values, for the shapes frames and photos come in, odd ones and edge
// cells cut short included, every channel count; whole ratios, growing and other depths go to
// OpenCV itself (equal exactly); dst may be src.
TEST(Media, AreaShrinkEqualsOpenCvsInterArea) {
  cv::RNG rng(11);
  struct Case { cv::Size from, to; };
  const Case cases[] = {{{640, 480}, {384, 288}}, {{1280, 720}, {384, 216}}, {{641, 479}, {383, 287}},
                        {{4000, 3000}, {480, 360}}, {{1000, 10}, {7, 3}}, {{97, 61}, {96, 60}},
                        {{300, 300}, {160, 160}}, {{5, 4}, {1, 1}}, {{161, 160}, {160, 160}},
                        {{5, 5}, {1, 1}}, {{768, 576}, {384, 288}}};  // the last two: whole ratios, OpenCV's
  for (const int channels : {1, 2, 3, 4})
    for (const auto& c : cases) {
      // Noise on the right half, a smooth picture with a flat rectangle on the left.
      cv::Mat src(c.from, CV_8UC(channels));
      rng.fill(src, cv::RNG::UNIFORM, 0, 256);
      const cv::Rect left(0, 0, std::max(1, src.cols / 2), src.rows);
      test_picture(c.from, channels)(left).copyTo(src(left));
      cv::Mat ours, theirs;
      shrink_area(src, ours, c.to);
      cv::resize(src, theirs, c.to, 0, 0, cv::INTER_AREA);
      ASSERT_EQ(ours.size(), c.to);
      ASSERT_EQ(ours.type(), src.type());
      cv::Mat diff;
      cv::absdiff(ours, theirs, diff);
      double worst = 0;
      cv::minMaxLoc(diff.reshape(1), nullptr, &worst);
      const auto off = cv::countNonZero(diff.reshape(1));
      EXPECT_LE(worst, 1.0) << channels << " channels, " << c.from << " -> " << c.to;
      EXPECT_LE(off, std::max(1, static_cast<int>(diff.total() * channels / 100)))
          << channels << " channels, " << c.from << " -> " << c.to;
    }
  // A region of a larger image (rows not contiguous), and the result written over its source.
  cv::Mat big(600, 900, CV_8UC3);
  rng.fill(big, cv::RNG::UNIFORM, 0, 256);
  const cv::Mat roi = big(cv::Rect(50, 40, 640, 480));
  cv::Mat ours, theirs;
  shrink_area(roi, ours, {384, 288});
  cv::resize(roi, theirs, {384, 288}, 0, 0, cv::INTER_AREA);
  EXPECT_LE(cv::norm(ours, theirs, cv::NORM_INF), 1.0);
  cv::Mat same = roi.clone();
  shrink_area(same, same, {384, 288});
  EXPECT_EQ(cv::norm(same, ours, cv::NORM_INF), 0.0);
  // Into a region of a larger image beside its source, as cv::resize writes it: in place.
  cv::Mat canvas(480, 1024, CV_8UC3, cv::Scalar::all(0));
  roi.copyTo(canvas(cv::Rect(0, 0, 640, 480)));
  cv::Mat into = canvas(cv::Rect(640, 0, 384, 288));
  shrink_area(canvas(cv::Rect(0, 0, 640, 480)), into, {384, 288});
  EXPECT_EQ(cv::norm(canvas(cv::Rect(640, 0, 384, 288)), ours, cv::NORM_INF), 0.0);
  // Not ours: growing, a float image. OpenCV's answer exactly.
  cv::Mat grow, grow_cv, f32(100, 100, CV_32FC3, cv::Scalar(0.25, 0.5, 0.75)), f_ours, f_cv;
  shrink_area(roi, grow, {700, 500});
  cv::resize(roi, grow_cv, {700, 500}, 0, 0, cv::INTER_AREA);
  EXPECT_EQ(cv::norm(grow, grow_cv, cv::NORM_INF), 0.0);
  shrink_area(f32, f_ours, {60, 60});
  cv::resize(f32, f_cv, {60, 60}, 0, 0, cv::INTER_AREA);
  EXPECT_EQ(cv::norm(f_ours, f_cv, cv::NORM_INF), 0.0);
}
