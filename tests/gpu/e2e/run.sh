#!/usr/bin/env bash
# Runs on the GPU machine (staged by scripts/gpu-e2e); results go to $OUT.
#  1. cold: tpjitd with an empty cache; one tpjit_e2e_rank per GPU warms up
#     the spec, meets at the NCCL barrier, loads and checks every kernel;
#  2. warm: tpjitd restarted over the same cache, the same ranks;
#  3. late: the last rank arrives 6 s late at a 3 s NCCL barrier (x3);
#  4. the warm-up benchmark (run_bench.py) on the bench spec.
set -uo pipefail
cd "$(dirname "$0")"
export LD_LIBRARY_PATH="$PWD/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export NCCL_NVLS_ENABLE=0
export CUDA_CACHE_DISABLE=1  # NVRTC 13 would reuse the driver compute cache
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
E2E_SPEC=${E2E_SPEC:-specs/qwen3-30b-a3b-tp4.json}
BENCH_SPEC=${BENCH_SPEC:-specs/deepseek-v3-tp8.json}
G=$(nvidia-smi -L | wc -l)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/card.txt"
nproc | tee -a "$OUT/card.txt"
W=$(mktemp -d)
start() {
  ./daemon/tpjitd --socket "$W/s.sock" --cache-dir "$W/cache" 2>>"$OUT/tpjitd.log" &
  D=$!
  for _ in $(seq 1 600); do [[ -S "$W/s.sock" ]] && break; sleep 0.05; done
}
stop() { kill "$D"; wait "$D"; }
ranks() {  # label group timeout extra-args-for-last-rank extra-args-for-all
  local label=$1 group=$2 timeout=$3 last=$4 all=$5 pids=()
  local t0=$(date +%s%N)
  for ((g = 0; g < G; g++)); do
    local extra=$all; ((g == G - 1)) && extra="$all $last"
    ./tests/gpu/e2e/tpjit_e2e_rank --socket "$W/s.sock" --spec "$E2E_SPEC" \
      --rank $g --world "$G" --gpu $g --group "$group" --timeout "$timeout" \
      $extra >"$OUT/$label.rank$g.json" 2>"$OUT/$label.rank$g.err" &
    pids+=($!)
  done
  for ((g = 0; g < G; g++)); do
    wait "${pids[$g]}"; echo "$label rank $g exit $?" | tee -a "$OUT/summary.txt"
  done
  echo "$label wall $(( ($(date +%s%N) - t0) / 1000000 )) ms" | tee -a "$OUT/summary.txt"
  cat "$OUT/$label".rank*.json
}
start
ranks cold cold 120 "" "--check"
./cli/tpjit stats --socket "$W/s.sock" --json >"$OUT/stats_cold.json"
stop; start
ranks warm warm 120 "" ""
./cli/tpjit stats --socket "$W/s.sock" --json >"$OUT/stats_warm.json"
for i in 1 2 3; do ranks "late$i" "late$i" 3 "--delay 6" ""; done
stop
rm -rf "$W"
[[ "${TPJIT_SKIP_BENCH:-0}" == 1 ]] && exit 0
python3 run_bench.py --build . --spec "$BENCH_SPEC" --ranks 8 --out "$OUT" \
  2>&1 | tail -30
