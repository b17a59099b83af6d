#!/usr/bin/env bash
# The one real webcam clip, darkened end to end: each case renders the clip with FFmpeg (an
# exposure change in linear light, uniform temporal sensor noise, MJPEG at a quality scale),
# runs `maskwatch run` on it as a camera would feed it, and scores the faces shown against the
# clip's labels (the largest face of each frame; "uncertain" is neither right nor wrong).
# Results are kept per case (resumable): delete OUT_DIR after changing the build or the model.
# The numbers in README "Robustness under camera conditions" come from this script. About 10 s
# per case on 2 cores.
#
#   bench/dark_clip.sh [OUT_DIR]
#   CASES="-2:10:12 -7:30:31" bench/dark_clip.sh   # EV:noise strength:MJPEG q (2 best .. 31 worst)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/build/dark-clip}"
bin="$root/build/maskwatch"
clip="$root/../shared/samples/video/webcam-mask-on-off.mp4"
labels="${clip%.mp4}.labels.json"
[[ -x "$bin" ]] || { echo "dark_clip: build first (scripts/setup.sh)" >&2; exit 1; }
[[ -f "$clip" && -f "$labels" ]] || { echo "dark_clip: $clip or its labels are missing" >&2; exit 1; }
command -v ffmpeg > /dev/null || { echo "dark_clip: needs ffmpeg (scripts/setup.sh installs it)" >&2; exit 1; }
read -ra cases <<< "${CASES:-0:0:2 -2:10:12 -3:10:12 -4:20:20 -5:20:20 -6:30:31 -7:30:31 -2:60:31}"
for c in "${cases[@]}"; do
  [[ "$c" =~ ^-?[0-9.]+:[0-9]+:[0-9]+$ ]] || { echo "dark_clip: case '$c' is not EV:noise:q" >&2; exit 1; }
done
mkdir -p "$out"
printf '| exposure | noise | MJPEG q | frames with a face | labelled frames shown right | uncertain | wrong |'
printf ' wrong at >= 0.9 |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for c in "${cases[@]}"; do
  IFS=: read -r ev noise q <<< "$c"
  name="ev${ev}-n${noise}-q${q}"
  events="$out/$name.jsonl"
  # Resumable: a case whose events exist is not run again (delete them to re-measure).
  if [[ ! -s "$events" ]]; then
    gain=$(awk -v ev="$ev" 'BEGIN { print 2 ^ ev }')
    curve="255*pow(pow(val/255\\,2.2)*$gain\\,1/2.2)"  # sRGB-like gamma 2.2 to linear and back
    filter="lutrgb=r='$curve':g='$curve':b='$curve'"
    [[ "$noise" != 0 ]] && filter="$filter,noise=alls=$noise:allf=t"
    ffmpeg -loglevel error -y -i "$clip" -vf "$filter" -c:v mjpeg -q:v "$q" "$out/$name.avi" < /dev/null
    MASKWATCH_NO_PROGRESS=1 "$bin" run --source "$out/$name.avi" --no-display --events "$events.tmp" \
      > /dev/null 2> "$out/$name.log" || { cat "$out/$name.log" >&2; exit 1; }
    mv "$events.tmp" "$events"
    rm -f "$out/$name.avi"
  fi
  python3 - "$events" "$labels" "$ev" "$noise" "$q" <<'PY'
import json, sys
events, labels, ev, noise, q = sys.argv[1:]
want = {}
for s in json.load(open(labels))["segments"]:
    for i in range(s["first"], s["last"] + 1):
        want[i] = s["label"]
frames = with_face = right = uncertain = wrong = sure_wrong = 0
for line in open(events):
    e = json.loads(line)
    if e.get("type") != "frame":
        continue
    frames += 1
    if not e["faces"]:
        continue
    with_face += 1
    if e["frame"] not in want:
        continue
    f = max(e["faces"], key=lambda f: f["x2"] - f["x1"])
    if f["label"] == "uncertain":
        uncertain += 1
    elif f["label"] == want[e["frame"]]:
        right += 1
    else:
        wrong += 1
        sure_wrong += f["score"] >= 0.9
print(f"| {ev} EV | {noise} | {q} | {with_face} of {frames} | {right} of {len(want)} | {uncertain} | {wrong} "
      f"| {sure_wrong} |")
PY
done
