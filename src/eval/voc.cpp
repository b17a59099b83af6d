#include "eval/voc.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <pugixml.hpp>

#include "util/error.h"

namespace maskwatch {

namespace {
double number(const pugi::xml_node& parent, const char* name, const std::string& origin) {
  const auto node = parent.child(name);
  const std::string text = node.text().as_string();
  if (!node || text.empty()) throw Error(fmt::format("{}: <{}> is missing", origin, name));
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used != text.size() && text.find_first_not_of(" \t\r\n", used) != std::string::npos)
      throw std::invalid_argument(text);
    if (!std::isfinite(v)) throw std::invalid_argument(text);  // stod reads "nan" and "inf"
    return v;
  } catch (const std::exception&) {
    throw Error(fmt::format("{}: <{}> is not a number ('{}')", origin, name, text));
  }
}
}  // namespace

VocAnnotation parse_voc(const std::filesystem::path& xml_path) {
  const std::string origin = xml_path.string();
  pugi::xml_document doc;
  const auto parsed = doc.load_file(xml_path.c_str());
  if (!parsed)
    throw Error(fmt::format("{}: not valid XML ({} at byte {})", origin, parsed.description(), parsed.offset));
  const auto root = doc.child("annotation");
  if (!root) throw Error(fmt::format("{}: no <annotation> element (not a Pascal VOC file)", origin));
  VocAnnotation a;
  a.xml = xml_path;
  a.filename = root.child("filename").text().as_string();
  const auto size = root.child("size");
  if (!size) throw Error(fmt::format("{}: <size> is missing", origin));
  a.width = static_cast<int>(number(size, "width", origin));
  a.height = static_cast<int>(number(size, "height", origin));
  if (a.width <= 0 || a.height <= 0)
    throw Error(fmt::format("{}: image size {}x{} is not positive", origin, a.width, a.height));
  int index = 0;
  for (const auto& obj : root.children("object")) {
    ++index;
    const std::string where = fmt::format("{} object {}", origin, index);
    VocObject o;
    o.name = obj.child("name").text().as_string();
    if (o.name.empty()) throw Error(fmt::format("{}: <name> is missing", where));
    o.difficult = obj.child("difficult").text().as_int(0) != 0;
    const auto bb = obj.child("bndbox");
    if (!bb) throw Error(fmt::format("{}: <bndbox> is missing", where));
    const double x1 = number(bb, "xmin", where), y1 = number(bb, "ymin", where), x2 = number(bb, "xmax", where),
                 y2 = number(bb, "ymax", where);
    if (x2 <= x1 || y2 <= y1) throw Error(fmt::format("{}: empty box ({}, {}, {}, {})", where, x1, y1, x2, y2));
    constexpr double tol = 1.0;  // VOC coordinates are 1-based and often reach width
    if (x1 < -tol || y1 < -tol || x2 > a.width + tol || y2 > a.height + tol)
      throw Error(fmt::format("{}: box ({}, {}, {}, {}) lies outside the {}x{} image", where, x1, y1, x2, y2, a.width,
                              a.height));
    o.box = cv::Rect2f(static_cast<float>(x1), static_cast<float>(y1), static_cast<float>(x2 - x1),
                       static_cast<float>(y2 - y1));
    a.objects.push_back(o);
  }
  return a;
}

void check_voc_image_size(const VocAnnotation& a, const std::filesystem::path& image_path, cv::Size image) {
  if (image.width != a.width || image.height != a.height)
    throw Error(fmt::format("{}: says the image is {}x{}, but {} is {}x{}", a.xml.string(), a.width, a.height,
                            image_path.string(), image.width, image.height));
}

std::vector<std::filesystem::path> voc_annotation_files(const std::filesystem::path& dir) {
  const auto ann_dir = dir / "annotations";
  std::error_code ec;
  if (!std::filesystem::is_directory(ann_dir, ec))
    throw Error(
        fmt::format("{}: no annotations/ folder (expected Pascal VOC: images/ and annotations/*.xml)", dir.string()));
  std::vector<std::filesystem::path> xmls;
  for (const auto& e : std::filesystem::directory_iterator(ann_dir, ec))
    if (e.path().extension() == ".xml") xmls.push_back(e.path());
  std::sort(xmls.begin(), xmls.end());
  if (xmls.empty()) throw Error(fmt::format("{}: no .xml annotation files", ann_dir.string()));
  return xmls;
}

std::filesystem::path voc_image_path(const std::filesystem::path& dir, const VocAnnotation& a) {
  const auto images = dir / "images";
  // <filename> names a file in images/, never a path out of it ("../../x" or "/etc/x").
  const std::filesystem::path named(a.filename);
  if (!a.filename.empty() && named.filename() == named && std::filesystem::exists(images / named))
    return images / named;
  for (const char* ext : {".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG"}) {
    const auto p = images / (a.xml.stem().string() + ext);
    if (std::filesystem::exists(p)) return p;
  }
  return {};
}

std::set<std::string> voc_scenes_of_parity(const std::filesystem::path& dir, int parity) {
  const auto xmls = voc_annotation_files(dir);
  std::set<std::string> out;
  for (size_t i = 0; i < xmls.size(); ++i) {
    if (static_cast<int>(i % 2) != parity) continue;
    const auto image = voc_image_path(dir, parse_voc(xmls[i]));
    if (!image.empty()) out.insert(image.filename().string());
  }
  return out;
}

}  // namespace maskwatch
