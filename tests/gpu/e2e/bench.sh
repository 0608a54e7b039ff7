#!/usr/bin/env bash
# The benchmarks on a GPU machine (staged by scripts/gpu-e2e): the warm-up
# benchmark for both shipped specs (or $BENCH_SPECS), $TPJIT_BENCH_REPS
# (default 5) interleaved repetitions each, raw JSON and logs in $OUT, tables
# and plots rendered there by table.py; then the generic batch bench
# ($GENERIC_N kernels, default 16; $GENERIC_REPS reps, default 5;
# TPJIT_SKIP_GENERIC=1 skips it) into $OUT/generic. Exits non-zero when a
# benchmark run fails (pipefail keeps run_bench.py's exit code). Both specs
# and the generic bench leave 13 files; a device tool that returns fewer
# wants them tarred, e.g. OUT=/tmp/b bash bench.sh; tar czf $REAL_OUT/b.tgz -C /tmp/b .
set -uo pipefail
cd "$(dirname "$0")"
export LD_LIBRARY_PATH="$PWD/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export CUDA_CACHE_DISABLE=1 NCCL_NVLS_ENABLE=0 TPJIT_REQUIRE_GPU=1
rc=0
for s in ${BENCH_SPECS:-deepseek-v3-tp8 qwen3-30b-a3b-tp4}; do
  python3 run_bench.py --build . --spec specs/$s.json --ranks 8 \
    --reps "${TPJIT_BENCH_REPS:-5}" --out "$OUT" 2>&1 | tail -4
  code=${PIPESTATUS[0]}
  echo "bench $s exit $code"
  ((code == 0)) || rc=1
done
python3 table.py "$OUT" && cat "$OUT/README.md" || rc=1
# The generic batch bench (nvcc; no GPU needed), raw JSON and table in $OUT/generic.
if [[ "${TPJIT_SKIP_GENERIC:-0}" != 1 ]]; then
  TPJIT_NO_BUILD=1 TPJITD=$PWD/daemon/tpjitd TPJIT_MINITL_DIR=$PWD/testlib \
    GENERIC_OUT=$OUT/generic GENERIC_COMMAND="scripts/gpu-e2e; bench.sh" \
    bash bench/generic/run.sh "${GENERIC_N:-16}" "${GENERIC_REPS:-5}" \
    "$(nproc)core-n${GENERIC_N:-16}" "$PWD" || rc=1
fi
exit $rc
