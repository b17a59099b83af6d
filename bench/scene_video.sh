#!/usr/bin/env bash
# scenes-dev as a video: what a lower score to stay than to start (`run --face-keep-threshold`,
# serve's tracker.keep_score) does to the faces `run` shows, on real annotated scenes. Each scene
# is letterboxed to 640x480 and held for 4 frames at 2 fps, jittered by up to 3 px and given
# fresh sensor noise every frame (MJPEG), then 2 black frames (1 s: every track ends between
# scenes). `run` goes through the video once per keep threshold; the 4th frame of each scene is
# scored against the labels: class-agnostic face AP (VOC matching at IoU 0.5; labelled faces
# under 32 px in the photo and difficult ones are ignore regions; incorrectly worn masks are
# faces), recall and precision of the faces shown. The 1st frame (no track yet) is the same for
# every threshold. DARK=1 renders the video at -3 EV with heavier noise and MJPEG.
# The numbers in README "A face already followed" come from this script. About 5 minutes to
# letterbox the scenes once (kept in OUT_DIR), then 4-5 minutes per threshold on 2 cores.
#
#   bench/scene_video.sh [OUT_DIR]
#   KEEPS="1 0.5 0.4" DARK=1 SCENES=100 bench/scene_video.sh /tmp/sv
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/build/scene-video}"
bin="$root/build/maskwatch"
scenes="$root/../shared/data/scenes-dev"
[[ -x "$bin" ]] || { echo "scene_video: build first (scripts/setup.sh)" >&2; exit 1; }
[[ -d "$scenes/images" && -d "$scenes/annotations" ]] || { echo "scene_video: $scenes is missing" >&2; exit 1; }
command -v ffmpeg > /dev/null || { echo "scene_video: needs ffmpeg (scripts/setup.sh installs it)" >&2; exit 1; }
read -ra keeps <<< "${KEEPS:-1 0.5 0.4}"
mkdir -p "$out/letterboxed"
ls "$scenes/images" | sort | head -n "${SCENES:-100000}" > "$out/names.txt"
while read -r n || [[ -n "$n" ]]; do
  png="$out/letterboxed/${n%.*}.png"
  [[ -s "$png" ]] && continue  # resumable
  ffmpeg -loglevel error -y -i "$scenes/images/$n" -vf \
    "scale=640:480:force_original_aspect_ratio=decrease:force_divisible_by=2,pad=648:488:(ow-iw)/2:(oh-ih)/2,format=rgb24" \
    "$png.tmp.png" < /dev/null
  mv "$png.tmp.png" "$png"
done < "$out/names.txt"
ffmpeg -loglevel error -y -f lavfi -i color=c=black:s=648x488 -frames:v 1 -pix_fmt rgb24 "$out/black.png"
{
  while read -r n || [[ -n "$n" ]]; do
    printf "file '%s'\nduration 2\nfile '%s'\nduration 1\n" "$out/letterboxed/${n%.*}.png" "$out/black.png"
  done < "$out/names.txt"
  printf "file '%s'\n" "$out/black.png"
} > "$out/list.txt"
light="noise=alls=8:allf=t" q=3 name=scenes
if [[ "${DARK:-0}" == 1 ]]; then
  curve="255*pow(pow(val/255\\,2.2)*0.125\\,1/2.2)"  # -3 EV in linear light
  light="lutrgb=r='$curve':g='$curve':b='$curve',noise=alls=20:allf=t" q=12 name=dark
fi
video="$out/$name.avi"
ffmpeg -loglevel error -y -f concat -safe 0 -i "$out/list.txt" -vf \
  "fps=2,crop=640:480:4+round(3*sin(n*1.7)):4+round(3*cos(n*2.3)),$light,format=yuvj420p" -c:v mjpeg -q:v "$q" "$video"
printf '| video | keep threshold | frame of the scene | face AP | recall | precision | faces shown | false |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
for k in "${keeps[@]}"; do
  events="$out/$name-$k.jsonl"
  MASKWATCH_NO_PROGRESS=1 "$bin" run --source "$video" --no-display --face-keep-threshold "$k" --events "$events.tmp" \
    > /dev/null 2> "$out/$name-$k.log" || { cat "$out/$name-$k.log" >&2; exit 1; }
  mv "$events.tmp" "$events"
  for j in 0 3; do
    python3 - "$events" "$j" "$out/names.txt" "$scenes/annotations" "$name" "$k" <<'PY'
import json, math, sys, xml.etree.ElementTree as ET
events, j_want, names_file, ann, name, keep = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
names = open(names_file).read().split()
gts = []  # per scene: (box in the frame, ignored)
for k, n in enumerate(names):
    r = ET.parse(f"{ann}/{n.rsplit('.', 1)[0]}.xml").getroot()
    w, h = int(r.find('size/width').text), int(r.find('size/height').text)
    s = min(640 / w, 480 / h)
    nw, nh = max(2, int(round(w * s / 2)) * 2), max(2, int(round(h * s / 2)) * 2)
    frame = 6 * k + j_want  # the crop's n: 4 scene frames and 2 black ones per scene
    ox, oy = 4 + round(3 * math.sin(frame * 1.7)), 4 + round(3 * math.cos(frame * 2.3))
    px, py = (648 - nw) // 2 - ox, (488 - nh) // 2 - oy
    boxes = []
    for o in r.findall('object'):
        b = o.find('bndbox')
        x1, y1, x2, y2 = (float(b.find(t).text) for t in ('xmin', 'ymin', 'xmax', 'ymax'))
        d = o.find('difficult')
        ignored = (d is not None and d.text == '1') or min(x2 - x1, y2 - y1) < 32
        boxes.append(([x1 * nw / w + px, y1 * nh / h + py, x2 * nw / w + px, y2 * nh / h + py], ignored))
    gts.append(boxes)
dets = []
for line in open(events):
    e = json.loads(line)
    if e.get('type') != 'frame':
        continue
    k, j = divmod(e['frame'], 6)
    if j == j_want and k < len(names):
        dets += [(f['face_score'], k, [f['x1'], f['y1'], f['x2'], f['y2']]) for f in e['faces']]
def iou(a, b):
    ix, iy = max(0, min(a[2], b[2]) - max(a[0], b[0])), max(0, min(a[3], b[3]) - max(a[1], b[1]))
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / u if u > 0 else 0
npos = sum(not ign for g in gts for _, ign in g)
used = [[False] * len(g) for g in gts]
hits = []
for _, k, b in sorted(dets, key=lambda d: -d[0]):
    best, bi = max(((iou(b, g), i) for i, (g, _) in enumerate(gts[k])), default=(0, -1))
    if best >= 0.5 and gts[k][bi][1]:
        continue  # an ignore region
    hit = best >= 0.5 and not used[k][bi]
    if hit:
        used[k][bi] = True
    hits.append(hit)
prec, rec, tp = [], [], 0
for i, hit in enumerate(hits):
    tp += hit
    prec.append(tp / (i + 1))
    rec.append(tp / npos)
ap, last_r, best_p = 0.0, 0.0, [0.0] * (len(prec) + 1)
for i in range(len(prec) - 1, -1, -1):
    best_p[i] = max(prec[i], best_p[i + 1])
for i in range(len(prec)):
    ap += (rec[i] - last_r) * best_p[i]
    last_r = rec[i]
print(f"| {name} | {keep} | {j_want + 1} | {ap:.4f} | {tp / npos:.4f} | {tp / max(1, len(hits)):.4f} | {len(hits)} "
      f"| {len(hits) - tp} |")
PY
  done
done
