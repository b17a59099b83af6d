// The serve config: typed values, per-camera overrides, errors with line numbers, secrets
// redacted, and the shipped demo config valid on this machine.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "serve/config.h"
#include "serve/http_auth.h"
#include "serve/http_params.h"
#include "serve/prometheus.h"
#include "vision/face_detector.h"
#include "support.h"
#include "util/error.h"
#include "util/log_text.h"
#include "util/threads.h"
#include "util/paths.h"

using namespace maskwatch;
using namespace maskwatch::test;

namespace {

std::string error_of(const std::string& yaml) {
  try {
    parse_serve_config(yaml, "/etc/mw/test.yaml");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ServeConfig, DetectorDefaultsAreTheFaceDetectorsOwn) {
  // serve and run/detect/eval see the same face stage unless told otherwise.
  EXPECT_EQ(DetectorSettings{}.detect_width, FaceDetectorOptions{}.detect_width);
  EXPECT_FLOAT_EQ(DetectorSettings{}.score_threshold, FaceDetectorOptions{}.score_threshold);
  EXPECT_EQ(FaceDetectorOptions{}.detect_width, 384);
  EXPECT_STREQ(default_face_model_name(), "yunet-n-scenes");
}

TEST(ServeConfig, InferenceWorkersAreCountedOnceAndInRange) {
  const auto parse = [](const std::string& yaml) { return parse_serve_config(yaml, "/etc/mw/w.yaml"); };
  EXPECT_EQ(parse("detector: {workers: 2}\ncameras: {a: {source: x.mp4}}\n").detector.workers, 2);
  EXPECT_EQ(parse("cameras: {a: {source: x.mp4}}\n").detector.workers, 0);  // auto
  const auto refused = [&](const std::string& yaml, const std::string& want) {
    try {
      parse(yaml);
      ADD_FAILURE() << "accepted: " << yaml;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  };
  const std::string cores4 = std::to_string(4 * resolve_threads(0));
  refused("detector: {workers: 0}\ncameras: {a: {source: x.mp4}}\n", "w.yaml:1: config.detector.workers must be between 1 and " + cores4);
  refused("detector: {workers: 1000}\ncameras: {a: {source: x.mp4}}\n", "w.yaml:1: config.detector.workers must be between 1");
  refused("cameras:\n  a:\n    source: x.mp4\n    detector: {workers: 2}\n",
          "w.yaml:4: cameras.a.detector.workers: inference workers serve every camera");
}

TEST(ServeConfig, MotionGatingPerCameraWithRanges) {
  const auto cfg = parse_serve_config(
      "defaults: {motion: {threshold: 20}}\ncameras:\n  a: {source: x.mp4}\n  b: {source: y.mp4, motion: {enabled: "
      "false}}\n",
      "/etc/mw/m.yaml");
  EXPECT_EQ(cfg.camera("a")->motion.threshold, 20);
  EXPECT_TRUE(cfg.camera("a")->motion.enabled);
  EXPECT_FALSE(cfg.camera("b")->motion.enabled);
  EXPECT_DOUBLE_EQ(cfg.camera("b")->motion.full_every_s, 2.0);
  for (const auto& [yaml, want] : std::vector<std::pair<std::string, std::string>>{
           {"cameras: {a: {source: x.mp4, motion: {threshold: 0}}}", "cameras.a.motion.threshold must be between 1 and 254"},
           {"cameras: {a: {source: x.mp4, motion: {min_area: 2}}}", "cameras.a.motion.min_area must be between"},
           {"cameras: {a: {source: x.mp4, motion: {full_every_s: 0}}}", "cameras.a.motion.full_every_s must be between"},
           {"cameras: {a: {source: x.mp4, motion: {treshold: 5}}}", "treshold"}}) {
    try {
      parse_serve_config(yaml, "/etc/mw/m.yaml");
      ADD_FAILURE() << "accepted: " << yaml;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("m.yaml:1"), std::string::npos) << e.what();
    }
  }
}

TEST(ServeConfig, DefaultsAndPerCameraOverrides) {
  const auto cfg = parse_serve_config(R"(
http: {port: 9000}
defaults:
  fps_limit: 5
  detector: {score_threshold: 0.7}
cameras:
  door: {source: rtsp://cam/door}
  hall:
    source: "0"
    fps_limit: 2
    detector: {score_threshold: 0.5}
)",
                                      "/etc/mw/test.yaml");
  ASSERT_EQ(cfg.cameras.size(), 2u);
  EXPECT_EQ(cfg.http.port, 9000);
  EXPECT_EQ(cfg.http.listen, "127.0.0.1");
  const auto* door = cfg.camera("door");
  const auto* hall = cfg.camera("hall");
  ASSERT_TRUE(door && hall);
  EXPECT_DOUBLE_EQ(door->fps_limit, 5);
  EXPECT_FLOAT_EQ(door->detector.score_threshold, 0.7f);
  EXPECT_DOUBLE_EQ(hall->fps_limit, 2);
  EXPECT_FLOAT_EQ(hall->detector.score_threshold, 0.5f);
  EXPECT_EQ(hall->source, "0");                          // a webcam index is not a path
  EXPECT_EQ(cfg.storage.dir, "/etc/mw/maskwatch-data");  // relative to the config file
  // As `run` and serve's capture read a source: up to three digits are a webcam, "1234" is a
  // file (it stayed relative to serve's working folder), and a folder named by digits is one.
  const auto digits = parse_serve_config("storage: {dir: \"7\"}\ncameras: {a: {source: \"12\"}, b: {source: \"1234\"}}\n",
                                         "/etc/mw/test.yaml");
  EXPECT_EQ(digits.camera("a")->source, "12");
  EXPECT_EQ(digits.camera("b")->source, "/etc/mw/1234");
  EXPECT_EQ(digits.storage.dir, "/etc/mw/7");
}

// `config check` prints the settings as they were written: 0.7, not the float widened to a
// double (0.699999988079071).
TEST(ServeConfig, EffectiveSettingsPrintFloatsAsWritten) {
  const auto cfg = parse_serve_config("cameras: {a: {source: rtsp://cam/a, detector: {score_threshold: 0.7}}}\n",
                                      "/etc/mw/test.yaml");
  const std::string shown = cfg.to_json(true).dump();
  EXPECT_NE(shown.find("\"score_threshold\":0.7}"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("0.69999"), std::string::npos) << shown;
  EXPECT_EQ(cfg.to_json(true)["cameras"]["a"]["detector"]["score_threshold"].get<double>(), 0.7);
}

TEST(ServeConfig, FaceModelIsANameOrAFileBesideTheConfig) {
  const auto cfg = parse_serve_config(R"(
defaults:
  detector: {face_model: yunet-n}
cameras:
  door: {source: "0"}
  hall:
    source: "1"
    detector: {face_model: models/faces.onnx}
)",
                                      "/etc/mw/test.yaml");
  EXPECT_EQ(cfg.camera("door")->detector.face_model, "yunet-n");  // a name stays a name
  EXPECT_EQ(cfg.camera("hall")->detector.face_model, "/etc/mw/models/faces.onnx");
}

TEST(ServeConfig, MistakesNameTheFileLineAndKey) {
  EXPECT_EQ(error_of("cameras:\n  door:\n    source: x.mp4\n    fsp_limit: 3\n")
                .rfind("/etc/mw/test.yaml:4: unknown key 'fsp_limit' in cameras.door", 0),
            0u)
      << error_of("cameras:\n  door:\n    source: x.mp4\n    fsp_limit: 3\n");
  EXPECT_NE(
      error_of("http:\n  port: many\ncameras: {a: {source: x}}\n").find(":2: http.port: 'many' is not a whole number"),
      std::string::npos);
  EXPECT_NE(error_of("http: {port: 70000}\ncameras: {a: {source: x}}\n").find("http.port must be between 0 and 65535"),
            std::string::npos);
  EXPECT_NE(error_of("cameras: {}\n").find("at least one camera"), std::string::npos);
  EXPECT_NE(error_of("cameras: {events: {source: x}}\n").find("reserved"), std::string::npos);
  EXPECT_NE(error_of("cameras: {'a b': {source: x}}\n").find("camera name 'a b'"), std::string::npos);
  EXPECT_NE(error_of("cameras: {a: {}}\n").find("cameras.a: no source"), std::string::npos);
  EXPECT_NE(error_of("cameras: [\n").find("test.yaml"), std::string::npos);  // malformed YAML
  EXPECT_NE(error_of("http: {auth: {token_env: MASKWATCH_TEST_UNSET_VAR}}\ncameras: {a: {source: x}}\n")
                .find("MASKWATCH_TEST_UNSET_VAR is not set"),
            std::string::npos);
}

// config check had passed what serve could not bind, and a camera file that is not there.
TEST(ServeConfig, AListenAddressMustBeOneAndAMissingSourceIsSaid) {
  for (const char* good : {"127.0.0.1", "0.0.0.0", "::1", "::", "localhost", "cam-host.example.org", "fe80::1%eth0",
                           "host.example.org.", "mask_watch"})
    EXPECT_TRUE(is_address_or_host_name(good)) << good;
  for (const char* bad : {"not an address!!", "999.1.1.1", "1.2.3", "-host", "a..b", "a b", "fe80::zz%eth0"})
    EXPECT_FALSE(is_address_or_host_name(bad)) << bad;
  EXPECT_NE(error_of("http: {listen: \"not an address!!\"}\ncameras: {a: {source: x}}\n")
                .find("test.yaml:1: http.listen: 'not an address!!' is not an IP address or a host name"),
            std::string::npos);
  const auto cfg = parse_serve_config("cameras:\n  a: {source: /nonexistent/video.mp4}\n  b: {source: \"0\"}\n"
                                      "  c: {source: \"rtsp://cam/x\"}\n",
                                      "/tmp/c.yaml");
  const auto missing = missing_source_warnings(cfg);
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_NE(missing[0].find("cameras.a.source: /nonexistent/video.mp4 does not exist"), std::string::npos);
}

// A camera under privacy none keeps no picture of its alerts: said where a rule would want one,
// so that a missing snapshot or clip on the dashboard is not taken for a fault.
TEST(ServeConfig, ACameraThatKeepsNoPictureOfItsAlertsIsSaid) {
  const auto cfg = parse_serve_config(R"(
cameras:
  lobby: {source: x, privacy: {faces: none}}
  door: {source: y}
  yard: {source: z, privacy: {faces: none}}
alerts:
  - {name: bare, kind: unmasked_face}
  - {name: low, kind: low_compliance, cameras: [lobby, door]}
)",
                                      "/tmp/c.yaml");
  const auto warnings = pictureless_camera_warnings(cfg);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0].rfind("cameras.lobby: privacy.faces is none, so alerts bare, low keep no snapshot or clip", 0),
            0u)
      << warnings[0];
  EXPECT_EQ(warnings[1].rfind("cameras.yard: privacy.faces is none, so alert bare keeps no snapshot or clip", 0), 0u)
      << warnings[1];
  const auto all = config_warnings(cfg);
  EXPECT_NE(std::find(all.begin(), all.end(), warnings[1]), all.end());
  // No rule with a picture on the camera: nothing to say.
  EXPECT_TRUE(pictureless_camera_warnings(parse_serve_config("cameras: {a: {source: x, privacy: {faces: none}}}\n",
                                                             "/tmp/c.yaml"))
                  .empty());
}

