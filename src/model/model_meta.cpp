#include "model/model_meta.h"

#include <fmt/format.h>

#include <algorithm>

#include "model/mobilenet_v2_spec.h"
#include "util/error.h"
#include "util/json_io.h"

namespace maskwatch {

nlohmann::json ModelMeta::to_json() const {
  nlohmann::json j = {
      {"format", "maskwatch-model"},
      {"format_version", kModelFormatVersion},
      {"classes", classes},
      {"input",
       {{"width", input_size},
        {"height", input_size},
        {"channels", 3},
        {"color", "RGB"},
        {"layout", "NCHW"},
        {"scale", 1.0 / 127.5},
        {"offset", -1.0},
        {"range", {-1.0, 1.0}},
        {"note", "value = pixel * scale + offset"}}},
      {"output", {{"kind", "softmax probabilities"}, {"shape", {"N", static_cast<int>(classes.size())}}}},
      {"calibration",
       {{"temperature", temperature},
        {"note", "folded into the last layer: the outputs are calibrated probabilities"}}},
      {"crop", crop},
      {"training", training},
  };
  if (is_ensemble()) {
    j["members"] = nlohmann::json::array();
    for (const auto& m : members) j["members"].push_back({{"onnx", m.onnx}, {"sha256", m.sha256}});
    j["output"]["kind"] = "softmax probabilities, the mean of the members'";
    if (cascade_threshold > 0) {
      j["output"]["kind"] =
          "softmax probabilities: the first member's where its top probability reaches cascade.threshold, else the "
          "mean of the members'";
      j["cascade"] = {{"threshold", cascade_threshold},
                      {"note", "the first member answers alone when its top probability is at least this"}};
    }
  } else {
    j["onnx_sha256"] = onnx_sha256;
  }
  if (quality_gate.enabled()) j["quality_gate"] = quality_gate.to_json();
  return j;
}

namespace {
ModelMeta parse_meta(const nlohmann::json& j, const std::string& origin) {
  const auto bad = [&](const std::string& why) { return Error(fmt::format("model sidecar {}: {}", origin, why)); };
  if (!j.is_object()) throw bad("not a JSON object");
  if (j.value("format", "") != "maskwatch-model") throw bad("\"format\" is not \"maskwatch-model\"");
  if (!j.contains("format_version") || !j["format_version"].is_number_integer())
    throw bad("no integer \"format_version\"");
  if (j["format_version"].get<int>() > kModelFormatVersion)
    throw bad(fmt::format("format_version {} is newer than this maskwatch ({})", j["format_version"].get<int>(),
                          kModelFormatVersion));
  ModelMeta m;
  if (!j.contains("classes") || !j["classes"].is_array()) throw bad("no \"classes\" array");
  for (const auto& c : j["classes"]) {
    if (!c.is_string() || c.get<std::string>().empty()) throw bad("\"classes\" must hold non-empty strings");
    if (std::find(m.classes.begin(), m.classes.end(), c.get<std::string>()) != m.classes.end())
      throw bad(fmt::format("class \"{}\" is named twice in \"classes\"", c.get<std::string>()));
    m.classes.push_back(c.get<std::string>());
  }
  if (m.classes.size() < 2) throw bad("fewer than two classes");
  const auto& in = j.value("input", nlohmann::json::object());
  if (!in.is_object() || !in.contains("width") || !in["width"].is_number_integer() || !in.contains("height") ||
      in["height"] != in["width"])
    throw bad("\"input\" needs integer width == height");
  m.input_size = in["width"].get<int>();
  try {
    check_input_size(m.input_size);
  } catch (const Error& e) {
    throw bad(e.what());
  }
  if (in.value("color", "") != "RGB") throw bad("only RGB input is supported");
  // Written by every maskwatch model; one that says otherwise would be fed wrongly, not refused.
  if (in.contains("channels") && in["channels"] != 3) throw bad("only 3-channel input is supported");
  if (in.contains("layout") && in["layout"] != "NCHW") throw bad("only NCHW input layout is supported");
  if (std::abs(in.value("scale", 0.0) - 1.0 / 127.5) > 1e-9 || std::abs(in.value("offset", 0.0) + 1.0) > 1e-9)
    throw bad("only [-1, 1] input scaling (scale 1/127.5, offset -1) is supported");
  const auto is_sha256 = [](const nlohmann::json& v) {
    return v.is_string() && v.get<std::string>().size() == 64 &&
           v.get<std::string>().find_first_not_of("0123456789abcdef") == std::string::npos;
  };
  if (j.contains("members")) {
    if (j.contains("onnx_sha256")) throw bad("both \"onnx_sha256\" and \"members\": a model or an ensemble, not both");
    if (!j["members"].is_array() || j["members"].size() < 2) throw bad("\"members\" must list at least two models");
    if (j["members"].size() > kMaxEnsembleMembers)
      throw bad(fmt::format("\"members\" lists {} models, more than {}", j["members"].size(), kMaxEnsembleMembers));
    for (const auto& e : j["members"]) {
      if (!e.is_object() || !e.contains("onnx") || !e["onnx"].is_string() || e["onnx"].get<std::string>().empty() ||
          !e.contains("sha256") || !is_sha256(e["sha256"]))
        throw bad("each of \"members\" needs \"onnx\" (a file name) and \"sha256\" (64 lowercase hex digits)");
      // An ensemble of ensembles is not made: a file naming itself would recurse for ever.
      if (std::filesystem::path(e["onnx"].get<std::string>()).extension() != ".onnx")
        throw bad(fmt::format("member \"{}\" is not an .onnx model (an ensemble holds models, not ensembles)",
                              e["onnx"].get<std::string>()));
      for (const auto& other : m.members)  // a hidden weighted vote, or one model posing as several
        if (other.sha256 == e["sha256"].get<std::string>())
          throw bad(fmt::format("members \"{}\" and \"{}\" are one model (same sha256)", other.onnx,
                                e["onnx"].get<std::string>()));
      m.members.push_back({e["onnx"].get<std::string>(), e["sha256"].get<std::string>()});
    }
    if (j.contains("cascade") && !j["cascade"].is_null()) {
      const auto& c = j["cascade"];
      if (!c.is_object() || !c.contains("threshold") || !c["threshold"].is_number() ||
          !ModelMeta::valid_cascade_threshold(c["threshold"].get<double>()))
        throw bad(fmt::format("\"cascade\" needs a \"threshold\": {} (the first member's top probability)",
                              ModelMeta::kCascadeRule));
      m.cascade_threshold = c["threshold"].get<double>();
    }
  } else {
    if (!j.contains("onnx_sha256") || !is_sha256(j["onnx_sha256"])) throw bad("no valid \"onnx_sha256\"");
    if (j.contains("cascade")) throw bad("\"cascade\" belongs to an ensemble (\"members\"), not to a model");
    m.onnx_sha256 = j["onnx_sha256"].get<std::string>();
  }
  if (j.contains("training") && j["training"].is_object()) m.training = j["training"];
  if (j.contains("calibration") && j["calibration"].is_object()) {
    const auto& t = j["calibration"].value("temperature", nlohmann::json(1.0));
    if (!t.is_number() || !(t.get<double>() > 0)) throw bad("\"calibration.temperature\" must be a positive number");
    m.temperature = t.get<double>();
  }
  if (j.contains("crop") && j["crop"].is_object()) m.crop = j["crop"];
  if (j.contains("quality_gate") && !j["quality_gate"].is_null())
    m.quality_gate = QualityGate::from_json(j["quality_gate"], origin, m.classes.size());
  return m;
}
}  // namespace

ModelMeta ModelMeta::from_json(const nlohmann::json& j, const std::string& origin) {
  try {
    return parse_meta(j, origin);
  } catch (const nlohmann::json::exception& e) {  // a field of the wrong type, e.g. "scale": "x"
    throw Error(fmt::format("model sidecar {}: a field has the wrong type ({})", origin, e.what()));
  }
}

ModelMeta ModelMeta::load(const std::filesystem::path& json_path) {
  return from_json(read_json(json_path, "model sidecar"), json_path.string());
}

void ModelMeta::save(const std::filesystem::path& json_path) const { write_json_atomic(json_path, to_json()); }

std::filesystem::path sidecar_path(const std::filesystem::path& onnx_path) {
  auto p = onnx_path;
  return p.replace_extension(".json");
}

std::filesystem::path member_path(const std::filesystem::path& ensemble_path, const EnsembleMember& member) {
  std::error_code ec;
  const auto real = std::filesystem::weakly_canonical(ensemble_path, ec);
  return (ec ? ensemble_path : real).parent_path() / member.onnx;
}

std::vector<std::filesystem::path> model_files(const std::filesystem::path& model) {
  std::vector<std::filesystem::path> files = {model};
  if (model.extension() != ".json") {
    files.push_back(sidecar_path(model));
    return files;
  }
  try {
    for (const auto& m : ModelMeta::load(model).members) {
      const auto onnx = member_path(model, m);
      files.push_back(onnx);
      files.push_back(sidecar_path(onnx));
    }
  } catch (const std::exception&) {
    // Not an ensemble we can read: loading it says why.
  }
  return files;
}

}  // namespace maskwatch
