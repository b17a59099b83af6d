#!/usr/bin/env bash
# Contention bench: how much slower do `train` and `run` get when another process keeps the
# cores busy? A fair share of 2 cores between two busy processes is a 2x slowdown; much more
# than that means our threads waste the cores they get (spinning OpenMP/TBB workers, more
# threads than free cores).
#
#   bench/contention.sh [--build DIR] [--shared DIR] [--out DIR] [--quick]
#                       [--settings "- VAR=VALUE ..."] [--competitors "burn train"]
#
# --settings: environment settings to compare ("-" = as shipped); --quick: 300 images, not 800.
# Each case runs alone and then beside a competitor, under several thread settings:
#   burn   one process with one busy thread per core (a plain CPU hog)
#   train  a second copy of the same training run (the case the issue reported)
# Prints a Markdown table: seconds alone, seconds with the competitor, slowdown.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build"
shared="${MASKWATCH_SHARED:-$root/../shared}"
out="${TMPDIR:-/tmp}/maskwatch-contention"
per_class=400
settings="- OMP_WAIT_POLICY=PASSIVE"
competitors="burn train"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build="$2"; shift 2 ;;
    --shared) shared="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --quick) per_class=150; shift ;;
    --settings) settings="$2"; shift 2 ;;
    --competitors) competitors="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "contention: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
cores=$(nproc)
clip="$shared/samples/video/webcam-mask-on-off.mp4"

# A competitor that keeps every core busy until killed: one busy loop per core, in its own
# process group so that one kill stops them all.
burn_start() {
  setsid bash -c 'for ((i = 0; i < $0; i++)); do (while :; do :; done) & done; wait' "$cores" > /dev/null 2>&1 &
  echo $!
}
stop_group() { kill -- "-$1" 2>/dev/null || kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# The work measured (a short real training: data prep with face crops,
# frozen-backbone features, both phases, export).
train_cmd() {  # $1 out dir, rest: extra options
  local dir="$1"; shift
  "$build/maskwatch-train" train --data "$shared/data/seed-masks" --limit-per-class "$per_class" \
    --epochs 3 --fine-tune-epochs 2 --views 2 --out "$dir" --force --no-calibrate "$@"
}
run_cmd() {  # $1 json, rest: extra options
  local json="$1"; shift
  "$build/maskwatch" run --source "$clip" --no-display --max-frames 300 --json "$json" "$@"
}

seconds() {  # run a command, print its wall time in seconds
  local t0 t1
  t0=$(date +%s.%N)
  "$@" > "$out/last.log" 2>&1 || { echo "contention: command failed, see $out/last.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}

measure() {  # $1 competitor (none|burn|train) $2 env (K=V or -), rest: the command
  local comp="$1" envv="$2"; shift 2
  local pid="" t
  # The setting applies to both: a second training of ours would have it too.
  [[ "$envv" != "-" ]] && export "${envv?}"
  case "$comp" in
    burn) pid=$(burn_start) ;;
    # The second training loops so that it competes for the whole measurement.
    train) setsid bash -c "$(declare -f train_cmd); build='$build' shared='$shared' per_class=$per_class
                             while :; do train_cmd '$out/competitor'; done" > "$out/competitor.log" 2>&1 &
           pid=$! ;;
  esac
  sleep 1
  t=$(seconds "$@")
  [[ -n "$pid" ]] && stop_group "$pid"
  echo "$t"
}

row() {  # $1 case label, $2 env, $3 competitor, rest: command
  local label="$1" envv="$2" comp="$3"; shift 3
  local alone busy
  alone=$(measure none "$envv" "$@")
  busy=$(measure "$comp" "$envv" "$@")
  awk -v l="$label" -v e="$envv" -v c="$comp" -v a="$alone" -v b="$busy" \
    'BEGIN { printf "| %s | %s | %s | %.1f | %.1f | %.2fx |\n", l, (e == "-" ? "as shipped (GOMP_SPINCOUNT=1000)" : e), c, a, b, b / a }'
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $cores cores; $(date -u +%F)"
echo
echo "| work | setting | competitor | alone s | with competitor s | slowdown |"
echo "|---|---|---|---:|---:|---:|"
for envv in $settings; do
  for comp in $competitors; do row "train ($((per_class * 2)) images)" "$envv" "$comp" train_cmd "$out/t"; done
  row "run (300 frames)" "$envv" burn run_cmd "$out/run.json"
done
