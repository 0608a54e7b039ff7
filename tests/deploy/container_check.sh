#!/usr/bin/env bash
# deploy/Containerfile through a container engine from Debian (podman):
#  1. builds the Containerfile as shipped (context: the committed tree);
#  2. if that build cannot run here, builds its runtime stage alone (the same
#     lines, with the CUDA 13 runtime libraries and the binaries copied from
#     this machine instead of NVIDIA's apt repository and the build stage);
#  3. starts the image built and asks its health port with `tpjit health`.
# Prints every refusal verbatim; results/ logs go to $OUT (default a temp
# dir). Exit 0 only if an image started and answered SERVING.
#   tests/deploy/container_check.sh BUILD_DIR
# Env: ENGINE (default "podman --runtime runc"), ENGINE_LIMITS (ulimits for
# machines where the engine's defaults exceed the hard limits).
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build=$(cd "${1:-$root/build}" && pwd)
read -r -a engine <<<"${ENGINE:-podman --runtime runc}"
read -r -a limits <<<"${ENGINE_LIMITS:---ulimit nofile=1024:1024 --ulimit nproc=1024:1024}"
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
work=$(mktemp -d /var/tmp/tpjit-container-XXXXXX)
trap 'rm -rf "$work"; "${engine[@]}" rm -f tpjit-check >/dev/null 2>&1' EXIT
log() { echo "$*" | tee -a "$OUT/summary.txt"; }

log "engine: $("${engine[@]}" --version)"
mkdir -p "$work/full"
git -C "$root" archive HEAD | tar -x -C "$work/full"
"${engine[@]}" build "${limits[@]}" -f deploy/Containerfile \
  -t localhost/tpjit:full "$work/full" >"$OUT/build_full.log" 2>&1
rc=$?
log "full build (deploy/Containerfile): exit $rc"
image=localhost/tpjit:full
if ((rc != 0)); then
  log "refusal: $(grep -E '^(curl|E:|Error)' "$OUT/build_full.log" | head -3)"
  # The runtime stage, with NVIDIA's repository and the build stage replaced.
  ctx="$work/runtime"
  mkdir -p "$ctx/out/usr/local/bin" "$ctx/out/usr/local/cuda/lib64"
  install -m 0755 "$build/daemon/tpjitd" "$build/daemon/tpjit-worker" \
    "$build/cli/tpjit" "$ctx/out/usr/local/bin/"
  for lib in libcudart.so.13 libnvrtc.so.13 libnvrtc-builtins.so.13.0; do
    cp -L "/usr/local/cuda/lib64/$lib" "$ctx/out/usr/local/cuda/lib64/"
  done
  sed -n '/^FROM .* AS runtime/,$p' "$root/deploy/Containerfile" |
    sed -e '/ca-certificates curl/d' -e '/curl -fsSLo/d' \
        -e '/dpkg -i \/tmp\/keyring.deb/d' -e '/ && apt-get update \\$/d' \
        -e '/apt-get purge -y curl/d' \
        -e 's/ cuda-nvrtc-13-0 cuda-cudart-13-0 libnccl2//' \
        -e 's|^COPY --from=build /out/ /|COPY out/ /|' >"$ctx/Containerfile"
  cp "$ctx/Containerfile" "$OUT/Containerfile.runtime-only"
  "${engine[@]}" build "${limits[@]}" -t localhost/tpjit:runtime "$ctx" \
    >"$OUT/build_runtime.log" 2>&1
  rc=$?
  log "runtime-stage build (Containerfile.runtime-only): exit $rc"
  ((rc == 0)) || { tail -5 "$OUT/build_runtime.log" | tee -a "$OUT/summary.txt"; exit 1; }
  image=localhost/tpjit:runtime
fi
port=${HEALTH_PORT:-15051}
"${engine[@]}" rm -f tpjit-check >/dev/null 2>&1
"${engine[@]}" run -d --name tpjit-check "${limits[@]}" \
  -p "127.0.0.1:$port:50051" "$image" >"$OUT/run.log" 2>&1
rc=$?
log "run $image: exit $rc"
((rc == 0)) || { cat "$OUT/run.log" | tee -a "$OUT/summary.txt"; exit 1; }
answer=""
for _ in $(seq 1 60); do
  answer=$("$build/cli/tpjit" health --socket "127.0.0.1:$port" --timeout 2 2>&1) && break
  sleep 0.5
done
"${engine[@]}" logs tpjit-check >"$OUT/container.log" 2>&1
log "health: $answer"
grep -q SERVING <<<"$answer" && ! grep -q NOT_SERVING <<<"$answer"
