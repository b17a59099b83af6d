// Ensembles (model/model_meta.h "members", vision/mask_classifier.h, `maskwatch ensemble`): the
// probabilities are the mean of the members' (under a cascade where the first is unsure), the
// shipped ensemble is what every command uses and catches chin masks the shipped model alone
// calls masked, and a broken or mismatched ensemble is refused with one line.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>

#include "media/image_io.h"
#include "support.h"
#include "util/error.h"
#include "util/json_io.h"
#include "util/paths.h"
#include "vision/mask_classifier.h"

using namespace maskwatch;
using namespace maskwatch::test;
using json = nlohmann::json;

namespace {

fs::path shipped_ensemble() { return shipped_models_dir() / "ensemble.json"; }

// Chin-mask test crops of models/split.json that the shipped model alone shows as with_mask and
// the shipped ensemble does not (found with `eval --json`, 2026-12-06).
const char* const kChinMasksOnlyTheEnsembleCatches[] = {
    "jolignier__JPEGImages_b85b81f124c95d00e5a8212f91106008_1.jpg",
    "jolignier__JPEGImages_07302998dfe0611624e9eb4535822cb3_0.jpg",
};

std::string error_line(const CliResult& r) { return r.err.substr(0, r.err.find('\n')); }

}  // namespace

// The shipped ensemble's cascade: the first member's probabilities where its top one is >= 0.995,
// the mean of all four elsewhere, in one batch that holds both kinds of face (the unsure faces
// are gathered into a smaller blob and their answers put back in place).
TEST(Ensemble, ItsProbabilitiesAreTheFirstMembersWhereItIsSureElseTheMean) {
  MaskClassifier ensemble(shipped_ensemble());
  const ModelMeta meta = ModelMeta::load(shipped_ensemble());
  ASSERT_EQ(meta.members.size(), 4u);
  EXPECT_EQ(ensemble.model_count(), 4u);
  EXPECT_DOUBLE_EQ(ensemble.cascade_threshold(), 0.995);
  // Interleaved, so that a gather or scatter that mixed up rows would put answers in the wrong
  // place: clear masks the first member is sure of (P >= 0.9999) and the chin masks it is not.
  const auto clear_mask = [](const char* f) {
    return load_image_or_throw(shared_path("data/real-masks/with_mask") / f);
  };
  const auto chin_mask = [](const char* f) {
    return load_image_or_throw(shared_path("data/real-masks-incorrect/mask_worn_incorrectly") / f);
  };
  std::vector<cv::Mat> crops = {clear_mask("fm12k_train__Face Mask Dataset_Train_WithMask_1023.jpg"),
                                chin_mask(kChinMasksOnlyTheEnsembleCatches[0]),
                                clear_mask("fm12k_train__Face Mask Dataset_Train_WithMask_1103.jpg"),
                                chin_mask(kChinMasksOnlyTheEnsembleCatches[1]), real_face_crop()};
  ensemble.set_quality_gate({});
  const auto together = ensemble.classify(crops);
  std::vector<std::vector<Prediction>> by_member;
  for (const auto& m : meta.members) by_member.push_back(MaskClassifier(shipped_models_dir() / m.onnx).classify(crops));
  const auto first = [&](size_t i, size_t c) { return by_member[0][i].probs[c]; };
  const auto mean = [&](size_t i, size_t c) {
    double sum = 0;
    for (const auto& preds : by_member) sum += preds[i].probs[c];
    return sum / 4;
  };
  size_t unsure = 0;
  for (size_t i = 0; i < crops.size(); ++i) {
    const bool sure = std::max(first(i, 0), first(i, 1)) >= 0.995;
    unsure += !sure;
    for (size_t c = 0; c < 2; ++c) EXPECT_NEAR(together[i].probs[c], sure ? first(i, c) : mean(i, c), 1e-5) << i << c;
  }
  for (size_t i : {1, 3}) EXPECT_LT(std::max(first(i, 0), first(i, 1)), 0.995) << i;  // the chin masks
  for (size_t i : {0, 2}) EXPECT_GE(std::max(first(i, 0), first(i, 1)), 0.995) << i;  // the clear masks
  EXPECT_EQ(ensemble.cascade_stats().faces, crops.size());
  EXPECT_EQ(ensemble.cascade_stats().all_members, unsure);
  EXPECT_EQ(ensemble.classes()[static_cast<size_t>(together[4].label)], "with_mask");     // the real masked face
  EXPECT_EQ(ensemble.classes()[static_cast<size_t>(together[1].label)], "without_mask");  // a chin mask

  // Without the cascade (a copy of the file with it removed) every face is the mean.
  TempDir d;
  json j = read_json(shipped_ensemble());
  j.erase("cascade");
  for (auto& m : j["members"]) m["onnx"] = (shipped_models_dir() / m["onnx"].get<std::string>()).string();
  write_json_atomic(d / "full.json", j);
  MaskClassifier full(d / "full.json");
  full.set_quality_gate({});
  const auto averaged = full.classify(crops);
  for (size_t i = 0; i < crops.size(); ++i)
    for (size_t c = 0; c < 2; ++c) EXPECT_NEAR(averaged[i].probs[c], mean(i, c), 1e-5) << i << " " << c;
  EXPECT_EQ(full.cascade_stats().all_members, crops.size());

  // Members built when needed (`detect`): faces the first member is sure of build nothing more,
  // the first unsure face builds the rest, and the answers are the same.
  MaskClassifier lazy(shipped_ensemble(), {}, InferenceEngine::Xnnpack, 0, MemberLoading::WhenNeeded);
  lazy.set_quality_gate({});
  EXPECT_EQ(lazy.model_count(), 4u);
  EXPECT_EQ(lazy.models_built(), 1u);
  const auto sure_only = lazy.classify({crops[0], crops[2]});
  EXPECT_EQ(lazy.models_built(), 1u);
  for (size_t c = 0; c < 2; ++c) EXPECT_NEAR(sure_only[1].probs[c], together[2].probs[c], 1e-6);
  const auto lazily = lazy.classify(crops);
  EXPECT_EQ(lazy.models_built(), 4u);
  for (size_t i = 0; i < crops.size(); ++i)
    for (size_t c = 0; c < 2; ++c) EXPECT_NEAR(lazily[i].probs[c], together[i].probs[c], 1e-6) << i << " " << c;
  EXPECT_EQ(ensemble.models_built(), 4u);  // by default all at once
}