TEST(ServeConfig, SecretsAndStreamCredentialsAreRedacted) {
  setenv("MASKWATCH_TEST_TOKEN", "s3cret-token", 1);
  const auto cfg = parse_serve_config(R"(
http: {auth: {token_env: MASKWATCH_TEST_TOKEN}}
mqtt: {host: broker, password: hunter2}
cameras: {door: {source: "rtsp://admin:pa55@10.0.0.9/live"}}
alerts: [{kind: unmasked_face, webhook: "https://discord.com/api/webhooks/1/DiscordSecretToken"}]
)",
                                      "/tmp/c.yaml");
  EXPECT_EQ(cfg.http.auth.token, "s3cret-token");
  const std::string shown = cfg.to_json(/*redact=*/true).dump();
  for (const char* secret : {"s3cret-token", "hunter2", "pa55", "DiscordSecretToken"})
    EXPECT_EQ(shown.find(secret), std::string::npos) << secret;
  EXPECT_NE(shown.find("rtsp://admin:***@10.0.0.9/live"), std::string::npos) << shown;
  EXPECT_NE(cfg.to_json(false).dump().find("pa55"), std::string::npos);
}

TEST(ServeConfig, SecretsExpandVariablesAndAnEmptyOneIsAnError) {
  // ${VAR} in an inline token expands as in every other text key (it was the literal text, so
  // anyone reading the file could log in); an empty variable would turn the login off.
  setenv("MASKWATCH_TEST_TOKEN", "s3cret-token", 1);
  setenv("MASKWATCH_TEST_EMPTY", "", 1);
  const auto cfg = parse_serve_config("http: {auth: {token: \"${MASKWATCH_TEST_TOKEN}\"}}\ncameras: {a: {source: x}}\n",
                                      "/tmp/c.yaml");
  EXPECT_EQ(cfg.http.auth.token, "s3cret-token");
  EXPECT_NE(error_of("http: {auth: {token_env: MASKWATCH_TEST_EMPTY}}\ncameras: {a: {source: x}}\n")
                .find("MASKWATCH_TEST_EMPTY is empty"),
            std::string::npos);
  EXPECT_NE(error_of("http: {auth: {token: a, token_env: MASKWATCH_TEST_TOKEN}}\ncameras: {a: {source: x}}\n")
                .find("not both"),
            std::string::npos);
}

