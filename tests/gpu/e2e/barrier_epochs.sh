#!/usr/bin/env bash
# Later on-time barriers of a group on both transports (issue 13: <= 10 ms
# after the group's first): one tpjitd, one tpjit_e2e_rank per GPU; each rank
# warms up the Qwen spec, meets the others at the NCCL barrier (communicator
# init), then runs EPOCHS more NCCL barriers on the kept communicator and
# EPOCHS+1 daemon-transport barriers, timing each. Results: $OUT/barrier-epochs.txt.
#   bash tests/gpu/e2e/barrier_epochs.sh STAGE_DIR [EPOCHS]
set -euo pipefail
stage="$1"; epochs="${2:-20}"
out="${OUT:-/tmp/barrier-epochs}"; mkdir -p "$out"
export LD_LIBRARY_PATH="$stage/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export NCCL_NVLS_ENABLE=0 TPJIT_REQUIRE_GPU=1
work="$(mktemp -d)"; chmod 700 "$work"
"$stage/daemon/tpjitd" --socket "$work/s.sock" --cache-dir "$work/cache" \
  >"$work/tpjitd.log" 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  "$stage/cli/tpjit" health --socket "$work/s.sock" >/dev/null 2>&1 && break
  sleep 0.1
done
gpus=$(nvidia-smi -L | wc -l)
pids=()
for ((r = 0; r < gpus; r++)); do
  "$stage/bin/tpjit_e2e_rank" --socket "$work/s.sock" \
    --spec specs/qwen3-30b-a3b-tp4.json --group epochs --rank "$r" \
    --world "$gpus" --gpu "$r" --epochs "$epochs" --timeout 60 \
    >"$work/rank$r.json" 2>"$work/rank$r.log" &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
# One file back (the device tool returns few): each rank's JSON, then logs.
{ for ((r = 0; r < gpus; r++)); do cat "$work/rank$r.json"; done
  for f in "$work"/rank*.log "$work/tpjitd.log"; do
    echo "== $f"; tail -20 "$f"; done; } >"$out/barrier-epochs.txt"
head -"$gpus" "$out/barrier-epochs.txt"
exit $rc
