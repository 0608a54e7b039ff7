#!/usr/bin/env bash
# The warm-up benchmark alone, for both shipped specs, $TPJIT_BENCH_REPS
# (default 5) interleaved repetitions each; raw JSON and logs in $OUT, tables
# and plots rendered there by table.py. Exits non-zero when a benchmark run
# fails (pipefail keeps run_bench.py's exit code).
set -uo pipefail
cd "$(dirname "$0")"
export LD_LIBRARY_PATH="$PWD/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export CUDA_CACHE_DISABLE=1 NCCL_NVLS_ENABLE=0 TPJIT_REQUIRE_GPU=1
rc=0
for s in deepseek-v3-tp8 qwen3-30b-a3b-tp4; do
  python3 run_bench.py --build . --spec specs/$s.json --ranks 8 \
    --reps "${TPJIT_BENCH_REPS:-5}" --out "$OUT" 2>&1 | tail -4
  code=${PIPESTATUS[0]}
  echo "bench $s exit $code"
  ((code == 0)) || rc=1
done
python3 table.py "$OUT" && cat "$OUT/README.md" || rc=1
exit $rc
