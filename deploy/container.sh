#!/usr/bin/env bash
# Build the mlnode-harness image (deploy/Dockerfile) and smoke-test it with whichever
# container engine is present (docker, else podman):
#   1. the simulator in the container, published on a host port, validated from the host;
#   2. the validator in the container against a simulator on the host (host network);
#   3. the image's healthcheck subcommand; the image size.
# With no engine it says so plainly and exits 0 (CI prints that line).
#
# Podman where it needs them (rootless, nested, CI sandboxes): PODMAN_RUNTIME=runc,
# host networking for step 2, and --ulimit host (no default ulimits) are what this
# script passes; set CONTAINER_ENGINE to force an engine.
set -euo pipefail
cd "$(dirname "$0")/.."
engine="${CONTAINER_ENGINE:-}"
if [ -z "$engine" ]; then
  for e in docker podman; do
    if command -v "$e" >/dev/null 2>&1 && "$e" info >/dev/null 2>&1; then engine=$e; break; fi
  done
fi
if [ -z "$engine" ]; then
  echo "container: no working docker or podman on this machine: image not built or tested"
  exit 0
fi
extra=()
if [ "$engine" = podman ]; then
  extra+=(--runtime "${PODMAN_RUNTIME:-runc}" --ulimit host)
fi
image=${IMAGE:-mlnode-harness:test}
"$engine" build -t "$image" -f deploy/Dockerfile .
echo "container: image $image: $("$engine" image inspect "$image" --format '{{.Size}}') bytes"

# 1. The simulator in the container, validated from the host.
cargo build --locked --bins -q
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cid=$("$engine" run -d "${extra[@]}" -p "127.0.0.1:$port:8080" "$image" \
  mlnode-sim --host 0.0.0.0 --port 8080 --deployed-model Qwen/Qwen3-32B-FP8 --time-scale 1000)
trap '"$engine" rm -f "$cid" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 100); do "$engine" exec "$cid" mlnode-sim healthcheck >/dev/null 2>&1 && break; sleep 0.2; done
"$engine" exec "$cid" mlnode-sim healthcheck
target/debug/mlnode-validate --mlnode-url "http://127.0.0.1:$port" --model Qwen/Qwen3-32B-FP8 \
  --skip-download --skip-deploy --exp-dir "$(mktemp -d)" --progress never | tail -n 1

# 2. The validator in the container against a simulator on the host.
out=$(mktemp)
target/debug/mlnode-sim --port 0 --deployed-model Qwen/Qwen3-32B-FP8 --time-scale 1000 >"$out" 2>/dev/null &
sim=$!
for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.1; done
"$engine" run --rm "${extra[@]}" --network host "$image" mlnode-validate --mlnode-url "$(head -n1 "$out")" \
  --model Qwen/Qwen3-32B-FP8 --skip-download --skip-deploy --progress never | tail -n 1
kill "$sim"
echo "container: $engine: image built, simulator and validator smoke-tested"
