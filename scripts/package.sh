#!/usr/bin/env bash
# Builds the Debian packages of the runtime (maskwatch) and of run's window (maskwatch-display)
# from build/ (made by scripts/setup.sh):
#   scripts/package.sh [OUT_DIR]      (default: build/package)
# prints the two .deb paths. Install the first with `sudo apt install ./maskwatch_*.deb`, then edit
# /etc/maskwatch/config.yaml and `sudo systemctl enable --now maskwatch` (README: Deploying at a site).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/build/package}"
[[ -f "$root/build/CPackConfig.cmake" ]] || { echo "package: no build/ - run scripts/setup.sh first" >&2; exit 1; }
cmake --build "$root/build" --target maskwatch maskwatch_display -j 2 >/dev/null
mkdir -p "$out"
(cd "$root/build" && cpack --config CPackConfig.cmake -G DEB -B "$out" >"$out/cpack.log" 2>&1) || {
  cat "$out/cpack.log" >&2
  exit 1
}
ls -1 "$out"/maskwatch_*.deb "$out"/maskwatch-display_*.deb