TEST(ServeConfig, DataFolderOnTheCommandLineOverridingTheFilesIsSaid) {
  // The systemd unit passes --data /var/lib/maskwatch: a storage.dir in the file is then not
  // used, and serve says so instead of writing elsewhere in silence.
  const auto named = parse_serve_config("storage: {dir: site-data}\ncameras: {a: {source: x}}\n", "/etc/mw/c.yaml");
  EXPECT_EQ(named.storage.dir, "/etc/mw/site-data");
  EXPECT_EQ(data_dir_override_warning(named.storage, "/var/lib/maskwatch"),
            "storage: --data /var/lib/maskwatch is used; the config's storage.dir (/etc/mw/site-data) is not");
  EXPECT_EQ(data_dir_override_warning(named.storage, "/etc/mw/./site-data"), "");  // the same folder
  EXPECT_EQ(data_dir_override_warning(named.storage, ""), "");                    // no --data
  // The file names no folder (the packaged config): --data is simply where the data goes.
  const auto unnamed = parse_serve_config("cameras: {a: {source: x}}\n", "/etc/mw/c.yaml");
  EXPECT_EQ(data_dir_override_warning(unnamed.storage, "/var/lib/maskwatch"), "");
}

TEST(ServeConfig, AServerOpenToTheNetworkWithoutLoginIsSaid) {
  const auto cfg = [](const std::string& http) {
    return parse_serve_config("http: " + http + "\ncameras: {a: {source: x}}\n", "/tmp/c.yaml").http;
  };
  EXPECT_EQ(open_without_login_warning(cfg("{listen: 0.0.0.0, port: 9000}")),
            "http.listen 0.0.0.0 without http.auth: anyone who can reach port 9000 can watch the cameras and change "
            "the config (set http.auth, or listen on 127.0.0.1)");
  EXPECT_NE(open_without_login_warning(cfg("{listen: 192.168.1.20}")), "");
  for (const char* quiet : {"{listen: 127.0.0.1}", "{listen: localhost}", "{listen: '::1'}", "{listen: 127.0.0.2}",
                            "{listen: 0.0.0.0, auth: {token: t0ken}}"})
    EXPECT_EQ(open_without_login_warning(cfg(quiet)), "") << quiet;
}

