#!/usr/bin/env bash
# Soak of `serve` (issue 23): the demo camera, with MJPEG viewers and event-stream listeners
# connecting and leaving all the time, /healthz polled, for MINUTES minutes; prints the
# server's RSS every 30 s and the first / last / peak. Loopback only, bounded in time.
#
#   bench/serve_soak.sh [MINUTES] [PORT]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
minutes="${1:-30}"
port="${2:-18931}"
shared="${MASKWATCH_SHARED:-$root/../shared}"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; [[ -n "${pid:-}" ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
MASKWATCH_SHARED="$shared" "$root/build/maskwatch" serve --config "$root/examples/demo.yaml" \
  --listen "127.0.0.1:$port" --data "$work/data" > "$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" > /dev/null && break; sleep 0.2; done
end=$(( $(date +%s) + minutes * 60 ))
churn() {  # $1: path; each client stays 1-5 s, then leaves
  while (( $(date +%s) < end )); do
    curl -s -o /dev/null --max-time $(( 1 + RANDOM % 5 )) "http://127.0.0.1:$port$1" || true
  done
}
for _ in 1 2 3 4; do churn /api/demo/stream.mjpeg & done
for _ in 1 2 3 4 5 6; do churn /api/events/stream & done
( while (( $(date +%s) < end )); do curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" || echo "healthz failed"; sleep 1; done ) &
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status"; }
first=""; peak=0; last=0
printf 'minute  RSS MiB\n'
while (( $(date +%s) < end )); do
  sleep 30
  kill -0 "$pid" 2>/dev/null || { echo "serve died:"; tail -5 "$work/serve.log"; exit 1; }
  last=$(rss); first=${first:-$last}; (( last > peak )) && peak=$last
  printf '%6.1f  %s\n' "$(echo "($(date +%s) - $end + $minutes * 60) / 60" | bc -l)" "$last"
done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
stats=$(curl -fs "http://127.0.0.1:$port/api/stats")
printf 'RSS first %s MiB, last %s MiB, peak %s MiB; http: %s\n' "$first" "$last" "$peak" \
  "$(echo "$stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin).get("http"))')"
