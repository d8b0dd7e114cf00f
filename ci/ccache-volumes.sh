#!/usr/bin/env bash
# Carry tflite-forge's ccache volumes (engine volumes labelled io.tflite-forge.kind=ccache) to and
# from a host folder, so CI's cache action can keep the compiler cache between runs:
#   ci/ccache-volumes.sh export DIR   # DIR/<volume>/ for every ccache volume (replaced, not merged)
#   ci/ccache-volumes.sh import DIR   # each DIR/tflite-forge-ccache-*/ into its volume (made if missing)
# The copies run in the bootstrapped base image (no registry). ENGINE=podman for podman.
set -euo pipefail
ENGINE=${ENGINE:-docker}
IMAGE=${IMAGE:-tflite-forge/debian-base:bookworm}
mode=${1:-}; dir=${2:-}
[ -n "$dir" ] && { [ "$mode" = export ] || [ "$mode" = import ]; } \
  || { echo "usage: ci/ccache-volumes.sh export|import DIR" >&2; exit 2; }
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
copy() { "$ENGINE" run --rm --network none -v "$1" -v "$2" "$IMAGE" sh -ec "$3"; }
case $mode in
  export)
    for vol in $("$ENGINE" volume ls -q --filter label=io.tflite-forge=1 --filter label=io.tflite-forge.kind=ccache); do
      copy "$vol:/from:ro" "$dir:/to" "rm -rf /to/$vol.tmp; cp -a /from /to/$vol.tmp; rm -rf /to/$vol; mv /to/$vol.tmp /to/$vol"
      echo "ccache-volumes: exported $vol"
    done ;;
  import)
    for path in "$dir"/tflite-forge-ccache-*/; do
      [ -d "$path" ] || continue
      vol=$(basename "$path")
      "$ENGINE" volume inspect "$vol" >/dev/null 2>&1 \
        || "$ENGINE" volume create --label io.tflite-forge=1 --label io.tflite-forge.kind=ccache "$vol" >/dev/null
      # 1777 as the builder image gives /ccache: a volume that is not empty keeps its own mode.
      copy "$path:/from:ro" "$vol:/to" "cp -a /from/. /to/; chmod 1777 /to"
      echo "ccache-volumes: imported $vol"
    done ;;
esac