TEST(ServeConfig, EmptyListenAddressAndStorageFolderAreErrorsNotDefaults) {
  EXPECT_NE(error_of("http: {listen: ''}\ncameras: {a: {source: x}}\n").find(":1: http.listen: empty"),
            std::string::npos);
  EXPECT_NE(error_of("storage: {dir: ''}\ncameras: {a: {source: x}}\n").find(":1: storage.dir: empty"),
            std::string::npos);
}

TEST(ServeConfig, AlertKeysOfAnotherKindTwinNamesAndSecondDocumentsAreRefused) {
  const auto rules = [](const std::string& list) { return error_of("cameras: {a: {source: x}}\nalerts:\n" + list); };
  EXPECT_NE(rules("  - {kind: unmasked_face, below: 0.5}\n").find("alerts[1].below: only for kind low_compliance"),
            std::string::npos);
  EXPECT_NE(rules("  - {kind: low_compliance, seconds: 4}\n").find("alerts[1].seconds: not for kind low_compliance"),
            std::string::npos);
  EXPECT_NE(rules("  - {name: door, kind: unmasked_face}\n  - {name: door, kind: camera_offline}\n")
                .find("alerts[2]: a second rule named 'door'"),
            std::string::npos);
  EXPECT_EQ(rules("  - {name: door, kind: unmasked_face, seconds: 2}\n  - {kind: low_compliance, below: 0.5}\n"), "");
  EXPECT_NE(error_of("cameras: {a: {source: x}}\n---\ncameras: {b: {source: y}}\n").find("2 YAML documents"),
            std::string::npos);
  EXPECT_NE(error_of("defaults: {source: x}\ncameras: {a: {source: y}}\n").find("defaults.source: each camera"),
            std::string::npos);
}

TEST(ServeConfig, MqttTopicsTheBrokerWouldRefuseAreRefusedHere) {
  const auto mqtt = [](const std::string& extra) {
    return error_of("mqtt: {host: broker" + extra + "}\ncameras: {a: {source: x}}\n");
  };
  EXPECT_NE(mqtt(", topic_prefix: \"site/#\"").find("topic_prefix must be free of"), std::string::npos);
  EXPECT_EQ(mqtt(", topic_prefix: site/north"), "");
  const auto fleet = [](const std::string& filter) {
    return error_of("mqtt: {host: broker}\nfleet: {subscribe: [\"" + filter + "\"]}\ncameras: {a: {source: x}}\n");
  };
  for (const char* bad : {"a/#/b", "", "a/b#", "a+/b", "#/x"})
    EXPECT_NE(fleet(bad).find("is not an MQTT topic filter"), std::string::npos) << bad << ": " << fleet(bad);
  for (const char* good : {"maskwatch/+/#", "#", "+", "site/+/status", "a/b"}) EXPECT_EQ(fleet(good), "") << good;
}

TEST(ServeConfig, TheShippedDemoIsValidHere) {
  const auto cfg = load_serve_config(fs::path(MASKWATCH_TEST_SOURCE_DIR) / "examples" / "demo.yaml");
  ASSERT_EQ(cfg.cameras.size(), 1u);
  EXPECT_TRUE(cfg.cameras[0].loop);
  EXPECT_TRUE(fs::exists(cfg.cameras[0].source)) << cfg.cameras[0].source;
}