TEST(Ensemble, CommandsUseItAndItCatchesMoreChinMasksThanTheModelAlone) {
  // The 61 chin-mask test crops of the shipped split, as `eval` scores them (a mask below the nose
  // counts as without_mask): 53 not called masked by the ensemble, 51 by model.onnx alone.
  const std::vector<std::string> eval = {"eval",
                                         "--data",
                                         shared_path("data/real-masks-incorrect").string(),
                                         "--map",
                                         "mask_worn_incorrectly=without_mask",
                                         "--split",
                                         (shipped_models_dir() / "split.json").string(),
                                         "--subset",
                                         "test",
                                         "--no-gate"};
  const auto count_caught = [](const CliResult& r) {
    const auto at = r.out.find("61 images: accuracy ");
    return at == std::string::npos ? -1.0 : std::stod(r.out.substr(at + 20));
  };
  const auto by_default = run_cli(eval);
  ASSERT_EQ(by_default.exit_code, 0) << by_default.err;
  EXPECT_NEAR(count_caught(by_default), 100.0 * 53 / 61, 0.01) << by_default.out;
  auto alone_args = eval;
  alone_args.insert(alone_args.end(), {"--model", default_model_path().string()});
  const auto alone = run_cli(alone_args);
  ASSERT_EQ(alone.exit_code, 0) << alone.err;
  EXPECT_NEAR(count_caught(alone), 100.0 * 51 / 61, 0.01) << alone.out;

  // `detect` on one of them: the ensemble by default, the single model when asked.
  TempDir d;
  const auto image =
      shared_path("data/real-masks-incorrect/mask_worn_incorrectly") / kChinMasksOnlyTheEnsembleCatches[0];
  const auto label_shown = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"detect", image.string(), "--json", (d / "faces.json").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const json faces = read_json(d / "faces.json")[0]["faces"];
    if (faces.size() != 1) return std::string("faces: ") + faces.dump();
    // The answer's class, shown or not: these low-margin faces may be shown as uncertain.
    const auto probs = faces[0]["probs"];
    return std::string(probs["with_mask"].get<double>() > probs["without_mask"].get<double>() ? "with_mask"
                                                                                              : "without_mask");
  };
  EXPECT_EQ(label_shown({}), "without_mask");
  EXPECT_EQ(label_shown({"--model", default_model_path().string()}), "with_mask");

  // `detect` builds the other three only for a face the first model is unsure of (a chin mask),
  // not for a clear mask it is sure of.
  const auto builds_the_rest = [&](const fs::path& photo) {
    const auto r = run_cli({"detect", photo.string(), "--json", (d / "one.json").string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.err.find("is unsure of: building the other 3") != std::string::npos;
  };
  EXPECT_TRUE(builds_the_rest(image));
  EXPECT_FALSE(builds_the_rest(shared_path("data/real-masks/with_mask/fm12k_train__Face Mask Dataset_Train_WithMask_1023.jpg")));
}

TEST(Ensemble, MismatchedOrBrokenEnsemblesAreRefusedWithOneLine) {
  TempDir d;
  const auto copy_model = [&](const std::string& from, const std::string& to) {
    fs::copy_file(shipped_models_dir() / (from + ".onnx"), d / (to + ".onnx"));
    fs::copy_file(shipped_models_dir() / (from + ".json"), d / (to + ".json"));
  };
  copy_model("model", "a");
  copy_model("model-2", "b");
  const std::string a = (d / "a.onnx").string(), b = (d / "b.onnx").string(), e = (d / "e.json").string();

  // Writing one: --out must not be a member's sidecar, a model is not given twice.
  auto r = run_cli({"ensemble", a, b, "--out", (d / "b.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(error_line(r).find("would be overwritten"), std::string::npos) << r.err;
  r = run_cli({"ensemble", a, a, "--out", e});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(error_line(r).find("given twice"), std::string::npos) << r.err;
  r = run_cli({"ensemble", a, "--out", e});
  EXPECT_NE(r.exit_code, 0);  // one model is not an ensemble
  r = run_cli({"ensemble", a, b, "--out", e});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NO_THROW(MaskClassifier{e});
  const json made = read_json(e);
  EXPECT_EQ(made["members"][0]["onnx"], "a.onnx");  // named relative to the ensemble's folder
  EXPECT_FALSE(made.contains("quality_gate"));      // fitted afterwards, on the averaged answers
  {
    // Without a gate of its own it answers every face: the members' gates do not apply.
    MaskClassifier ensemble(e);
    const cv::Mat dark = real_face_crop() * 0.05;
    for (const auto& p : ensemble.classify({dark, real_face_crop()})) EXPECT_TRUE(p.answered);
    MaskClassifier member(d / "a.onnx");
    EXPECT_FALSE(member.classify({dark})[0].answered);  // the shipped model's gate declines it
  }
  // A report is never written over the model a command runs: the ensemble, a member, a sidecar.
  const std::string member_bytes = read_bytes(d / "b.onnx"), ensemble_bytes = read_bytes(e);
  const std::string photo = shared_path("data/seed-masks/with_mask/0-with-mask.jpg").string();
  fs::copy_file(asset("yunet_n_320_320.onnx"), d / "face.onnx");
  const std::string face = (d / "face.onnx").string(), face_bytes = read_bytes(face);
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"detect", "--model", e, photo, "--json", b},
           {"detect", "--model", e, photo, "--json", e},
           {"eval", "--model", e, "--data", shared_path("data/seed-masks").string(), "--json", (d / "a.json").string()},
           {"run", "--model", e, "--source", photo, "--no-display", "--events", b},
           {"run", "--model", e, "--source", photo, "--no-display", "--json", e},
           {"run", "--face-model", face, "--source", photo, "--no-display", "--record", face},
           {"detect", "--face-model", face, photo, "--json", face}}) {
    r = run_cli(args);
    EXPECT_EQ(r.exit_code, 1) << args[0] << " " << args.back();
    EXPECT_NE(error_line(r).find("would destroy the input"), std::string::npos) << r.err;
  }
  EXPECT_EQ(read_bytes(d / "b.onnx"), member_bytes);
  EXPECT_EQ(read_bytes(e), ensemble_bytes);
  EXPECT_EQ(read_bytes(face), face_bytes);
  EXPECT_NO_THROW(MaskClassifier{e});
  // Written through a link, the file would land where its members' names do not lead.
  fs::create_directories(d / "far");
  fs::create_symlink(d / "far/target.json", d / "link.json");
  r = run_cli({"ensemble", a, b, "--out", (d / "link.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(error_line(r).find("symbolic link"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(d / "far/target.json"));
  // Never over another model's sidecar or a file that is not an ensemble's.
  copy_model("model-3", "other");
  r = run_cli({"ensemble", a, b, "--out", (d / "other.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(error_line(r).find("is the sidecar of"), std::string::npos) << r.err;
  write_bytes(d / "notes.json", "{\"mine\": 1}");
  r = run_cli({"ensemble", a, b, "--out", (d / "notes.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(error_line(r).find("is not an ensemble's file"), std::string::npos) << r.err;
  EXPECT_EQ(read_bytes(d / "notes.json"), "{\"mine\": 1}");
  r = run_cli({"ensemble", b, a, "--out", e});  // its gate would be lost without a word
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(error_line(r).find("give --force"), std::string::npos) << r.err;
  // Every face alone; a cascade quietly off. Usage errors (exit 2) since 2026-12-07.
  for (const auto& [cascade, said] : {std::pair<const char*, const char*>{"0.5", "above 0.5"}, {"nan", "not a finite"}}) {
    r = run_cli({"ensemble", a, b, "--out", e, "--force", "--cascade", cascade});
    EXPECT_EQ(r.exit_code, 2) << cascade;
    EXPECT_NE(error_line(r).find(said), std::string::npos) << r.err;
  }
  r = run_cli({"ensemble", a, b, "--out", e, "--force", "--cascade", "0.97"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_DOUBLE_EQ(read_json(e)["cascade"]["threshold"].get<double>(), 0.97);
  r = run_cli({"ensemble", a, b, "--out", e, "--force"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(read_json(e).contains("cascade"));  // off unless asked

  // A member trained on another split: its validation images may be another member's training.
  json other = read_json(d / "b.json");
  other["training"]["split"]["counts"]["val"]["with_mask"] = 1;
  write_json_atomic(d / "c.json", other);
  fs::copy_file(d / "b.onnx", d / "c.onnx");
  r = run_cli({"ensemble", a, (d / "c.onnx").string(), "--out", (d / "e2.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(error_line(r).find("another split"), std::string::npos) << r.err;
  other["training"].erase("split");  // no record to compare: said so, not "another split"
  write_json_atomic(d / "c.json", other);
  r = run_cli({"ensemble", a, (d / "c.onnx").string(), "--out", (d / "e2.json").string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(error_line(r).find("records no split"), std::string::npos) << r.err;

  // Loading one: a member replaced by another model, a member missing, a sidecar or an ensemble
  // given in the other's place, a list of one.
  const auto refused = [](const fs::path& model, const std::string& why) {
    try {
      MaskClassifier clf(model);
      ADD_FAILURE() << model << " loaded; expected: " << why;
    } catch (const Error& err) {
      EXPECT_NE(std::string(err.what()).find(why), std::string::npos) << err.what();
      EXPECT_EQ(std::string(err.what()).find('\n'), std::string::npos) << err.what();
    }
  };
  refused(d / "a.json", "is a model's sidecar, not an ensemble");
  fs::copy_file(d / "a.onnx", d / "x.onnx");
  fs::copy_file(e, d / "x.json");
  refused(d / "x.onnx", "describes an ensemble");
  json one = made;
  one["members"].erase(1);
  write_json_atomic(d / "one.json", one);
  refused(d / "one.json", "at least two models");
  for (const json& threshold : {json(0.4), json(1.5), json("high")}) {
    json bad = made;
    bad["cascade"] = {{"threshold", threshold}};
    write_json_atomic(d / "bad_cascade.json", bad);
    refused(d / "bad_cascade.json", "\"cascade\" needs a \"threshold\": a probability above 0.5 and at most 1");
  }
  const json a_meta = read_json(d / "a.json");
  json model_with_cascade = a_meta;  // a model has no members to escalate to
  model_with_cascade["cascade"] = {{"threshold", 0.9}};
  write_json_atomic(d / "a.json", model_with_cascade);
  refused(d / "a.onnx", "belongs to an ensemble");
  write_json_atomic(d / "a.json", a_meta);
  json nested = made;  // an ensemble naming itself would recurse for ever
  nested["members"][1]["onnx"] = "nested.json";
  write_json_atomic(d / "nested.json", nested);
  refused(d / "nested.json", "is not an .onnx model");
  json twice = made;  // one model posing as two (a hidden weighted vote with more)
  twice["members"][1] = twice["members"][0];
  twice["members"][1]["onnx"] = "./a.onnx";
  write_json_atomic(d / "twice.json", twice);
  refused(d / "twice.json", "are one model");
  // A link to the ensemble elsewhere finds its members beside the real file.
  fs::create_directories(d / "elsewhere");
  fs::create_symlink(e, d / "elsewhere/link.json");
  EXPECT_NO_THROW(MaskClassifier{d / "elsewhere/link.json"});
  fs::remove(d / "b.onnx");
  fs::remove(d / "b.json");
  refused(e, "not found");
  copy_model("model-3", "b");
  refused(e, "is not the model it was made with");
  // A member to be built when needed is checked on load all the same, with the same errors.
  json cascaded = read_json(e);
  cascaded["cascade"] = {{"threshold", 0.995}};
  write_json_atomic(d / "lazy.json", cascaded);
  const auto refused_lazily = [&](const std::string& why) {
    try {
      MaskClassifier clf(d / "lazy.json", {}, InferenceEngine::Xnnpack, 0, MemberLoading::WhenNeeded);
      ADD_FAILURE() << "loaded; expected: " << why;
    } catch (const Error& err) {
      EXPECT_NE(std::string(err.what()).find(why), std::string::npos) << err.what();
      EXPECT_EQ(std::string(err.what()).find('\n'), std::string::npos) << err.what();
    }
  };
  refused_lazily("is not the model it was made with");
  fs::remove(d / "b.onnx");
  fs::remove(d / "b.json");
  copy_model("model-2", "b");
  EXPECT_NO_THROW(MaskClassifier(d / "lazy.json", {}, InferenceEngine::Xnnpack, 0, MemberLoading::WhenNeeded));
  std::string bytes = read_bytes(d / "b.onnx");
  bytes[bytes.size() / 2] ^= 1;  // changed behind its sidecar
  write_bytes(d / "b.onnx", bytes);
  refused_lazily("does not match its sidecar");
  fs::remove(d / "b.onnx");
  refused_lazily("not found");
  fs::remove(d / "b.json");
  copy_model("model-3", "b");
  r = run_cli(
      {"detect",
       (shared_path("data/real-masks-incorrect/mask_worn_incorrectly") / kChinMasksOnlyTheEnsembleCatches[0]).string(),
       "--model", e});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(error_line(r).find("is not the model it was made with"), std::string::npos) << r.err;
}

TEST(Ensemble, FitGateWritesTheGateIntoTheEnsembleAndLeavesItsMembersAlone) {
  constexpr size_t kPerClass = 12;
  TempDir d;
  for (const std::string m : {"model", "model-2"}) {
    fs::copy_file(shipped_models_dir() / (m + ".onnx"), d / (m + ".onnx"));
    fs::copy_file(shipped_models_dir() / (m + ".json"), d / (m + ".json"));
  }
  const std::string e = (d / "e.json").string();
  auto r = run_cli({"ensemble", (d / "model.onnx").string(), (d / "model-2.onnx").string(), "--out", e});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string member_sidecar = read_bytes(d / "model-2.json");
  // A few real crops per class, all "val" in a split of their own.
  json items = json::array();
  for (const std::string cls : {"with_mask", "without_mask"}) {
    std::vector<fs::path> files;
    for (const auto& f : fs::directory_iterator(shared_path("data/real-masks") / cls)) files.push_back(f.path());
    std::sort(files.begin(), files.end());
    fs::create_directories(d / "small" / cls);
    for (size_t i = 0; i < kPerClass; ++i) {
      const auto& f = files[i * files.size() / kPerClass];
      fs::copy_file(f, d / "small" / cls / f.filename());
      items.push_back({{"image", "small/" + cls + "/" + f.filename().string()}, {"split", "val"}});
    }
  }
  write_json_atomic(d / "split.json", {{"items", items}});
  r = run_cli({"eval", "--conditions", "--fit-gate", "--model", e, "--data", (d / "small").string(), "--split",
               (d / "split.json").string(), "--subset", "val"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("written to " + e), std::string::npos) << r.out;
  const json written = read_json(e);
  ASSERT_TRUE(written.contains("quality_gate"));
  EXPECT_EQ(written["members"].size(), 2u);  // still the ensemble it was
  EXPECT_EQ(read_bytes(d / "model-2.json"), member_sidecar);
  MaskClassifier ensemble(e);
  EXPECT_TRUE(ensemble.quality_gate().enabled());
  EXPECT_NEAR(ensemble.quality_gate().threshold, written["quality_gate"]["threshold"].get<double>(), 1e-12);
}
