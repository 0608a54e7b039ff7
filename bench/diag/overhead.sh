#!/usr/bin/env bash
# Where tpjitd's fixed cost goes on a many-core GPU machine: one run, traced
# (tpjitd --trace-compiles), with the baselines it is compared against.
#   1. disk: the latency of a synchronous 4 KiB write (the cache publishes
#      with fsync);
#   2. generic NVCC batch, no GPU (--gpus 0): 16 minitl sources through one
#      `tpjit compile` call vs `nvcc -cubin` on one process per core;
#   3. NVRTC warm-up of a shipped spec with the GPUs (load checks): cold,
#      then warm twice over a restarted daemon, one rank (`tpjit warmup`).
# Needs the staging of scripts/gpu-e2e (.gpu-e2e/ or $TPJIT_STAGE). Writes
# the traces and timings to $OUT (default bench/results/tmp/diag); exits
# non-zero when a step fails.
#   bash bench/diag/overhead.sh [SPEC]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
stage="${TPJIT_STAGE:-$root/.gpu-e2e}"
spec="${1:-$stage/specs/qwen3-30b-a3b-tp4.json}"
out="${OUT:-$root/bench/results/tmp/diag}"
nvcc=/usr/local/cuda/bin/nvcc
export LD_LIBRARY_PATH="$stage/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export CUDA_CACHE_DISABLE=1 NCCL_NVLS_ENABLE=0
mkdir -p "$out"
work="$(mktemp -d)"
chmod 755 "$work"  # the compile sandbox (nobody) reads the includes
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }

start_daemon() {  # name, cache, extra flags...
  local name="$1" cache="$2"
  shift 2
  "$stage/daemon/tpjitd" --socket "$work/$name.sock" \
    --cache-dir "$work/cache-$cache" --trace-compiles "$@" \
    >"$out/tpjitd-$name.log" 2>&1 &
  pids+=("$!")
  local t0
  t0=$(now)
  until "$stage/cli/tpjit" health --socket "$work/$name.sock" >/dev/null \
    2>&1; do
    sleep 0.05
    if [[ $(secs "$t0" "$(now)" | cut -d. -f1) -ge 60 ]]; then
      echo "tpjitd $name did not serve in 60 s" >&2
      tail "$out/tpjitd-$name.log" >&2
      return 1
    fi
  done
  echo "tpjitd $name serving after $(secs "$t0" "$(now)") s"
}
stop_daemon() {
  kill "${pids[-1]}"
  wait "${pids[-1]}" 2>/dev/null || true
}

{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
  echo "cores $(nproc); $(date -u '+%F %H:%M UTC')"
} | tee "$out/machine.txt"

echo "== 1. disk: 200 synchronous 4 KiB writes in $work"
dd if=/dev/zero of="$work/sync" bs=4k count=200 oflag=dsync 2>&1 | tail -1

echo "== 2. generic NVCC batch (16 sources), no GPU"
mkdir -p "$work/src" "$work/allowed"
cp -r "$stage/testlib/include/." "$work/allowed/"
for i in $(seq 0 15); do
  printf '#include "minitl/minitl.cuh"\nextern "C" __global__ void minitl_acc(float* y, const float* x, int n) {\n  minitl::Accumulate<float, %d, %d>(y, x, n);\n}\n' \
    $((1 << (i % 4))) $((64 << (i / 4 % 4))) >"$work/src/k$i.cu"
done
t0=$(now)
ls "$work/src"/*.cu | xargs -P "$(nproc)" -I{} "$nvcc" -cubin -arch=sm_90a \
  --expt-relaxed-constexpr -I "$work/allowed" -o {}.cubin {}
echo "nvcc, one process per core: $(secs "$t0" "$(now)") s"
start_daemon generic generic --gpus 0 --include-allowlist "$work/allowed" \
  --nvcc "$nvcc"
srcs=()
for f in "$work/src"/*.cu; do srcs+=(--source "$f"); done
for run in cold warm; do
  t0=$(now)
  "$stage/cli/tpjit" compile --socket "$work/generic.sock" --backend nvcc \
    --include "$work/allowed" --option=--expt-relaxed-constexpr "${srcs[@]}" \
    --json >"$out/generic-$run.json"
  echo "tpjit compile, $run: $(secs "$t0" "$(now)") s"
done
stop_daemon

echo "== 3. NVRTC warm-up of $(basename "$spec"), GPUs detected, one rank"
for run in cold.1 warm.2 warm.3; do
  start_daemon "$run" warmup
  t0=$(now)
  "$stage/cli/tpjit" warmup --socket "$work/$run.sock" --spec "$spec" \
    --rank 0 --world 1 --json >"$out/warmup-$run.json"
  echo "tpjit warmup, $run: $(secs "$t0" "$(now)") s"
  t0=$(now)
  "$stage/cli/tpjit" warmup --socket "$work/$run.sock" --spec "$spec" \
    --rank 0 --world 1 --json >/dev/null
  echo "  again on the same daemon: $(secs "$t0" "$(now)") s"
  stop_daemon
done
echo "traces: $out/tpjitd-*.log"