TEST(ServeConfig, DuplicateKeysNonFiniteNumbersBadWebhooksAndFileFoldersAreRejected) {
  const std::string twice = error_of("cameras:\n  demo: {source: a.mp4}\n  demo: {source: b.mp4}\n");
  EXPECT_EQ(twice.rfind("/etc/mw/test.yaml:3: duplicate key 'demo' in cameras (first at line 2)", 0), 0u) << twice;
  EXPECT_NE(error_of("http: {port: 1, port: 2}\ncameras: {a: {source: x}}\n").find("duplicate key 'port' in http"),
            std::string::npos);
  for (const char* v : {".nan", ".inf", "-.inf", ".NaN"}) {
    const std::string e = error_of(std::string("cameras:\n  a:\n    source: x\n    fps_limit: ") + v + "\n");
    EXPECT_NE(e.find(":4: cameras.a.fps_limit: '" + std::string(v) + "' is not a finite number"), std::string::npos)
        << v << ": " << e;
  }
  const auto webhook = [](const std::string& url) {
    return error_of("cameras: {a: {source: x}}\nalerts:\n  - kind: unmasked_face\n    webhook: \"" + url + "\"\n");
  };
  for (const char* bad : {"http://", "http://a b:99/x", "ftp://host/x", "http://host:99999/x", "http://host:0/x",
                          "https://host/a\\tb", "http:///path"})
    EXPECT_NE(webhook(bad).find(":4: alerts[1].webhook: "), std::string::npos) << bad << ": " << webhook(bad);
  EXPECT_NE(webhook("http://host:99999/x").find("port 99999 is not 1..65535"), std::string::npos);
  for (const char* good :
       {"https://hooks.example.com:8443/x?y=1", "http://[::1]:8080/h", "http://10.0.0.2", "https://user:pw@host/p"})
    EXPECT_EQ(webhook(good), "") << good;
  TempDir tmp;
  std::ofstream(tmp / "a-file") << "x";
  const std::string file_dir =
      error_of("storage: {dir: " + (tmp / "a-file").string() + "}\ncameras: {a: {source: x}}\n");
  EXPECT_NE(file_dir.find("test.yaml:1: storage.dir: " + (tmp / "a-file").string() + " is a file, not a folder"),
            std::string::npos)
      << file_dir;
  // Under a file: config check said OK and serve could not create it (a restart loop).
  const std::string under_file =
      error_of("storage: {dir: " + (tmp / "a-file" / "sub").string() + "}\ncameras: {a: {source: x}}\n");
  EXPECT_NE(under_file.find("test.yaml:1: storage.dir: " + (tmp / "a-file" / "sub").string() +
                            " cannot be created: " + (tmp / "a-file").string() + " is a file"),
            std::string::npos)
      << under_file;
  // A face model name with a typo was read as a file name, with no line and no names.
  const std::string typo = error_of("cameras:\n  a:\n    source: x\n    detector: {face_model: yunet-m}\n");
  EXPECT_NE(typo.find("test.yaml:4: cameras.a.detector.face_model: yunet-m is no face model name (yunet-2022, "
                      "yunet-n, yunet-s, yunet-n-scenes) nor an .onnx file"),
            std::string::npos)
      << typo;
}

