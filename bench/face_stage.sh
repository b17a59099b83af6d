#!/usr/bin/env bash
# Face-stage candidates on annotated scenes: for each face model, detection width and score
# threshold, `maskwatch eval --scenes` (headline protocol) and one table row. The numbers in
# README "Face stage" come from this script; each case is one full pass over the scenes
# (scenes-dev: 1,414 images, about a minute per case on 2 cores).
#
#   bench/face_stage.sh [SCENES_DIR] [OUT_DIR]
#   CASES="yunet-n:320:0.6 yunet-n:640:0.5" bench/face_stage.sh ...   # model:width:threshold
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scenes="${1:-$root/../shared/data/scenes-dev}"
out="${2:-$root/build/face-stage}"
bin="$root/build/maskwatch"
[[ -x "$bin" ]] || { echo "face_stage: build first (scripts/setup.sh)" >&2; exit 1; }
[[ -d "$scenes/annotations" ]] || { echo "face_stage: $scenes has no annotations/" >&2; exit 1; }
cases=(${CASES:-yunet-2022:320:0.6 yunet-n:320:0.6 yunet-s:320:0.6 yunet-n:480:0.6 yunet-n:640:0.6 yunet-n:640:0.4 yunet-n:960:0.4})
mkdir -p "$out"
printf '| model | detect width | threshold | face AP | face recall | face precision | mAP (headline) | mAP (per-class-score) |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
for c in "${cases[@]}"; do
  IFS=: read -r model width thr <<< "$c"
  json="$out/$model-$width-$thr.json"
  # Resumable: a case whose JSON exists is not run again (delete it to re-measure).
  if [[ ! -s "$json" ]]; then
    MASKWATCH_NO_PROGRESS=1 "$bin" eval --scenes "$scenes" --face-model "$model" --detect-width "$width" \
      --face-threshold "$thr" --json "$json.tmp" > /dev/null
    mv "$json.tmp" "$json"
  fi
  /usr/bin/python3 - "$json" "$model" "$width" "$thr" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {j['face_ap']:.4f} | {j['face_recall']:.4f} | "
      f"{j['face_precision']:.4f} | {j['map']:.4f} | {j['per_class_score_map']:.4f} |")
PY
done
