#!/usr/bin/env bash
# Runs on the GPU machine (staged by scripts/gpu-e2e); results go to $OUT.
#  1. cold: tpjitd with an empty cache; one tpjit_e2e_rank per GPU warms up
#     the spec, meets at the NCCL barrier, loads and checks every kernel;
#  2. warm: tpjitd restarted over the same cache, the same ranks;
#  3. late: the last rank arrives 6 s late at a 3 s NCCL barrier (x3);
#  4. the warm-up benchmark (run_bench.py) on the bench spec, one rep
#     (bench.sh runs the benchmark proper).
# Exits non-zero unless every step did what it should: cold and warm ranks
# exit 0 with one manifest digest (cold ranks checked every kernel, warm
# ranks got cache hits only), late ranks exit 3 (DEADLINE_EXCEEDED) with the
# GPU usable afterwards, tpjitd starts and stops cleanly, the stats and the
# benchmark succeed. summary.txt lists each check; TPJIT_REQUIRE_GPU=1.
set -uo pipefail
cd "$(dirname "$0")"
export LD_LIBRARY_PATH="$PWD/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export NCCL_NVLS_ENABLE=0
export CUDA_CACHE_DISABLE=1  # NVRTC 13 would reuse the driver compute cache
export TPJIT_REQUIRE_GPU=1
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
E2E_SPEC=${E2E_SPEC:-specs/qwen3-30b-a3b-tp4.json}
BENCH_SPEC=${BENCH_SPEC:-specs/deepseek-v3-tp8.json}
failures=0
check() {  # what condition...: records the check, counts a failure
  local what=$1; shift
  if "$@"; then
    echo "ok   $what" | tee -a "$OUT/summary.txt"
  else
    echo "FAIL $what" | tee -a "$OUT/summary.txt"
    failures=$((failures + 1))
  fi
}
G=$(nvidia-smi -L | wc -l)
check "nvidia-smi lists GPUs ($G)" test "$G" -ge 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/card.txt"
nproc | tee -a "$OUT/card.txt"
W=$(mktemp -d)
start() {
  ./daemon/tpjitd --socket "$W/s.sock" --cache-dir "$W/cache" 2>>"$OUT/tpjitd.log" &
  D=$!
  for _ in $(seq 1 600); do
    [[ -S "$W/s.sock" ]] && break
    kill -0 "$D" 2>/dev/null || break
    sleep 0.05
  done
  check "tpjitd serves on its socket" test -S "$W/s.sock"
}
stop() {
  kill "$D"
  wait "$D"
  local code=$?
  check "tpjitd exits cleanly on SIGTERM (exit $code)" test "$code" -eq 0
}
field() {  # file key: the value of a top-level JSON field
  python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print(json.dumps(v))' "$1" "$2" 2>/dev/null
}
ranks() {  # label group timeout expected-exit extra-args-for-last extra-for-all
  local label=$1 group=$2 timeout=$3 want=$4 last=$5 all=$6 pids=()
  local t0=$(date +%s%N)
  for ((g = 0; g < G; g++)); do
    local extra=$all; ((g == G - 1)) && extra="$all $last"
    ./tests/gpu/e2e/tpjit_e2e_rank --socket "$W/s.sock" --spec "$E2E_SPEC" \
      --rank $g --world "$G" --gpu $g --group "$group" --timeout "$timeout" \
      $extra >"$OUT/$label.rank$g.json" 2>"$OUT/$label.rank$g.err" &
    pids+=($!)
  done
  for ((g = 0; g < G; g++)); do
    wait "${pids[$g]}"
    local code=$?
    check "$label rank $g exit $code (want $want)" test "$code" -eq "$want"
  done
  echo "$label wall $(( ($(date +%s%N) - t0) / 1000000 )) ms" | tee -a "$OUT/summary.txt"
  cat "$OUT/$label".rank*.json
}
same_digest() {  # label: every rank reported one manifest digest
  local digests
  digests=$(for ((g = 0; g < G; g++)); do field "$OUT/$1.rank$g.json" manifest_digest; done | sort -u)
  [[ $(wc -l <<<"$digests") -eq 1 && "$digests" != null && -n "$digests" ]]
}
all_ranks() {  # label key value: every rank's field equals value
  for ((g = 0; g < G; g++)); do
    [[ "$(field "$OUT/$1.rank$g.json" "$2")" == "$3" ]] || return 1
  done
}
all_checked() {  # label: every rank checked all its kernels, none failed
  for ((g = 0; g < G; g++)); do
    local f="$OUT/$1.rank$g.json" kernels
    kernels=$(field "$f" kernels)
    [[ "$kernels" =~ ^[1-9][0-9]*$ ]] || return 1
    [[ "$(field "$f" checked)" == "$kernels" && "$(field "$f" check_failed)" == 0 ]] || return 1
  done
}
start
ranks cold cold 120 0 "" "--check"
check "cold: one manifest digest" same_digest cold
check "cold: every kernel checked, none failed" all_checked cold
./cli/tpjit stats --socket "$W/s.sock" --json >"$OUT/stats_cold.json"
check "cold: tpjit stats" test $? -eq 0
stop; start
ranks warm warm 120 0 "" ""
check "warm: one manifest digest" same_digest warm
check "warm: nothing compiled (cache hits only)" all_ranks warm compiled 0
./cli/tpjit stats --socket "$W/s.sock" --json >"$OUT/stats_warm.json"
check "warm: tpjit stats" test $? -eq 0
for i in 1 2 3; do
  ranks "late$i" "late$i" 3 3 "--delay 6" ""
  check "late$i: GPUs usable after the aborted barrier" all_ranks "late$i" gpu_usable_after true
done
stop
rm -rf "$W"
if [[ "${TPJIT_SKIP_BENCH:-0}" != 1 ]]; then
  python3 run_bench.py --build . --spec "$BENCH_SPEC" --ranks 8 \
    --reps "${TPJIT_BENCH_REPS:-1}" --out "$OUT" 2>&1 | tail -30
  check "warm-up benchmark (run_bench.py)" test "${PIPESTATUS[0]}" -eq 0
fi
echo "e2e: $failures failed checks" | tee -a "$OUT/summary.txt"
((failures == 0))