TEST(LogText, UrlsLoseTheirPasswordsAndLogLinesCannotBeForged) {
  EXPECT_EQ(redact_url("open http://viewer:pa55@cam.local:8080/live failed; rtsp://tok3n@10.0.0.9/x ok"),
            "open http://viewer:***@cam.local:8080/live failed; rtsp://***@10.0.0.9/x ok");
  EXPECT_EQ(redact_url("/videos/a:b@c.mp4 and http://host/no-user"), "/videos/a:b@c.mp4 and http://host/no-user");
  // Passwords with '/' or '@' (FFmpeg splits at the last '@'), secrets in the query, and a port
  // is not a password.
  EXPECT_EQ(redact_url("rtsp://admin:se/cret@host/s"), "rtsp://admin:***@host/s");
  EXPECT_EQ(redact_url("rtsp://admin:p@ss@host/s x"), "rtsp://admin:***@host/s x");
  EXPECT_EQ(redact_url("http://cam/live?user=a&password=hunter2&x=1"), "http://cam/live?user=a&password=***&x=1");
  EXPECT_EQ(redact_url("http://host:8080/live by admin@site"), "http://host:8080/live by admin@site");
  // Any parameter named like a secret (a review found apikey, api_key and sig shown).
  EXPECT_EQ(redact_url("http://cam/s?apikey=K1&api_key=K2&sig=S&X-Amz-Signature=S2&client_secret=C&fps=5"),
            "http://cam/s?apikey=***&api_key=***&sig=***&X-Amz-Signature=***&client_secret=***&fps=5");
  EXPECT_EQ(redact_url("http://cam/s?keyframe=1&author=me&pw=P&psw=Q&access_token=T"),
            "http://cam/s?keyframe=1&author=me&pw=***&psw=***&access_token=***");
  // A webhook's path is its secret: only where it goes is shown.
  EXPECT_EQ(hide_url_path("https://discord.com/api/webhooks/123456/DiscordSecretToken"), "https://discord.com/***");
  EXPECT_EQ(hide_url_path("https://api.telegram.org/bot123:TelegramSecret/sendMessage?chat_id=1"),
            "https://api.telegram.org/***");
  EXPECT_EQ(hide_url_path("http://u:pw@hooks.local:8080/"), "http://u:***@hooks.local:8080/");
  // A password with a space is not found by pattern: once remembered from the config, it is hidden anywhere.
  remember_url_secret("rtsp://user:pa ss word@host/x");
  EXPECT_EQ(redact_url("cannot open rtsp://user:pa ss word@host/x: refused"), "cannot open rtsp://user:***@host/x: refused");
  EXPECT_EQ(escape_control("a\nb\rc\td\x1b[31me\x7f"), "a\\nb\\rc\\td\\x1b[31me\\x7f");
  // Through the installed format: one message is one line, whatever it carries.
  std::string text;
  {
    CapturedLog out;
    install_log_format();
    spdlog::warn("mqtt: payload '{}'", "ON\n[12:00:00] error: forged line");
    spdlog::info("camera x: cannot open {}", "http://u:pa55@h/x");
    text = out.text();
  }
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2) << text;
  EXPECT_NE(text.find("payload 'ON\\n[12:00:00] error: forged line'"), std::string::npos) << text;
  EXPECT_EQ(text.find("pa55"), std::string::npos) << text;
  EXPECT_NE(text.find("http://u:***@h/x"), std::string::npos) << text;
}

TEST(LogText, ALineThatKeepsRepeatingIsLoggedOncePerIntervalWithACount) {
  using namespace std::chrono;
  LogThrottle t(minutes(10));
  const auto t0 = steady_clock::time_point{} + hours(1);
  ASSERT_TRUE(t.admit(t0));                  // the first: at its level, nothing held back
  EXPECT_EQ(*t.admit(t0 + minutes(10)), 0);  // an interval later: logged again
  // Flipping every 5 s for 10 minutes: 119 at debug level, then one line that counts them.
  int logged = 0;
  for (int i = 1; i < 120; ++i) logged += t.admit(t0 + minutes(10) + seconds(5 * i)).has_value();
  EXPECT_EQ(logged, 0);
  const auto next = t.admit(t0 + minutes(20));
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, 119);
  EXPECT_FALSE(t.admit(t0 + minutes(20) + seconds(1)));
}

// What log() writes: the first at its level, the held-back ones at debug, then one line
// at its level that counts them.
TEST(LogText, AThrottledLineSaysHowManyWereHeldBack) {
  using namespace std::chrono;
  CapturedLog out("%l|%v");  // info and above, as by default
  LogThrottle t(seconds(10));
  const auto t0 = steady_clock::time_point{} + hours(1);
  t.log(spdlog::level::warn, "stream refused", "streams refused", t0);
  for (int i = 1; i <= 3; ++i) t.log(spdlog::level::warn, "stream refused", "streams refused", t0 + seconds(i));
  t.log(spdlog::level::warn, "stream refused", "streams refused", t0 + seconds(10));
  t.log(spdlog::level::err, "row dropped", "such rows", t0 + seconds(20));
  EXPECT_EQ(out.text(),
            "warning|stream refused\n"
            "warning|stream refused (3 more streams refused since the last such line)\n"
            "error|row dropped\n");
}

// A value keeps every '=' after the first (httplib 0.11 kept only the last piece: a base64
// token "abc=" became "abc"); %XX is decoded, '+' is a space, a bad '%' stays as it is.
TEST(HttpParams, AQueryPairSplitsAtItsFirstEqualsSign) {
  const auto p = maskwatch::parse_query("a=1&b=x%3D&c=x=y&d&e=%zz+1&&f=%41%2b");
  const std::multimap<std::string, std::string> want = {{"a", "1"},     {"b", "x="},      {"c", "x=y"},
                                                        {"d", ""},      {"e", "%zz 1"}, {"f", "A+"}};
  EXPECT_EQ(p, want);
  EXPECT_TRUE(maskwatch::parse_query("").empty());
  EXPECT_EQ(maskwatch::parse_query("token=YWJjZGVmZ2g=").find("token")->second, "YWJjZGVmZ2g=");
}

