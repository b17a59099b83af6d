#!/usr/bin/env bash
# maskwatch set-up: installs the Debian packages, verifies the model assets by sha256,
# and builds in Release (build/) plus an ASan+UBSan build of the tests (build-asan/).
#
#   scripts/setup.sh [--shared DIR] [--assets DIR] [--no-install] [--no-sanitize] [--jobs N]
#
#   --shared DIR   folder with data/, models/, samples/ (env MASKWATCH_SHARED;
#                  default: ../shared beside the project, or beside the repository this
#                  one was cloned from)
#   --assets DIR   folder with the .tflite/.onnx/labels files (env MASKWATCH_ASSETS;
#                  default: SHARED/models)
#   --no-install   do not call apt-get (packages already installed)
#   --no-sanitize  skip the sanitizer build
#   --jobs N       parallel compile jobs (default 2: the 2-core machine this is built on)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${MASKWATCH_SHARED:-}"
assets="${MASKWATCH_ASSETS:-}"
install=1
sanitize=1
jobs=2

while [[ $# -gt 0 ]]; do
  case "$1" in
    --shared) shared="$2"; shift 2 ;;
    --assets) assets="$2"; shift 2 ;;
    --no-install) install=0; shift ;;
    --no-sanitize) sanitize=0; shift ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

step() { printf '\n== %s\n' "$*"; }

# --- 1. Debian packages (each one is explained in README.md) ----------------------------
packages=(
  build-essential cmake pkg-config
  dpkg-dev                          # the .deb (cpack): dpkg-shlibdeps writes its Depends
  libtorch-dev                      # training, LibTorch reference inference
  libopenblas0-openmp               # BLAS for LibTorch: the default netlib BLAS makes it 3-8x slower
  libopencv-dev opencv-data         # image processing, YuNet faces, DNN inference; Haar fallback
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev libavdevice-dev  # video in/out, cameras
  libjpeg62-turbo-dev libpng-dev    # JPEG and PNG (the runtime does not load OpenCV's imgcodecs)
  libonnx-dev libprotobuf-dev       # writing + checking model.onnx
  libxnnpack-dev libpthreadpool-dev # running the mask classifier (1.9x OpenCV DNN per face)
  libflatbuffers-dev                # reading .tflite files
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libssl-dev
  libpugixml-dev                    # Pascal VOC annotations (eval --scenes)
  libyaml-cpp-dev libsqlite3-dev libcpp-httplib-dev   # serve: config, history, HTTP API
  libpaho-mqtt-dev                  # serve: MQTT publisher (Paho C async client)
  mosquitto mosquitto-clients       # tests: a real MQTT broker and subscriber
  libgtest-dev libgmock-dev libbenchmark-dev
  ffmpeg                            # tests: a real HTTP stream server that dies and stalls
  chromium chromium-driver python3-selenium   # tests: a real headless browser loads the dashboard
)
if [[ $install == 1 ]]; then
  step "Debian packages"
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    echo "installing: ${missing[*]}"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "all ${#packages[@]} packages present"
  fi
fi

# --- 2. Shared data and model assets ----------------------------------------------------
step "Assets"
if [[ -z "$shared" ]]; then
  if [[ -d "$root/../shared/models" ]]; then
    shared="$root/../shared"
  else
    # A clone of a local checkout (e.g. a CI clone in /tmp) finds the data beside its origin.
    origin="$(git -C "$root" remote get-url origin 2>/dev/null || true)"
    if [[ -n "$origin" && -d "$origin/../shared/models" ]]; then shared="$origin/../shared"; fi
  fi
fi
[[ -n "$shared" ]] && shared="$(cd "$shared" && pwd)"
[[ -z "$assets" && -n "$shared" ]] && assets="$shared/models"
if [[ -z "$assets" || ! -d "$assets" ]]; then
  cat >&2 <<MSG
setup: no asset directory found. Pass --assets DIR (or --shared DIR) with:
  mobilenet_v2_1.0_224_quant.tflite   (TensorFlow hosted models, mobilenet_v2_1.0_224_quant.tgz)
  tf2_mobilenet_v2_1.0_224_ptq.tflite (TF2 Keras MobileNetV2, post-training quantized)
  imagenet_labels.txt                 (1001 ImageNet labels, 0 = background)
  face_detection_yunet_2022.onnx      (OpenCV zoo, YuNet 2022)
  yunet_n_640_640.onnx, yunet_s_320_320.onnx, yunet_n_320_320.onnx
                                      (libfacedetection.train, YuNet 2023; yunet-n is the default)
MSG
  exit 1
fi
assets="$(cd "$assets" && pwd)"
(cd "$assets" && sha256sum --quiet -c "$root/scripts/assets.sha256") || {
  echo "setup: an asset in $assets is missing or does not match scripts/assets.sha256" >&2
  exit 1
}
echo "verified $(wc -l < "$root/scripts/assets.sha256") assets in $assets"
[[ -n "$shared" ]] && echo "shared data: $shared" || echo "shared data: not found (data-dependent tests will fail)"

# --- 3. Build ---------------------------------------------------------------------------
common=(-DMASKWATCH_ASSET_DIR="$assets" -DMASKWATCH_SHARED_DIR="${shared:-$root/../shared}")
step "Release build (build/)"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release "${common[@]}" > /dev/null
cmake --build "$root/build" -j "$jobs"
if [[ $sanitize == 1 ]]; then
  step "ASan+UBSan build of the unit tests (build-asan/)"
  cmake -S "$root" -B "$root/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMASKWATCH_SANITIZE=ON \
        -DMASKWATCH_BUILD_BENCH=OFF "${common[@]}" > /dev/null
  cmake --build "$root/build-asan" -j "$jobs"
fi
[[ -f "$root/models/ensemble.json" ]] && echo "default model: $root/models/ensemble.json (four models, the first is $root/models/model.onnx)"
step "Done: run the tests with scripts/test.sh"