// Ranges as RFC 9110 reads them: an end past the resource is clamped, "-0" and a start past
// the end are unsatisfiable, and what cannot be parsed or asks for several ranges is ignored.
TEST(HttpParams, AByteRangeIsClampedRefusedOrIgnoredAsTheRfcSays) {
  using maskwatch::byte_range;
  const auto is = [](const std::optional<maskwatch::ByteRange>& r, uint64_t first, uint64_t last) {
    return r && r->satisfiable && r->first == first && r->last == last;
  };
  const auto unsatisfiable = [](const std::optional<maskwatch::ByteRange>& r) { return r && !r->satisfiable; };
  EXPECT_TRUE(is(byte_range("bytes=0-99", 100), 0, 99));
  EXPECT_TRUE(is(byte_range("bytes=0-4933090", 100), 0, 99));
  EXPECT_TRUE(is(byte_range("bytes=10-", 100), 10, 99));
  EXPECT_TRUE(is(byte_range("bytes=-10", 100), 90, 99));
  EXPECT_TRUE(is(byte_range("bytes=-1000", 100), 0, 99));
  EXPECT_TRUE(is(byte_range("bytes= 0-5", 100), 0, 5));
  EXPECT_TRUE(is(byte_range("BYTES=1-1", 100), 1, 1));
  EXPECT_TRUE(unsatisfiable(byte_range("bytes=100-", 100)));
  EXPECT_TRUE(unsatisfiable(byte_range("bytes=-0", 100)));
  EXPECT_TRUE(unsatisfiable(byte_range("bytes=0-", 0)));
  for (const char* ignored : {"", "bytes=0-3,10-13", "items=0-5", "bytes=5-2", "bytes=abc", "bytes=-", "bytes=1-x"})
    EXPECT_FALSE(byte_range(ignored, 100)) << ignored;
}

// HTTP Basic credentials are compared as base64 (OpenSSL's encoder): the RFC 4648 test vectors.
TEST(HttpAuth, Base64OfBasicCredentialsFollowsRfc4648) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("maskwatch:s3cret\xff"), "bWFza3dhdGNoOnMzY3JldP8=");
}

// /metrics text: one HELP/TYPE per family, label values escaped, cumulative histogram buckets.
TEST(Prometheus, FamiliesEscapedLabelsAndCumulativeBuckets) {
  PromText out;
  out.family("m_up", "gauge", "Up.").sample("m_up", 1, {{"camera", "door \"A\"\\\n"}});
  PromHistogram h;
  h.add(0.0005);
  h.add(0.003);
  h.add(0.003);
  h.add(7.0);
  out.family("m_seconds", "histogram", "Time.").histogram("m_seconds", h, {{"stage", "detect"}});
  const std::string t = out.str();
  EXPECT_NE(t.find("# HELP m_up Up.\n# TYPE m_up gauge\nm_up{camera=\"door \\\"A\\\"\\\\\\n\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("m_seconds_bucket{stage=\"detect\",le=\"0.001\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("m_seconds_bucket{stage=\"detect\",le=\"0.0025\"} 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("m_seconds_bucket{stage=\"detect\",le=\"0.005\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("m_seconds_bucket{stage=\"detect\",le=\"1\"} 3\n"), std::string::npos) << t;
  EXPECT_NE(t.find("m_seconds_bucket{stage=\"detect\",le=\"+Inf\"} 4\n"), std::string::npos) << t;
  EXPECT_NE(t.find("m_seconds_count{stage=\"detect\"} 4\n"), std::string::npos) << t;
  EXPECT_NEAR(h.mean(), (0.0005 + 0.006 + 7.0) / 4, 1e-12);
}

// privacy: blurred unless the config says otherwise; top level, defaults and per camera.
TEST(ServeConfig, PrivacyIsBlurredByDefaultAndSetPerCamera) {
  const auto cfg = parse_serve_config(
      "privacy: {faces: none}\ncameras:\n  a: {source: x.mp4}\n  b: {source: x.mp4, privacy: {faces: full}}\n",
      "t.yaml");
  EXPECT_EQ(cfg.camera("a")->privacy, FacePrivacy::None);
  EXPECT_EQ(cfg.camera("b")->privacy, FacePrivacy::Full);
  EXPECT_EQ(cfg.to_json(true)["cameras"]["a"]["privacy"]["faces"], "none");
  EXPECT_EQ(parse_serve_config("cameras: {a: {source: x}}\n", "t.yaml").camera("a")->privacy, FacePrivacy::Blurred);
  EXPECT_EQ(parse_serve_config("cameras: {a: {source: x}}\n", "t.yaml").storage.snapshot_days, 7);
  EXPECT_EQ(parse_serve_config("cameras: {a: {source: x}}\n", "t.yaml").storage.retention_days, 30);
  EXPECT_NE(error_of("cameras:\n  a:\n    source: x\n    privacy: {faces: blurry}\n")
                .find(":4: cameras.a.privacy.faces must be full, blurred or none, not 'blurry'"),
            std::string::npos)
      << error_of("cameras:\n  a:\n    source: x\n    privacy: {faces: blurry}\n");
  EXPECT_NE(error_of("privacy: {face: full}\ncameras: {a: {source: x}}\n").find("unknown key 'face' in privacy"),
            std::string::npos);
}

TEST(ServeConfig, ZonesArePolygonsInFrameSharesWithTheirMistakesNamed) {
  const auto cfg = parse_serve_config(
      "cameras:\n  a:\n    source: x.mp4\n    zones:\n      door: {points: [[0, 0], [0.5, 0], [0.5, 1]]}\n"
      "      tv: {type: exclude, points: [[0.6, 0.1], [0.9, 0.1], [0.9, 0.4], [0.6, 0.4]]}\n",
      "t.yaml");
  const auto& zones = cfg.camera("a")->zones;
  ASSERT_EQ(zones.size(), 2u);
  EXPECT_EQ(zones[0].name, "door");
  EXPECT_TRUE(zones[0].include);
  EXPECT_EQ(zones[0].points[1], cv::Point2f(0.5f, 0));
  EXPECT_FALSE(zones[1].include);
  EXPECT_EQ(cfg.to_json(true)["cameras"]["a"]["zones"]["tv"]["type"], "exclude");
  const std::string head = "cameras:\n  a:\n    source: x\n    zones:\n";
  const auto mistake = [&](const std::string& zone) { return error_of(head + "      " + zone + "\n"); };
  EXPECT_NE(mistake("d: {points: [[0, 0], [1, 0]]}").find(":5: cameras.a.zones.d.points: give at least three"),
            std::string::npos)
      << mistake("d: {points: [[0, 0], [1, 0]]}");
  EXPECT_NE(mistake("d: {points: [[0, 0], [1.5, 0], [1, 1]]}").find("each between 0 and 1"), std::string::npos);
  EXPECT_NE(mistake("d: {points: [[0, 0], [x, 0], [1, 1]]}").find("each between 0 and 1"), std::string::npos);
  EXPECT_NE(mistake("d: {points: [[0, 0], [0.5, 0.5], [1, 1]]}").find("enclose no area"), std::string::npos);
  EXPECT_NE(mistake("d: {type: inside, points: [[0, 0], [1, 0], [1, 1]]}")
                .find("cameras.a.zones.d.type must be include or exclude, not 'inside'"),
            std::string::npos);
  EXPECT_NE(mistake("d: {points: [[0, 0], [1, 0], [1, 1]], colour: red}").find("unknown key 'colour'"),
            std::string::npos);
  EXPECT_NE(mistake("'a b': {points: [[0, 0], [1, 0], [1, 1]]}").find("zone name 'a b'"), std::string::npos);
  EXPECT_NE(error_of("defaults: {zones: {d: {points: [[0, 0], [1, 0], [1, 1]]}}}\ncameras: {a: {source: x}}\n")
                .find("unknown key 'zones' in defaults"),
            std::string::npos)
      << error_of("defaults: {zones: {d: {points: [[0, 0], [1, 0], [1, 1]]}}}\ncameras: {a: {source: x}}\n");
}

// Viewer credentials come with admin ones, complete, and not the admin's token again.
TEST(ServeConfig, ViewerCredentialsNeedAnAdminAndTheirOwnSecret) {
  const auto cfg = parse_serve_config(
      "http: {auth: {token: a, viewer_token: v, viewer_user: g, viewer_password: p}}\ncameras: {a: {source: x}}\n",
      "t.yaml");
  EXPECT_TRUE(cfg.http.auth.has_viewer());
  EXPECT_EQ(cfg.to_json(true)["http"]["auth"]["viewer_token"], "***");
  EXPECT_EQ(cfg.to_json(true)["http"]["auth"]["viewer_password"], "***");
  EXPECT_NE(error_of("http: {auth: {viewer_token: v}}\ncameras: {a: {source: x}}\n").find("need admin ones too"),
            std::string::npos);
  EXPECT_NE(error_of("http: {auth: {token: a, viewer_user: g}}\ncameras: {a: {source: x}}\n")
                .find("a viewer_user needs a viewer_password"),
            std::string::npos);
  EXPECT_NE(error_of("http: {auth: {token: a, viewer_token: a}}\ncameras: {a: {source: x}}\n")
                .find("viewer_token must differ"),
            std::string::npos);
  EXPECT_NE(error_of("http: {auth: {user: u, password: p, viewer_user: u, viewer_password: p}}\ncameras: {a: {source: "
                     "x}}\n")
                .find("viewer_user must differ from the admin user"),
            std::string::npos);
  EXPECT_NE(error_of("http: {auth: {token: a, viewer_password: p}}\ncameras: {a: {source: x}}\n")
                .find("a viewer_password needs a viewer_user"),
            std::string::npos);
  EXPECT_NE(error_of("http: {auth: {token: \" a \"}}\ncameras: {a: {source: x}}\n").find("must not begin or end"),
            std::string::npos);
  EXPECT_NE(error_of("privacy: {faces: ''}\ncameras: {a: {source: x}}\n").find("not empty"), std::string::npos);
}
